/* buf: a growable, always NUL-terminated byte buffer with a size cap, so a misbehaving server
 * cannot make us allocate without bound. Embedded struct: buf_init / buf_release. */
#ifndef PHX_BUF_H
#define PHX_BUF_H

#include <stddef.h>

#include "err.h"

#define BUF_DEFAULT_MAX ((size_t)64 << 20)

struct buf {
	char *data; /* owned; NULL until the first append; always NUL-terminated after it */
	size_t len;
	size_t alloc;
	size_t max; /* 0 means BUF_DEFAULT_MAX */
};

#define BUF_INIT {NULL, 0, 0, 0}

void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *data, size_t len, struct phx_err *err);
int buf_puts(struct buf *b, const char *s, struct phx_err *err);
int buf_printf(struct buf *b, struct phx_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Returns the contents ("" when empty); valid until the next modification. */
const char *buf_str(const struct buf *b);
void buf_reset(struct buf *b);
/* Hands the storage to the caller (free with free()); the buf is left empty. Never NULL
 * unless out of memory. */
char *buf_detach(struct buf *b);
void buf_release(struct buf *b);

#endif
