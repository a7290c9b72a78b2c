/* err: the error struct every fallible function fills, and the exit status it maps to.
 * First root cause wins (phx_err_set is a no-op once set); callers add context with
 * phx_err_wrap. Nothing here prints: only main() does. */
#ifndef PHX_ERR_H
#define PHX_ERR_H

#include <stdbool.h>

enum phx_err_code {
	PHX_E_NONE = 0,
	PHX_E_INPUT,	/* bad config or usage: exit 2, server untouched */
	PHX_E_USAGE,	/* bad command line: exit 2 */
	PHX_E_RUNTIME,	/* generic runtime failure: exit 1 */
	PHX_E_IO,	/* local file system */
	PHX_E_NET,	/* connection, DNS, timeout talking to a server */
	PHX_E_TLS,	/* certificate verification or pin mismatch */
	PHX_E_AUTH,	/* 401: token rejected */
	PHX_E_PERM,	/* 403: missing privilege */
	PHX_E_API,	/* Proxmox answered with an error */
	PHX_E_TASK,	/* a Proxmox task ended in error */
	PHX_E_TIMEOUT,	/* waited for a task, agent or lock too long */
	PHX_E_CONFLICT, /* exists and is not ours, locked, already running */
	PHX_E_NOTFOUND,
	PHX_E_VERIFY,	/* checksum mismatch */
	PHX_E_GUEST,	/* a command inside the guest image failed */
	PHX_E_NOMEM,
	PHX_E_INTERNAL, /* a bug: exit 70 */
	PHX_E_INTERRUPTED, /* a stop signal: exit 128 + the signal (main) */
	PHX_E_BUSY,	   /* another run holds the lock: exit 75, try again later */
};

enum {
	PHX_EXIT_OK = 0,
	PHX_EXIT_FAILURE = 1,
	PHX_EXIT_USAGE = 2,
	PHX_EXIT_SOFTWARE = 70,
	PHX_EXIT_TEMPFAIL = 75, /* sysexits EX_TEMPFAIL */
};

#define PHX_ERR_MSG_MAX 8192

struct phx_err {
	enum phx_err_code code;
	int http_status; /* HTTP status when the cause was an HTTP answer, else 0 */
	char msg[PHX_ERR_MSG_MAX];
};

#define PHX_ERR_INIT {PHX_E_NONE, 0, {0}}

/* Records the root cause unless one is already recorded. Always returns -1 so callers can
 * write `return phx_err_set(...)`. A NULL err is allowed (the error is dropped). */
int phx_err_set(struct phx_err *err, enum phx_err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like phx_err_set, with strerror(errnum) appended as ": <text>". */
int phx_err_set_errno(struct phx_err *err, enum phx_err_code code, int errnum, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

/* Prefixes context to the recorded message: "<context>: <old message>". Returns -1. */
int phx_err_wrap(struct phx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one rollback report format: appends " (LABEL: line1; line2)" to the message, built
 * from a txn_rollback report (one "removed X" / "could not remove X: why" per line). The root
 * cause stays first; a report that does not fit is cut. Returns -1. */
int phx_err_append_report(struct phx_err *err, const char *label, const char *report);

void phx_err_clear(struct phx_err *err);
bool phx_err_is_set(const struct phx_err *err);
const char *phx_err_code_name(enum phx_err_code code);
int phx_err_exit_status(const struct phx_err *err);

#endif
