/* image: img_fetch() against tests/servers/file_server.py on 127.0.0.1 — resume after a
 * dropped connection, restart when ranges are ignored, wrong hash, 404/500, zero-byte second
 * run (asserted from the server's request log), changed upstream, full disk; and (suite
 * image_sigs) signed checksum files, good and refused, and SHA512SUMS. Each test gets a fresh
 * server, a random 8 MiB "image", its SHA256SUMS and an empty cache. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "crypto.h"
#include "fsutil.h"
#include "http.h"
#include "image.h"
#include "log.h"

#define IMG_NAME "test-cloudimg-amd64.img"
#define IMG_SIZE ((size_t)8 << 20)

static struct {
	char dir[64];
	char root[128], cache[128], log[128];
	char url[128]; /* http://127.0.0.1:PORT */
	char img_url[256], sums_url[256];
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	pid_t pid;
	struct http_client *c;
} T;

/* ---- server process ---- */

static void server_start(void)
{
	const char *src = getenv("PHX_SRC");
	char script[512], line[256];
	int fds[2];
	FILE *f;

	cr_assert(src, "PHX_SRC must point at the repository root");
	snprintf(script, sizeof(script), "%s/tests/servers/file_server.py", src);
	cr_assert_eq(pipe(fds), 0);
	T.pid = fork();
	cr_assert_neq(T.pid, -1);
	if (T.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* no stray server when an assertion fails */
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", script, "--root", T.root, "--log", T.log, "--port",
		       "0", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	cr_assert(f && fgets(line, sizeof(line), f), "file_server.py printed no URL line");
	fclose(f);
	cr_assert(sscanf(line, "URL %127s", T.url) == 1, "unexpected line: %s", line);
	snprintf(T.img_url, sizeof(T.img_url), "%s/" IMG_NAME, T.url);
	snprintf(T.sums_url, sizeof(T.sums_url), "%s/SHA256SUMS", T.url);
}

static void server_stop(void)
{
	if (T.pid > 0) {
		kill(T.pid, SIGTERM);
		waitpid(T.pid, NULL, 0);
		T.pid = 0;
	}
}

/* Changes server switches at run time (see file_server.py). */
static void server_ctl(const char *json)
{
	struct http_request req = {.method = "POST",
				   .url = NULL,
				   .body = json,
				   .body_len = strlen(json),
				   .content_type = "application/json"};
	struct http_response resp;
	struct phx_err err = PHX_ERR_INIT;
	char url[256];

	snprintf(url, sizeof(url), "%s/_ctl", T.url);
	req.url = url;
	http_response_init(&resp);
	cr_assert_eq(http_perform(T.c, &req, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(resp.status, 200, "ctl %s: %s", json, buf_str(&resp.body));
	http_response_release(&resp);
}

/* Sums over logged requests from line `from` on for `path` (NULL: any) with `method`:
 * body bytes sent; *ret_n counts the requests; *ret_statuses gets the statuses in order. */
static uint64_t log_bytes(size_t from, const char *method, const char *path, size_t *ret_n,
			  char *statuses, size_t slen)
{
	FILE *f = fopen(T.log, "r");
	char line[2048];
	uint64_t sum = 0;
	size_t i = 0, n = 0, o = 0;

	cr_assert(f, "no server log '%s'", T.log);
	if (statuses)
		statuses[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		json_t *j;

		if (i++ < from)
			continue;
		j = json_loads(line, 0, NULL);
		cr_assert(j, "bad log line: %s", line);
		if (!strcmp(json_string_value(json_object_get(j, "method")), method) &&
		    (!path || !strcmp(json_string_value(json_object_get(j, "path")), path))) {
			sum += (uint64_t)json_integer_value(json_object_get(j, "bytes"));
			n++;
			if (statuses && o + 5 < slen)
				o += (size_t)snprintf(
					statuses + o, slen - o, "%s%lld", o ? "," : "",
					json_integer_value(json_object_get(j, "status")));
		}
		json_decref(j);
	}
	fclose(f);
	if (ret_n)
		*ret_n = n;
	return sum;
}

static size_t log_lines(void)
{
	size_t n = 0;

	log_bytes(0, "GET", NULL, &n, NULL, 0);
	{
		size_t h = 0;

		log_bytes(0, "HEAD", NULL, &h, NULL, 0);
		n += h;
	}
	{
		size_t p = 0;

		log_bytes(0, "POST", NULL, &p, NULL, 0);
		n += p;
	}
	return n;
}

/* ---- fixtures ---- */

/* Writes a fresh random image and a SHA256SUMS naming it (plus a decoy entry). */
static void make_image(size_t size)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[256], sums[512];
	unsigned char *data = malloc(size);

	cr_assert(data);
	cr_assert_eq(crypto_random(data, size, &err), 0, "%s", err.msg);
	cr_assert_eq(crypto_sha256_buf(data, size, T.sha, &err), 0);
	snprintf(path, sizeof(path), "%s/" IMG_NAME, T.root);
	cr_assert_eq(fs_write_atomic(path, data, size, 0644, &err), 0, "%s", err.msg);
	free(data);
	snprintf(sums, sizeof(sums), "%064d *other-image.img\n%s *" IMG_NAME "\n", 0, T.sha);
	snprintf(path, sizeof(path), "%s/SHA256SUMS", T.root);
	cr_assert_eq(fs_write_atomic(path, sums, strlen(sums), 0644, &err), 0);
}

static void setup(void)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts o = {.low_speed_time_s = 20};

	memset(&T, 0, sizeof(T));
	strcpy(T.dir, "/tmp/phx-itest-image-XXXXXX");
	cr_assert(mkdtemp(T.dir));
	snprintf(T.root, sizeof(T.root), "%s/www", T.dir);
	snprintf(T.cache, sizeof(T.cache), "%s/cache", T.dir);
	snprintf(T.log, sizeof(T.log), "%s/server.jsonl", T.dir);
	cr_assert_eq(fs_mkdir_p(T.root, 0755, &err), 0);
	log_setup(-1, true); /* warnings only: the tests provoke some */
	cr_assert_eq(http_global_init(&err), 0);
	T.c = http_client_new(&o, &err);
	cr_assert(T.c, "%s", err.msg);
	make_image(IMG_SIZE);
	server_start();
}

static void teardown(void)
{
	const char *build = getenv("PHX_BUILD");
	char cmd[1024];

	server_stop();
	/* keep the server's request log for a post-mortem, like the simulator's logs */
	if (build && criterion_current_test) {
		snprintf(cmd, sizeof(cmd),
			 "mkdir -p '%s/sim-logs' && cp '%s' '%s/sim-logs/image-%s.jsonl'", build,
			 T.log, build, criterion_current_test->name);
		if (system(cmd) != 0)
			cr_log_warn("could not keep the server log '%s'", T.log);
	}
	http_client_free(T.c);
	http_global_cleanup();
	umount(T.cache); /* the disk-full test mounts a tmpfs there */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(image_fetch, .init = setup, .fini = teardown, .timeout = 120);

static struct img_fetch_opts sums_opts(void)
{
	return (struct img_fetch_opts){
		.image_url = T.img_url, .checksum_url = T.sums_url, .cache_dir = T.cache};
}

static char *cache_path(const char *rel)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", T.cache, rel);
	return p;
}

/* Regular files anywhere under the cache, one "relative/path" per line. */
static void cache_files(const char *sub, char *out, size_t len)
{
	char path[512];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s%s%s", T.cache, sub[0] ? "/" : "", sub);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char rel[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "%s%s%s", sub, sub[0] ? "/" : "", e->d_name);
		if (e->d_type == DT_DIR) {
			cache_files(rel, out, len);
		} else {
			size_t o = strlen(out);

			snprintf(out + o, len - o, "%s\n", rel);
		}
	}
	closedir(d);
}

