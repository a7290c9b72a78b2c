/* config_env: the connection settings that come from the environment rather than the config
 * file (PVE_* and Terraform bpg's PROXMOX_VE_* variables), the API token secret and the check
 * that a command which talks to the server has what it needs. The secret is only ever handed
 * to secret.h; it never reaches an error message. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* ---- environment and secret -------------------------------------------------------------- */

static const char *cfg_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int cfg_apply_env(struct cfg *cfg, struct phx_err *err)
{
	const char *url = cfg_env("PVE_API_URL"), *url_var = "PVE_API_URL";
	const char *id = cfg_env("PVE_TOKEN_ID"), *id_var = "PVE_TOKEN_ID";
	const char *id_expect = CFG_EXPECT_TOKEN_ID, *id_got = "";
	const char *file = cfg_env("PVE_TOKEN_SECRET_FILE");
	const char *node = cfg_env("PVE_NODE");
	const char *fp = cfg_env("PVE_TLS_FINGERPRINT");
	const char *ca = cfg_env("PVE_TLS_CA_FILE");
	const char *bpg = cfg_env("PROXMOX_VE_API_TOKEN");
	char *new_url = NULL, *new_id = NULL, *new_file = NULL, *new_node = NULL, *new_node2 = NULL;
	char *new_fp = NULL, *new_ca = NULL;
	char q[CFG_SHOW_MAX + 16], fpbuf[96], idbuf[256], idwhy[160];
	const char *why;

	if (!url && (url = cfg_env("PROXMOX_VE_ENDPOINT")))
		url_var = "PROXMOX_VE_ENDPOINT";
	if (url && (why = cfg_check_url(url, true)))
		return phx_err_set(err, PHX_E_INPUT,
				   "environment %s: expected an https URL like "
				   "'https://pve.example.com:8006', got %s (%s)",
				   url_var, cfg_quote(url, q, sizeof(q)), why);
	if (!id && bpg) {
		const char *eq = strrchr(bpg, '=');

		/* never quote this variable: the part after '=' is the secret */
		if (!eq || eq == bpg || !eq[1] || (size_t)(eq - bpg) >= sizeof(idbuf))
			return phx_err_set(err, PHX_E_INPUT,
					   "environment PROXMOX_VE_API_TOKEN: expected "
					   "'USER@REALM!TOKEN=SECRET'");
		memcpy(idbuf, bpg, (size_t)(eq - bpg));
		idbuf[eq - bpg] = '\0';
		id = idbuf;
		id_var = "PROXMOX_VE_API_TOKEN";
		id_expect = "'USER@REALM!TOKEN=SECRET'";
		id_got = "the token ID ";
	}
	if (id && (why = cfg_check_token_id(id, idwhy, sizeof(idwhy))))
		return phx_err_set(err, PHX_E_INPUT, "environment %s: expected %s, got %s%s: %s",
				   id_var, id_expect, id_got, cfg_quote(id, q, sizeof(q)), why);
	if (id && !(new_id = strdup(id)))
		goto oom;
	if (node && !cfg_is_dns_label(node)) {
		free(new_id);
		return phx_err_set(err, PHX_E_INPUT,
				   "environment PVE_NODE: expected a node name like 'pve1', got %s",
				   cfg_quote(node, q, sizeof(q)));
	}
	if (fp && !cfg_normalize_fingerprint(fp, fpbuf)) {
		free(new_id);
		return phx_err_set(err, PHX_E_INPUT,
				   "environment PVE_TLS_FINGERPRINT: expected a SHA-256 fingerprint "
				   "like 'AB:CD:...' (32 hex bytes), got %s",
				   cfg_quote(fp, q, sizeof(q)));
	}
	if ((url && !(new_url = strdup(url))) || (file && !(new_file = strdup(file))) ||
	    (node && (!(new_node = strdup(node)) || !(new_node2 = strdup(node)))) ||
	    (fp && !(new_fp = strdup(fpbuf))) || (ca && !(new_ca = strdup(ca))))
		goto oom;
	/* all values checked: commit them together so a failure leaves cfg as it was */
	if (new_url) {
		cfg_normalize_api_url(new_url);
		free(cfg->proxmox.api_url);
		cfg->proxmox.api_url = new_url;
	}
	if (new_id) {
		free(cfg->proxmox.token_id);
		cfg->proxmox.token_id = new_id;
	}
	if (new_file) {
		free(cfg->proxmox.token_secret_file);
		cfg->proxmox.token_secret_file = new_file;
	}
	if (new_node) {
		free(cfg->proxmox.node);
		cfg->proxmox.node = new_node;
		free(cfg->defaults.node);
		cfg->defaults.node = new_node2;
	}
	if (new_fp) {
		free(cfg->proxmox.tls.fingerprint);
		cfg->proxmox.tls.fingerprint = new_fp;
	}
	if (new_ca) {
		free(cfg->proxmox.tls.ca_file);
		cfg->proxmox.tls.ca_file = new_ca;
	}
	return 0;
oom:
	free(new_url);
	free(new_id);
	free(new_file);
	free(new_node);
	free(new_node2);
	free(new_fp);
	free(new_ca);
	return phx_err_set(err, PHX_E_NOMEM, "out of memory");
}

