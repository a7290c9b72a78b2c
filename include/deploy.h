/* deploy: the pure helpers of cmd_deploy (Flow 2): reading values out of a Proxmox VM config
 * (drive sizes, the system disk, cloud-init drives, net0), naming the per-VM seed ISO, the
 * description record, tag merging and picking the guest's address from the agent's answer;
 * and the decisions of a run: where node "auto" places a VM, which VM a --jobs worker takes
 * next, a new VM's clone path, whether a lock means another run is making the VM, how long a
 * running VM's agent is waited for. No I/O and no server calls, so every rule here is
 * unit-tested (tests/unit/test_deploy.c). The orchestration itself (clone, config, upload,
 * start, undo) lives in cmd_deploy.c. */
#ifndef PHX_DEPLOY_H
#define PHX_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "crypto.h"
#include "err.h"
#include "plan.h"
#include "preflight.h"
#include "pve.h"

/* Seed ISOs are named DEPLOY_SEED_PREFIX "<vmid>-<first 12 hex digits of its sha256>.iso". */
#define DEPLOY_SEED_PREFIX "phoenix-ci-"
#define DEPLOY_SEED_HASH_LEN 12
/* The record key of the seed's hash in the description (see deploy_description). */
#define DEPLOY_SEED_KEY "phoenix-seed"
/* The record's key naming the HA resource this tool added for the VM ("vm:8001"): a resource
 * the config's `ha` no longer asks for is removed only when the record says it was ours. */
#define DEPLOY_HA_KEY "phoenix-ha"
#define DEPLOY_MANAGED_LINE "managed by phoenix-orchestrator"
#define DEPLOY_MAC_LEN 17

/* Bytes of a drive value's "size=" option: "100G", "64M", "512K", "2T", "1048576" (bytes).
 * PHX_E_API names the drive when there is no size or it does not parse. */
int deploy_drive_size(const char *drive, uint64_t *ret_bytes, struct phx_err *err);

/* True when a drive value is a CD-ROM (media=cdrom) or a Proxmox cloud-init volume. */
bool deploy_drive_is_cdrom(const char *drive);
bool deploy_drive_is_cloudinit(const char *drive);

/* The key of the system disk in a GET .../config object: the first disk named in
 * `boot: order=...`, else the first of scsi0, virtio0, sata0, ide0 that is not a CD-ROM.
 * NULL when there is none. Borrowed: points into static storage or into `config`. */
const char *deploy_system_disk(const json_t *config);

/* A template can be cloned linked only when every disk is a base volume (`base-N-disk-M`):
 * template conversion renames disks where the storage supports base volumes and leaves them
 * as they are where it does not (thick LVM, iSCSI: pve-storage create_base), and a linked
 * clone of those dies with "Linked clone feature is not supported". Returns the key of the
 * first disk that is not a base volume (borrowed from config), or NULL. */
const char *deploy_unlinkable_disk(const json_t *config);
/* True when the system disk of `config` is on a shared storage (`storages`: the array of
 * GET /storage): its `shared` flag, or a type that is always shared. Unknown: false. */
bool deploy_disks_shared(const json_t *storages, const json_t *config);
/* Fills ret_keys with up to `max` keys (borrowed from `config`) whose value is a cloud-init
 * volume; returns how many there are (may exceed max). */
size_t deploy_cloudinit_drives(const json_t *config, const char **ret_keys, size_t max);

/* Rewrites a netN value ("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1") so it keeps the
 * model and every other option but uses `bridge`, and the MAC `mac` (NULL: keep the MAC).
 * *ret is malloc'd (caller frees); ret_mac gets the MAC it carries. PHX_E_API names the
 * value when it has no model=MAC. */
int deploy_net_rebridge(const char *net, const char *bridge, const char *mac, char **ret,
			char ret_mac[DEPLOY_MAC_LEN + 1], struct phx_err *err);
/* The MAC a new VM's net0 gets: Proxmox's prefix BC:24:11 and three bytes of a hash of the
 * VMID. Fixed before the clone, so the seed (whose network-config matches the NIC by MAC)
 * and therefore the whole plan are known before anything is sent, and a VM rebuilt under
 * the same VMID keeps its DHCP lease. */
