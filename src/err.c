/* err: error recording and exit status mapping. Owns no I/O. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int err_vset(struct phx_err *err, enum phx_err_code code, const char *fmt, va_list ap)
{
	if (!err || err->code != PHX_E_NONE)
		return -1;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int phx_err_set(struct phx_err *err, enum phx_err_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int phx_err_set_errno(struct phx_err *err, enum phx_err_code code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	if (!err || err->code != PHX_E_NONE)
		return -1;
	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(errnum));
	return -1;
}

int phx_err_wrap(struct phx_err *err, const char *fmt, ...)
{
	char prefix[512];
	char old[PHX_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return -1;
	if (err->code == PHX_E_NONE)
		err->code = PHX_E_INTERNAL; /* wrapping nothing is a bug; keep it visible */
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* truncation keeps the start of the message, which names the failing step */
	if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) < 0)
		err->msg[0] = '\0';
	return -1;
}

int phx_err_append_report(struct phx_err *err, const char *label, const char *report)
{
	size_t used;

	if (!err || !report || !*report)
		return -1;
	used = strlen(err->msg);
	used += (size_t)snprintf(err->msg + used, sizeof(err->msg) - used, " (%s: ", label);
	for (const char *line = report; *line && used < sizeof(err->msg);) {
		size_t n = strcspn(line, "\n");

		used += (size_t)snprintf(err->msg + used, sizeof(err->msg) - used, "%s%.*s",
					 line == report ? "" : "; ", (int)n, line);
		line += n + (line[n] == '\n');
	}
	if (used < sizeof(err->msg))
		snprintf(err->msg + used, sizeof(err->msg) - used, ")");
	return -1;
}

void phx_err_clear(struct phx_err *err)
{
	if (!err)
		return;
	err->code = PHX_E_NONE;
	err->http_status = 0;
	err->msg[0] = '\0';
}

bool phx_err_is_set(const struct phx_err *err)
{
	return err && err->code != PHX_E_NONE;
}

const char *phx_err_code_name(enum phx_err_code code)
{
	static const char *const names[] = {
		[PHX_E_NONE] = "none",
		[PHX_E_INPUT] = "input",
		[PHX_E_USAGE] = "usage",
		[PHX_E_RUNTIME] = "runtime",
		[PHX_E_IO] = "io",
		[PHX_E_NET] = "network",
		[PHX_E_TLS] = "tls",
		[PHX_E_AUTH] = "auth",
		[PHX_E_PERM] = "permission",
		[PHX_E_API] = "api",
		[PHX_E_TASK] = "task",
		[PHX_E_TIMEOUT] = "timeout",
		[PHX_E_CONFLICT] = "conflict",
		[PHX_E_NOTFOUND] = "not-found",
		[PHX_E_VERIFY] = "verify",
		[PHX_E_GUEST] = "guest",
		[PHX_E_NOMEM] = "out-of-memory",
		[PHX_E_INTERNAL] = "internal",
		[PHX_E_INTERRUPTED] = "interrupted",
		[PHX_E_BUSY] = "busy",
	};

	if ((unsigned)code >= sizeof(names) / sizeof(names[0]) || !names[code])
		return "unknown";
	return names[code];
}

int phx_err_exit_status(const struct phx_err *err)
{
	if (!err || err->code == PHX_E_NONE)
		return PHX_EXIT_OK;
	switch (err->code) {
	case PHX_E_INPUT:
	case PHX_E_USAGE:
		return PHX_EXIT_USAGE;
	case PHX_E_INTERNAL:
		return PHX_EXIT_SOFTWARE;
	case PHX_E_BUSY:
		return PHX_EXIT_TEMPFAIL;
	default:
		return PHX_EXIT_FAILURE;
	}
}
