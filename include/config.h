/* config: loads and fully validates phoenix_vm_configs.json (jansson) into plain structs that
 * the commands read. Owns parsing, defaults, validation with JSON-path messages and the
 * environment overrides for the Proxmox connection. Does not talk to any server, read images
 * or render cloud-init: it only describes what the user asked for.
 *
 * Ownership: everything reachable from a struct cfg (strings, arrays, nested structs) is owned
 * by it and freed by cfg_free(). Pointers handed out by the lookup functions are borrowed and
 * valid until cfg_free(). Absent optional strings are NULL; absent optional numbers have a
 * has_* flag or are documented as 0 = "not given". */
#ifndef PHX_CONFIG_H
#define PHX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "secret.h"

#define CFG_VMID_MIN 100UL
#define CFG_VMID_MAX 999999999UL
#define CFG_CORES_MAX 128U
#define CFG_MEMORY_MB_MIN 64UL	    /* Proxmox allows 16; a cloud image does not boot in that */
#define CFG_MEMORY_MB_MAX 4194304UL /* 4 TiB */
#define CFG_DISK_GB_MAX 131072UL    /* 128 TiB */
#define CFG_MAX_ERRORS 50	    /* problems reported before "... and N more" */

/* A list of strings. items[i] owned by the list; n == 0 means empty (items may be NULL). */
struct cfg_strv {
	char **items;
	size_t n;
};

struct cfg_tls {
	char *ca_file;	   /* PEM bundle to trust instead of the system store, or NULL */
	char *fingerprint; /* SHA-256 of the server certificate, "AA:BB:..." upper hex, or NULL */
	bool insecure;	   /* skip verification entirely (also --insecure) */
};

struct cfg_timeouts {
	unsigned long task_s;	 /* waiting for one Proxmox task (default 1800) */
	unsigned long agent_s;	 /* waiting for the guest agent to answer (default 600) */
	unsigned long connect_s; /* TCP+TLS connect (default 10) */
	unsigned long request_s; /* one API request, answer included (default 30); a stalled
				  * or silent server costs at most this per attempt */
};

struct cfg_proxmox {
	/* Base URL without "/api2/json" and without a trailing '/', e.g.
	 * "https://pve.example.com:8006"; NULL when neither config nor environment gives one. */
	char *api_url;
	char *token_id;		 /* "USER@REALM!TOKENNAME", or NULL */
	char *token_secret_file; /* path (resolved against the config's directory), or NULL */
	char *node;		 /* or NULL */
	struct cfg_tls tls;
	struct cfg_timeouts timeouts;
};

enum cfg_cloudinit_mode {
	CFG_CLOUDINIT_ISO = 0, /* our own cidata ISO uploaded as content=iso (default) */
	CFG_CLOUDINIT_NATIVE,  /* Proxmox's ciuser/cipassword/sshkeys/ipconfig0 (+cicustom) */
};

/* A cloud-init user-data (or vendor-data) part: a MIME type cloud-init handles (its
 * handlers' INCLUSION_TYPES_MAP: "text/cloud-config", "text/x-shellscript", ...) and either
 * inline content or a local file read at deploy time. */
struct cfg_part {
	char *type;
	char *content; /* inline, or NULL */
	char *source;  /* resolved local file, or NULL; exactly one of content / source */
};

struct cfg_defaults {
	char *node;	      /* or NULL; see cfg_default_node() */
	char *storage;	      /* VM disks, default "local-lvm" */
	char *import_storage; /* uploaded cloud images (content=import), default "local" */
	char *iso_storage;    /* cloud-init ISOs (content=iso), default "local" */
	char *template_storage; /* container template archives (content=vztmpl), default
				 * "local" */
	char *bridge;	      /* default "vmbr0" */
	struct cfg_strv dns_servers; /* IPv4 addresses, may be empty */
	char *search_domain;	     /* or NULL */
	bool full_clone;	     /* default false (linked clones) */
	enum cfg_cloudinit_mode cloudinit_mode;
	char *snippets_dir; /* storage snippets directory for native cicustom, or NULL */
	struct cfg_strv tags;
	unsigned long agent_timeout_s; /* default: proxmox.timeouts.agent_s */
	struct cfg_part *vendor_data;  /* every VM's vendor-data unless it has its own */
	size_t n_vendor_data;
};

