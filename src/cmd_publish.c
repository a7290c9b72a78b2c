/* cmd_publish: --publish NAME|VMID DIR, one template version as an artifact (artifact.h):
 * its customized image from this host's cache, verified against the build record's hash, with
 * the record and the package list. Reads the server, writes only DIR. */
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "cmd.h"
#include "crypto.h"
#include "log.h"
#include "provision.h"
#include "pve.h"
#include "record.h"
#include "session.h"

/* The customized image in this host's cache whose sha256 is `want`: a customized copy lives
 * beside its source image, <cache>/<source sha256>/customized-<recipe>.qcow2. */
static int pub_find_image(const char *source_sha, const char *want, char **ret, struct phx_err *err)
{
	char *cache = NULL, pattern[4096], got[CRYPTO_SHA256_HEX_LEN + 1];
	glob_t g = {0};
	int rc = -1;

	if (session_cache_dir(&cache, err) < 0)
		return -1;
	snprintf(pattern, sizeof(pattern), "%s/%s/customized-*.qcow2", cache, source_sha);
	if (strspn(source_sha, "0123456789abcdef") == CRYPTO_SHA256_HEX_LEN &&
	    glob(pattern, 0, NULL, &g) == 0)
		for (size_t i = 0; i < g.gl_pathc && rc < 0; i++) {
			if (crypto_sha256_file(g.gl_pathv[i], got, err) < 0)
				goto out;
			if (!strcmp(got, want)) {
				if (!(*ret = strdup(g.gl_pathv[i])))
					phx_err_set(err, PHX_E_NOMEM, "out of memory");
				else
					rc = 0;
			}
		}
	if (rc < 0 && !err->code)
		phx_err_set(err, PHX_E_NOTFOUND,
			    "its customized image (sha256 %.12s) is not in this host's cache '%s': "
			    "publish from the host that built it",
			    want, cache);
out:
	globfree(&g);
	free(cache);
	return rc;
}

static int cmd_publish_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct pve_vm_list vms = {0};
	const struct pve_vm_info *vm = NULL;
	json_t *config = NULL;
	struct phx_err none = PHX_ERR_INIT;
	char tpl[128] = "", source[80] = "", image_sha[80] = "";
	char *image = NULL, *packages = NULL, *dir = NULL;
	const char *record;
	bool changed = false;
	int rc = -1;

	if (session_connect(s, err) < 0 || pve_cluster_vms(s->pve, &vms, err) < 0 ||
	    !(vm = cmd_find_template(&vms, opts->publish_version, err)) ||
	    pve_vm_config_get(s->pve, vm->node, vm->vmid, &config, err) < 0)
		goto out;
	record = json_string_value(json_object_get(config, "description"));
	rec_get(record, "template", tpl, sizeof(tpl));
	rec_get(record, PROV_REC_SHA256, source, sizeof(source));
	rec_get(record, PROV_REC_CUSTOM_SHA256, image_sha, sizeof(image_sha));
	if (!tpl[0] || !source[0] || !image_sha[0]) {
		phx_err_set(err, PHX_E_INPUT, "its description holds no build record to publish");
		goto out;
	}
	if (pub_find_image(source, image_sha, &image, err) < 0)
		goto out;
	if (cmd_template_packages(s->pve, vm, &packages, &none) < 0)
		log_warn("template %d '%s': published without a package list: %s", vm->vmid,
			 vm->name, none.msg);
	{
		const struct art_publish in = {
			.root = opts->names[0],
			.template_name = tpl,
			.version = vm->name,
			.image = image,
			.image_sha256 = image_sha,
			.record = record,
			.packages = packages,
		};

		if (art_publish(&in, &dir, &changed, err) < 0)
			goto out;
	}
	if (opts->output == CLI_OUTPUT_JSON)
		rc = cmd_print_json(json_pack("{s:i, s:s, s:s, s:s, s:b}", "vmid", vm->vmid, "name",
					      vm->name, "artifact", dir, "sha256", image_sha,
					      "changed", changed),
				    err);
	else
		rc = printf("%s '%s': %s\n", changed ? "published" : "already published", vm->name,
			    dir) < 0
			     ? phx_err_set(err, PHX_E_IO, "writing to stdout failed")
			     : 0;
out:
	if (rc < 0 && vm)
		phx_err_wrap(err, "--publish %d '%s'", vm->vmid, vm->name);
	json_decref(config);
	free(image);
	free(packages);
	free(dir);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_publish_entry = {"publish", CMD_SERVER, cmd_publish_run};
