/* seed: render -> cidata ISO in a temp file (see seed.h). */
#include "seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso.h"

int seed_build_iso_in(const char *dir, const struct ci_input *in, char ret_path[SEED_PATH_MAX],
		      char ret_sha[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	struct ci_output out = CI_OUTPUT_INIT;
	const char *tmpdir = dir ? dir : getenv("TMPDIR");
	int fd, rc;

	ret_path[0] = '\0';
	if (tmpdir && strlen(tmpdir) >= SEED_PATH_MAX - 20)
		return phx_err_set(err, PHX_E_IO, "temp dir '%s': path too long", tmpdir);
	if (ci_render(in, &out, err) < 0)
		return phx_err_wrap(err, "render cloud-init");
	snprintf(ret_path, SEED_PATH_MAX, "%s/phoenix-ci-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	fd = mkstemp(ret_path);
	if (fd < 0) {
		rc = phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", ret_path);
		ret_path[0] = '\0';
		ci_output_release(&out);
		return rc;
	}
	close(fd);
	{
		/* this order names every seed deploy has uploaded: keep it */
		const struct iso_file files[] = {
			{"meta-data", out.meta_data, out.meta_data_len},
			{"network-config", out.network_config, out.network_config_len},
			{"user-data", out.user_data, out.user_data_len},
			{"vendor-data", out.vendor_data, out.vendor_data_len},
		};

		/* NoCloud reads vendor-data when the seed has it (DataSourceNoCloud: optional) */
		rc = iso_build_cidata(files, out.vendor_data ? 4 : 3, ret_path, ret_sha, err);
	}
	ci_output_release(&out);
	if (rc < 0) {
		unlink(ret_path);
		ret_path[0] = '\0';
	}
	return rc;
}