static void assert_verified(const struct img_result *r)
{
	struct phx_err err = PHX_ERR_INIT;
	char got[CRYPTO_SHA256_HEX_LEN + 1], want[512];

	snprintf(want, sizeof(want), "%s/%s/" IMG_NAME, T.cache, T.sha);
	cr_assert_str_eq(r->path, want);
	cr_assert_str_eq(r->sha256, T.sha);
	cr_assert_eq(r->size, IMG_SIZE);
	cr_assert_eq(crypto_sha256_file(r->path, got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, T.sha);
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".part")), "a .part was left behind");
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".part.meta")));
}

/* ---- tests ---- */

Test(image_fetch, first_download_verifies_and_records_metadata)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	struct img_meta m = IMG_META_INIT;

	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, IMG_SIZE);
	cr_assert(r.changed);
	cr_assert_null(r.previous_path);
	cr_assert_eq(img_meta_read(cache_path(IMG_NAME ".meta.json"), &m, &err), 0, "%s", err.msg);
	cr_assert_str_eq(m.url, T.img_url);
	cr_assert_str_eq(m.sha256, T.sha);
	cr_assert_eq(m.size, IMG_SIZE);
	cr_assert_not_null(m.etag);
	cr_assert_not_null(m.last_modified);
	cr_assert_str_eq(m.sums_url, T.sums_url);
	cr_assert_not_null(m.sums_etag);
	img_meta_release(&m);
	img_result_release(&r);
}

