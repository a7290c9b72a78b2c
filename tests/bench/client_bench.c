/* client_bench: numbers for issue 4, run by tests/bench/bench_client (`make bench`).
 * 1. Task end detection: how long after a simulated task really ends does pve_task_wait()
 *    return, for 0.2 s, 2 s and 20 s tasks (goal: lag < max(10% of the task, 150 ms)).
 * 2. GET /version requests per second: one pve client (one reused TLS connection) versus a
 *    fresh `curl` process per request.
 * Not a test: prints a table; exits non-zero only when something could not run. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "pve.h"
#include "simproc.h"

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(struct simproc *sim, const char *what, const struct phx_err *err)
{
	fprintf(stderr, "bench_client: %s: %s\n", what, err ? err->msg : "failed");
	simproc_stop(sim);
	return 1;
}

static int set_duration(struct simproc *sim, double seconds)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"type\":\"qmconfig\",\"seconds\":%.3f}", seconds);
	return simproc_control(sim, "POST", "/_sim/task-duration", body, NULL) == 200 ? 0 : -1;
}

int main(void)
{
	static const double durations[] = {0.2, 2.0, 20.0};
	static const int runs[] = {5, 3, 1};
	struct phx_err err = PHX_ERR_INIT;
	struct simproc sim;
	struct phx_secret *secret;
	struct pve_client *c;
	struct pve_client_opts o = {0};
	struct pve_param create[] = {{"vmid", "9900"}, {"name", "bench"}, {"memory", "512"}};
	char hdr_path[PATH_MAX + 32], url[256];
	size_t d;
	int i, n_get = 500, n_curl = 50;
	double t0, t1, rate_client, rate_curl;
	FILE *f;

	log_setup(0, true);
	if (http_global_init(&err) < 0)
		return 1;
	if (simproc_start(&sim, "bench-client", NULL) < 0)
		return die(&sim, "simulator did not start", NULL);
	secret = secret_from_string(SIM_SECRET, &err);
	o.api_url = sim.url;
	o.token_id = SIM_TOKEN_ID;
	o.secret = secret;
	o.node = "pve1";
	o.tls.fingerprint = sim.fingerprint;
	c = pve_client_new(&o, &err);
	if (!c)
		return die(&sim, "client", &err);
	if (pve_vm_create(c, NULL, create, 3, 60, &err) < 0)
		return die(&sim, "create", &err);

	printf("task end detection (qmconfig task, simulator over HTTPS)\n");
	printf("%-9s %5s %12s %10s %10s %10s %8s %6s\n", "task", "runs", "mean wall", "mean lag",
	       "max lag", "goal", "polls", "ok");
	for (d = 0; d < sizeof(durations) / sizeof(durations[0]); d++) {
		double sum = 0, max_lag = 0, goal = durations[d] * 0.10;
		size_t polls0 = simproc_count(&sim, "GET", "/status"), polls;

		if (goal < 0.150)
			goal = 0.150;
		if (set_duration(&sim, durations[d]) < 0)
			return die(&sim, "set task duration", NULL);
		for (i = 0; i < runs[d]; i++) {
			char desc[64];
			struct pve_param p[] = {{"description", desc}};
			double lag;

			snprintf(desc, sizeof(desc), "bench run %zu.%d", d, i);
			t0 = now_s();
			if (pve_vm_config_set(c, NULL, 9900, p, 1, 120, &err) < 0)
				return die(&sim, "config set", &err);
			t1 = now_s();
			lag = (t1 - t0) - durations[d];
			sum += t1 - t0;
			if (lag > max_lag)
				max_lag = lag;
		}
		polls = simproc_count(&sim, "GET", "/status") - polls0;
		printf("%-9.1f %5d %10.3f s %8.0f ms %8.0f ms %8.0f ms %8.1f %6s\n", durations[d],
		       runs[d], sum / runs[d], (sum / runs[d] - durations[d]) * 1000,
		       max_lag * 1000, goal * 1000, (double)polls / runs[d],
		       max_lag <= goal ? "yes" : "NO");
	}

	/* GET loop on one reused connection */
	t0 = now_s();
	for (i = 0; i < n_get; i++) {
		struct pve_version v;

		if (pve_version_get(c, &v, &err) < 0)
			return die(&sim, "GET /version", &err);
	}
	t1 = now_s();
	rate_client = n_get / (t1 - t0);

	/* a fresh curl process per request (header from a 0600 file: no secret in argv) */
	snprintf(hdr_path, sizeof(hdr_path), "%s/auth-header", sim.state_dir);
	f = fopen(hdr_path, "w");
	if (!f)
		return die(&sim, "header file", NULL);
	fprintf(f, "Authorization: PVEAPIToken=%s=%s\n", SIM_TOKEN_ID, secret_value(secret));
	fclose(f);
	snprintf(url, sizeof(url), "%s/api2/json/version", sim.url);
	{
		char hdr_arg[PATH_MAX + 40];
		char *argv[] = {"curl", "-sS", "-k", "-o", "/dev/null", "-H", hdr_arg, url, NULL};

		snprintf(hdr_arg, sizeof(hdr_arg), "@%s", hdr_path);
		t0 = now_s();
		for (i = 0; i < n_curl; i++) {
			pid_t pid;
			int st;

			if (posix_spawnp(&pid, "curl", NULL, NULL, argv, environ) != 0 ||
			    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				return die(&sim, "curl process", NULL);
		}
		t1 = now_s();
		rate_curl = n_curl / (t1 - t0);
	}
	printf("\nGET /version throughput\n");
	printf("%-40s %8s %10s\n", "client", "requests", "req/s");
	printf("%-40s %8d %10.0f\n", "pve client, one reused TLS connection", n_get, rate_client);
	printf("%-40s %8d %10.0f\n", "fresh curl process per request", n_curl, rate_curl);
	printf("speed-up: %.1fx\n", rate_client / rate_curl);
	if (rate_client < 200)
		printf("note: under ~200 req/s on loopback usually means the server sends headers and "
		       "body in two writes without TCP_NODELAY (Nagle + delayed ACK, ~40 ms per "
		       "answer); pveproxy sends one write\n");

	pve_client_free(c);
	secret_free(secret);
	simproc_stop(&sim);
	http_global_cleanup();
	return 0;
}
