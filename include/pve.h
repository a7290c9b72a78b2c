/* pve: the Proxmox VE REST client. Token authentication, path escaping, the {"data":...}
 * envelope, error mapping (HTTP status + reason phrase + `errors` object -> one message),
 * retries (GETs on connection errors and 5xx; other methods only on Proxmox lock timeouts),
 * task polling and the typed calls the commands need. A changing request is never sent twice
 * on a mere connection failure: when its answer is lost, the client reads the task list to
 * learn what became of it (pve_request_task_key). A read-only mode (--dry-run) refuses
 * changing requests. Uses http.h for the wire and jansson for JSON; does not
 * know about config files or the undo transaction (cmd_* wire those in).
 *
 * Conventions for every call below:
 * - `node` may be NULL: the client's default node (pve_client_opts.node) is used.
 * - Calls that start a Proxmox task wait for it (pve_task_wait) with `timeout_s`
 *   (0: PVE_TASK_TIMEOUT_DEFAULT) and fail with PHX_E_TASK when it ends in error.
 * - Errors: PHX_E_NET/PHX_E_TLS (transport), PHX_E_AUTH (401), PHX_E_PERM (403), PHX_E_API
 *   (other HTTP errors; err->http_status is set), PHX_E_TASK, PHX_E_TIMEOUT, PHX_E_NOTFOUND.
 *   The token secret never appears in any message. */
#ifndef PHX_PVE_H
#define PHX_PVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "http.h"
#include "secret.h"

#define PVE_TASK_TIMEOUT_DEFAULT 1800 /* 30 min: disk imports of big images are slow */

/* One request parameter (form or query encoded with curl's escaping). Array parameters go
 * through pve_request_json instead. A NULL value is skipped, so optional parameters can stay in a static table. Both strings
 * are borrowed for the duration of the call. */
struct pve_param {
	const char *key;
	const char *value;
};

struct pve_client_opts {
	const char *api_url;		 /* "https://host:8006", with or without "/api2/json" */
	const char *token_id;		 /* "USER@REALM!NAME" */
	const struct phx_secret *secret; /* borrowed; used only in pve_client_new */
	const char *node;		 /* default node for calls given node == NULL */
	struct http_tls tls;		 /* strings copied by the http client */
	long connect_timeout_s;		 /* 0: 10 s */
	long low_speed_time_s;		 /* 0: 60 s */
	long request_timeout_s;		 /* per HTTP request; 0: 300 s */
	int max_tries;			 /* GET / lock-timeout attempts; 0: 4 */
	unsigned retry_base_ms;		 /* first retry delay before jitter; 0: 250 ms */
	bool read_only;			 /* --dry-run: POST/PUT/DELETE are refused, unsent */
	/* how long to look for the task of a request whose answer was lost; 0: 5 s (a
	 * request cut off in flight may still be before its fork on the server) */
	long task_lookup_s;
};

struct pve_client;

/* Builds the client: copies api_url, token_id and node; builds "PVEAPIToken=ID=SECRET" in
 * memory (wiped on free). PHX_E_INPUT names a malformed URL, token id or fingerprint.
 * Caller owns; free with pve_client_free(). One client per thread. */
struct pve_client *pve_client_new(const struct pve_client_opts *opts, struct phx_err *err);
void pve_client_free(struct pve_client *c);
/* Borrowed; valid until pve_client_free(). */
const char *pve_client_node(const struct pve_client *c);
/* Borrowed; the token id (never the secret), for messages. */
const char *pve_client_token_id(const struct pve_client *c);

/* ---- raw requests ----
 * `path` is relative to /api2/json, starts with '/', and its parts must already be escaped
 * (pve_path() builds one). GET and DELETE put params in the query string, POST and PUT in an
 * application/x-www-form-urlencoded body. On success *ret_data (may be NULL to ignore) gets
 * the envelope's "data" member (caller owns: json_decref; JSON null when the server said so).
 * A read-only client refuses POST/PUT/DELETE with PHX_E_INTERNAL.
 * POST/PUT/DELETE go out once: when the connection fails after the request was sent, the
 * error (PHX_E_NET) says the outcome is unknown and the request is not repeated. */