/* Every response dies after 3 MiB and one resume is allowed: the run fails, keeping 6 MiB in
 * the .part (returned). */
static uint64_t fetch_fails_keeping_part(struct img_fetch_opts *o)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_result r = IMG_RESULT_INIT;
	uint64_t part = 0;

	server_ctl("{\"drop_after\": 3145728, \"drop_count\": -1}");
	o->retries = 1;
	cr_assert_eq(img_fetch(T.c, o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert(strstr(err.msg, T.img_url), "%s", err.msg);
	cr_assert_null(r.path);
	cr_assert_eq(fs_file_size(cache_path(IMG_NAME ".part"), &part, &err), 0, "%s", err.msg);
	cr_assert_eq(part, 6u << 20);
	cr_assert_not(fs_exists(cache_path(T.sha)), "no final file for a failed download");
	return part;
}

/* With the server healthy again, the next run ends verified having sent `bytes` of the image
 * with HTTP `status`. */
static void fetch_again_sends(const struct img_fetch_opts *o, uint64_t bytes, const char *status)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_result r = IMG_RESULT_INIT;
	size_t before, n = 0;
	char st[64];

	server_ctl("{\"drop_count\": 0}");
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, bytes);
	cr_assert_eq(log_bytes(before, "GET", "/" IMG_NAME, &n, st, sizeof(st)), bytes);
	cr_assert_str_eq(st, status);
	img_result_release(&r);
}

Test(image_fetch, interrupted_download_resumes_from_part_and_ends_verified)
{
	struct img_fetch_opts o = sums_opts();
	uint64_t part = fetch_fails_keeping_part(&o);

	/* a later run resumes the .part: only the missing 2 MiB travel */
	fetch_again_sends(&o, IMG_SIZE - part, "206");
}

/* The .part.meta is written without fsync (img_part_meta_write): a power failure may leave it
 * empty next to a .part that survived. That .part must not be trusted: the next run starts
 * over and still ends verified. */
Test(image_fetch, part_whose_meta_a_power_failure_emptied_is_downloaded_again)
{
	struct img_fetch_opts o = sums_opts();

	fetch_fails_keeping_part(&o);
	cr_assert_eq(truncate(cache_path(IMG_NAME ".part.meta"), 0), 0);
	fetch_again_sends(&o, IMG_SIZE, "200");
}

Test(image_fetch, dropped_transfer_is_retried_within_one_call)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	size_t n = 0;
	char st[64];

	server_ctl("{\"drop_after\": 2000000, \"drop_count\": 3}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, IMG_SIZE, "resumes must not re-download bytes");
	cr_assert_eq(log_bytes(0, "GET", "/" IMG_NAME, &n, st, sizeof(st)), IMG_SIZE);
	cr_assert_str_eq(st, "200,206,206,206");
	img_result_release(&r);
}

Test(image_fetch, server_ignoring_ranges_restarts_cleanly)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	uint64_t part = 0;
	size_t before, n = 0;
	char st[64];

	server_ctl("{\"drop_after\": 3000000, \"drop_count\": -1}");
	o.retries = 1;
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(fs_file_size(cache_path(IMG_NAME ".part"), &part, &err), 0);
	cr_assert_eq(part, 6000000);

	server_ctl("{\"drop_count\": 0, \"ignore_range\": true}");
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, IMG_SIZE);
	cr_assert_eq(log_bytes(before, "GET", "/" IMG_NAME, &n, st, sizeof(st)), IMG_SIZE);
	cr_assert_str_eq(st, "200", "one answer, the whole file");
	img_result_release(&r);
}