int deploy_mac_for_vmid(unsigned long vmid, char ret[DEPLOY_MAC_LEN + 1], struct phx_err *err);

#define DEPLOY_MAX_NICS 32 /* net0..net31 */

/* The MAC of NIC `idx` of vm: its `macaddr`, else the one net<idx> of `conf` (an existing
 * VM's config, or NULL) has, else derived from the VMID and the index (NIC 0: as
 * deploy_mac_for_vmid), so a new VM's NICs and their seed are known before the clone. */
int deploy_nic_mac(const struct cfg_vm *vm, size_t idx, const json_t *conf,
		   char ret[DEPLOY_MAC_LEN + 1], struct phx_err *err);
/* The netN value of NIC `n` with `mac`: "MODEL=MAC" then, sorted as Proxmox prints them,
 * bridge, tag (vlan), mtu, rate and firewall as the config says (vlan, mtu, rate absent:
 * none; firewall unset: as in `cur`) and the other options of `cur` (the current value, or
 * NULL) kept. *ret is malloc'd (caller frees). */
int deploy_nic_value(const struct cfg_nic *n, const char *cur, const char *mac, char **ret,
		     struct phx_err *err);

/* "phoenix-ci-<vmid>-<sha256[0..12)>.iso" into ret. PHX_E_INTERNAL when it does not fit or
 * the hash is not hex. */
int deploy_seed_name(unsigned long vmid, const char *sha256, char *ret, size_t len,
		     struct phx_err *err);

/* The native-mode user-data snippet of a VM: "phoenix-ci-<vmid>-user.yaml". */
void deploy_snippet_name(unsigned long vmid, char *ret, size_t len);
/* True when `volid` ("STORAGE:iso/FILE", options after ',' ignored) is a seed ISO of vmid. */
bool deploy_is_seed_volid(const char *volid, unsigned long vmid);
/* The volume ID of our user-data snippet of vmid in a VM's cicustom value
 * ("user=local:snippets/phoenix-ci-8001-user.yaml[,...]") into ret; false when cicustom (may
 * be NULL) names none of ours (another snippet is the user's: never ours to remove). */
bool deploy_cicustom_snippet(const char *cicustom, unsigned long vmid, char *ret, size_t len);

/* The description record: the user's text (may be NULL), a blank line, then
 * DEPLOY_MANAGED_LINE, then the record (record.h) config, vm, DEPLOY_SEED_KEY, and
 * DEPLOY_HA_KEY when `ha_sid` is not NULL (the VM's HA resource is ours). `config_id` is
 * the VM entry's identity (struct cfg_vm config_id), not the file's path: a path depends on
 * how and where the file is read, and a rerun from another spelling of it would "change"
 * every VM. Caller frees. */
char *deploy_description(const char *user_text, const char *config_id, const char *vm_name,
			 const char *seed_sha256, const char *ha_sid, struct phx_err *err);
/* deploy_description(), except that `current`, a record written before config identities
 * (its config line is the path as typed, not "sha256:..."), is kept as it is when nothing else
 * in it would change: old records are read, not rewritten for the sake of the new line. */
char *deploy_description_keep(const char *current, const char *user_text, const char *config_id,
			      const char *vm_name, const char *seed_sha256, const char *ha_sid,
			      struct phx_err *err);
/* True when the record in `description` says the HA resource `sid` was added by this tool. */
bool deploy_description_ha(const char *description, const char *sid);

/* Copies the seed hash recorded by deploy_description into ret; false when there is none. */
bool deploy_description_seed(const char *description, char ret[CRYPTO_SHA256_HEX_LEN + 1]);

/* Tags for the VM: `current` (Proxmox's ';'-joined list, may be NULL) plus every tag of
 * `want` not already there (case-insensitive), ';'-joined. *ret_changed tells whether
 * anything was added. Caller frees *ret. */
int deploy_tags_merge(const char *current, const char *const *want, size_t n_want, char **ret,
		      bool *ret_changed, struct phx_err *err);

