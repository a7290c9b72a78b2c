/* session: what every server-facing command does first, in the order that keeps the promise
 * "bad input exits 2 before anything is sent": load and validate the config and the
 * environment (no network), then take the run lock, load the token secret and build the
 * Proxmox client (no request yet), then resolve the node. Also builds extra clients for
 * worker threads (one HTTP connection each). */
#ifndef PHX_SESSION_H
#define PHX_SESSION_H

#include <stdbool.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "journal.h"
#include "pve.h"
#include "secret.h"

struct session {
	const struct cli_opts *opts; /* borrowed */
	struct cfg *cfg;	     /* owned */
	struct phx_secret *secret;   /* owned */
	struct pve_client *pve;	     /* owned; the main thread's client */
	char *node;		     /* owned; the default node (config, env or the only node) */
	int lock_fd;		     /* -1 when no lock is held */
	bool lock;		     /* session_connect() takes the run lock */
	/* Random, per run: in the names of server objects two runs (on two hosts, with two
	 * caches and two locks) could otherwise both create and each roll back. */
	char run_id[9];
	/* With the lock (not in a dry run): */
	struct journal *journal; /* owned; this run's undo journal, for txn_new_journaled() */
	char *tmp_dir;		 /* owned; private (0700) temp dir, removed at release */
	json_t *recovered;	 /* owned; what the start undid for dead runs (recover.h) */
	size_t recover_failed;	 /* how many of those undos failed */
};

/* Loads and validates the config (cfg_load + cfg_apply_env): PHX_E_INPUT, no network. */
int session_load(const struct cli_opts *opts, struct session *ret, struct phx_err *err);

/* Takes the run lock (when s->lock: <image cache dir>/orchestrator.lock, so cron and login
 * shells exclude each other), loads the secret, builds the client and resolves the default
 * node (asking /nodes only when the config names none). With the lock it then finishes what
 * dead runs left half-made (recover.h: <cache>/journal, <cache>/tmp) and opens this run's
 * journal and temp dir; a dry run only reports what a real run would undo. */
int session_connect(struct session *s, struct phx_err *err);

/* A new client for a worker thread, same settings. Caller owns (pve_client_free()). */
struct pve_client *session_new_client(const struct session *s, struct phx_err *err);

/* The same for work on `node` (a template built on several nodes at once). */
struct pve_client *session_node_client(const struct session *s, const char *node,
				       struct phx_err *err);

/* The image cache directory (PHX_CACHE_DIR, else img_cache_dir_default()), created when
 * missing; the run lock, journal and package lists live in it. Caller frees *ret. */
int session_cache_dir(char **ret, struct phx_err *err);

/* Task timeout from the config, for pve_* calls. */
long session_task_timeout(const struct session *s);

void session_release(struct session *s);

#endif
