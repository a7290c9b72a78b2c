/* clock: monotonic time and interruptible-safe sleeps for polling loops (tasks, agents,
 * retries) and phase timings. */
#ifndef PHX_CLOCK_H
#define PHX_CLOCK_H

/* Seconds on the monotonic clock (not wall time: immune to NTP steps). */
double clk_now(void);

/* Seconds since the epoch on the wall clock, for timestamps others read (metrics). */
double clk_wall(void);

/* Sleeps `ms` milliseconds, resuming after signal interruptions. */
void clk_sleep_ms(unsigned ms);

/* A stop request (SIGINT, SIGTERM, SIGHUP): main's handler notes the signal (async-signal
 * safe); long waits and transfers ask clk_signal() and end with PHX_E_INTERRUPTED, so the
 * run rolls back what it created before it exits. The rollback's own requests do not ask.
 * This is the program's one piece of mutable global state: a handler has no other way. */
void clk_signal_note(int signo);
/* The noted signal, or 0. */
int clk_signal(void);

#endif