Test(image_fetch, wrong_hash_leaves_nothing_usable_in_cache)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char files[4096] = "";

	server_ctl("{\"wrong_sums\": true}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY, "%s", err.msg);
	cr_assert(strstr(err.msg, T.img_url), "%s", err.msg);
	cr_assert(strstr(err.msg, T.sha), "names the hash it got: %s", err.msg);
	cr_assert(strstr(err.msg, "expected "), "%s", err.msg);
	cr_assert_null(r.path);
	cache_files("", files, sizeof(files));
	cr_assert_str_eq(files, "", "cache must hold no file, has:\n%s", files);
}

Test(image_fetch, explicit_sha256_works_without_sums_file)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = {.image_url = T.img_url, .sha256 = T.sha, .cache_dir = T.cache};
	struct img_result r = IMG_RESULT_INIT;
	char upper[CRYPTO_SHA256_HEX_LEN + 8] = "sha256:";
	size_t n = 0;

	/* upper case with a "sha256:" prefix, as people paste it */
	for (size_t i = 0; i < CRYPTO_SHA256_HEX_LEN; i++)
		upper[7 + i] = (char)(T.sha[i] >= 'a' ? T.sha[i] - 32 : T.sha[i]);
	o.sha256 = upper;
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	log_bytes(0, "GET", "/SHA256SUMS", &n, NULL, 0);
	cr_assert_eq(n, 0, "no sums file was asked for");
	img_result_release(&r);

	/* a second run needs no request at all */
	n = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.downloaded, 0);
	cr_assert_eq(log_lines(), n);
	img_result_release(&r);
}

Test(image_fetch, explicit_wrong_sha256_fails_verification)
{
	struct phx_err err = PHX_ERR_INIT;
	char wrong[] = "0000000000000000000000000000000000000000000000000000000000000000";
	struct img_fetch_opts o = {.image_url = T.img_url, .sha256 = wrong, .cache_dir = T.cache};
	struct img_result r = IMG_RESULT_INIT;

	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, wrong) && strstr(err.msg, T.sha), "%s", err.msg);
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".part")));
}

Test(image_fetch, not_found_names_url_and_status)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char files[4096] = "";

	server_ctl("{\"status\": {\"/" IMG_NAME "\": 404}}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND, "%s", err.msg);
	cr_assert_eq(err.http_status, 404);
	cr_assert(strstr(err.msg, T.img_url), "%s", err.msg);
	cr_assert(strstr(err.msg, "404"), "%s", err.msg);
	cache_files("", files, sizeof(files));
	cr_assert_str_eq(files, "", "cache must hold no file, has:\n%s", files);
}

Test(image_fetch, server_error_on_image_and_sums_name_url_and_status)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;

	server_ctl("{\"status\": {\"/" IMG_NAME "\": 500}}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert_eq(err.http_status, 500);
	cr_assert(strstr(err.msg, T.img_url) && strstr(err.msg, "500"), "%s", err.msg);
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".part")));

	phx_err_clear(&err);
	server_ctl("{\"status\": {\"/SHA256SUMS\": 404}}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND, "%s", err.msg);
	cr_assert(strstr(err.msg, T.sums_url) && strstr(err.msg, "404"), "%s", err.msg);
}

Test(image_fetch, sums_without_entry_for_image_is_notfound)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char path[256];

	snprintf(path, sizeof(path), "%s/SHA256SUMS", T.root);
	cr_assert_eq(fs_write_atomic(path, "", 0, 0644, &err), 0);
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND, "%s", err.msg);
	cr_assert(strstr(err.msg, T.sums_url) && strstr(err.msg, "'" IMG_NAME "'"), "%s", err.msg);
}