int pve_request(struct pve_client *c, const char *method, const char *path,
		const struct pve_param *params, size_t n_params, json_t **ret_data,
		struct phx_err *err);
/* POST/PUT with an application/json body (borrowed), for array parameters such as agent/exec
 * `command` that a form body cannot express. Same contract as pve_request. */
int pve_request_json(struct pve_client *c, const char *method, const char *path,
		     const json_t *body, json_t **ret_data, struct phx_err *err);
int pve_get(struct pve_client *c, const char *path, const struct pve_param *params,
	    size_t n_params, json_t **ret_data, struct phx_err *err);
int pve_post(struct pve_client *c, const char *path, const struct pve_param *params,
	     size_t n_params, json_t **ret_data, struct phx_err *err);
/* Multipart POST to `path` (an upload endpoint): `fields` in order, then the file at
 * `file_path` as part "filename" with file name `filename`. Not retried (the body is
 * large), except on a lock timeout. */
int pve_upload_multipart(struct pve_client *c, const char *path,
			 const struct http_form_field *fields, size_t n_fields,
			 const char *filename, const char *file_path,
			 const struct http_progress *progress, json_t **ret_data,
			 struct phx_err *err);

/* Joins NULL-terminated parts into "/p1/p2/...", each part escaped with curl's escaping
 * (UPIDs, volume IDs). Caller owns; free with free(). */
char *pve_path(struct phx_err *err, const char *first, ...) __attribute__((sentinel));

/* ---- pure helpers (unit-tested with recorded responses) ---- */

/* Parses a response body; *ret_data as in pve_request. PHX_E_API when the body is not JSON
 * or has no "data" member (message names `what`, e.g. "GET /version"). */
int pve_envelope_parse(const char *body, size_t len, const char *what, json_t **ret_data,
		       struct phx_err *err);
/* Reads an integer that Proxmox may send as a JSON number or a numeric string ("100"). */
int pve_json_int(const json_t *v, const char *what, long long *ret, struct phx_err *err);
/* Always returns -1: maps an HTTP error answer to err (see the file comment for codes),
 * e.g. "POST /nodes/pve1/qemu: HTTP 400 Parameter verification failed: scsi0: invalid
 * format - ...". `body` may be NULL. Sets err->http_status. */
int pve_error_from_http(const char *method, const char *path, long status, const char *reason,
			const char *body, size_t body_len, struct phx_err *err);
/* True for Proxmox's flock timeout ("can't lock file '...' - got timeout"), which is safe to
 * retry even for POST. */
bool pve_is_lock_timeout(const char *text);
/* Copies the node name out of a UPID into ret (NUL-terminated). PHX_E_INPUT names the UPID
 * when it is malformed. */
int pve_upid_node(const char *upid, char *ret, size_t len, struct phx_err *err);

/* ---- tasks ---- */

enum pve_task_state { PVE_TASK_RUNNING, PVE_TASK_OK, PVE_TASK_WARNINGS, PVE_TASK_FAILED };

/* Interprets one task status object ("data" of .../tasks/{upid}/status). *ret_exitstatus is
 * borrowed from `status` (NULL while running). */
int pve_task_status_parse(const json_t *status, enum pve_task_state *ret_state,
			  const char **ret_exitstatus, struct phx_err *err);

/* Polls GET /nodes/{node from UPID}/tasks/{upid}/status until the task stops: first poll after
 * 50 ms, then every max(50 ms, 6% of the time waited so far) capped at 2 s, so the end of a
 * task is seen within ~6% of its duration (plus one round trip). OK and "WARNINGS: N" are success (N into
 * *ret_warnings, may be NULL). Failure: PHX_E_TASK "task UPID failed: <exitstatus>" plus the
 * last 10 lines of the task log; PHX_E_TIMEOUT after timeout_s (0: default). */
int pve_task_wait(struct pve_client *c, const char *upid, long timeout_s,
		  unsigned *ret_warnings, struct phx_err *err);

/* Waits until no task of `type` that this client's token started is active on the node
 * (whatever their outcome): a run killed while the server still worked for it (an upload's
 * imgcopy) has its undo wait for that work before judging what is left. PHX_E_TIMEOUT when
 * one runs longer than timeout_s (0: default). */
