/* simproc: start and stop the Proxmox VE simulator (tests/pve-sim/pve_sim.py) from C
 * integration tests, talk to its /_sim/ control API, and read its JSONL request log.
 * Header-only on purpose: each Criterion binary includes it once. Needs PHX_SRC (repo root);
 * PHX_BUILD (build dir) decides where logs go ($PHX_BUILD/sim-logs/<name>.jsonl). */
#ifndef PHX_SIMPROC_H
#define PHX_SIMPROC_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http.h"

#define SIM_SECRET "11111111-2222-3333-4444-555555555555"
#define SIM_TOKEN_ID "phoenix@pve!ci"

struct simproc {
	pid_t pid;
	char url[128];
	char fingerprint[128];
	char state_dir[PATH_MAX];
	char log_path[PATH_MAX];
	char stderr_path[PATH_MAX];
	char cert_path[PATH_MAX];
	struct http_client *ctl; /* pinned client for /_sim/ (no token) */
};

#define SIMPROC_UNUSED __attribute__((unused))

static SIMPROC_UNUSED const char *simproc_build_dir(void)
{
	const char *b = getenv("PHX_BUILD");

	return b && *b ? b : "build";
}

/* Starts the simulator with `extra` (NULL-terminated argv tail, may be NULL). Returns 0 when
 * the URL and FINGERPRINT lines arrived within 30 s. */
static SIMPROC_UNUSED int simproc_start(struct simproc *s, const char *name,
					const char *const *extra)
{
	const char *src = getenv("PHX_SRC");
	char script[PATH_MAX], logdir[PATH_MAX], line[512];
	const char *argv[64];
	int out[2], n = 0, errfd;
	size_t len = 0;
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts ho;
	time_t deadline = time(NULL) + 30;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	snprintf(script, sizeof(script), "%s/tests/pve-sim/pve_sim.py", src ? src : ".");
	snprintf(s->state_dir, sizeof(s->state_dir), "/tmp/phx-sim-%s-XXXXXX", name);
	if (!mkdtemp(s->state_dir))
		return -1;
	snprintf(logdir, sizeof(logdir), "%s/sim-logs", simproc_build_dir());
	mkdir(simproc_build_dir(), 0755);
	mkdir(logdir, 0755);
	snprintf(s->log_path, sizeof(s->log_path), "%s/%s.jsonl", logdir, name);
	snprintf(s->stderr_path, sizeof(s->stderr_path), "%s/%s.stderr", logdir, name);
	snprintf(s->cert_path, sizeof(s->cert_path), "%s/pve-ssl.pem", s->state_dir);
	unlink(s->log_path);

	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = "--state-dir";
	argv[n++] = s->state_dir;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--tls";
	argv[n++] = "--log";
	argv[n++] = s->log_path;
	while (extra && *extra && n < 62)
		argv[n++] = *extra++;
	argv[n] = NULL;

	if (pipe(out) < 0)
		return -1;
	errfd = open(s->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		/* a failed assertion ends the test process without sim_finish: take the
		 * simulator down with it instead of leaving it running */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out[1], 1);
		if (errfd >= 0)
			dup2(errfd, 2);
		close(out[0]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	if (errfd >= 0)
		close(errfd);
	/* read "URL ..." and "FINGERPRINT ..." */
	while (!(s->url[0] && s->fingerprint[0]) && time(NULL) < deadline) {
		struct pollfd pfd = {out[0], POLLIN, 0};
		ssize_t r;
		char *nl;

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		r = read(out[0], line + len, sizeof(line) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		line[len] = '\0';
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (strncmp(line, "URL ", 4) == 0)
				snprintf(s->url, sizeof(s->url), "%s", line + 4);
			else if (strncmp(line, "FINGERPRINT ", 12) == 0)
				snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", line + 12);
			len -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, len + 1);
		}
	}
	close(out[0]);
	if (!s->url[0] || !s->fingerprint[0])
		return -1;
	memset(&ho, 0, sizeof(ho));
	ho.tls.fingerprint = s->fingerprint;
	s->ctl = http_client_new(&ho, &err);
	return s->ctl ? 0 : -1;
}

