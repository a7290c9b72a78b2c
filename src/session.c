/* session: config -> lock -> secret -> client -> node, shared by the commands. */
#include "session.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "image.h"
#include "log.h"
#include "progress.h"
#include "recover.h"

int session_load(const struct cli_opts *opts, struct session *ret, struct phx_err *err)
{
	struct cfg *cfg = NULL;

	if (!opts->config_explicit && access(opts->config_path, F_OK) != 0 && errno == ENOENT) {
		char cwd[PATH_MAX];

		/* cli picked the default: neither place has a config */
		return phx_err_set(err, PHX_E_INPUT,
				   "no config found: looked for '%s' in the working directory (%s) "
				   "and for '%s'; give its path with --config FILE",
				   CLI_DEFAULT_CONFIG, getcwd(cwd, sizeof(cwd)) ? cwd : "?",
				   CLI_SYSTEM_CONFIG);
	}
	if (cfg_load(opts->config_path, &cfg, err) < 0)
		return -1;
	if (cfg_apply_env(cfg, err) < 0) {
		cfg_free(cfg);
		return -1;
	}
	if (opts->insecure && cfg->proxmox.tls.fingerprint) {
		/* a pin verifies the server better than anything --insecure could mean */
		phx_err_set(err, PHX_E_USAGE,
			    "--insecure cannot be combined with a pinned certificate "
			    "(proxmox.tls.fingerprint in %s): drop one of them",
			    cfg->path);
		cfg_free(cfg);
		return -1;
	}
	*ret = (struct session){.opts = opts, .cfg = cfg, .lock_fd = -1};
	{
		unsigned char r[4] = {0};

		/* not a secret, just unlikely to repeat: pid and time are the fallback */
		if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
			unsigned v = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);

			memcpy(r, &v, sizeof(r));
		}
		snprintf(ret->run_id, sizeof(ret->run_id), "%02x%02x%02x%02x", r[0], r[1], r[2],
			 r[3]);
	}
	return 0;
}

/* One lock per image cache, whatever the environment: cron (no XDG_RUNTIME_DIR) and a login
 * shell must exclude each other, and the cache (shared under /var/cache for root) is what
 * overlapping runs would corrupt. The journal and temp files live beside it, under the same
 * lock. */
int session_cache_dir(char **ret, struct phx_err *err)
{
	const char *env = getenv("PHX_CACHE_DIR");
	char *dir = NULL;

	if (env && *env)
		dir = strdup(env);
	else if (img_cache_dir_default(&dir, err) < 0)
		return -1;
	if (!dir)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (fs_mkdir_p(dir, 0755, err) < 0) {
		free(dir);
		return -1;
	}
	*ret = dir;
	return 0;
}

static struct pve_client *session_client(const struct session *s, const char *node,
					 struct phx_err *err)
{
	const struct cfg_proxmox *px = &s->cfg->proxmox;
	struct pve_client_opts o = {
		.api_url = px->api_url,
		.token_id = px->token_id,
		.secret = s->secret,
		.node = node,
		.tls = {px->tls.ca_file, px->tls.fingerprint,
			px->tls.insecure || s->opts->insecure},
		.connect_timeout_s = (long)px->timeouts.connect_s,
		.request_timeout_s = (long)px->timeouts.request_s,
		.read_only = s->opts->dry_run,
	};

	return pve_client_new(&o, err);
}