struct cfg_file {
	char *path;    /* absolute path inside the guest */
	unsigned mode; /* permission bits, default 0644 */
	char *content; /* inline content, or NULL */
	char *source;  /* local file (resolved against the config's directory), or NULL */
	/* exactly one of content / source is non-NULL */
};

/* A user of `customize.users`, made offline in the image (VM and container templates). */
struct cfg_cust_user {
	char *name;
	unsigned long uid, gid;		 /* 0: useradd picks (uid 0 is never allowed) */
	struct cfg_strv groups;		 /* supplementary groups, created when missing */
	char *shell;			 /* or NULL: /bin/bash */
	struct cfg_strv ssh_public_keys; /* ~/.ssh/authorized_keys */
	char *password_hash;		 /* crypt(3) hash, or NULL: the account has no password */
	bool password_expired;		 /* chage -d 0: a new password at first login (default
					  * true with a password_hash) */
	bool sudo;			 /* passwordless sudo through /etc/sudoers.d */
	char *git_name, *git_email;	 /* ~/.gitconfig [user], or NULL */
};

struct cfg_customize {
	struct cfg_strv packages; /* default ["qemu-guest-agent"] when the key is absent ([] for
				   * kind "lxc": a container has no guest agent) */
	struct cfg_strv debs;	  /* local .deb files, resolved against the config's directory */
	struct cfg_strv enable_services;
	struct cfg_strv run; /* shell commands, run in order */
	struct cfg_file *files;
	size_t n_files;
	char *timezone; /* e.g. "Europe/Berlin", or NULL */
	struct cfg_cust_user *users;
	size_t n_users;
};

enum cfg_kind { CFG_KIND_QEMU = 0, CFG_KIND_LXC };

/* A container template's `container` object (kind "lxc"); every field always set. */
struct cfg_container {
	bool unprivileged;	  /* default true */
	bool nesting;		  /* features: {"nesting": true} */
	unsigned long rootfs_gb;  /* default 4 */
	char *storage;		  /* the rootfs (content rootdir): default defaults.storage */
	char *template_storage;	  /* the archive (content vztmpl): default
				   * defaults.template_storage */
	unsigned cores;		  /* default 1 */
	unsigned long memory_mb;  /* default 512 */
	unsigned long swap_mb;	  /* default 512 */
	char *bridge;		  /* default defaults.bridge */
	char *ostype;		  /* or NULL: Proxmox reads it from the archive */
	bool ifupdown;		  /* Debian family: install ifupdown (default true) */
};

/* A boolean a VM may leave to its template (and a template to Proxmox's default). */
enum cfg_tri { CFG_TRI_UNSET = 0, CFG_TRI_FALSE, CFG_TRI_TRUE };

#define CFG_CPU_DEFAULT "x86-64-v2-AES" /* Proxmox's GUI default since 8.0 */
#define CFG_SOCKETS_MAX 4U		/* qemu-server's schema */

/* Options of a disk drive (the system disk's `disk`, each of `disks`); unset: as it is. */
struct cfg_drive_opts {
	char *bus;		/* "scsi", "virtio" or "sata"; NULL: the system disk's as it is,
				 * a data disk's "scsi" */
	enum cfg_tri ssd;	/* ssd=1 (not on virtio) */
	enum cfg_tri discard;	/* discard=on / ignore */
	enum cfg_tri iothread;	/* iothread=1 (scsi with virtio-scsi-single, virtio) */
	char *cache;		/* "none", "writethrough", "writeback", "directsync", "unsafe" */
};

/* A data disk of `disks`: the drive <bus><i + 1> for item i (scsi1, virtio2, ...). */
struct cfg_data_disk {
	unsigned long size_gb; /* 1..CFG_DISK_GB_MAX */
	char *storage;	       /* always set: the item's, else the VM's/template's storage */
	struct cfg_drive_opts o;
};

/* The hardware keys templates (under `hardware`) and VMs share. Each is unset (NULL, 0,
 * CFG_TRI_UNSET, has_* false) when not given: a VM then keeps what its template has, a
 * template what Proxmox makes by default. */
