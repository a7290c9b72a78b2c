/* progress: TTY progress bar for transfers (uploads, image downloads), and the elapsed time
 * of long waits. */
#include "progress.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

void prog_bar_init(struct prog_bar *b, const char *label)
{
	prog_bar_init_at(b, label, 0);
}

void prog_bar_init_at(struct prog_bar *b, const char *label, uint64_t start)
{
	*b = (struct prog_bar){
		.label = label, .t0 = clk_now(), .start = start, .active = log_is_tty()};
}

void prog_format_bytes(uint64_t v, char *ret, size_t len)
{
	if (v >= (uint64_t)1 << 30)
		snprintf(ret, len, "%.2f GiB", (double)v / (1 << 30));
	else
		snprintf(ret, len, "%.1f MiB", (double)v / (1 << 20));
}

static void prog_draw(const struct prog_bar *b, bool final)
{
	double secs = clk_now() - b->t0;
	uint64_t moved = b->now > b->start ? b->now - b->start : 0;
	double rate = secs > 0 ? (double)moved / secs : 0;
	char have[32], total[32] = "?", eta[32] = "--:--";

	prog_format_bytes(b->now, have, sizeof(have));
	if (b->total) {
		prog_format_bytes(b->total, total, sizeof(total));
		if (rate > 0 && b->total >= b->now) {
			unsigned left = (unsigned)((double)(b->total - b->now) / rate);

			snprintf(eta, sizeof(eta), "%u:%02u", left / 60, left % 60);
		}
	}
	/* \r + erase line: redraw in place; stderr is a TTY here (log_is_tty) */
	fprintf(stderr, "\r\033[K%s  %s / %s  %.1f MiB/s  ETA %s%s", b->label, have, total,
		rate / (1 << 20), eta, final ? "\n" : "");
	fflush(stderr);
}

void prog_bar_update(void *ud, uint64_t now, uint64_t total)
{
	struct prog_bar *b = ud;
	double t = clk_now();

	b->now = now;
	b->total = total;
	if (!b->active || t - b->last_draw < 0.2)
		return;
	b->last_draw = t;
	prog_draw(b, false);
}

void prog_bar_finish(struct prog_bar *b)
{
	if (b->active && b->last_draw > 0)
		prog_draw(b, true);
}

void prog_bar_finish_at(struct prog_bar *b, uint64_t now, uint64_t total)
{
	b->now = now;
	b->total = total;
	if (b->active)
		prog_draw(b, true);
}

void prog_wait_start(struct prog_wait *w, const char *what)
{
	*w = (struct prog_wait){.t0 = clk_now(), .drawn = -1, .tty = log_is_tty()};
	snprintf(w->what, sizeof(w->what), "%s", what);
}

void prog_wait_tick_at(struct prog_wait *w, double now)
{
	double secs = now - w->t0;

	if (secs < PROG_WAIT_QUIET_S)
		return; /* most waits end sooner: no line flashing by */
	if (w->tty) {
		if (w->drawn >= 0 && (unsigned)secs == (unsigned)w->drawn)
			return;
		w->drawn = secs;
		fprintf(stderr, "\r\033[K%s: %u s", w->what, (unsigned)secs);
		fflush(stderr);
		return;
	}
	/* a log is read later, line by line: one line per interval, not a redraw */
	if (secs >= (double)(w->logged + 1) * PROG_WAIT_LOG_S) {
		w->logged = (unsigned)(secs / PROG_WAIT_LOG_S);
		log_info("%s: %u s", w->what, w->logged * PROG_WAIT_LOG_S);
	}
}

void prog_wait_tick(struct prog_wait *w)
{
	prog_wait_tick_at(w, clk_now());
}

void prog_wait_end(struct prog_wait *w)
{
	if (w->tty && w->drawn >= 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	w->drawn = -1;
}
