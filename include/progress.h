/* progress: a one-line transfer progress bar on stderr (bytes, rate, ETA), drawn only when
 * stderr is a TTY and not --quiet (log_is_tty), at most five times a second. Plugs into
 * http.h's struct http_progress, or is fed byte counts by a caller that knows better than the
 * transfer (a resumed download counts what is in the file, across several requests).
 * Also the elapsed time of a long wait with nothing to count (a guest agent, a lock). */
#ifndef PHX_PROGRESS_H
#define PHX_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prog_bar {
	const char *label; /* borrowed */
	double t0, last_draw;
	/* Bytes that were there before t0 (a resumed prefix): shown in the count, left out of
	 * the rate. A transfer that starts over from zero sets it back to 0. */
	uint64_t start;
	uint64_t now, total;
	bool active;
};

void prog_bar_init(struct prog_bar *b, const char *label);
/* prog_bar_init() for a transfer that continues at byte `start`. */
void prog_bar_init_at(struct prog_bar *b, const char *label, uint64_t start);
/* struct http_progress callback; ud is the struct prog_bar. `now` counts from 0 (plus
 * b->start when the caller counts that way); total 0 = unknown. */
void prog_bar_update(void *ud, uint64_t now, uint64_t total);
/* Draws the final state and ends the line (nothing when inactive or nothing was drawn). */
void prog_bar_finish(struct prog_bar *b);
/* Draws `now` of `total` as the final state and ends the line even when nothing was drawn
 * yet (nothing when inactive): for callers that count the bytes themselves. */
void prog_bar_finish_at(struct prog_bar *b, uint64_t now, uint64_t total);

/* A byte count as the bar shows it: "1.5 MiB" below 1 GiB, else "2.25 GiB". */
void prog_format_bytes(uint64_t n, char *ret, size_t len);

/* A wait that can take minutes, so that a person or a log sees the run is alive: on a TTY a
 * live line "WHAT: 45 s" redrawn about once a second, otherwise an info log line "WHAT: 30 s"
 * every PROG_WAIT_LOG_S seconds. Nothing under --quiet, nor in the first PROG_WAIT_QUIET_S
 * seconds. */
#define PROG_WAIT_LOG_S 30
#define PROG_WAIT_QUIET_S 2 /* nothing is drawn for a wait shorter than this */

struct prog_wait {
	char what[160];
	double t0;
	double drawn;	 /* elapsed seconds last drawn on the TTY, -1 before the first */
	unsigned logged; /* log lines written so far */
	bool tty;
};

/* Starts the clock; `what` is copied ("waiting for guest agent of 8001"). */
void prog_wait_start(struct prog_wait *w, const char *what);
/* Draws or logs what is due now (call it at least once a second for a smooth line). */
void prog_wait_tick(struct prog_wait *w);
/* prog_wait_tick() at monotonic time `now` (tests pass their own clock). */
void prog_wait_tick_at(struct prog_wait *w, double now);
/* Erases the live line (the caller logs how the wait ended). */
void prog_wait_end(struct prog_wait *w);

#endif