struct cfg_machine {
	char *bios;			   /* "seabios" or "ovmf" */
	enum cfg_tri efi_pre_enrolled_keys; /* the EFI disk's Microsoft keys (Secure Boot) */
	char *machine;			   /* "q35", "pc", "pc-q35-9.2+pve1", ... */
	enum cfg_tri tpm;		   /* a tpmstate0 (TPM 2.0) volume */
	char *cpu;			   /* CPU type, e.g. "x86-64-v2-AES", "host" */
	unsigned sockets;		   /* 1..CFG_SOCKETS_MAX, 0: unset */
	bool has_balloon;
	unsigned long balloon_mb; /* minimum memory of the balloon device; 0 disables it */
	enum cfg_tri numa;
	struct cfg_drive_opts disk; /* the system disk */
	struct cfg_data_disk *disks;
	size_t n_disks;
};

struct cfg_hardware {
	unsigned cores;		    /* default 2 */
	unsigned long memory_mb;    /* default 2048 */
	unsigned long disk_size_gb; /* 0 = keep the image's size; else grow to this */
	char *bridge;		    /* always set: hardware.bridge or defaults.bridge */
	char *storage;		    /* always set: hardware.storage or defaults.storage */
	struct cfg_machine mach;    /* cpu defaults to CFG_CPU_DEFAULT */
};

struct cfg_versions {
	unsigned long vmid_min, vmid_max; /* builds take the next free VMID in this range */
	unsigned long keep;		  /* --prune keeps the newest `keep` (>= 1), default 3 */
	unsigned long max_age_days;	  /* --prune also retires versions built longer ago than
					   * this; 0: no age limit (the key is absent) */
	bool rebuild_on_change;		  /* a changed upstream image builds a new version */
};

struct cfg_template {
	char *name;	    /* DNS label, unique among templates */
	unsigned long vmid; /* 0 only when has_versions and no vmid was given */
	char *image_url;    /* http(s); NULL with an artifact */
	char *artifact;	    /* a --publish version directory (absolute), or NULL */
	char *checksum_url; /* SHA256SUMS URL, or NULL when sha256 is given */
	char *sha256;	    /* 64 lower-case hex digits, or NULL */
	/* The checksum file's OpenPGP signature (detached, or checksum_url itself when that is
	 * clear-signed) and the keyring (path resolved against the config's directory; holds at
	 * least one key) whose keys may sign it: both or neither, and only with checksum_url. */
	char *signature_url;
	char *keyring;
	char *os;	    /* e.g. "ubuntu-24.04" (becomes tag os-ubuntu-24.04), or NULL */
	char *type;	    /* e.g. "minimal" (becomes tag type-minimal), or NULL */
	enum cfg_kind kind; /* `kind`: "qemu" (default) or "lxc" (a container template from a
			     * root file system tarball; then `container`, not `hardware`) */
	struct cfg_container ct;
	char *node;	    /* or NULL: cfg_default_node() */
	/* `nodes`: one build, a template on each of these nodes (each with its own VMID from
	 * the version range); all_nodes: "all", every online node. Empty: `node` alone. */
	struct cfg_strv nodes;
	bool all_nodes;
	struct cfg_customize customize;
	struct cfg_hardware hardware;
	bool has_versions;
	struct cfg_versions versions;
	struct cfg_strv tags; /* defaults.tags followed by the template's own, de-duplicated */
};

struct cfg_feature {
	char *name;
	char *script;	   /* as written in the config (or the built-in default) */
	char *script_path; /* resolved existing file, or NULL when not found */
	struct cfg_strv packages;
	bool builtin; /* the default `docker` feature, not written in the config */
};

struct cfg_network {
	char *ip;	     /* CIDR "10.0.0.5/24", or NULL for DHCP */
	char *gw;	     /* "10.0.0.1", or NULL (only allowed with DHCP or no default route) */
	uint32_t addr;	     /* host order, valid when ip != NULL */
	unsigned prefix;     /* 0..32, valid when ip != NULL */
	uint32_t gw_addr;    /* host order, valid when gw != NULL */
	char *bridge;	     /* always set: network_config.bridge or defaults.bridge */
};

/* A route of a NIC: `to` a CIDR (IPv4 or IPv6, "0.0.0.0/0" for a default), `via` an address
 * of the same family. */
struct cfg_route {
	char *to, *via;
};

/* One NIC of `networks`: the Proxmox device netN (N = its index) and its cloud-init settings,
 * matched by MAC in network-config v2. */
