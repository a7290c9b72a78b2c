/* upload_driver: runs one http_upload_file() (the multipart import upload) and reports wall
 * time, CPU time and peak RSS, for tests/bench/bench_upload (built by it against
 * libphoenix.a) and for manual testing.
 * usage: upload_driver URL FILE [--field NAME=VALUE]... [--kept-checksum] [--auth-file F]
 *                      [--cafile F]
 * The Authorization header value is read from --auth-file (never argv). Sends the fields in
 * order, then FILE as part "filename" named after FILE's base name, as pve_storage_upload does.
 * --kept-checksum appends checksum-algorithm and checksum fields with FILE's sha256 as a build
 * finds it (img_file_sha256: FILE.sha256 when it describes FILE, else one pass over FILE),
 * inside the timed part.
 * prints: status=N wall_s=F cpu_s=F maxrss_kib=N data=UPID (the answer's "data" string, if any) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "http.h"
#include "image.h"
#include "log.h"

enum { MAX_FIELDS = 8 };

/* The "data" string of a Proxmox-shaped answer ({"data":"UPID:..."}), or "-". */
static const char *upid_of(struct http_response *r)
{
	static char upid[256];
	const char *p = r->body.data ? strstr(buf_str(&r->body), "\"data\":") : NULL;

	if (!p)
		return "-";
	p += strspn(p + 7, " ") + 7;
	if (*p++ != '"')
		return "-";
	snprintf(upid, sizeof(upid), "%.*s", (int)strcspn(p, "\""), p);
	return upid;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts copts = {0};
	struct http_form_field f[MAX_FIELDS];
	char *vals[MAX_FIELDS] = {NULL};
	struct http_response resp;
	struct http_client *c = NULL;
	struct timespec t0, t1;
	struct rusage ru;
	char auth[512] = "", sha[CRYPTO_SHA256_HEX_LEN + 1];
	bool kept_checksum = false;
	const char *url, *path, *base;
	size_t nf = 0;
	int rc = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s URL FILE [--field NAME=VALUE]... [--kept-checksum] "
				"[--auth-file F] [--cafile F]\n", argv[0]);
		return 2;
	}
	url = argv[1];
	path = argv[2];
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--kept-checksum")) {
			kept_checksum = true;
			continue;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "'%s' needs a value\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--field") && nf + 2 < MAX_FIELDS && strchr(argv[i + 1], '=')) {
			vals[nf] = strdup(argv[++i]);
			if (!vals[nf])
				return 1;
			*strchr(vals[nf], '=') = '\0';
			f[nf].name = vals[nf];
			f[nf].value = vals[nf] + strlen(vals[nf]) + 1;
			nf++;
		} else if (!strcmp(argv[i], "--auth-file")) {
			FILE *a = fopen(argv[++i], "r");

			if (!a || !fgets(auth, sizeof(auth), a)) {
				fprintf(stderr, "cannot read '%s'\n", argv[i]);
				return 2;
			}
			fclose(a);
			auth[strcspn(auth, "\r\n")] = '\0';
			copts.auth_header = auth;
		} else if (!strcmp(argv[i], "--cafile")) {
			copts.tls.ca_file = argv[++i];
		} else {
			fprintf(stderr, "unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	log_setup(0, false);
	http_response_init(&resp);
	if (http_global_init(&err) < 0)
		goto out;
	c = http_client_new(&copts, &err);
	if (!c)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (kept_checksum) {
		if (img_file_sha256(path, sha, &err) < 0)
			goto out;
		f[nf++] = (struct http_form_field){"checksum-algorithm", "sha256"};
		f[nf++] = (struct http_form_field){"checksum", sha};
	}
	if (http_upload_file(c, url, f, nf, "filename", base, path, NULL, &resp, &err) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("status=%ld wall_s=%.3f cpu_s=%.3f maxrss_kib=%ld data=%s\n", resp.status,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       tv_s(ru.ru_utime) + tv_s(ru.ru_stime), ru.ru_maxrss, upid_of(&resp));
	rc = resp.status >= 200 && resp.status < 300 ? 0 : 1;
	if (rc)
		fprintf(stderr, "error: HTTP %ld %s\n", resp.status, resp.reason);
out:
	if (rc && phx_err_is_set(&err))
		fprintf(stderr, "error: %s (%s)\n", err.msg, phx_err_code_name(err.code));
	http_response_release(&resp);
	http_client_free(c);
	http_global_cleanup();
	for (size_t i = 0; i < MAX_FIELDS; i++)
		free(vals[i]);
	return rc;
}