/* The guest's IPv4 address (without prefix): from the interface whose MAC equals `mac`
 * (case-insensitive; may be NULL), else from the first interface that is not loopback.
 * 127.0.0.0/8 and 169.254.0.0/16 are skipped. False when there is none. */
bool deploy_pick_ipv4(const struct pve_iface_list *l, const char *mac, char *ret, size_t len);

/* True for the locks Proxmox holds while a VM is being made: "clone" (qemu-server clone_vm,
 * from the temporary config to the end of the disk copies) and "create" (create_vm). A VM
 * with one is another run's work in progress, not a finished VM. */
bool deploy_lock_is_creation(const char *lock);

/* How long to wait for the guest agent of a VM that was already running, `uptime_s` after its
 * start: a VM started less than agent_timeout_s ago may be a run's that was stopped while its
 * guest booted, so it gets the rest of the timeout (at least 1 s), and an agent that does not
 * answer then fails it, as it would have failed that run (*ret_must_answer); a VM running
 * longer whose agent is gone gets 1 s, best effort: it is converged all the same. */
unsigned long deploy_running_agent_wait(long long uptime_s, unsigned long agent_timeout_s,
					bool *ret_must_answer);

/* ---- placement of `node: "auto"` VMs ---- */

#define DEPLOY_NODE_AUTO "auto"

/* What /cluster/resources says of a node, plus what this run placed there. */
struct deploy_node {
	const char *name; /* borrowed */
	bool online;
	uint64_t maxmem, mem; /* bytes */
	unsigned ours;	      /* VMs of ours on it (counted, and placed by this run) */
};

/* The CPU figures of the same nodes, index for index: `cpu` is the node's load as
 * /cluster/resources gives it (0..1 of all its CPUs), `maxcpu` how many it has (0: unknown,
 * then memory alone counts). An array of its own, so that deploy_place() (memory alone) and
 * callers that have no CPU figures pass none. */
struct deploy_cpu {
	double cpu;
	unsigned maxcpu;
};

/* Picks the node for a new VM that needs `mem` bytes and `cores` CPUs, then books the VM
 * there (its memory, `cores`/maxcpu of CPU load, one more of our VMs), so the VMs of a batch
 * placed one after another spread over the cluster:
 *  1. online nodes only; of those, the ones with `mem` free, when any has;
 *  2. the lowest load once the VM is booked, load = max(memory used / maxmem, CPU load), in
 *     thousandths (closer loads are a tie): a node busy on CPU is skipped although it has
 *     memory, and a full node although its CPUs idle;
 *  3. ties: more free memory (the bigger node keeps more room), fewer of our VMs, the name.
 * The same inputs give the same placement. `cpu` may be NULL (memory alone). -1 when no node
 * is online; nothing is booked then. */
long deploy_place_vm(struct deploy_node *nodes, struct deploy_cpu *cpu, size_t n, uint64_t mem,
		     unsigned cores);
/* deploy_place_vm() without CPU figures. */
long deploy_place(struct deploy_node *nodes, size_t n, uint64_t mem);
/* Why the VM went to node `x` (and `c`, may be NULL), given as they are after
 * deploy_place_vm() booked it there, in terms of before: "placed on pve2: 41.0 GiB free, CPU
 * 12%, 3 of our VMs". Says so when even this node lacked the memory. */
void deploy_place_why(const struct deploy_node *x, const struct deploy_cpu *c, uint64_t mem,
		      unsigned cores, char *ret, size_t len);

/* ---- the worker pool of --jobs ---- */

/* How many VMs may be in flight on one node: ceil(jobs / nodes that have work in this run), so
 * that one node is not hammered while the others idle, and a batch all on one node still gets
 * every job. At least 1. */
unsigned deploy_jobs_per_node(unsigned jobs, size_t nodes_with_work);
/* The VM a free worker starts next: the first in config order that is not started yet and
 * whose node (node_of[i], an index into in_flight) has fewer than `bound` VMs in flight. -1
 * when none may start now (the worker waits for one in flight to end). */
long deploy_next_job(const size_t *node_of, const bool *started, size_t n,
		     const unsigned *in_flight, unsigned bound);