struct cfg_nic {
	char *model;	       /* "virtio" (default), "e1000", "e1000e", "rtl8139", "vmxnet3" */
	unsigned vlan;	       /* Proxmox `tag` 1..4094, 0: none */
	unsigned mtu;	       /* 1..65520 (1: the bridge's), 0: not set; virtio only */
	enum cfg_tri firewall; /* unset: as the VM has it */
	char *macaddr;	       /* "BC:24:11:..." upper-case, or NULL: derived from VMID and index */
	char *rate;	       /* MB/s as written ("12.5"), or NULL: no limit */
	struct cfg_network v4; /* ip (NULL: DHCP or, with ip4_none, none), gw, bridge */
	bool ip4_none;	       /* ip "none": no IPv4 on this NIC */
	char *ip6;	       /* IPv6 CIDR, "dhcp", "auto" (SLAAC), or NULL: no IPv6 */
	char *gateway6;	       /* with a static ip6 only, or NULL */
	struct cfg_route *routes;
	size_t n_routes;
	struct cfg_strv dns; /* this NIC's DNS servers (IPv4/IPv6); NIC 0 without `dns`: the
			      * VM's dns_servers */
	bool has_dns;
};

struct cfg_user {
	char *username;
	char *password_hash;		/* crypt(3) hash ($6$, $y$, $5$, $2b$), or NULL */
	struct cfg_strv ssh_public_keys; /* ssh_public_key: one string or an array */
};

enum cfg_select { CFG_SELECT_VALIDATED, CFG_SELECT_LATEST, CFG_SELECT_PINNED };

#define CFG_ID_MAX 72 /* "sha256:" + 64 hex digits + NUL */

struct cfg_vm {
	unsigned long vmid;
	char *name; /* DNS label, unique among VMs */
	/* Exactly one clone source: clone_from_template != NULL, or clone_from_vmid != 0. */
	unsigned long clone_from_vmid;
	char *clone_from_template;
	/* Which version of a clone_from_template series: the newest validated one (else the
	 * newest, with a warning), the newest, or the version named in template_version. */
	enum cfg_select template_select;
	char *template_version; /* CFG_SELECT_PINNED: "<series>-YYYYMMDD-NNN"; else NULL */
	unsigned cores;		    /* 0 = keep the template's */
	unsigned long memory_mb;    /* 0 = keep the template's */
	unsigned long disk_size_gb; /* 0 = keep the template's; else grow to this */
	struct cfg_network network;
	bool has_user; /* user_config given */
	struct cfg_user user;
	struct cfg_strv features; /* names; each exists in cfg->features */
	char *node;		  /* or NULL: cfg_default_node() */
	char *storage;		  /* always set: vms[].storage or defaults.storage */
	bool full_clone;	  /* vms[].full_clone or defaults.full_clone */
	char *pool;		  /* or NULL */
	struct cfg_strv tags;	  /* defaults.tags followed by the VM's own, de-duplicated */
	char *description;	  /* or NULL */
	struct cfg_strv packages;
	struct cfg_strv dns_servers; /* vms[].dns_servers, else a copy of defaults.dns_servers */
	char *search_domain;	     /* copy of defaults.search_domain, or NULL */
	/* "sha256:<hex>" of this VM's entry in the file as canonical JSON (keys sorted, no
	 * whitespace, '_' comment keys dropped): the config identity a deployed VM records.
	 * The same wherever and however the file is named, read or formatted. */
	char config_id[CFG_ID_MAX];
	struct cfg_machine mach;     /* overrides of the template's hardware */
	/* lifecycle: onboot, startup, protection as Proxmox's options (unset: as they are) */
	enum cfg_tri onboot, protection;
	bool has_startup;
	struct {
		bool has_order, has_up, has_down;
		unsigned long order, up, down; /* boot order, seconds */
	} startup;
	bool no_start; /* `start: false`: created and configured, never started */
	/* `ha`: an HA resource vm:<vmid> in /cluster/ha/resources (pve-ha-manager) */
	bool has_ha;
	struct {
		char *state;   /* "started" (default), "stopped", "enabled", "disabled", "ignored" */
		char *group;   /* Proxmox 8 HA group, or NULL */
		char *comment; /* or NULL */
		bool has_max_restart, has_max_relocate;
		unsigned long max_restart, max_relocate; /* 0..10 */
		enum cfg_tri failback;
	} ha;
	/* `networks`: NIC i is net<i>; `network` then mirrors nics[0]'s IPv4 and bridge, so
	 * what reads the first NIC reads one place. Empty with `network_config` (or neither). */
	struct cfg_nic *nics;
	size_t n_nics;
	/* cloud-init parts after the generated #cloud-config (user-data becomes MIME multipart)
	 * and the seed's vendor-data (has_vendor_data: the VM's own, else defaults') */
	struct cfg_part *user_data_parts;
	size_t n_user_data_parts;
	bool has_vendor_data;
	struct cfg_part *vendor_data;
	size_t n_vendor_data;
};