Test(image_fetch, second_run_transfers_zero_image_bytes)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	size_t before, n = 0, h = 0;
	char st[64];

	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	img_result_release(&r);
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, 0);
	cr_assert_not(r.changed);
	/* the server's own record: no image request at all, the sums file answered 304 */
	cr_assert_eq(log_bytes(before, "GET", "/" IMG_NAME, &n, NULL, 0), 0);
	cr_assert_eq(n, 0);
	log_bytes(before, "HEAD", "/" IMG_NAME, &h, NULL, 0);
	cr_assert_eq(h, 0);
	log_bytes(before, "GET", "/SHA256SUMS", &n, st, sizeof(st));
	cr_assert_str_eq(st, "304");
	img_result_release(&r);
}

Test(image_fetch, second_run_without_etag_uses_if_modified_since)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	size_t before, n = 0;
	char st[64];

	server_ctl("{\"no_etag\": true}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	img_result_release(&r);
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.downloaded, 0);
	cr_assert_eq(log_bytes(before, "GET", "/" IMG_NAME, &n, NULL, 0), 0);
	log_bytes(before, "GET", "/SHA256SUMS", &n, st, sizeof(st));
	cr_assert_str_eq(st, "304");
	img_result_release(&r);
}

Test(image_fetch, changed_upstream_gives_new_file_and_keeps_old)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char old_path[512], old_sha[CRYPTO_SHA256_HEX_LEN + 1];

	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	snprintf(old_path, sizeof(old_path), "%s", r.path);
	memcpy(old_sha, T.sha, sizeof(old_sha));
	img_result_release(&r);
	sleep(1); /* Last-Modified has one-second resolution */
	make_image(IMG_SIZE / 2);
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_str_eq(r.sha256, T.sha);
	cr_assert_str_neq(T.sha, old_sha);
	cr_assert(r.changed);
	cr_assert_eq(r.downloaded, IMG_SIZE / 2);
	cr_assert_str_eq(r.previous_path, old_path);
	cr_assert(fs_exists(old_path), "old version kept until pruned");
	cr_assert(fs_exists(r.path));
	img_result_release(&r);
}

Test(image_fetch, full_disk_fails_naming_cache_and_leaves_no_part)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char files[4096] = "";

	cr_assert_eq(fs_mkdir_p(T.cache, 0755, &err), 0);
	if (mount("tmpfs", T.cache, "tmpfs", 0, "size=4m") < 0)
		cr_skip_test("cannot mount a small tmpfs to fill (%s): needs root/CAP_SYS_ADMIN",
			     strerror(errno));
	/* known size: refused before a byte is written */
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO, "%s", err.msg);
	cr_assert(strstr(err.msg, T.cache) && strstr(err.msg, "free space"), "%s", err.msg);
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".part")));

	/* unknown size: the disk fills while streaming */
	phx_err_clear(&err);
	server_ctl("{\"no_length\": true}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO, "%s", err.msg);
	cr_assert(strstr(err.msg, T.cache) && strstr(err.msg, "full"), "%s", err.msg);
	cache_files("", files, sizeof(files));
	cr_assert(!strstr(files, ".part") && !strstr(files, T.sha), "left behind:\n%s", files);
}

Test(image_fetch, concurrent_download_of_same_name_is_refused)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	int fd;

	/* another process holds the .part lock (flock is per open file, so this fd counts) */
	cr_assert_eq(fs_mkdir_p(T.cache, 0755, &err), 0);
	fd = open(cache_path(IMG_NAME ".part"), O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "abc", 3), 3);
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT, "%s", err.msg);
	cr_assert(strstr(err.msg, T.img_url), "%s", err.msg);
	cr_assert(fs_exists(cache_path(IMG_NAME ".part")), "the other process's file is kept");
	close(fd);
}

Test(image_fetch, corrupt_cached_file_is_detected_and_replaced)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char path[512];
	int fd;

	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s", r.path);
	img_result_release(&r);
	/* flip bytes in place: same size, so only a re-hash can tell */
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "XXXX", 4, 4096), 4);
	close(fd);
	o.verify_cached = true;
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, IMG_SIZE);
	img_result_release(&r);
}

