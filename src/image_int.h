/* image_int: what the image_*.c files share and nobody else may use. include/image.h stays
 * the module's one public header; this one exists because image.c embeds the writer of
 * image_writer.c in its download state, so the struct (and the pthread types in it) must be
 * visible to both without becoming part of the module's API. */
#ifndef PHX_IMAGE_INT_H
#define PHX_IMAGE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

enum {
	/* Writeback is started once this much is written and not yet started: large enough that
	 * the flusher wakes rarely, small enough that the disk starts early. */
	IMG_WB_CHUNK = 8 << 20,
};

/* The writer: the network thread copies the body into one of two buffers; a helper thread
 * writes the other full buffer to the .part and hashes it. Hashing in the network thread
 * would make a download cost transfer + hash time; this way it costs about the larger of
 * the two, and re-reading the file for the hash (a copy plus page-cache lookups) is not
 * needed. The worker also re-hashes a resumed prefix while the first new bytes arrive. The
 * crypto context and the buffer being written belong to the worker while it runs.
 * A third thread, the flusher, starts writeback of what the worker has written (in chunks of
 * IMG_WB_CHUNK) so the final fsync finds little left to write. It is the only thread that
 * may block on the disk's queue: the worker hands it a range end and never waits for it, and
 * ranges that pile up while it is blocked become one. */
struct img_writer {
	pthread_t thread, flusher;
	pthread_mutex_t mu;
	pthread_cond_t cv, wb_cv;
	bool running, flusher_running;
	int fd;
	const char *part_path, *cache_dir; /* borrowed, for messages */
	struct crypto_sha256 *h;
	/* The checksum file's algorithm when it is not SHA-256 (Debian's SHA512SUMS): hashed
	 * next to h, which stays the image's identity. Set before img_writer_start. */
	enum crypto_alg verify_alg;
	struct crypto_hash *verify; /* NULL for SHA-256 */
	unsigned char *buf[2];
	int cur;	 /* buffer the network thread fills */
	size_t fill;	 /* bytes in buf[cur] */
	uint64_t pos;	 /* file offset of buf[cur][0] */
	uint64_t prefix; /* bytes already in the file to hash first; worker only */
	/* under mu: */
	bool busy; /* buf[pending] is handed to the worker */
	int pending;
	size_t plen;
	uint64_t poff;
	uint64_t wb_end;    /* the worker wrote the file up to here */
	uint64_t wb_start;  /* writeback was started up to here (flusher) */
	bool stop;	    /* no more buffers: exit when idle */
	bool failed;	    /* err is set; nothing more is written */
	struct phx_err err; /* the worker's failure */
};

/* Sets up an idle writer for the .part at part_path in cache_dir (both borrowed, for
 * messages). -1 when a mutex or condition variable cannot be made; then nothing is left to
 * release. */
int img_writer_init(struct img_writer *w, const char *part_path, const char *cache_dir);
/* Starts a worker for `fd` whose first `prefix` bytes are kept (and hashed first). */
int img_writer_start(struct img_writer *w, int fd, uint64_t prefix, struct phx_err *err);
/* Copies `data` into the current buffer, handing full buffers to the worker. */
int img_writer_put(struct img_writer *w, const void *data, size_t len, struct phx_err *err);
/* Waits until everything put is in the file (and hashed). */
int img_writer_flush(struct img_writer *w, struct phx_err *err);
/* Ends the worker; what was not flushed is dropped. */
void img_writer_stop(struct img_writer *w);
/* Flushes and ends the worker (it may still be hashing a resumed prefix); the hash is then
 * complete and belongs to the caller's thread. */
int img_writer_finish(struct img_writer *w, struct phx_err *err);
/* Stops the worker if it runs and frees the buffers and the hash (after img_writer_init). */
void img_writer_release(struct img_writer *w);

#endif