/* One NIC of a container's `networks` (or of its `network_config`): Proxmox's netN of
 * pve-container (LXC/Config.pm $netconf_desc), named eth<N> inside. */
struct cfg_ct_nic {
	char *bridge;	       /* always set: the NIC's, else defaults.bridge */
	char *ip;	       /* IPv4 CIDR, "dhcp" or "manual"; NULL: none */
	char *gw;	       /* with a static ip, or NULL */
	char *ip6;	       /* IPv6 CIDR, "dhcp", "auto" or "manual"; NULL: none */
	char *gw6;	       /* with a static ip6, or NULL */
	unsigned vlan;	       /* tag 1..4094, 0: none */
	unsigned mtu;	       /* 64..65535, 0: the bridge's */
	enum cfg_tri firewall; /* unset: as the container has it */
	char *macaddr;	       /* upper-case, or NULL: Proxmox's (kept on rerun) */
	char *rate;	       /* MB/s as written, or NULL */
};

/* A container of `containers` (docs/configuration.md). Unset numbers are 0 and keep what
 * the template (or Proxmox) has. */
struct cfg_ct {
	unsigned long vmid;
	char *name; /* the hostname; DNS label, unique among guests */
	/* Exactly one source: clone_from_template (a `kind: lxc` template of $.templates) or
	 * clone_from_vmid (a container template on the server). */
	char *clone_from_template;
	unsigned long clone_from_vmid;
	char *node;	       /* or NULL: cfg_default_node() */
	unsigned cores;	       /* 1..CFG_CORES_MAX */
	unsigned long memory_mb;
	bool has_swap;
	unsigned long swap_mb;
	unsigned long rootfs_gb; /* grow only */
	char *storage;		 /* the rootfs's storage (rootdir content): the item's, else
				  * defaults.storage */
	bool full_clone;	 /* containers[].full_clone or defaults.full_clone */
	struct cfg_ct_nic *nics; /* net0..; empty: as the template has them */
	size_t n_nics;
	struct cfg_strv dns_servers; /* nameserver; containers[].dns_servers, else defaults' */
	char *search_domain;	     /* searchdomain; the item's, else defaults' */
	struct cfg_strv ssh_public_keys; /* root's, only at creation */
	char *password_hash;		 /* root's, only at creation; one Proxmox keeps */
	enum cfg_tri nesting;		 /* features: {"nesting": bool} */
	enum cfg_tri unprivileged;	 /* only at creation; default (unset) true */
	enum cfg_tri onboot, protection;
	char *startup; /* "order=1,up=30,down=60" as Proxmox prints it, or NULL */
	struct cfg_strv tags; /* defaults.tags followed by the container's own */
	char *description;    /* or NULL */
	bool no_start;	      /* `start: false` */
	char *pool;	      /* or NULL */
	char config_id[CFG_ID_MAX];
};

/* True when a container must be created from its template's archive: Proxmox takes root's
 * password and SSH keys only at creation (pve-container API2/LXC.pm create_vm). */
bool cfg_ct_needs_create(const struct cfg_ct *ct);

struct cfg {
	char *path; /* the file as given to cfg_load() */
	char *dir;  /* absolute directory holding it; relative paths are resolved against it */
	struct cfg_proxmox proxmox;
	struct cfg_defaults defaults;
	struct cfg_template *templates;
	size_t n_templates;
	struct cfg_feature *features; /* config features, then built-ins not overridden */
	size_t n_features;
	struct cfg_vm *vms;
	size_t n_vms;
	struct cfg_ct *cts; /* $.containers */
	size_t n_cts;
};

