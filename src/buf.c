/* buf: growable byte buffer with a cap. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

static int buf_grow(struct buf *b, size_t extra, struct phx_err *err)
{
	size_t max = b->max ? b->max : BUF_DEFAULT_MAX;
	size_t want, n;
	char *p;

	if (extra > max || b->len > max - extra)
		return phx_err_set(err, PHX_E_RUNTIME, "buffer limit of %zu bytes exceeded", max);
	want = b->len + extra + 1;
	if (want <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 256;
	while (n < want)
		n *= 2;
	if (n > max + 1)
		n = max + 1;
	p = realloc(b->data, n);
	if (!p)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory growing a buffer to %zu bytes",
				   n);
	b->data = p;
	b->alloc = n;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len, struct phx_err *err)
{
	if (buf_grow(b, len, err) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s, struct phx_err *err)
{
	return buf_append(b, s, strlen(s), err);
}

int buf_printf(struct buf *b, struct phx_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return phx_err_set(err, PHX_E_INTERNAL, "bad format string '%s'", fmt);
	if (buf_grow(b, (size_t)n, err) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b)
{
	char *p = b->data ? b->data : strdup("");

	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}
