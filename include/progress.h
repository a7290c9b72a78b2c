/* progress: a one-line transfer progress bar on stderr (bytes, rate, ETA), drawn only when
 * stderr is a TTY and not --quiet (log_is_tty), at most five times a second. Plugs into
 * http.h's struct http_progress. The image download has its own bar, which also accounts
 * for resumed bytes. */
#ifndef PHX_PROGRESS_H
#define PHX_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct prog_bar {
	const char *label; /* borrowed */
	double t0, last_draw;
	uint64_t now, total;
	bool active;
};

void prog_bar_init(struct prog_bar *b, const char *label);
/* struct http_progress callback; ud is the struct prog_bar. */
void prog_bar_update(void *ud, uint64_t now, uint64_t total);
/* Draws the final state and ends the line (nothing when inactive or nothing was drawn). */
void prog_bar_finish(struct prog_bar *b);

#endif