Test(image_fetch, resume_without_etag_guards_with_last_modified)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	char line[2048] = "", last[2048] = "";
	size_t n = 0;
	char st[64];
	FILE *f;

	server_ctl("{\"no_etag\": true, \"drop_after\": 3000000, \"drop_count\": 2}");
	o.retries = 1;
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	server_ctl("{\"drop_count\": 0}");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	cr_assert_eq(r.downloaded, IMG_SIZE - 6000000);
	log_bytes(0, "GET", "/" IMG_NAME, &n, st, sizeof(st));
	cr_assert_str_eq(st, "200,206,206");
	/* the last image request carried the date as If-Range */
	f = fopen(T.log, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"GET\"") && strstr(line, "\"/" IMG_NAME "\""))
			strcpy(last, line);
	fclose(f);
	cr_assert(strstr(last, "\"if_range\": \"") && strstr(last, " GMT\""), "%s", last);
	img_result_release(&r);
}

/* ---- signed checksum files and other formats ----------------------------------------------
 * Keys come from tests/tools/pgp-keys.sh (made once per build tree); the signatures are made
 * here with gpg over the checksum files this test writes. */

static struct {
	char dir[512];		    /* the key set */
	char good[64], other[64], old[64]; /* fingerprints */
	char ring[600];		    /* binary keyring of good and old */
} K;

static void sh(const char *cmd)
{
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void keys_load(void)
{
	const char *build = getenv("PHX_BUILD"), *src = getenv("PHX_SRC");
	char cmd[2048], path[600], name[16], fpr[64];
	FILE *f;

	snprintf(K.dir, sizeof(K.dir), "%s/pgp-keys", build ? build : "build");
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && flock '%s.lock' '%s/tests/tools/pgp-keys.sh' '%s'",
		 K.dir, K.dir, src, K.dir);
	sh(cmd);
	snprintf(path, sizeof(path), "%s/ids", K.dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fscanf(f, "%15s %63s", name, fpr) == 2)
		strcpy(!strcmp(name, "good") ? K.good : !strcmp(name, "other") ? K.other : K.old, fpr);
	fclose(f);
	snprintf(K.ring, sizeof(K.ring), "%s/trusted.gpg", K.dir);
}

static void sig_setup(void)
{
	setup();
	keys_load();
}

static void sig_teardown(void)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "gpgconf --homedir '%s/gnupg' --kill gpg-agent", K.dir);
	if (system(cmd) != 0)
		cr_log_warn("could not stop the test keys' gpg-agent");
	teardown();
}

TestSuite(image_sigs, .init = sig_setup, .fini = sig_teardown, .timeout = 120);

/* Signs www/<file> as `who` into www/<out> with gpg options `how` (and `extra`). */
static void sign_file(const char *who, const char *how, const char *extra, const char *file,
		      const char *out)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "gpg --homedir '%s/gnupg' --batch --yes --quiet --no-tty %s -u %s %s -o '%s/%s' "
		 "'%s/%s' 2>/dev/null",
		 K.dir, extra ? extra : "", who, how, T.root, out, T.root, file);
	sh(cmd);
}

static void write_www(const char *name, const char *text)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", T.root, name);
	cr_assert_eq(fs_write_atomic(path, text, strlen(text), 0644, &err), 0, "%s", err.msg);
}

static struct img_fetch_opts signed_opts(const char *sums, const char *sig)
{
	static char su[300], gu[300];

	snprintf(su, sizeof(su), "%s/%s", T.url, sums);
	snprintf(gu, sizeof(gu), "%s/%s", T.url, sig);
	return (struct img_fetch_opts){.image_url = T.img_url,
				       .checksum_url = su,
				       .signature_url = gu,
				       .keyring = K.ring,
				       .cache_dir = T.cache};
}

/* No request of any method ever named the image. */
static void assert_image_never_requested(void)
{
	static const char *const methods[] = {"GET", "HEAD"};

	for (size_t i = 0; i < 2; i++) {
		size_t n = 0;

		log_bytes(0, methods[i], "/" IMG_NAME, &n, NULL, 0);
		cr_assert_eq(n, 0, "%s of the image after a refused signature", methods[i]);
	}
}