/* Reads, parses and validates `path`. Every problem found is reported, one per line
 * ("FILE: $.json.path: expected ..., got ..."), up to CFG_MAX_ERRORS, in err->msg with code
 * PHX_E_INPUT; a JSON syntax error is "FILE:LINE:COL: text". Touches no network. On success
 * *ret is set (caller owns; free with cfg_free()). */
int cfg_load(const char *path, struct cfg **ret, struct phx_err *err);

void cfg_free(struct cfg *cfg);

/* Applies the connection overrides from the environment to cfg->proxmox: PVE_API_URL,
 * PVE_TOKEN_ID, PVE_TOKEN_SECRET_FILE, PVE_NODE (also replaces defaults.node),
 * PVE_TLS_FINGERPRINT, PVE_TLS_CA_FILE, and Terraform bpg's PROXMOX_VE_ENDPOINT and
 * PROXMOX_VE_API_TOKEN ("ID=SECRET", split at the last '='; only the ID is kept here). The
 * PVE_* names win over the PROXMOX_VE_* ones. A malformed value fails with PHX_E_INPUT naming
 * the variable (never its secret part); cfg is unchanged on failure. */
int cfg_apply_env(struct cfg *cfg, struct phx_err *err);

/* Loads the token secret: env PVE_TOKEN_SECRET, else the file from PVE_TOKEN_SECRET_FILE or
 * proxmox.token_secret_file (cfg_apply_env already merged them; must be mode 0600-ish), else
 * the secret part of PROXMOX_VE_API_TOKEN. *ret: caller owns; free with secret_free(). */
int cfg_load_secret(const struct cfg *cfg, struct phx_secret **ret, struct phx_err *err);

/* Checks, without reading the secret, what cfg_load_secret would read: the file it would
 * open passes secret_check_file() (exists, ours or root's, not group/other accessible).
 * *ret_from: "PVE_TOKEN_SECRET", the file's path (borrowed from cfg) or
 * "PROXMOX_VE_API_TOKEN"; NULL when there is no secret anywhere (not an error here: like an
 * unset API URL, the connection is simply not configured). */
int cfg_check_secret(const struct cfg *cfg, const char **ret_from, struct phx_err *err);

/* Fails with PHX_E_INPUT, naming the config key and the environment variable to set, when
 * api_url or token_id is missing. Commands that talk to the server call it first. */
int cfg_require_connection(const struct cfg *cfg, struct phx_err *err);

/* Optimal string alignment distance (Levenshtein plus adjacent transposition). */
size_t cfg_edit_distance(const char *a, const char *b);
/* The closest of `words` to `word` when it is close enough to be a likely typo, else NULL
 * (borrowed from words). For config keys, and for the command line's options. */
const char *cfg_suggest(const char *word, const char *const *words, size_t n);

/* Lookups: borrowed results, NULL when absent. */
const struct cfg_vm *cfg_find_vm(const struct cfg *cfg, unsigned long vmid);
const struct cfg_template *cfg_find_template(const struct cfg *cfg, const char *name);
/* True when `vmid` is the template's own or inside its version range. */
bool cfg_template_owns(const struct cfg_template *t, unsigned long vmid);
const struct cfg_ct *cfg_find_ct(const struct cfg *cfg, unsigned long vmid);
const struct cfg_feature *cfg_find_feature(const struct cfg *cfg, const char *name);

/* The template a VM clones when the config describes it (by clone_from_template name, or a
 * clone_from_vmid that is a template's vmid or inside its version range); NULL when the
 * server must provide clone_from_vmid. */
const struct cfg_template *cfg_vm_template(const struct cfg *cfg, const struct cfg_vm *vm);

/* defaults.node, else proxmox.node, else NULL (then the caller asks the server). */
const char *cfg_default_node(const struct cfg *cfg);
/* The vendor-data parts of `vm`: its own, else defaults.vendor_data (borrowed; *ret_n 0:
 * none). */
const struct cfg_part *cfg_vm_vendor_data(const struct cfg *cfg, const struct cfg_vm *vm,
					  size_t *ret_n);
/* ct->node or cfg_default_node(). */
const char *cfg_ct_node(const struct cfg *cfg, const struct cfg_ct *ct);
/* vm->node or cfg_default_node(). */
const char *cfg_vm_node(const struct cfg *cfg, const struct cfg_vm *vm);

#endif
