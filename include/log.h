/* log: leveled diagnostics to stderr. stdout is reserved for command results (tables, JSON).
 * Configured once by main before any thread starts; writes are line-atomic across threads.
 * Colour only when stderr is a TTY and NO_COLOR is unset. */
#ifndef PHX_LOG_H
#define PHX_LOG_H

#include <stdbool.h>

enum phx_log_level {
	PHX_LOG_ERROR = 0,
	PHX_LOG_WARN,
	PHX_LOG_INFO,	/* default */
	PHX_LOG_DEBUG,	/* --verbose */
	PHX_LOG_TRACE,	/* --verbose --verbose: HTTP trace, secrets redacted */
};

/* verbosity: number of --verbose; quiet drops everything below warnings. */
void log_setup(int verbosity, bool quiet);
bool log_enabled(enum phx_log_level level);
void log_msg(enum phx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when progress bars may be drawn: stderr is a TTY and not --quiet. */
bool log_is_tty(void);

#define log_error(...) log_msg(PHX_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(PHX_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(PHX_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(PHX_LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) log_msg(PHX_LOG_TRACE, __VA_ARGS__)

#endif
