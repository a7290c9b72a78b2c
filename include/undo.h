/* undo: the server procedures that remove what a run created, recorded in a transaction
 * (txn.h) before the request that creates the object, so a task that fails halfway is
 * cleaned too. Every undo first checks what is there: a failed clone or create task has
 * already removed its VM (qemu-server), a failed upload may never have written its file.
 * The transaction's context must be the run's pve client.
 *
 * Also the "remove if present" procedures that cleanup and --destroy share. */
#ifndef PHX_UNDO_H
#define PHX_UNDO_H

#include <stdbool.h>

#include "err.h"
#include "pve.h"
#include "txn.h"

/* Stops (if running) and destroys VM `vmid` (on the node it is on now), but only when it
 * still carries the name `name` (NULL: any) and the tag `tag` (NULL: any): if someone else
 * took the VMID while this run prepared its image, our create failed and the VM there is
 * theirs (PHX_E_CONFLICT). */
int undo_add_vm(struct txn *t, const char *node, int vmid, const char *name, const char *tag,
		long timeout_s, struct phx_err *err);
/* The same for container `vmid` (`name`: its hostname). */
int undo_add_ct(struct txn *t, const char *node, int vmid, const char *name, const char *tag,
		long timeout_s, struct phx_err *err);
/* Deletes the volume "STORAGE:CONTENT/NAME" when it is on the storage. */
int undo_add_volume(struct txn *t, const char *node, const char *volid, long timeout_s,
		    struct phx_err *err);
/* Removes a local file (a cloud-init snippet). */
int undo_add_file(struct txn *t, const char *path, struct phx_err *err);

/* Runs an undo from its journal record (journal.h), as the next run does for a dead one. */
int undo_run_record(struct pve_client *c, const json_t *rec, long timeout_s,
		    struct phx_err *err);

/* The procedures themselves, for cleanup outside a rollback. `tag` is the tag the VM must
 * carry (NULL: the name alone identifies it). */
int undo_vm_remove(struct pve_client *c, const char *node, int vmid, const char *name,
		   const char *tag, long timeout_s, struct phx_err *err);
/* Destroys container `vmid` when it exists and carries `name` (hostname) and `tag` (NULL:
 * any); waits out a create/clone lock as undo_vm_remove does; a running one is stopped
 * first. */
int undo_ct_remove(struct pve_client *c, const char *node, int vmid, const char *name,
		   const char *tag, long timeout_s, struct phx_err *err);
/* Deletes the volume if it is listed on its storage; *ret_removed (may be NULL) tells. */
int undo_volume_remove(struct pve_client *c, const char *node, const char *volid, long timeout_s,
		       bool *ret_removed, struct phx_err *err);

#endif