int pve_tasks_settle(struct pve_client *c, const char *node, const char *type, long timeout_s,
		     struct phx_err *err);

/* A request that starts a task (UPID answer; a JSON null answer is a synchronous success),
 * then waits for the task (pve_task_wait). Errors are wrapped with "METHOD PATH". The task is
 * identified from METHOD and path (and the `vmid`/`newid` params) for the endpoints Phoenix
 * calls: pve_request_task_key with key NULL. */
int pve_request_task(struct pve_client *c, const char *method, const char *path,
		     const struct pve_param *params, size_t n_params, long timeout_s,
		     struct phx_err *err);

/* What identifies the task a changing request starts: the type and id of its UPID (the
 * `fork_worker` call of the Proxmox endpoint). Strings borrowed for the call. */
struct pve_task_key {
	const char *type;     /* "qmclone", "qmcreate", "qmstart", "qmdestroy", "imgdel", ... */
	const char *id;	      /* the UPID's id, for VM tasks the VMID ("9000"; a clone's is
			       * the SOURCE VM's); NULL: any id */
	const char *log_mark; /* text this request's task writes to its log, for tasks whose
			       * id others share (clones of one template: "creating a clone of
			       * VM 9000 with ID 9001"); NULL: none */
};

/* pve_request_task with the task named by `key` (NULL: derived as pve_request_task does).
 * When the connection fails after the request went out (closed or timed out without an
 * answer), the request is NOT sent again; instead GET /nodes/{node of the path}/tasks
 * (source=all) is read, for up to task_lookup_s, for a task of key's type and id by this
 * client's token, started since the request was sent (server clock, learnt from the Date
 * headers), that this client did not already know and whose log contains key->log_mark.
 * Exactly one: it is waited for as if its UPID had been the answer. None, several, no key,
 * or the list unreadable: PHX_E_NET "METHOD PATH: <transport error>; the outcome is unknown:
 * <what was checked>; it was not sent again ...". */
int pve_request_task_key(struct pve_client *c, const char *method, const char *path,
			 const struct pve_param *params, size_t n_params,
			 const struct pve_task_key *key, long timeout_s, struct phx_err *err);

/* ---- typed calls ---- */

struct pve_version {
	int major, minor;
	char version[32]; /* "9.1.9" or "7.2-3" */
	char release[32];
};
int pve_version_get(struct pve_client *c, struct pve_version *ret, struct phx_err *err);
/* Parses "9.1.9", "7.2-3", "8.4" into major/minor. */
int pve_version_parse(const char *text, int *ret_major, int *ret_minor, struct phx_err *err);

/* GET /access/permissions?path=PATH, then checks that each of `privs` (n_privs) is granted
 * on `path`. PHX_E_PERM names ALL missing ones: "token 'ID' lacks Datastore.Allocate,
 * VM.Allocate on /vms" + the privilege separation hint. */
int pve_permissions_check(struct pve_client *c, const char *path, const char *const *privs,
			  size_t n_privs, struct phx_err *err);

struct pve_vm_info {
	int vmid;
	char *name; /* owned; "" when unnamed */
	char *node; /* owned */
	char *tags; /* owned; ';'-joined as Proxmox returns them, "" when none */
	char *status; /* owned */
	bool template;
	bool lxc; /* a container (pve_cluster_guests only) */
};
struct pve_vm_list {
	struct pve_vm_info *items; /* owned */
	size_t n;
};
void pve_vm_list_release(struct pve_vm_list *l);
/* GET /cluster/resources?type=vm (qemu entries only). Caller owns *ret (release it). */
int pve_cluster_vms(struct pve_client *c, struct pve_vm_list *ret, struct phx_err *err);
/* The same with the containers (lxc true): VMIDs are shared between VMs and containers
 * (pve-cluster check_vmid_unused), so a free VMID is one neither kind has. */
int pve_cluster_guests(struct pve_client *c, struct pve_vm_list *ret, struct phx_err *err);
/* Parses the "data" array of /cluster/resources (used by pve_cluster_vms). */
int pve_vm_list_parse(const json_t *data, struct pve_vm_list *ret, struct phx_err *err);