/* and a rerun re-verifies the cached copies against the keyring of the day */
Test(image_sigs, detached_signature_verified_and_rerun_costs_no_bytes)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = signed_opts("SHA256SUMS", "SHA256SUMS.gpg");
	struct img_result r = IMG_RESULT_INIT;
	struct img_meta m = IMG_META_INIT;
	size_t before, n = 0;
	char st[64], other[600];

	sign_file(K.good, "--detach-sign", NULL, "SHA256SUMS", "SHA256SUMS.gpg");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	img_result_release(&r);
	cr_assert_eq(img_meta_read(cache_path(IMG_NAME ".meta.json"), &m, &err), 0, "%s", err.msg);
	cr_assert_str_eq(m.sig_url, o.signature_url);
	cr_assert_not_null(m.sig_etag);
	img_meta_release(&m);
	cr_assert(fs_exists(cache_path(IMG_NAME ".sums")) &&
		  fs_exists(cache_path(IMG_NAME ".sums.sig")),
		  "the checksums and the signature are kept beside the meta");

	/* unchanged upstream: both small files answer 304, the image is not asked for */
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.downloaded, 0);
	cr_assert_not(r.changed);
	cr_assert_eq(log_bytes(before, "GET", NULL, &n, st, sizeof(st)), 0, "bytes sent on rerun");
	cr_assert_str_eq(st, "304,304");
	img_result_release(&r);

	/* the operator stops trusting the key: the cached, unchanged files are refused */
	snprintf(other, sizeof(other), "%s/other.asc", K.dir);
	o.keyring = other;
	before = log_lines();
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY, "%s", err.msg);
	cr_assert(strstr(err.msg, "not in keyring"), "%s", err.msg);
	log_bytes(before, "GET", NULL, &n, st, sizeof(st));
	cr_assert_str_eq(st, "304,304");
	cr_assert_null(r.path);
}

Test(image_sigs, clear_signed_bsd_checksum_is_fetched_once_and_verified)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = signed_opts("CHECKSUM", "CHECKSUM");
	struct img_result r = IMG_RESULT_INIT;
	char text[512];
	size_t n = 0;

	snprintf(text, sizeof(text),
		 "# " IMG_NAME ": %zu bytes\nSHA256 (" IMG_NAME ") = %s\n", IMG_SIZE, T.sha);
	write_www("CHECKSUM.in", text);
	sign_file(K.good, "--clearsign", NULL, "CHECKSUM.in", "CHECKSUM");
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r);
	log_bytes(0, "GET", "/CHECKSUM", &n, NULL, 0);
	cr_assert_eq(n, 1, "the clear-signed file is its own signature");
	cr_assert_not(fs_exists(cache_path(IMG_NAME ".sums.sig")));
	img_result_release(&r);
}

/* Each way a signature is refused: a verify error naming the key or the file, and no
 * request for the image, nothing in the cache but what was there. */
Test(image_sigs, refused_signatures_fetch_no_image_byte)
{
	static const struct {
		const char *what, *who, *how, *extra, *sig, *needle;
		bool tamper, clear;
	} cases[] = {
		{"bad signature", "good", "--detach-sign", NULL, "SHA256SUMS.gpg", "bad signature",
		 true, false},
		{"key not in keyring", "other", "--detach-sign", NULL, "SHA256SUMS.gpg",
		 "not in keyring", false, false},
		{"expired key", "old", "--detach-sign", "--faked-system-time 20200601T000000",
		 "SHA256SUMS.gpg", "the key expired on", false, false},
		{"not a signature", NULL, NULL, NULL, "SHA256SUMS.gpg", "no OpenPGP signature",
		 false, false},
		{"clear-signed by a stranger", "other", "--clearsign", NULL, "SHA256SUMS",
		 "not in keyring", false, true},
		{"not clear-signed", NULL, NULL, NULL, "SHA256SUMS", "not clear-signed", false,
		 true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct img_fetch_opts o;
		struct img_result r = IMG_RESULT_INIT;
		const char *fpr = NULL;
		char files[4096] = "", sums[512];

		make_image(IMG_SIZE); /* fresh SHA256SUMS */
		if (cases[i].who)
			fpr = !strcmp(cases[i].who, "good")   ? K.good
			      : !strcmp(cases[i].who, "other") ? K.other
							       : K.old;
		if (fpr && cases[i].clear) {
			sign_file(fpr, cases[i].how, NULL, "SHA256SUMS", "SHA256SUMS.asc");
			snprintf(sums, sizeof(sums), "mv '%s/SHA256SUMS.asc' '%s/SHA256SUMS'", T.root,
				 T.root);
			sh(sums);
		} else if (fpr) {
			sign_file(fpr, cases[i].how, cases[i].extra, "SHA256SUMS", cases[i].sig);
		} else if (!cases[i].clear) {
			write_www(cases[i].sig, "<html>not found</html>\n");
		}
		if (cases[i].tamper) {
			/* a mirror changes the listing after it was signed */
			snprintf(sums, sizeof(sums), "%064d *" IMG_NAME "\n", 0);
			write_www("SHA256SUMS", sums);
		}
		o = signed_opts("SHA256SUMS", cases[i].sig);
		cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1, "%s", cases[i].what);
		cr_assert_eq(err.code, PHX_E_VERIFY, "%s: %s", cases[i].what, err.msg);
		cr_assert(strstr(err.msg, cases[i].needle), "%s: %s", cases[i].what, err.msg);
		/* names the key (gpg gives the 16-digit key ID when the key is unknown) */
		if (fpr)
			cr_assert(strstr(err.msg, fpr + 24), "%s: no key ID: %s", cases[i].what,
				  err.msg);
		cr_assert(strstr(err.msg, cases[i].clear ? o.checksum_url : o.signature_url),
			  "%s: no file: %s", cases[i].what, err.msg);
		cr_assert_null(r.path);
		assert_image_never_requested();
		cache_files("", files, sizeof(files));
		cr_assert_str_eq(files, "", "%s: cache must hold nothing, has:\n%s", cases[i].what,
				 files);
	}
}

