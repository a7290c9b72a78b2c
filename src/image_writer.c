/* image_writer: the double-buffered writer behind an image download. The network thread
 * copies the body into one buffer while a helper thread writes the other to the .part and
 * hashes it, and a third starts writeback of what is written (see struct img_writer in
 * image_int.h). Knows files, threads and the hashes; nothing about HTTP, the cache layout
 * or progress. */
#include "image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	IMG_WBUF = 256 << 10, /* each of the two write buffers: small enough to stay in cache */
};

/* Starts writeback of the written part of the file, IMG_WB_CHUNK or more at a time, so the
 * disk writes while the rest arrives and the final fsync has only the tail left (measured in
 * tests/bench/bench_download). sync_file_range may block while the disk's queue is full: only
 * this thread waits then, and what is written meanwhile is started in one go afterwards. */
static void *img_flusher_main(void *arg)
{
	struct img_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		uint64_t start, end;

		while (!w->stop && w->wb_end - w->wb_start < IMG_WB_CHUNK)
			pthread_cond_wait(&w->wb_cv, &w->mu);
		if (w->stop)
			break;
		start = w->wb_start;
		/* whole pages only: a partial last page would be written again when it fills */
		end = w->wb_end & ~(uint64_t)4095;
		w->wb_start = end;
		pthread_mutex_unlock(&w->mu);
		/* a write error here is reported again by the fsync that makes the file durable */
		(void)sync_file_range(w->fd, (off_t)start, (off_t)(end - start),
				      SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int img_writer_write(struct img_writer *w, const unsigned char *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			if (e == ENOSPC || e == EDQUOT)
				return phx_err_set_errno(&w->err, PHX_E_IO, e,
							 "write '%s': cache directory '%s' is full",
							 w->part_path, w->cache_dir);
			return phx_err_set_errno(&w->err, PHX_E_IO, e, "write '%s'", w->part_path);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void *img_writer_main(void *arg)
{
	struct img_writer *w = arg;
	bool ok = true;

	if (w->prefix && (crypto_sha256_fd_prefix(w->h, w->fd, w->prefix, &w->err) < 0 ||
			  (w->verify &&
			   crypto_hash_fd_prefix(w->verify, w->fd, w->prefix, &w->err) < 0)))
		ok = false;
	pthread_mutex_lock(&w->mu);
	if (!ok) {
		w->failed = true;
		pthread_cond_broadcast(&w->cv);
	}
	while (ok) {
		const unsigned char *b;
		size_t len;
		uint64_t off;

		while (!w->busy && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->busy)
			break;
		b = w->buf[w->pending];
		len = w->plen;
		off = w->poff;
		pthread_mutex_unlock(&w->mu);
		ok = img_writer_write(w, b, len, off) == 0 &&
		     crypto_sha256_update(w->h, b, len, &w->err) == 0 &&
		     (!w->verify || crypto_hash_update(w->verify, b, len, &w->err) == 0);
		pthread_mutex_lock(&w->mu);
		w->busy = false;
		w->failed = !ok;
		pthread_cond_broadcast(&w->cv);
		if (ok) {
			w->wb_end = off + len;
			if (w->wb_end - w->wb_start >= IMG_WB_CHUNK)
				pthread_cond_signal(&w->wb_cv);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int img_writer_start(struct img_writer *w, int fd, uint64_t prefix, struct phx_err *err)
{
	int e;

	w->fd = fd;
	w->prefix = w->pos = w->wb_start = w->wb_end = prefix;
	w->fill = 0;
	w->busy = w->stop = w->failed = false;
	phx_err_clear(&w->err);
	for (int i = 0; i < 2; i++)
		if (!w->buf[i] && !(w->buf[i] = malloc(IMG_WBUF)))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	crypto_sha256_free(w->h);
	w->h = crypto_sha256_new(err);
	if (!w->h)
		return -1;
	crypto_hash_free(w->verify);
	w->verify = NULL;
	if (w->verify_alg != CRYPTO_SHA256 && !(w->verify = crypto_hash_new(w->verify_alg, err)))
		return -1;
	e = pthread_create(&w->thread, NULL, img_writer_main, w);
	if (e)
		return phx_err_set_errno(err, PHX_E_RUNTIME, e, "start writer thread");
	w->running = true;
	e = pthread_create(&w->flusher, NULL, img_flusher_main, w);
	if (e) {
		img_writer_stop(w);
		return phx_err_set_errno(err, PHX_E_RUNTIME, e, "start writeback thread");
	}
	w->flusher_running = true;
	return 0;
}

/* Hands buf[cur] to the worker once it is idle; false when the worker failed. */
static bool img_writer_submit(struct img_writer *w)
{
	bool ok;

	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	ok = !w->failed;
	if (ok && w->fill) {
		w->pending = w->cur;
		w->plen = w->fill;
		w->poff = w->pos;
		w->busy = true;
		pthread_cond_broadcast(&w->cv);
		w->pos += w->fill;
		w->cur ^= 1;
		w->fill = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static int img_writer_fail(struct img_writer *w, struct phx_err *err)
{
	return phx_err_set(err, w->err.code ? w->err.code : PHX_E_IO, "%s",
			   w->err.code ? w->err.msg : "writer failed");
}

int img_writer_put(struct img_writer *w, const void *data, size_t len, struct phx_err *err)
{
	const unsigned char *p = data;

	while (len) {
		size_t n = IMG_WBUF - w->fill < len ? IMG_WBUF - w->fill : len;

		memcpy(w->buf[w->cur] + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == IMG_WBUF && !img_writer_submit(w))
			return img_writer_fail(w, err);
	}
	return 0;
}

int img_writer_flush(struct img_writer *w, struct phx_err *err)
{
	if (!img_writer_submit(w))
		return img_writer_fail(w, err);
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	if (w->failed)
		return img_writer_fail(w, err);
	return 0;
}

void img_writer_stop(struct img_writer *w)
{
	if (!w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_cond_broadcast(&w->wb_cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	if (w->flusher_running)
		pthread_join(w->flusher, NULL);
	w->running = w->flusher_running = false;
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
	if (pthread_cond_init(&w->cv, NULL)) {
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	if (pthread_cond_init(&w->wb_cv, NULL)) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	return 0;
}

void img_writer_release(struct img_writer *w)
{
	img_writer_stop(w);
	pthread_cond_destroy(&w->wb_cv);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	crypto_sha256_free(w->h);
	crypto_hash_free(w->verify);
	free(w->buf[0]);
	free(w->buf[1]);
}