/* The only node, when the config names none: a one-node homelab needs no setting. */
static int session_resolve_node(struct session *s, struct phx_err *err)
{
	const char *cfg_node = cfg_default_node(s->cfg);
	const bool automatic = cfg_node && !strcmp(cfg_node, "auto");
	json_t *nodes = NULL;
	const char *only = NULL;
	size_t i, online = 0;
	json_t *n;

	if (cfg_node && !automatic) {
		s->node = strdup(cfg_node);
		return s->node ? 0 : phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (pve_get(s->pve, "/nodes", NULL, 0, &nodes, err) < 0)
		return phx_err_wrap(err, "find the Proxmox node");
	json_array_foreach(nodes, i, n)
	{
		const char *status = json_string_value(json_object_get(n, "status"));

		const char *name = json_string_value(json_object_get(n, "node"));

		if ((status && strcmp(status, "online")) || !name)
			continue;
		online++;
		/* "auto": VMs are placed one by one; what needs one node (a template without its
		 * own) takes the first online one by name */
		if (!only || (automatic && strcmp(name, only) < 0))
			only = name;
	}
	if ((online != 1 && !automatic) || !only) {
		json_decref(nodes);
		return phx_err_set(err, PHX_E_INPUT,
				   "%s: the cluster has %zu online nodes: set proxmox.node (or "
				   "PVE_NODE) to the one to use",
				   s->cfg->path, online);
	}
	s->node = strdup(only);
	json_decref(nodes);
	if (!s->node)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	log_debug("using node '%s', the cluster's only node", s->node);
	return 0;
}

/* Takes the run lock, waiting up to --wait-lock seconds for a run that holds it (a timer and a
 * person's run that overlap: the later one waits instead of failing). */
static int session_lock(struct session *s, const char *path, struct phx_err *err)
{
	double deadline = clk_now() + (double)s->opts->wait_lock_s;
	struct prog_wait w;
	bool said = false;
	int rc;

	for (;;) {
		struct phx_err e = PHX_ERR_INIT;

		if (fs_lock_acquire(path, &s->lock_fd, &e) == 0) {
			rc = 0;
			break;
		}
		if (e.code != PHX_E_BUSY || clk_now() >= deadline || clk_signal()) {
			*err = e;
			rc = -1;
			break;
		}
		if (!said) {
			log_info("%s; waiting up to %lu s", e.msg, s->opts->wait_lock_s);
			prog_wait_start(&w, "waiting for the run lock");
		}
		said = true;
		clk_sleep_ms(500);
		prog_wait_tick(&w);
	}
	if (said)
		prog_wait_end(&w);
	return rc;
}

/* Under the lock: dead runs' temp files and half-made work first, then this run's journal. */
static int session_recover(struct session *s, const char *cache, struct phx_err *err)
{
	char *dir = NULL;
	int rc = -1;

	if (!(s->recovered = json_array()) || asprintf(&dir, "%s/tmp", cache) < 0) {
		dir = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (!s->opts->dry_run && rcv_private_tmp(dir, &s->tmp_dir, err) < 0)
		goto out;
	free(dir);
	if (asprintf(&dir, "%s/journal", cache) < 0) {
		dir = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (rcv_run(s->pve, dir, session_task_timeout(s), s->opts->dry_run, s->recovered,
		    &s->recover_failed, err) < 0 ||
	    (!s->opts->dry_run && jrn_open(dir, &s->journal, err) < 0))
		goto out;
	rc = 0;
out:
	free(dir);
	return rc;
}

int session_connect(struct session *s, struct phx_err *err)
{
	char *cache = NULL, *path = NULL;
	int rc = -1;

	if (cfg_require_connection(s->cfg, err) < 0)
		return -1;
	if (s->lock) {
		if (session_cache_dir(&cache, err) < 0)
			return -1;
		if (asprintf(&path, "%s/orchestrator.lock", cache) < 0) {
			path = NULL;
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (session_lock(s, path, err) < 0)
			goto out;
	}
	if (cfg_load_secret(s->cfg, &s->secret, err) < 0)
		goto out;
	s->pve = session_client(s,
				cfg_default_node(s->cfg) && strcmp(cfg_default_node(s->cfg), "auto")
					? cfg_default_node(s->cfg)
					: NULL,
				err);
	if (!s->pve || (s->lock && session_recover(s, cache, err) < 0))
		goto out;
	rc = session_resolve_node(s, err);
out:
	free(path);
	free(cache);
	return rc;
}

struct pve_client *session_new_client(const struct session *s, struct phx_err *err)
{
	return session_client(s, s->node, err);
}

struct pve_client *session_node_client(const struct session *s, const char *node,
				       struct phx_err *err)
{
	return session_client(s, node, err);
}

long session_task_timeout(const struct session *s)
{
	return (long)s->cfg->proxmox.timeouts.task_s;
}

void session_release(struct session *s)
{
	jrn_close(s->journal);
	rcv_private_tmp_remove(s->tmp_dir);
	free(s->tmp_dir);
	json_decref(s->recovered);
	pve_client_free(s->pve);
	secret_free(s->secret);
	cfg_free(s->cfg);
	free(s->node);
	fs_lock_release(s->lock_fd);
	*s = (struct session){.lock_fd = -1};
}
