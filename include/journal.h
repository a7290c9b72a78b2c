/* journal: the run's intent log beside the image cache, so work a killed run left half-made
 * is undone by the next run. Before each server change a transaction (txn.h) appends the undo
 * that removes it; a commit or a successful undo appends its end. A journal whose run ended
 * with nothing left to undo is deleted; one left behind by a SIGKILL, a power cut or an undo
 * that failed names exactly what is still to remove (jrn_pending).
 *
 * One file per run, `<dir>/run-<pid>-<unix time>.jsonl`, one JSON object a line, written with
 * O_APPEND and fdatasync so a line that made it to disk is whole (a torn last line is
 * ignored: its change was not sent yet):
 *   {"seq":1,"txn":1,"what":"VM 9000 on node 'pve1'","undo":{...}}   before the change
 *   {"txn":1,"end":"commit"}                                          the work stands
 *   {"undone":1}                                                       its undo ran
 * The run lock (session.h) makes a journal found at start the work of a dead run. */
#ifndef PHX_JOURNAL_H
#define PHX_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct journal;

/* Creates `dir` (0700) and this run's journal file in it. Caller owns; jrn_close(). */
int jrn_open(const char *dir, struct journal **ret, struct phx_err *err);

/* Opens an existing journal (a dead run's) to record its undos done; jrn_close() leaves the
 * file (the caller deletes it once nothing is pending). Caller owns. */
int jrn_open_existing(const char *path, struct journal **ret, struct phx_err *err);

/* A new transaction id (thread-safe). */
unsigned long jrn_txn_begin(struct journal *j);

/* Appends an undo of transaction `txn` and syncs it; *ret_seq gets its number. `undo` is
 * borrowed. The change it undoes must not be sent when this fails. */
int jrn_add_undo(struct journal *j, unsigned long txn, const char *what, const json_t *undo,
		 unsigned long *ret_seq, struct phx_err *err);
/* The transaction's work stands: its undos are no longer pending. */
int jrn_commit(struct journal *j, unsigned long txn, struct phx_err *err);
/* Undo `seq` ran. */
int jrn_undone(struct journal *j, unsigned long seq, struct phx_err *err);

/* Whether an undo recorded in this journal is still pending. */
bool jrn_has_pending(const struct journal *j);

/* Closes; deletes this run's file when nothing is pending (a clean end). NULL is fine. */
void jrn_close(struct journal *j);

/* Pure: the undos still pending in a journal's text, newest first (the order to run them):
 * a JSON array of {"seq","what","undo"}. Unparsable lines are skipped (a torn last line).
 * Caller owns the result; NULL when out of memory. */
json_t *jrn_pending(const char *text, size_t len);

#endif
