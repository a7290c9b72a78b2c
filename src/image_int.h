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
	/* ...and made durable (fdatasync) once this much more is written: a disk's write cache
	 * (a virtual disk's too) holds what was written until a flush. Measured on this
	 * project's 2-core VM (ext4): writing 256 MiB at 1 Gbit/s with writeback started and
	 * even waited for, the one fsync at the end took 100-120 ms; with an fdatasync per
	 * 32 MiB on the way, 0.3 ms. */
	IMG_SYNC_CHUNK = 32 << 20,
};

enum {
	/* Larger slots hand over less often, which helps where the hash is the bottleneck and
	 * hurts on disk, where the cache is (1 GiB, medians of interleaved rounds): against
	 * 1 MiB x 8, tmpfs 1.54 vs 1.18 s but disk 1.75 vs 1.99 s; against 512 KiB x 4 and
	 * x 8, tmpfs 1.40 vs 1.32 and 1.24 s but disk 2.00 vs 2.18 and 2.06 s. */
	IMG_SLOT = 256 << 10, /* one slot of the ring */
	IMG_SLOTS = 4,
};

/* The writer: the network thread copies the body into a ring of IMG_SLOTS slots; a writer
 * thread writes each full slot to the .part while a hasher thread hashes the same slot, and
 * a slot is filled again once both are done with it. Hashing in the network thread would
 * make a download cost transfer + hash time, and writing and hashing in one thread makes it
 * cost write + hash time; this way it costs about the largest of the three, and re-reading
 * the file for the hash is not needed. The hasher also re-hashes a resumed prefix while the
 * first slots arrive. The crypto contexts belong to the hasher while it runs.
 * A fourth thread, the flusher, starts writeback of what the writer has written (in chunks of
 * IMG_WB_CHUNK) and makes it durable every IMG_SYNC_CHUNK, so the final fsync finds little
 * left to write or flush. The writer hands it a range end and never waits for its calls, and
 * ranges that pile up while it is blocked become one.
 * The first failure of any thread (a write, a hash, a flush) is kept in err and ends the
 * download: no slot is handed over after it. */
struct img_writer {
	pthread_t writer, hasher, flusher;
	pthread_mutex_t mu;
	pthread_cond_t data_cv;	 /* head moved, stop or failed */
	pthread_cond_t space_cv; /* a tail moved or failed */
	pthread_cond_t wb_cv;	 /* wb_end moved or stop */
	bool writer_running, hasher_running, flusher_running;
	int fd;
	const char *part_path, *cache_dir; /* borrowed, for messages */
	struct crypto_sha256 *h;
	/* The checksum file's algorithm when it is not SHA-256 (Debian's SHA512SUMS): hashed
	 * next to h, which stays the image's identity. Set before img_writer_start. */
	enum crypto_alg verify_alg;
	struct crypto_hash *verify; /* NULL for SHA-256 */
	unsigned char *slot[IMG_SLOTS];
	size_t slot_len[IMG_SLOTS];
	uint64_t slot_off[IMG_SLOTS];
	size_t fill;	 /* bytes in the slot being filled, slot[head % IMG_SLOTS]; network only */
	uint64_t pos;	 /* file offset of that slot's first byte; network only */
	uint64_t prefix; /* bytes already in the file to hash first; hasher only */
	/* under mu: */
	uint64_t head;	   /* slots handed over */
	uint64_t written;  /* slots the writer is done with */
	uint64_t hashed;   /* slots the hasher is done with */
	uint64_t wb_end;   /* the writer wrote the file up to here */
	uint64_t wb_start; /* writeback was started up to here (flusher) */
	bool stop;	   /* no more slots: exit when idle */
	bool failed;	   /* err is set; no slot is handed over any more */
	struct phx_err err; /* the first failure */
	/* network thread only: a failure was reported to it, so nothing more is put */
	bool broken;
};

/* Sets up an idle writer for the .part at part_path in cache_dir (both borrowed, for
 * messages). -1 when a mutex or condition variable cannot be made; then nothing is left to
 * release. */
int img_writer_init(struct img_writer *w, const char *part_path, const char *cache_dir);
/* Starts the threads for `fd` whose first `prefix` bytes are kept (and hashed first). */
int img_writer_start(struct img_writer *w, int fd, uint64_t prefix, struct phx_err *err);
/* Copies `data` into the slot being filled, handing full slots to the writer and the hasher. */
int img_writer_put(struct img_writer *w, const void *data, size_t len, struct phx_err *err);
/* Waits until everything put is in the file (and hashed). */
int img_writer_flush(struct img_writer *w, struct phx_err *err);
/* Ends the threads once the slots handed over are written and hashed (and a resumed prefix
 * hashed); the slot being filled is dropped. */
void img_writer_stop(struct img_writer *w);
/* Flushes and ends the threads (the hasher may still be hashing a resumed prefix); the hash
 * is then complete and belongs to the caller's thread. Fails with the first failure of a
 * thread: a write, the hash or one of the flusher's fdatasyncs (an fdatasync reports an error
 * once per open file, so the caller's own fsync could miss it). */
int img_writer_finish(struct img_writer *w, struct phx_err *err);
/* Stops the threads if they run and frees the slots and the hash (after img_writer_init). */
void img_writer_release(struct img_writer *w);

#endif
