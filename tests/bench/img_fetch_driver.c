/* img_fetch_driver: runs one img_fetch() and reports wall time, CPU time and peak RSS, for
 * tests/bench/bench_download (built by it against libphoenix.a) and for manual testing.
 * usage: img_fetch_driver CACHE_DIR IMAGE_URL (--sums URL | --sha256 HEX) [--progress]
 * prints: path=... sha256=... size=N downloaded=N changed=0|1 wall_s=F cpu_s=F maxrss_kib=N
 * usage: img_fetch_driver --hash-mib N
 * prints: hash_s=F, the CPU time SHA-256 (crypto.c, as img_fetch uses it) takes for N MiB in
 * 256 KiB updates (the writer's buffer size), the least any verified download costs */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "crypto.h"
#include "http.h"
#include "image.h"
#include "log.h"

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int hash_bench(long mib)
{
	struct phx_err err = PHX_ERR_INIT;
	static unsigned char block[256 << 10];
	struct crypto_sha256 *h = crypto_sha256_new(&err);
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	struct timespec t0, t1;

	if (!h)
		return 1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (long i = 0; i < mib * 4; i++)
		if (crypto_sha256_update(h, block, sizeof(block), &err) < 0)
			return 1;
	if (crypto_sha256_final(h, hex, &err) < 0)
		return 1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	crypto_sha256_free(h);
	printf("hash_s=%.3f\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts copts = {0};
	struct img_fetch_opts o = {0};
	struct img_result r = IMG_RESULT_INIT;
	struct http_client *c = NULL;
	struct timespec t0, t1;
	struct rusage ru;
	int rc = 1;

	if (argc == 3 && !strcmp(argv[1], "--hash-mib"))
		return hash_bench(strtol(argv[2], NULL, 10));
	if (argc < 5) {
		fprintf(stderr,
			"usage: %s CACHE_DIR IMAGE_URL (--sums URL | --sha256 HEX) "
			"[--progress]\n",
			argv[0]);
		return 2;
	}
	o.cache_dir = argv[1];
	o.image_url = argv[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--sums") && i + 1 < argc)
			o.checksum_url = argv[++i];
		else if (!strcmp(argv[i], "--sha256") && i + 1 < argc)
			o.sha256 = argv[++i];
		else if (!strcmp(argv[i], "--progress"))
			o.progress = true;
	}
	log_setup(0, false);
	if (http_global_init(&err) < 0)
		goto out;
	c = http_client_new(&copts, &err);
	if (!c)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (img_fetch(c, &o, &r, &err) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("path=%s sha256=%s size=%llu downloaded=%llu changed=%d wall_s=%.3f "
	       "cpu_s=%.3f maxrss_kib=%ld\n",
	       r.path, r.sha256, (unsigned long long)r.size, (unsigned long long)r.downloaded,
	       r.changed, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       tv_s(ru.ru_utime) + tv_s(ru.ru_stime), ru.ru_maxrss);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "error: %s (%s)\n", err.msg, phx_err_code_name(err.code));
	img_result_release(&r);
	http_client_free(c);
	http_global_cleanup();
	return rc;
}
