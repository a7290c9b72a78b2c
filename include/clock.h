/* clock: monotonic time and interruptible-safe sleeps for polling loops (tasks, agents,
 * retries) and phase timings. */
#ifndef PHX_CLOCK_H
#define PHX_CLOCK_H

/* Seconds on the monotonic clock (not wall time: immune to NTP steps). */
double clk_now(void);

/* Sleeps `ms` milliseconds, resuming after signal interruptions. */
void clk_sleep_ms(unsigned ms);

#endif
