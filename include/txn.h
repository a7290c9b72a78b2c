/* txn: the undo list of a command. Each server-side object a command creates is recorded with
 * the action that removes it; on failure txn_rollback runs the actions in reverse order. A
 * failed undo is logged as a warning and never replaces the root cause. */
#ifndef PHX_TXN_H
#define PHX_TXN_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "journal.h"

struct txn;

/* Undo action: returns 0 or -1 filling err. `arg` is the pointer given to txn_add_undo. */
struct txn_action {
	int (*undo)(void *ctx, void *arg, struct phx_err *err);
	void (*free_arg)(void *arg); /* may be NULL */
	/* The undo as a journal record (journal.h), for the next run to replay after this
	 * one died; NULL: the object does not outlive the process (caller owns the result). */
	json_t *(*record)(const void *arg);
};

/* ctx is borrowed and passed to every undo (e.g. the pve client). Caller owns the result;
 * free with txn_free(). NULL when out of memory. */
struct txn *txn_new(void *ctx);
/* Same, and every undo with a record is appended to `j` (borrowed; outlives the txn) before
 * the change it undoes, so a run killed halfway leaves its undo list on disk. */
struct txn *txn_new_journaled(void *ctx, struct journal *j);

/* Records an undo. Steals `arg` (freed with action->free_arg, also on failure). `what` is a
 * human description of the object, e.g. "VM 9000 on 'pve1'"; copied. Fails when the journal
 * cannot be written: the change must not be made then. */
int txn_add_undo(struct txn *t, const char *what, const struct txn_action *action, void *arg,
		 struct phx_err *err);

size_t txn_count(const struct txn *t);

/* Runs every undo in reverse order, then empties the list. Appends "removed X" / "could not
 * remove X: why" lines to `report` when non-NULL. Returns the number of failed undos. */
int txn_rollback(struct txn *t, struct buf *report);

/* Drops the newest undo without running it (its change was refused, so nothing was made);
 * the journal records it as settled. */
void txn_forget_last(struct txn *t);

/* Success: forget the undo list (the objects stay); the journal says so. */
void txn_commit(struct txn *t);

/* Frees; an undo list neither committed nor rolled back stays pending in the journal. */
void txn_free(struct txn *t);

#endif