/* GET /cluster/nextid (the answer is a string on real servers). Reserves nothing. */
int pve_nextid(struct pve_client *c, int *ret_vmid, struct phx_err *err);
/* Looks the VM up in /cluster/resources. *ret_node (may be NULL) gets its node (caller owns;
 * free()), left untouched when the VM does not exist. */
int pve_vm_exists(struct pve_client *c, int vmid, bool *ret_exists, char **ret_node,
		  struct phx_err *err);

/* The calls VMs and containers share, for `kind` "qemu" or "lxc" (/nodes/{node}/<kind>/...):
 * the path (caller frees), a request that starts task `ttype` with the VMID as its id, the
 * config, and the create (`ttype` qmcreate or vzcreate, with the params' vmid as its id). */
char *pve_guest_path(struct pve_client *c, const char *node, const char *kind, int vmid,
		     const char *s1, const char *s2, struct phx_err *err);
int pve_guest_async(struct pve_client *c, const char *method, const char *node, const char *kind,
		    int vmid, const char *s1, const char *s2, const struct pve_param *params,
		    size_t n, const char *ttype, long timeout_s, struct phx_err *err);
int pve_guest_config_get(struct pve_client *c, const char *node, const char *kind, int vmid,
			 json_t **ret_config, struct phx_err *err);
int pve_guest_create(struct pve_client *c, const char *node, const char *kind, const char *ttype,
		     const struct pve_param *params, size_t n_params, long timeout_s,
		     struct phx_err *err);

/* GET .../qemu/{vmid}/config. Caller owns *ret_config (json_decref). */
int pve_vm_config_get(struct pve_client *c, const char *node, int vmid, json_t **ret_config,
		      struct phx_err *err);
/* POST .../config (async, task qmconfig) and wait. */
int pve_vm_config_set(struct pve_client *c, const char *node, int vmid,
		      const struct pve_param *params, size_t n_params, long timeout_s,
		      struct phx_err *err);
/* POST /nodes/{node}/qemu; params must include vmid. Waits for qmcreate. */
int pve_vm_create(struct pve_client *c, const char *node, const struct pve_param *params,
		  size_t n_params, long timeout_s, struct phx_err *err);
/* POST .../{vmid}/clone with newid and extra params (name, full, storage, ...). */
int pve_vm_clone(struct pve_client *c, const char *node, int vmid, int newid,
		 const struct pve_param *params, size_t n_params, long timeout_s,
		 struct phx_err *err);
int pve_vm_template(struct pve_client *c, const char *node, int vmid, long timeout_s,
		    struct phx_err *err);
/* PUT .../resize disk=DISK size=SIZE ("+8G" grows, "20G" absolute). */
int pve_vm_resize(struct pve_client *c, const char *node, int vmid, const char *disk,
		  const char *size, long timeout_s, struct phx_err *err);
int pve_vm_start(struct pve_client *c, const char *node, int vmid, long timeout_s,
		 struct phx_err *err);
int pve_vm_stop(struct pve_client *c, const char *node, int vmid, long timeout_s,
		struct phx_err *err);
/* Clean shutdown; force_stop stops the VM when the guest does not power off in time. */
int pve_vm_shutdown(struct pve_client *c, const char *node, int vmid, bool force_stop,
		    long timeout_s, struct phx_err *err);

enum pve_destroy_flags {
	PVE_DESTROY_PURGE = 1 << 0,		    /* purge=1: also from HA/replication/ACLs */
	PVE_DESTROY_UNREFERENCED_DISKS = 1 << 1, /* destroy-unreferenced-disks=1 */
};
int pve_vm_destroy(struct pve_client *c, const char *node, int vmid, unsigned flags,
		   long timeout_s, struct phx_err *err);

struct pve_vm_status {
	char status[16];    /* "running" / "stopped" */
	char qmpstatus[16]; /* "" when absent */
	char name[128];
	char lock[32];	    /* "" when not locked */
	bool agent;	    /* agent configured (not: reachable) */
	bool template;
	long long uptime;
	bool ha_managed; /* an HA resource (qemu-server vm_status: HA Config.pm get_service_status) */
};
int pve_vm_status_get(struct pve_client *c, const char *node, int vmid,
		      struct pve_vm_status *ret, struct phx_err *err);