static SIMPROC_UNUSED void simproc_stop(struct simproc *s)
{
	char cmd[PATH_MAX + 16];
	int status;

	http_client_free(s->ctl);
	s->ctl = NULL;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, &status, 0);
		s->pid = -1;
	}
	if (s->state_dir[0] && strncmp(s->state_dir, "/tmp/phx-sim-", 13) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->state_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "simproc: could not remove %s\n", s->state_dir);
	}
}

/* Calls the control API; returns the HTTP status (or -1) and, when ret_body is given, the
 * body (caller frees). */
static SIMPROC_UNUSED long simproc_control(struct simproc *s, const char *method,
					   const char *path, const char *json, char **ret_body)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_response r;
	char url[512];
	struct http_request req = {0};
	long status;

	snprintf(url, sizeof(url), "%s%s", s->url, path);
	req.method = method;
	req.url = url;
	if (json) {
		req.body = json;
		req.body_len = strlen(json);
		req.content_type = "application/json";
	}
	http_response_init(&r);
	if (http_perform(s->ctl, &req, &r, &err) < 0) {
		fprintf(stderr, "simproc: %s %s: %s\n", method, path, err.msg);
		http_response_release(&r);
		return -1;
	}
	status = r.status;
	if (ret_body)
		*ret_body = buf_detach(&r.body);
	http_response_release(&r);
	return status;
}

/* The request log as a JSON array of objects (caller owns: json_decref). */
static SIMPROC_UNUSED json_t *simproc_requests(const struct simproc *s)
{
	json_t *all = json_array();
	FILE *f = fopen(s->log_path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return all;
	while (getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);

		if (o)
			json_array_append_new(all, o);
	}
	free(line);
	fclose(f);
	return all;
}

/* Number of logged API (non-control) requests with `method` whose path ends with `suffix`
 * (NULL: any). */
static SIMPROC_UNUSED size_t simproc_count(const struct simproc *s, const char *method,
					   const char *suffix)
{
	json_t *all = simproc_requests(s), *o;
	size_t i, n = 0;

	json_array_foreach(all, i, o) {
		const char *m = json_string_value(json_object_get(o, "method"));
		const char *p = json_string_value(json_object_get(o, "path"));
		size_t pl, sl;

		if (json_is_true(json_object_get(o, "control")) || !m || !p)
			continue;
		if (method && strcmp(m, method) != 0)
			continue;
		pl = strlen(p);
		sl = suffix ? strlen(suffix) : 0;
		if (suffix && (pl < sl || strcmp(p + pl - sl, suffix) != 0))
			continue;
		n++;
	}
	json_decref(all);
	return n;
}

/* Number of logged requests that failed schema validation. */
static SIMPROC_UNUSED size_t simproc_violations(const struct simproc *s, char *first,
						size_t first_len)
{
	json_t *all = simproc_requests(s), *o;
	size_t i, n = 0;

	json_array_foreach(all, i, o) {
		json_t *v = json_object_get(o, "violations");

		if (json_array_size(v) == 0)
			continue;
		if (n == 0 && first) {
			char *d = json_dumps(o, JSON_COMPACT);

			snprintf(first, first_len, "%s", d ? d : "?");
			free(d);
		}
		n++;
	}
	json_decref(all);
	return n;
}

/* True when `needle` occurs in the file at `path` (missing file: false). */
static SIMPROC_UNUSED bool simproc_file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long n;
	bool found;

	if (!f)
		return false;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = calloc(1, (size_t)n + 1);
	if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		fclose(f);
		return false;
	}
	fclose(f);
	found = memmem(data, (size_t)n, needle, strlen(needle)) != NULL;
	free(data);
	return found;
}

#endif
