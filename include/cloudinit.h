/* cloudinit: renders the NoCloud seed (user-data, meta-data, network-config v2) for one VM, and
 * the values Proxmox's native cloud-init options want (sshkeys, ipconfigN).
 *
 * Owns: YAML rendering (libyaml emitter, one scalar style decision per value), the
 * instance-id, the delivery of feature scripts. Does not own: reading the config file (the
 * command layer fills struct ci_input, so this module never sees config.h), building the ISO
 * (iso.h), talking to Proxmox (pve.h).
 *
 * Every string in struct ci_input is borrowed for the duration of the call and must be UTF-8.
 * Output is byte-for-byte deterministic for the same input: no clocks, no randomness, no
 * locale; a changed input changes the instance-id, so cloud-init re-runs per-instance steps.
 * No shared state: safe to call from parallel deploy workers.
 *
 * Feature scripts are delivered as write_files (/var/lib/phoenix/features/<name>.sh, 0755) plus
 * one exec-form runcmd entry each, not as MIME multipart text/x-shellscript parts, because:
 * - user-data stays a single #cloud-config document that `cloud-init schema` validates as a
 *   whole and that a human can read back from the ISO;
 * - runcmd runs once per instance (scripts_user is per-instance), in list order, after
 *   `packages` were installed, which is the order features need;
 * - the exec form (a YAML list, no shell) passes the configured user name to the script as
 *   PHOENIX_USER without any shell quoting;
 * - the script stays on disk for debugging and re-running by hand. */
#ifndef PHX_CLOUDINIT_H
#define PHX_CLOUDINIT_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"
#include "err.h"

#define CI_DEFAULT_SUDO "ALL=(ALL) NOPASSWD:ALL"
#define CI_DEFAULT_SHELL "/bin/bash"
/* Where feature scripts land inside the guest: CI_FEATURE_DIR "/<name>.sh". */
#define CI_FEATURE_DIR "/var/lib/phoenix/features"
/* "iid-" + 16 hex digits + NUL */
#define CI_INSTANCE_ID_LEN 20

struct ci_user {
	const char *name;	   /* required */
	const char *password_hash; /* crypt(3) hash ("$6$..."); NULL: password login locked */
	const char *const *ssh_keys;
	size_t n_ssh_keys;
	const char *sudo;  /* NULL: CI_DEFAULT_SUDO; "": no sudo rule */
	const char *shell; /* NULL: CI_DEFAULT_SHELL */
	const char *const *groups;
	size_t n_groups;
};

struct ci_write_file {
	const char *path;	 /* absolute path in the guest, required */
	const char *content;	 /* required (may be ""); text, multi-line allowed */
	const char *permissions; /* e.g. "0644"; NULL: cloud-init's default */
	const char *owner;	 /* e.g. "root:root"; NULL: cloud-init's default */
};

struct ci_feature {
	const char *name;	    /* [A-Za-z0-9_.-]+, becomes CI_FEATURE_DIR/<name>.sh */
	const char *script_content; /* the whole script, shebang included */
};

/* A part of a MIME multipart user-data or vendor-data: a content type cloud-init handles
 * ("text/cloud-config", "text/x-shellscript", ...) and its text. */
struct ci_part {
	const char *type;
	const char *content; /* non-empty; a text/cloud-config part starts "#cloud-config" and is
			      * a YAML mapping, a shell script part starts "#!" */
};

struct ci_route {
	const char *to, *via; /* a CIDR and an address of the same family */
};

/* One NIC, rendered as ethernets "eth<i>" (i: its index, net<i> in Proxmox) matched by MAC. */
struct ci_network {
	const char *mac;     /* the NIC's MAC from the clone's config (net0), required */
	const char *ip_cidr; /* "10.0.0.5/24" or an IPv6 CIDR; NULL: DHCP */
	const char *gateway; /* NULL: no default route; requires ip_cidr */
	bool no_dhcp4;	     /* with ip_cidr NULL: no IPv4 at all instead of DHCP */
	const char *ip6;     /* an IPv6 CIDR, "dhcp" (DHCPv6), "auto" (SLAAC), or NULL: none */
	const char *gateway6; /* NULL: no IPv6 default route; requires a static ip6 */
	const struct ci_route *routes;
	size_t n_routes;
	const char *const *dns_servers;
	size_t n_dns_servers;
	const char *const *search_domains;
	size_t n_search_domains;
};