int pve_vm_status_parse(const json_t *data, struct pve_vm_status *ret, struct phx_err *err);

/* POST .../agent/ping: 0 when the guest agent answers. */
int pve_agent_ping(struct pve_client *c, const char *node, int vmid, struct phx_err *err);

struct pve_iface {
	char *name;   /* owned */
	char *mac;    /* owned; "" when absent */
	char **ipv4;  /* owned array of owned strings "10.0.0.5/24" */
	size_t n_ipv4;
};
struct pve_iface_list {
	struct pve_iface *items; /* owned */
	size_t n;
};
void pve_iface_list_release(struct pve_iface_list *l);
/* GET .../agent/network-get-interfaces. A QGA-level error ({"result":{"error":...}}, HTTP
 * 200) gives PHX_E_API "guest agent: <class>: <desc>". */
int pve_agent_network(struct pve_client *c, const char *node, int vmid,
		      struct pve_iface_list *ret, struct phx_err *err);
int pve_iface_list_parse(const json_t *data, struct pve_iface_list *ret, struct phx_err *err);

/* POST .../agent/exec with argv (NULL-terminated; sent as a JSON array) and optional
 * stdin; *ret_pid gets the guest pid for pve_agent_exec_status. */
int pve_agent_exec(struct pve_client *c, const char *node, int vmid, const char *const *argv,
		   const char *input_data, long long *ret_pid, struct phx_err *err);
struct pve_exec_status {
	bool exited;
	int exitcode;	 /* valid when exited and !signalled */
	bool signalled;
	int signal;
	char *out_data;	 /* owned; NULL when absent */
	char *err_data;	 /* owned; NULL when absent */
};
void pve_exec_status_release(struct pve_exec_status *s);
int pve_agent_exec_status(struct pve_client *c, const char *node, int vmid, long long pid,
			  struct pve_exec_status *ret, struct phx_err *err);

struct pve_storage_info {
	char *storage; /* owned */
	char *type;    /* owned */
	char *content; /* owned; "iso,vztmpl,import,..." */
	uint64_t avail, total;
	bool active, enabled, shared;
};
struct pve_storage_list {
	struct pve_storage_info *items; /* owned */
	size_t n;
};
void pve_storage_list_release(struct pve_storage_list *l);
/* GET /nodes/{node}/storage. */
int pve_storage_list(struct pve_client *c, const char *node, struct pve_storage_list *ret,
		     struct phx_err *err);

struct pve_volume {
	char *volid;   /* owned; "local:import/noble.qcow2" */
	char *content; /* owned */
	char *format;  /* owned; "" when absent */
	uint64_t size;
	int vmid;      /* 0 when not owned by a VM */
	long long ctime; /* creation time (unix), 0 when not given */
};
struct pve_volume_list {
	struct pve_volume *items; /* owned */
	size_t n;
};
void pve_volume_list_release(struct pve_volume_list *l);
/* GET /nodes/{node}/storage/{storage}/content[?content=CONTENT] (content may be NULL). */
int pve_storage_content(struct pve_client *c, const char *node, const char *storage,
			const char *content, struct pve_volume_list *ret, struct phx_err *err);
/* DELETE /nodes/{node}/storage/{storage from volid}/content/{volid}, waiting for the task. */
int pve_storage_content_delete(struct pve_client *c, const char *node, const char *volid,
			       long timeout_s, struct phx_err *err);

/* Multipart POST .../storage/{storage}/upload: fields content, checksum-algorithm, checksum
 * (in that order; the last two skipped when checksum_algo is NULL), then the file at `path`
 * as part `filename` named `filename`. Waits for the imgcopy task (which verifies the
 * checksum). *ret_volid (may be NULL) gets "storage:content/filename" (caller owns; free()). */
int pve_storage_upload(struct pve_client *c, const char *node, const char *storage,
		       const char *content, const char *path, const char *filename,
		       const char *checksum_algo, const char *checksum,
		       const struct http_progress *progress, long timeout_s, char **ret_volid,
		       struct phx_err *err);

#endif
