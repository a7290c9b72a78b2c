/* metrics: a run's outcome as Prometheus text-format metrics, for node_exporter's textfile
 * collector (a timer's monthly rebuild is then alerted on like any other job: "no success for
 * 40 days", "this template changed"). Rendering is pure; writing is atomic (a rename), so the
 * collector never reads half a file. Nothing here talks to Proxmox. */
#ifndef PHX_METRICS_H
#define PHX_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define MET_PHASES 5 /* download, customize, upload, create, template */

/* One template on one node, as the run left it. Strings borrowed. */
struct met_template {
	const char *template, *node;
	const char *version; /* the version's name, or NULL when unknown (a failure) */
	const char *sha256;  /* the source image's, or NULL/"" when unknown */
	unsigned long vmid;  /* 0 when unknown */
	bool ok, changed;
	double phase_s[MET_PHASES];
};

struct met_run {
	double started, finished;   /* unix time */
	bool success;
	double last_success;	    /* unix time of the last successful run, 0 when none */
	const struct met_template *templates;
	size_t n;
};

/* The exposition text ("# HELP", "# TYPE", samples) into out. Label values are escaped as the
 * format requires (backslash, double quote, newline). */
int met_render(const struct met_run *run, struct buf *out, struct phx_err *err);

/* The last-success time recorded in an earlier metrics file at `path` (0 when there is none or
 * it has none): a failed run keeps reporting when the last good one was. */
double met_read_last_success(const char *path);

/* Renders and writes `path` atomically (temp file in the same directory, fsync, rename), mode
 * 0644 (node_exporter reads it as another user). */
int met_write(const char *path, const struct met_run *run, struct phx_err *err);

#endif
