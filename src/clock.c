/* clock: monotonic seconds and sleeps. */
#include "clock.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

/* lock-free, so safe in a signal handler and between the --jobs worker threads */
static atomic_int clk_stop_signal;

double clk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clk_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void clk_signal_note(int signo)
{
	clk_stop_signal = signo;
}

int clk_signal(void)
{
	return clk_stop_signal;
}

void clk_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
