/* image_writer: the ring behind an image download. The network thread copies the body into
 * one slot while a writer thread writes earlier slots to the .part and a hasher thread hashes
 * them, and a flusher starts writeback of what is written (see struct img_writer in
 * image_int.h). Knows files, threads and the hashes; nothing about HTTP, the cache layout or
 * progress. */
#include "image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Records the first failure of any thread (the others' are consequences) and wakes everyone:
 * the network thread stops handing slots, the consumers stop taking them. Called under mu. */
static void img_writer_failed(struct img_writer *w, const struct phx_err *e)
{
	if (!w->failed)
		w->err = *e;
	w->failed = true;
	pthread_cond_broadcast(&w->data_cv);
	pthread_cond_broadcast(&w->space_cv);
}

/* Starts writeback of the written part of the file, IMG_WB_CHUNK or more at a time, and
 * makes it durable every IMG_SYNC_CHUNK, so the disk writes and flushes while the rest
 * arrives and the final fsync has only the tail left (measured in tests/bench/bench_download).
 * Both calls may block while the disk is busy: the writer does not wait for them, and what it
 * writes meanwhile is started in one go afterwards. */
static void *img_flusher_main(void *arg)
{
	struct img_writer *w = arg;
	uint64_t synced;

	pthread_mutex_lock(&w->mu);
	synced = w->wb_start;
	for (;;) {
		uint64_t start, end;

		while (!w->stop && w->wb_end - w->wb_start < IMG_WB_CHUNK)
			pthread_cond_wait(&w->wb_cv, &w->mu);
		if (w->stop)
			break;
		start = w->wb_start;
		/* whole pages only: a partial last page would be written again when it fills (the
		 * fdatasync below writes it anyway, once per IMG_SYNC_CHUNK) */
		end = w->wb_end & ~(uint64_t)4095;
		w->wb_start = end;
		pthread_mutex_unlock(&w->mu);
		/* a write error here is reported again by the fdatasync or the final fsync */
		(void)sync_file_range(w->fd, (off_t)start, (off_t)(end - start),
				      SYNC_FILE_RANGE_WRITE);
		if (end - synced >= IMG_SYNC_CHUNK) {
			struct phx_err e = PHX_ERR_INIT;

			/* an error is reported once per open file, so the final fsync would not see
			 * it again: it fails the download here */
			if (fdatasync(w->fd) < 0)
				phx_err_set_errno(&e, PHX_E_IO, errno, "fsync '%s'", w->part_path);
			synced = end;
			pthread_mutex_lock(&w->mu);
			if (e.code)
				img_writer_failed(w, &e);
			continue;
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The loop of the writer and the hasher: take the slot after the *done ones, work on it
 * outside the lock, move *done on; the network thread reuses a slot once both are past it. */
static void img_consume(struct img_writer *w, uint64_t *done,
			int (*work)(struct img_writer *w, const unsigned char *b, size_t len,
				    uint64_t off, struct phx_err *err),
			bool is_writer)
{
	struct phx_err e = PHX_ERR_INIT;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		const unsigned char *b;
		size_t len;
		uint64_t off;
		int i;

		while (*done == w->head && !w->stop && !w->failed)
			pthread_cond_wait(&w->data_cv, &w->mu);
		if (w->failed || *done == w->head)
			break;
		i = (int)(*done % IMG_SLOTS);
		b = w->slot[i];
		len = w->slot_len[i];
		off = w->slot_off[i];
		pthread_mutex_unlock(&w->mu);
		if (work(w, b, len, off, &e) < 0) {
			pthread_mutex_lock(&w->mu);
			img_writer_failed(w, &e);
			break;
		}
		pthread_mutex_lock(&w->mu);
		(*done)++;
		pthread_cond_broadcast(&w->space_cv);
		if (is_writer) {
			w->wb_end = off + len;
			if (w->wb_end - w->wb_start >= IMG_WB_CHUNK)
				pthread_cond_signal(&w->wb_cv);
		}
	}
	pthread_mutex_unlock(&w->mu);
}

static int img_write_slot(struct img_writer *w, const unsigned char *p, size_t len, uint64_t off,
			  struct phx_err *err)
{
	while (len) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			if (e == ENOSPC || e == EDQUOT)
				return phx_err_set_errno(err, PHX_E_IO, e,
							 "write '%s': cache directory '%s' is full",
							 w->part_path, w->cache_dir);
			return phx_err_set_errno(err, PHX_E_IO, e, "write '%s'", w->part_path);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int img_hash_slot(struct img_writer *w, const unsigned char *p, size_t len, uint64_t off,
			 struct phx_err *err)
{
	(void)off;
	if (crypto_sha256_update(w->h, p, len, err) < 0 ||
	    (w->verify && crypto_hash_update(w->verify, p, len, err) < 0))
		return -1;
	return 0;
}

static void *img_writer_main(void *arg)
{
	struct img_writer *w = arg;

	img_consume(w, &w->written, img_write_slot, true);
	return NULL;
}

static void *img_hasher_main(void *arg)
{
	struct img_writer *w = arg;
	struct phx_err e = PHX_ERR_INIT;

	/* the kept prefix is in the file already: it is hashed first, while the first slots
	 * arrive (the network thread waits once they are full; stop waits for it too) */
	if (w->prefix &&
	    (crypto_sha256_fd_prefix(w->h, w->fd, w->prefix, &e) < 0 ||
	     (w->verify && crypto_hash_fd_prefix(w->verify, w->fd, w->prefix, &e) < 0))) {
		pthread_mutex_lock(&w->mu);
		img_writer_failed(w, &e);
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	img_consume(w, &w->hashed, img_hash_slot, false);
	return NULL;
}

int img_writer_start(struct img_writer *w, int fd, uint64_t prefix, struct phx_err *err)
{
	int e;

	w->fd = fd;
	w->prefix = w->pos = w->wb_start = w->wb_end = prefix;
	w->fill = 0;
	w->head = w->written = w->hashed = 0;
	w->stop = w->failed = w->broken = false;
	phx_err_clear(&w->err);
	for (int i = 0; i < IMG_SLOTS; i++)
		if (!w->slot[i] && !(w->slot[i] = malloc(IMG_SLOT)))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	crypto_sha256_free(w->h);
	w->h = crypto_sha256_new(err);
	if (!w->h)
		return -1;
	crypto_hash_free(w->verify);
	w->verify = NULL;
	if (w->verify_alg != CRYPTO_SHA256 && !(w->verify = crypto_hash_new(w->verify_alg, err)))
		return -1;
	e = pthread_create(&w->writer, NULL, img_writer_main, w);
	if (e)
		return phx_err_set_errno(err, PHX_E_RUNTIME, e, "start writer thread");
	w->writer_running = true;
	e = pthread_create(&w->hasher, NULL, img_hasher_main, w);
	if (!e) {
		w->hasher_running = true;
		e = pthread_create(&w->flusher, NULL, img_flusher_main, w);
		if (!e) {
			w->flusher_running = true;
			return 0;
		}
	}
	img_writer_stop(w);
	return phx_err_set_errno(err, PHX_E_RUNTIME, e, "start the download's threads");
}

static uint64_t img_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Hands the slot being filled to the writer and the hasher and waits until the next slot is
 * free; false when one of them failed. */
static bool img_writer_submit(struct img_writer *w)
{
	bool ok;

	pthread_mutex_lock(&w->mu);
	if (!w->failed && w->fill) {
		int i = (int)(w->head % IMG_SLOTS);

		w->slot_len[i] = w->fill;
		w->slot_off[i] = w->pos;
		w->head++;
		pthread_cond_broadcast(&w->data_cv);
		w->pos += w->fill;
		w->fill = 0;
	}
	while (!w->failed && w->head - img_min(w->written, w->hashed) >= IMG_SLOTS)
		pthread_cond_wait(&w->space_cv, &w->mu);
	ok = !w->failed;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* The first failure, for the network thread; nothing more may be put after it. */
static int img_writer_fail(struct img_writer *w, struct phx_err *err)
{
	struct phx_err e;

	pthread_mutex_lock(&w->mu);
	e = w->err;
	pthread_mutex_unlock(&w->mu);
	w->broken = true;
	return phx_err_set(err, e.code ? e.code : PHX_E_IO, "%s",
			   e.code ? e.msg : "writer failed");
}

int img_writer_put(struct img_writer *w, const void *data, size_t len, struct phx_err *err)
{
	const unsigned char *p = data;

	/* after a failure a consumer may still be inside a slot this would fill */
	if (w->broken)
		return img_writer_fail(w, err);
	while (len) {
		unsigned char *slot = w->slot[w->head % IMG_SLOTS];
		size_t n = IMG_SLOT - w->fill < len ? IMG_SLOT - w->fill : len;

		memcpy(slot + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == IMG_SLOT && !img_writer_submit(w))
			return img_writer_fail(w, err);
	}
	return 0;
}

int img_writer_flush(struct img_writer *w, struct phx_err *err)
{
	bool failed;

	if (!img_writer_submit(w))
		return img_writer_fail(w, err);
	pthread_mutex_lock(&w->mu);
	while (!w->failed && (w->written != w->head || w->hashed != w->head))
		pthread_cond_wait(&w->space_cv, &w->mu);
	failed = w->failed;
	pthread_mutex_unlock(&w->mu);
	return failed ? img_writer_fail(w, err) : 0;
}

void img_writer_stop(struct img_writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->data_cv);
	pthread_cond_broadcast(&w->wb_cv);
	pthread_mutex_unlock(&w->mu);
	if (w->writer_running)
		pthread_join(w->writer, NULL);
	if (w->hasher_running)
		pthread_join(w->hasher, NULL);
	if (w->flusher_running)
		pthread_join(w->flusher, NULL);
	w->writer_running = w->hasher_running = w->flusher_running = false;
	w->fill = 0;
}

int img_writer_finish(struct img_writer *w, struct phx_err *err)
{
	if (img_writer_flush(w, err) < 0)
		return -1;
	img_writer_stop(w);
	if (w->failed)
		return img_writer_fail(w, err);
	return 0;
}

int img_writer_init(struct img_writer *w, const char *part_path, const char *cache_dir)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->part_path = part_path;
	w->cache_dir = cache_dir;
	if (pthread_mutex_init(&w->mu, NULL))
		return -1;
	if (pthread_cond_init(&w->data_cv, NULL))
		goto mu;
	if (pthread_cond_init(&w->space_cv, NULL))
		goto data;
	if (pthread_cond_init(&w->wb_cv, NULL))
		goto space;
	return 0;
space:
	pthread_cond_destroy(&w->space_cv);
data:
	pthread_cond_destroy(&w->data_cv);
mu:
	pthread_mutex_destroy(&w->mu);
	return -1;
}

void img_writer_release(struct img_writer *w)
{
	img_writer_stop(w);
	pthread_cond_destroy(&w->wb_cv);
	pthread_cond_destroy(&w->space_cv);
	pthread_cond_destroy(&w->data_cv);
	pthread_mutex_destroy(&w->mu);
	crypto_sha256_free(w->h);
	crypto_hash_free(w->verify);
	for (int i = 0; i < IMG_SLOTS; i++)
		free(w->slot[i]);
}
