/* log: level filter and formatting for stderr diagnostics. Does not know about errors
 * (main prints those) nor about secrets (callers redact before logging). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Process-wide settings written once by log_setup() before threads start. */
static struct {
	enum phx_log_level max;
	bool colour;
	bool tty;
} log_cfg = {PHX_LOG_INFO, false, false};

void log_setup(int verbosity, bool quiet)
{
	int level = PHX_LOG_INFO + verbosity;

	if (quiet)
		level = PHX_LOG_WARN;
	if (level > PHX_LOG_TRACE)
		level = PHX_LOG_TRACE;
	log_cfg.max = (enum phx_log_level)level;
	log_cfg.tty = isatty(STDERR_FILENO) && !quiet;
	log_cfg.colour = isatty(STDERR_FILENO) && !getenv("NO_COLOR");
}

bool log_enabled(enum phx_log_level level)
{
	return level <= log_cfg.max;
}

bool log_is_tty(void)
{
	return log_cfg.tty;
}

void log_msg(enum phx_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = {"error", "warning", NULL, "debug", "trace"};
	static const char *const colours[] = {"\033[31m", "\033[33m", "", "\033[2m", "\033[2m"};
	va_list ap;

	if (!log_enabled(level))
		return;
	flockfile(stderr);
	if (log_cfg.tty)
		fputs("\r\033[K", stderr); /* over a wait's or transfer's live line, if any */
	if (tags[level])
		fprintf(stderr, "%s%s:%s ", log_cfg.colour ? colours[level] : "", tags[level],
			log_cfg.colour ? "\033[0m" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
