/* ci_render: writes every case of tests/data/cloudinit/ci_cases.h, rendered by the real
 * cloudinit module, as OUTDIR/<case>.{user-data,meta-data,network-config} (and
 * <case>.vendor-data when the case has vendor parts), and the seed ISO
 * the iso module builds from them as OUTDIR/<case>.iso. Used by
 * tests/integration/test_cloudinit_schema.py (cloud-init's own schema validator) and to
 * refresh the golden files after an intended change. Usage: ci_render OUTDIR */
#include <stdio.h>
#include <stdlib.h>

#include "../../data/cloudinit/ci_cases.h"
#include "fsutil.h"
#include "iso.h"

int main(int argc, char **argv)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: ci_render OUTDIR\n");
		return 2;
	}
	for (size_t i = 0; i < CI_N_CASES; i++) {
		struct ci_output o = CI_OUTPUT_INIT;
		const struct {
			const char *ext;
			const char *data;
			size_t len;
		} * f, files[4] = {{"user-data", NULL, 0},
				   {"meta-data", NULL, 0},
				   {"network-config", NULL, 0},
				   {"vendor-data", NULL, 0}};

		if (ci_render(ci_cases[i].in, &o, &err) < 0) {
			fprintf(stderr, "ci_render: case '%s': %s\n", ci_cases[i].name, err.msg);
			return 1;
		}
		const char *d[4] = {o.user_data, o.meta_data, o.network_config, o.vendor_data};
		size_t l[4] = {o.user_data_len, o.meta_data_len, o.network_config_len,
			       o.vendor_data_len};
		int nk = o.vendor_data ? 4 : 3;

		for (int k = 0; k < nk; k++) {
			f = &files[k];
			snprintf(path, sizeof(path), "%s/%s.%s", argv[1], ci_cases[i].name, f->ext);
			if (fs_write_atomic(path, d[k], l[k], 0644, &err) < 0) {
				fprintf(stderr, "ci_render: %s\n", err.msg);
				ci_output_release(&o);
				return 1;
			}
		}
		const struct iso_file seed[] = {
			{"user-data", o.user_data, o.user_data_len},
			{"meta-data", o.meta_data, o.meta_data_len},
			{"network-config", o.network_config, o.network_config_len},
			{"vendor-data", o.vendor_data, o.vendor_data_len},
		};

		snprintf(path, sizeof(path), "%s/%s.iso", argv[1], ci_cases[i].name);
		if (iso_build_cidata(seed, (size_t)nk, path, NULL, &err) < 0) {
			fprintf(stderr, "ci_render: %s\n", err.msg);
			ci_output_release(&o);
			return 1;
		}
		ci_output_release(&o);
	}
	return 0;
}