/* ---- the planner of one VM (deploy_plan.c) ---- */

/* What cmd_deploy read and prepared for one VM; everything borrowed. */
struct deploy_vm_input {
	const struct cfg_vm *vm;
	const struct pve_vm_info *dst; /* the existing VM (ours), or NULL: a new clone */
	const struct pve_vm_info *src; /* new clone: the template */
	const json_t *conf;	       /* dst's config, or the template's (a clone starts as it) */
	const char *node;	       /* where the VM is or will be */
	bool src_shared;	       /* new clone: the template's disks are on shared storage */
	const char *mac;	       /* new clone: the MAC net0 gets (deploy_mac_for_vmid) */
	/* with `networks`: NIC i's MAC (deploy_nic_mac), vm->n_nics of them */
	const char (*macs)[DEPLOY_MAC_LEN + 1];
	bool running;		       /* dst is running */
	const char *seed_sha; /* hash recorded in the description (ISO content or native values) */
	/* ISO mode (seed_volid != NULL) */
	const char *seed_storage, *seed_volid, *seed_file;
	bool seed_present; /* the volume is already on the storage: no upload */
	/* native mode */
	const char *cicustom; /* with a snippet: "user=STORAGE:snippets/NAME" */
	const char *snippet_path, *snippet;
	size_t snippet_len;
	bool snippet_exists;
	const char *sshkeys, *ipconfig, *nameserver;
	const json_t *ha; /* the VM's entry of GET /cluster/ha/resources, or NULL */
	bool allow_disk_removal; /* --allow-disk-removal (hw_plan_disk_removal) */
	bool ha_managed;	 /* dst is an HA resource (its status' ha.managed) */
};

struct deploy_plan_info {
	bool seed_changed; /* a running VM needs a reboot to see it */
	bool hw_changed;
};

/* Appends the VM's actions to *p: clone (new VM; with a migration when deploy_clone_path
 * says so), seed upload or snippet, one config POST with every differing option, deleting a
 * replaced seed, growing the disk, start. An existing VM that already matches gets no action
 * (notes only). The note naming a new VM's clone path is the caller's to add
 * (deploy_clone_path_note), beside its placement. */
int deploy_plan_vm(const struct deploy_vm_input *in, struct plan *p,
		   struct deploy_plan_info *ret_info, struct phx_err *err);
/* The privileges the plan needs, per ACL path, into needs (up to max); returns how many
 * paths. `vnets` (GET /cluster/sdn/vnets, pf_sdn_vnets; may be NULL) gives each NIC's SDN
 * path (pf_vnet_acl_path: every netN the plan sets or a clone copies, bridge and VLAN tag),
 * `agent_priv` is the one the guest agent calls need on this Proxmox version. */
size_t deploy_plan_needs(const struct plan *p, const struct deploy_vm_input *in,
			 const json_t *vnets, const char *agent_priv, struct pf_need *needs,
			 size_t max);

/* ---- the clone path of a new VM ---- */

enum deploy_clone_path {
	DEPLOY_CLONE_OWN_NODE, /* the template is on the VM's node: a clone there */
	DEPLOY_CLONE_TARGET,   /* on another node, disks on shared storage: clone with target */
	/* on another node, disks on node-local storage: a full clone beside the template, then
	 * an offline migration with its disks */
	DEPLOY_CLONE_MIGRATE,
	/* offline: on another node, TARGET or MIGRATE (only the server's storages tell) */
	DEPLOY_CLONE_CROSS_NODE,
	DEPLOY_CLONE_PLACED,  /* offline: node "auto", the node is chosen at run time */
	DEPLOY_CLONE_UNKNOWN, /* offline: the config does not say where the template is */
};

/* "own-node", "target", "migrate", "cross-node", "placed", "unknown" (--check's JSON). */
const char *deploy_clone_path_name(enum deploy_clone_path path);
/* The path a new clone takes (in->src on in->node, in->src_shared): OWN_NODE, TARGET or
 * MIGRATE. deploy_plan_vm plans by it. */