struct ci_input {
	const char *hostname; /* required, becomes hostname and local-hostname */
	const char *fqdn;     /* NULL: none */
	struct ci_user user;
	const char *const *packages;
	size_t n_packages;
	const struct ci_write_file *write_files;
	size_t n_write_files;
	const struct ci_feature *features; /* run once per instance, in this order */
	size_t n_features;
	struct ci_network network;
	/* NICs 1.. (net1 ...), after `network`; may be NULL when n_more_networks is 0 */
	const struct ci_network *more_networks;
	size_t n_more_networks;
	/* user-data parts after ours: with any, user-data is MIME multipart (ours first, as
	 * text/cloud-config, then these in order); see ci_render_user_data */
	const struct ci_part *parts;
	size_t n_parts;
	/* the seed's vendor-data, MIME multipart; none when n_vendor_parts is 0 */
	const struct ci_part *vendor_parts;
	size_t n_vendor_parts;
	/* Mixed into the instance-id only (e.g. "<vmid>"), so two VMs with identical content
	 * still get distinct ids. NULL means "". */
	const char *instance_seed;
};

/* The three NoCloud files. Each buffer is malloc'd, NUL-terminated, caller owns; release all
 * with ci_output_release(). */
struct ci_output {
	char *user_data;
	size_t user_data_len;
	char *meta_data;
	size_t meta_data_len;
	char *network_config;
	size_t network_config_len;
	char *vendor_data; /* NULL when the input has no vendor parts */
	size_t vendor_data_len;
	char instance_id[CI_INSTANCE_ID_LEN + 1];
};

#define CI_OUTPUT_INIT {.user_data = NULL}

/* Renders all three files (four with vendor parts). instance-id = "iid-" + the first 16 hex
 * digits of SHA-256 over user-data, network-config, hostname and instance_seed (each followed
 * by a NUL byte), then vendor-data when there is one, so any change in rendered content gives
 * a new id. meta-data itself is not hashed (it holds the id).
 * On failure (PHX_E_INPUT naming the field and value, PHX_E_NOMEM, PHX_E_INTERNAL) *ret_out is
 * untouched. */
int ci_render(const struct ci_input *in, struct ci_output *ret_out, struct phx_err *err);
/* Frees the buffers and resets *out to CI_OUTPUT_INIT. Accepts NULL and half-filled outputs. */
void ci_output_release(struct ci_output *out);

/* The parts of ci_render, each writing a malloc'd NUL-terminated buffer (caller frees with
 * free()) and its length, only on success.
 * user-data is one #cloud-config document; with in->parts it is a MIME multipart/mixed
 * message as cloud-init's `devel make-mime` writes it: our document as the first
 * text/cloud-config part, then each part with its own Content-Type. A text/cloud-config part
 * of the input carries "Merge-Type: list(append)+dict(no_replace,recurse_list)+str()" (the
 * merge cloud-init's docs give as their example): cloud-init's default merge
 * (handlers/cloud_config.py DEF_MERGERS, dict(replace)+list()) would let a part's `packages`
 * or `runcmd` replace ours (the guest agent, the features) instead of adding to them. The
 * boundary is derived from the parts' content (deterministic output). */
int ci_render_user_data(const struct ci_input *in, char **ret, size_t *ret_len,
			struct phx_err *err);
/* in->vendor_parts as a MIME multipart message; *ret NULL (and *ret_len 0) when there are
 * none. */
int ci_render_vendor_data(const struct ci_input *in, char **ret, size_t *ret_len,
			  struct phx_err *err);
int ci_render_network_config(const struct ci_network *net, char **ret, size_t *ret_len,
			     struct phx_err *err);
/* The same for net (NIC 0) and the `n_more` NICs after it. */
int ci_render_network_config_n(const struct ci_network *net, const struct ci_network *more,
			       size_t n_more, char **ret, size_t *ret_len, struct phx_err *err);
/* instance_id: as computed by ci_render (borrowed). */
int ci_render_meta_data(const char *instance_id, const char *hostname, char **ret, size_t *ret_len,
			struct phx_err *err);

/* Native mode: the value for Proxmox's `sshkeys` parameter. The keys are joined with "\n"
 * (no trailing newline) and percent-encoded like JavaScript's encodeURIComponent (the GUI's
 * SSHKey.js): everything but A-Za-z0-9 and -_.!~*'() becomes %XX (upper-case hex), spaces are
 * %20, never '+'. That is exactly the character set pve-common's `urlencoded` format accepts;
 * qemu-server decodes it with URI::Escape::uri_unescape before validating the keys. Send it
 * as is in a JSON body; a form body encodes it once more (the '%' becomes %25).
 * Empty keys and keys containing a line break are rejected (PHX_E_INPUT, names the index).
 * *ret is malloc'd, caller frees with free(). */
int ci_native_sshkeys_encode(const char *const *keys, size_t n, char **ret, struct phx_err *err);

/* Native mode: the value for `ipconfig0`: "ip=10.0.0.5/24,gw=10.0.0.1", "ip=10.0.0.5/24",
 * "ip=dhcp" (ip_cidr NULL), or "ip6=<cidr>[,gw6=<gw>]" for IPv6. A gateway without an
 * address, a bad CIDR, or a gateway of the other family is PHX_E_INPUT naming the value.
 * *ret is malloc'd, caller frees with free(). */
int ci_native_ipconfig(const char *ip_cidr, const char *gw, char **ret, struct phx_err *err);

#endif