/* Debian publishes SHA512SUMS only: the download is checked against SHA-512 and still known
 * by its SHA-256. */
static void write_sha512sums(bool wrong)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[512], hex[CRYPTO_HEX_MAX + 1], text[512];

	snprintf(path, sizeof(path), "%s/" IMG_NAME, T.root);
	cr_assert_eq(crypto_hash_file(CRYPTO_SHA512, path, hex, &err), 0, "%s", err.msg);
	if (wrong)
		hex[0] = hex[0] == '0' ? '1' : '0';
	snprintf(text, sizeof(text), "%s  " IMG_NAME ".json\n%s  " IMG_NAME "\n",
		 "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
		 "000000000000000000000000000000000000000000000000",
		 hex);
	write_www("SHA512SUMS", text);
}

Test(image_sigs, sha512sums_verify_the_download_and_the_cache_by_sha512)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_fetch_opts o = sums_opts();
	struct img_result r = IMG_RESULT_INIT;
	struct img_meta m = IMG_META_INIT;
	char sums_url[300], hex[CRYPTO_HEX_MAX + 1], files[4096] = "";
	size_t n = 0;

	snprintf(sums_url, sizeof(sums_url), "%s/SHA512SUMS", T.url);
	o.checksum_url = sums_url;
	/* a listing whose SHA-512 does not match: the download is refused and deleted */
	write_sha512sums(true);
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY, "%s", err.msg);
	cr_assert(strstr(err.msg, "sha512 mismatch"), "%s", err.msg);
	cr_assert_null(r.path);
	cache_files("", files, sizeof(files));
	cr_assert_str_eq(files, "", "cache must hold no file, has:\n%s", files);

	err = (struct phx_err)PHX_ERR_INIT;
	write_sha512sums(false);
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	assert_verified(&r); /* named and reported by SHA-256 */
	cr_assert_eq(crypto_hash_file(CRYPTO_SHA512, r.path, hex, &err), 0, "%s", err.msg);
	img_result_release(&r);
	cr_assert_eq(img_meta_read(cache_path(IMG_NAME ".meta.json"), &m, &err), 0, "%s", err.msg);
	cr_assert_str_eq(m.sha512, hex);
	cr_assert_str_eq(m.sha256, T.sha);
	img_meta_release(&m);

	/* a rerun finds it through the record, and a paranoid one re-hashes it with SHA-512 */
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.downloaded, 0);
	cr_assert_str_eq(r.sha256, T.sha);
	img_result_release(&r);
	o.verify_cached = true;
	cr_assert_eq(img_fetch(T.c, &o, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.downloaded, 0);
	img_result_release(&r);
	log_bytes(0, "GET", "/" IMG_NAME, &n, NULL, 0);
	cr_assert_eq(n, 2, "the refused download and one good one in four runs");
}
