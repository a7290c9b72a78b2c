/* Unit tests for progress: a long wait shows its elapsed time, as a live line on a TTY and as
 * an info log line every PROG_WAIT_LOG_S seconds otherwise; short waits show nothing. The
 * clock is passed in (prog_wait_tick_at), stderr is captured. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "progress.h"

static void capture(void)
{
	cr_redirect_stderr();
	log_setup(0, false);
}

Test(progress, wait_logs_a_line_every_thirty_seconds_when_not_a_tty, .init = capture)
{
	struct prog_wait w;

	prog_wait_start(&w, "waiting for guest agent of 8001");
	cr_assert_not(w.tty, "stderr is a pipe under the test");
	w.t0 = 100;
	for (double t = 100; t <= 175; t += 0.5)
		prog_wait_tick_at(&w, t);
	prog_wait_end(&w);
	fflush(stderr);
	cr_assert_stderr_eq_str("waiting for guest agent of 8001: 30 s\n"
				"waiting for guest agent of 8001: 60 s\n");
}

Test(progress, wait_draws_a_live_line_on_a_tty_once_a_second, .init = capture)
{
	struct prog_wait w;

	prog_wait_start(&w, "waiting for guest agent of 8001");
	w.tty = true; /* as log_is_tty() says on a terminal */
	w.t0 = 0;
	prog_wait_tick_at(&w, 1.5); /* short waits show nothing */
	prog_wait_tick_at(&w, 2.1);
	prog_wait_tick_at(&w, 2.6); /* same second: not redrawn */
	prog_wait_tick_at(&w, 45.2);
	prog_wait_end(&w);
	fflush(stderr);
	cr_assert_stderr_eq_str("\r\033[Kwaiting for guest agent of 8001: 2 s"
				"\r\033[Kwaiting for guest agent of 8001: 45 s"
				"\r\033[K");
}

Test(progress, quiet_shows_no_wait, .init = capture)
{
	struct prog_wait w;

	log_setup(0, true);
	prog_wait_start(&w, "waiting for the run lock");
	w.t0 = 0;
	prog_wait_tick_at(&w, 95);
	prog_wait_end(&w);
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}
