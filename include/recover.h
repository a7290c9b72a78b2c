/* recover: finishes what dead runs left half-made. Every journal (journal.h) in the journal
 * directory belongs to a run that died (the caller holds the run lock); its pending undos are
 * run newest first, each with the checks of undo.h (a VM is removed only while it still has
 * the name and tag that run gave it), and a journal is deleted once nothing in it is pending.
 * An undo that fails stays pending for the next run.
 *
 * Also the run's private temp directory: dead runs' leftovers (seed ISOs holding password
 * hashes and keys) are removed at start. */
#ifndef PHX_RECOVER_H
#define PHX_RECOVER_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"
#include "pve.h"

/* Runs (or with `dry_run` only lists) the pending undos of every journal in `dir`. Appends
 * one {"what","journal","result"} to `report` per undo; result is "cleaned up" (removed, or
 * already gone), "would remove", "left alone: why" (not that run's any more) or "failed:
 * why". *ret_failed gets the number that failed. -1 only when `dir` cannot be read. */
int rcv_run(struct pve_client *c, const char *dir, long timeout_s, bool dry_run, json_t *report,
	    size_t *ret_failed, struct phx_err *err);

/* Grace before a leftover of ours with no journal is swept: far longer than any build. */
#define RCV_SWEEP_GRACE_S (24L * 3600)

/* Sweeps what no journal covers (a host that died and never ran again, a journal lost with
 * its cache): on each node, import volumes named `phoenix-*` on `import_storage`, and seed
 * ISOs (`phoenix-ci-<vmid>-*`, `phoenix-validate-<vmid>-*`) on `iso_storage` whose VM is not
 * in `vms`, when older than `grace_s`. A volume on a shared storage is seen once. Appends
 * {"what","result"} to `report`; *ret_failed counts failed removals. */
int rcv_sweep(struct pve_client *c, const char *const *nodes, size_t n_nodes,
	      const char *import_storage, const char *iso_storage, const struct pve_vm_list *vms,
	      long grace_s, long timeout_s, json_t *report, size_t *ret_failed,
	      struct phx_err *err);

/* Removes everything under `dir` (dead runs' temp dirs), then creates `dir`/run-<pid> (0700)
 * for this run. Caller owns *ret_path (free()). */
int rcv_private_tmp(const char *dir, char **ret_path, struct phx_err *err);

/* Removes this run's temp dir and what is in it. */
void rcv_private_tmp_remove(const char *path);

#endif
