/* plan: what a command is about to change, as data. A command reads what it needs from
 * Proxmox (GETs only), a pure planner turns the config plus what was read into a plan (an
 * ordered list of actions, each with the change it makes as old -> new, the one request it
 * sends and its undo), `--dry-run` renders the plan (text or JSON) and a real run applies
 * exactly that plan (plan_apply), so what a dry run shows is what a real run sends.
 * Convergence is an empty plan.
 *
 * Building never fails midway: the add/set calls record an out-of-memory condition in the
 * plan and plan_check() reports it once, so a planner reads as a list of decisions (like
 * git's strbuf, whose callers check once at the end).
 *
 * Owns: the action list, its rendering and its application. Does not own: the decisions (the
 * planners of each command), the wire (pve.h), the undo procedures (undo.h). */
#ifndef PHX_PLAN_H
#define PHX_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct pve_client;
struct txn;

/* JSON document version of plan_json_document (docs/plan-json.md). */
#define PLAN_JSON_VERSION 1

enum plan_kind {
	PLAN_REQUEST,	  /* method + path + form params; a UPID answer is waited for */
	PLAN_UPLOAD,	  /* multipart POST: params as fields, then `file` named `filename` */
	PLAN_WRITE_FILE,  /* a local file (a cloud-init snippet on the node's storage) */
	PLAN_REMOVE_FILE, /* removes a local file */
};

/* What the action does, for the reader: '+' creates, '~' changes, '-' removes, '>' runs. */
enum plan_sym { PLAN_CREATE = '+', PLAN_CHANGE = '~', PLAN_DESTROY = '-', PLAN_RUN = '>' };

enum plan_param_flags {
	PLAN_SECRET = 1 << 0,  /* shown as "<redacted>" (cipassword) */
	PLAN_PENDING = 1 << 1, /* value is only known after an earlier local step; the value
				* says which ("<sha256 of the customized image>") */
};

enum plan_action_flags {
	PLAN_BEST_EFFORT = 1 << 0,  /* a failure is a warning; the plan goes on */
	PLAN_COMMIT_AFTER = 1 << 1, /* once done, earlier undos are dropped: the server now
				     * refers to what they would remove */
	PLAN_CLEANUP = 1 << 2,	    /* removes this run's own leftover (an import volume): done
				     * even after a stop signal; its undo, the same removal,
				     * stays in the journal until it is done */
};

enum plan_undo_kind { PLAN_UNDO_NONE, PLAN_UNDO_VM, PLAN_UNDO_VOLUME, PLAN_UNDO_FILE, PLAN_UNDO_CT };

struct plan_param {
	char *key, *value; /* owned */
	unsigned flags;	   /* enum plan_param_flags */
};

struct plan_change {
	char *key; /* owned */
	char *old; /* owned; NULL: the key is added */
	char *new; /* owned; NULL: the key is removed */
	bool secret;
};

struct plan_undo {
	enum plan_undo_kind kind;
	char *node;   /* owned; VM and volume undos */
	int vmid;     /* VM undo */
	char *name;   /* owned; VM undo: the name this run gives it (a VM by another name is
		       * not ours and is left alone) */
	char *tag;    /* owned; VM undo: a tag it must carry too, or NULL (a fresh clone has its
		       * template's tags until it is configured) */
	char *target; /* owned; the volume id or the file path */
};

struct plan_action {
	enum plan_kind kind;
	enum plan_sym sym;
	unsigned flags;	    /* enum plan_action_flags */
	char *object;	    /* owned; "VM 8001 'web-1'" */
	char *summary;	    /* owned; "clone template 9000 'debian-12' (linked)" */
	const char *method; /* static; "POST", "PUT", "DELETE"; NULL for local files */
	char *path;	    /* owned; API path, or the local file of PLAN_*_FILE */
	struct plan_param *params;
	size_t n_params;
	char *file;	/* owned; PLAN_UPLOAD: the local file sent */
	char *filename; /* owned; PLAN_UPLOAD: the name it gets on the storage */
	char *data;	/* owned; PLAN_WRITE_FILE content */
	size_t data_len;
	struct plan_change *changes;
	size_t n_changes;
	char *condition; /* owned; NULL, or when a dry run cannot know yet whether it is sent */
	struct plan_undo undo;
};

struct plan_note {
	char *object, *text; /* owned */
};

struct plan {
	struct plan_action **actions; /* owned */
	size_t n;
	struct plan_note *notes; /* owned; decisions that change nothing ("kept ...: why") */
	size_t n_notes;
	bool oom;
};

#define PLAN_INIT                                                                                  \
	{                                                                                          \
		NULL, 0, NULL, 0, false                                                            \
	}