enum deploy_clone_path deploy_clone_path(const struct deploy_vm_input *in);
/* What the plan says of it, "clone path: ..." (naming the nodes, the template and, for a
 * migration, why), into ret. */
void deploy_clone_path_note(const struct deploy_vm_input *in, char *ret, size_t len);
/* As far as the config alone tells (--check contacts no server): PLACED for node "auto";
 * OWN_NODE when the template's node (`node`, one of `nodes`, every node with "all", else the
 * default node) is the VM's; CROSS_NODE when it is another; UNKNOWN when the config does not
 * say (a template that is not in the config, one VMID of a template on several nodes, a
 * node left to the server). *ret_node (borrowed from cfg) gets the VM's node for OWN_NODE:
 * NULL when none is named (the cluster's only node). */
enum deploy_clone_path deploy_clone_path_offline(const struct cfg *cfg, const struct cfg_vm *vm,
						 const char **ret_node);

/* Adds priv on path to needs (n used of max; a path gets one entry). */
void deploy_need(struct pf_need *needs, size_t max, size_t *n, const char *path,
		 const char *priv);

/* ---- containers (deploy_ct.c) ---- */

/* How a new container is made. */
enum deploy_ct_path {
	DEPLOY_CT_LINKED, /* linked clone of the container template */
	DEPLOY_CT_FULL,	  /* full clone (full_clone, or a storage without linked clones) */
	DEPLOY_CT_CREATE, /* created from the template's archive: root's password or SSH keys
			   * are only accepted at creation (pve-container create_vm) */
};

/* What one container's plan is made from; all borrowed. */
struct deploy_ct_input {
	const struct cfg_ct *ct;
	const char *node;      /* where it is, or where it will be (the template's node) */
	const json_t *conf;    /* the existing container's config, or NULL: a new one */
	bool running;	       /* the existing one runs */
	int src_vmid;	       /* new: the container template */
	const json_t *src_conf; /* new: its config */
	const char *src_storage_type; /* new: the type of the storage of its rootfs */
	const char *archive;	      /* new: the template's archive volume ("archive:" line of
				       * its record), or NULL when it has none */
};

/* The path a new container takes, and why in `why` (a plan note). Linked clones need a
 * storage whose volumes can be cloned as raw or subvol (pve-container clone_vm asks
 * volume_has_feature('clone') with valid_target_formats raw, subvol): lvmthin, zfspool,
 * rbd; file storages make qcow2 overlays, which containers cannot use. */
enum deploy_ct_path deploy_ct_path(const struct deploy_ct_input *in, char *why, size_t len);

/* The netN value of NIC `n` built on `cur` (the current value, or NULL): name=eth<idx>, the
 * config's bridge, ip/gw, ip6/gw6, tag, mtu, rate, firewall and hwaddr (macaddr; else the
 * current one, else none and Proxmox picks one), the other options of cur kept. Caller
 * frees *ret. */
int deploy_ct_net_value(const struct cfg_ct_nic *n, size_t idx, const char *cur, char **ret,
			struct phx_err *err);
/* True when two netN values hold the same options in any order. */
bool deploy_ct_net_same(const char *a, const char *b);

/* The plan of one container: a new one cloned (then configured with one PUT, its rootfs
 * grown) or created from the archive, then started; an existing one of ours converged
 * (changed options in one PUT, rootfs only grown, started when stopped). On a running
 * container the options pve-container cannot hot-plug stay pending: *ret_pending (may be
 * NULL) gets them, comma-separated, or "" (caller frees). */
int deploy_plan_ct(const struct deploy_ct_input *in, struct plan *p, char **ret_pending,
		   struct phx_err *err);
/* The privileges a container's plan needs, as pve-container checks them (API2/LXC.pm
 * create_vm, clone_vm, check_ct_modify_config_perm; API2/LXC/Status.pm; resize_vm), into
 * needs (max); returns how many. bridge_acl: pf_bridge_acl_path() of the NICs' bridge. */
size_t deploy_ct_needs(const struct plan *p, const struct deploy_ct_input *in,
		       const char *bridge_acl, struct pf_need *needs, size_t max);

#endif