/* Where the secret comes from, in the order cfg_load_secret reads it. */
enum cfg_secret_from { CFG_SECRET_NONE, CFG_SECRET_ENV, CFG_SECRET_FILE, CFG_SECRET_BPG };

static enum cfg_secret_from cfg_secret_from(const struct cfg *cfg)
{
	const char *bpg = cfg_env("PROXMOX_VE_API_TOKEN");

	if (cfg_env("PVE_TOKEN_SECRET"))
		return CFG_SECRET_ENV;
	if (cfg->proxmox.token_secret_file)
		return CFG_SECRET_FILE;
	if (bpg && strrchr(bpg, '=') && strrchr(bpg, '=')[1])
		return CFG_SECRET_BPG;
	return CFG_SECRET_NONE;
}

int cfg_load_secret(const struct cfg *cfg, struct phx_secret **ret, struct phx_err *err)
{
	struct phx_secret *s;

	switch (cfg_secret_from(cfg)) {
	case CFG_SECRET_ENV:
		s = secret_from_string(cfg_env("PVE_TOKEN_SECRET"), err);
		if (!s)
			return phx_err_wrap(err, "environment PVE_TOKEN_SECRET");
		break;
	case CFG_SECRET_FILE:
		s = secret_from_file(cfg->proxmox.token_secret_file, err);
		if (!s)
			return -1; /* secret_from_file names the file */
		break;
	case CFG_SECRET_BPG:
		s = secret_from_string(strrchr(cfg_env("PROXMOX_VE_API_TOKEN"), '=') + 1, err);
		if (!s)
			return phx_err_wrap(err, "environment PROXMOX_VE_API_TOKEN");
		break;
	default:
		return phx_err_set(err, PHX_E_INPUT,
				   "no API token secret: set PVE_TOKEN_SECRET or "
				   "PVE_TOKEN_SECRET_FILE, or proxmox.token_secret_file in %s",
				   cfg->path);
	}
	/* read once: the customization appliance and every other child must not inherit it */
	unsetenv("PVE_TOKEN_SECRET");
	unsetenv("PROXMOX_VE_API_TOKEN");
	*ret = s;
	return 0;
}

int cfg_check_secret(const struct cfg *cfg, const char **ret_from, struct phx_err *err)
{
	switch (cfg_secret_from(cfg)) {
	case CFG_SECRET_ENV:
		*ret_from = "PVE_TOKEN_SECRET";
		return 0;
	case CFG_SECRET_FILE:
		if (secret_check_file(cfg->proxmox.token_secret_file, err) < 0)
			return -1;
		*ret_from = cfg->proxmox.token_secret_file;
		return 0;
	case CFG_SECRET_BPG:
		*ret_from = "PROXMOX_VE_API_TOKEN";
		return 0;
	default:
		*ret_from = NULL;
		return 0;
	}
}

int cfg_require_connection(const struct cfg *cfg, struct phx_err *err)
{
	if (!cfg->proxmox.api_url)
		return phx_err_set(err, PHX_E_INPUT,
				   "%s: $.proxmox.api_url: no Proxmox API URL; set it in the config "
				   "or in PVE_API_URL",
				   cfg->path);
	if (!cfg->proxmox.token_id)
		return phx_err_set(err, PHX_E_INPUT,
				   "%s: $.proxmox.token_id: no API token ID; set it in the config "
				   "or in PVE_TOKEN_ID",
				   cfg->path);
	return 0;
}