void plan_release(struct plan *p);
/* -1 with PHX_E_NOMEM when any add/set call ran out of memory. */
int plan_check(const struct plan *p, struct phx_err *err);
/* True when the plan changes nothing (notes do not count). */
bool plan_empty(const struct plan *p);

/* Appends an action; the returned pointer is borrowed (valid until plan_release) and NULL
 * after an out-of-memory, which every setter below accepts. `path` is printf-formatted. */
struct plan_action *plan_add(struct plan *p, enum plan_kind kind, enum plan_sym sym,
			     const char *object, const char *method, const char *path_fmt, ...)
	__attribute__((format(printf, 6, 7)));
void plan_summary(struct plan *p, struct plan_action *a, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void plan_condition(struct plan *p, struct plan_action *a, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A request parameter; a NULL value is skipped (optional parameters). */
void plan_param(struct plan *p, struct plan_action *a, const char *key, const char *value,
		unsigned flags);
/* A change this action makes, old -> new (either may be NULL). */
void plan_change(struct plan *p, struct plan_action *a, const char *key, const char *old,
		 const char *new, bool secret);
/* Sets the parameter and records the change from `old` in one go (the usual config case). */
void plan_set(struct plan *p, struct plan_action *a, const char *key, const char *old,
	      const char *new, unsigned flags);
/* Removes `key` (whose value was `old`) with the request's `delete` list (qemu-server's
 * config API: keys comma-separated, in order), recorded as old -> nothing. */
void plan_delete(struct plan *p, struct plan_action *a, const char *key, const char *old);
void plan_upload_file(struct plan *p, struct plan_action *a, const char *file,
		      const char *filename);
void plan_file_data(struct plan *p, struct plan_action *a, const char *data, size_t len);
void plan_undo_vm(struct plan *p, struct plan_action *a, const char *node, int vmid,
		  const char *name, const char *tag);
/* The container `vmid` (its hostname `name`, tag `tag`), as plan_undo_vm for VMs. */
void plan_undo_ct(struct plan *p, struct plan_action *a, const char *node, int vmid,
		  const char *name, const char *tag);
void plan_undo_volume(struct plan *p, struct plan_action *a, const char *node, const char *volid);
void plan_undo_file(struct plan *p, struct plan_action *a, const char *path);
void plan_note(struct plan *p, const char *object, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Removes action `a` from the plan and frees it (a planner that found nothing to set). */
void plan_drop(struct plan *p, struct plan_action *a);
/* Percent-encodes a path segment as Proxmox's router expects (RFC 3986 unreserved kept, as
 * curl_easy_escape). Caller owns; NULL (and the plan marked out of memory) on failure. */
char *plan_escape(struct plan *p, const char *s);
/* Gives the PLAN_PENDING parameter `key` its value, known now (the apply loop of a command
 * whose later actions depend on what earlier ones made); -1 with PHX_E_NOMEM, or
 * PHX_E_INTERNAL when `a` has no such pending parameter. */
int plan_param_fill(struct plan_action *a, const char *key, const char *value,
		    struct phx_err *err);
/* Looks a parameter up; NULL when absent. Borrowed. */
const char *plan_param_get(const struct plan_action *a, const char *key);
/* Terraform-like text: one block per object, "  + summary", its changes as
 * "      ~ key: old -> new", the request as "      POST /path k=v ...". Appends to out. */
int plan_render_text(const struct plan *p, struct buf *out, struct phx_err *err);
/* Appends the actions and notes of `p` to the arrays of a document made by
 * plan_json_document(). */
int plan_json_append(const struct plan *p, json_t *doc, struct phx_err *err);
/* {"plan_version":1,"command":CMD,"actions":[],"notes":[],"changes":0}. Caller owns. */
json_t *plan_json_document(const char *command, struct phx_err *err);

/* ---- apply (plan_apply.c) ---- */

struct plan_apply_ctx {
	struct pve_client *pve; /* borrowed */
	struct txn *txn;	/* borrowed; undos are recorded here; may be NULL (no undo) */
	long timeout_s;		/* per task */
};

/* Sends the plan's actions in order. Each undo is recorded in the transaction before its
 * request, so a task that fails after creating something is cleaned too. A UPID answer is
 * waited for; a failure of a PLAN_BEST_EFFORT action is logged and skipped; any other
 * failure stops, wrapped with the action's summary. A pending parameter is a bug
 * (PHX_E_INTERNAL): the plan was not completed before applying it. */
int plan_apply(const struct plan *p, const struct plan_apply_ctx *ctx, struct phx_err *err);
/* Logs the plan's notes (decisions a real run should say, like a full clone instead of a
 * linked one); plan_apply does so first. */
void plan_log_notes(const struct plan *p);
int plan_apply_action(const struct plan_action *a, const struct plan_apply_ctx *ctx,
		      struct phx_err *err);

#endif
