/* txn: reverse-order undo list, shaped like git's ref transactions. */
#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct txn_entry {
	char *what;
	const struct txn_action *action;
	void *arg;
	unsigned long seq; /* its journal line, 0 when not journaled */
	struct txn_entry *prev;
};

struct txn {
	void *ctx;
	struct journal *jrn; /* borrowed, may be NULL */
	unsigned long id;    /* the transaction's id in jrn */
	struct txn_entry *last;
	size_t count;
};

struct txn *txn_new(void *ctx)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (t)
		t->ctx = ctx;
	return t;
}

struct txn *txn_new_journaled(void *ctx, struct journal *j)
{
	struct txn *t = txn_new(ctx);

	if (t && j) {
		t->jrn = j;
		t->id = jrn_txn_begin(j);
	}
	return t;
}

int txn_add_undo(struct txn *t, const char *what, const struct txn_action *action, void *arg,
		 struct phx_err *err)
{
	struct txn_entry *e = calloc(1, sizeof(*e));

	if (e)
		e->what = strdup(what);
	if (!e || !e->what) {
		if (e)
			free(e);
		if (action->free_arg)
			action->free_arg(arg);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory recording undo for %s", what);
	}
	if (t->jrn && action->record) {
		json_t *rec = action->record(arg);
		int rc = rec ? jrn_add_undo(t->jrn, t->id, what, rec, &e->seq, err)
			     : phx_err_set(err, PHX_E_NOMEM, "out of memory");

		json_decref(rec);
		if (rc < 0) {
			free(e->what);
			free(e);
			if (action->free_arg)
				action->free_arg(arg);
			return phx_err_wrap(err, "record the undo of %s", what);
		}
	}
	e->action = action;
	e->arg = arg;
	e->prev = t->last;
	t->last = e;
	t->count++;
	return 0;
}

size_t txn_count(const struct txn *t)
{
	return t ? t->count : 0;
}

static void txn_entry_free(struct txn_entry *e)
{
	if (e->action->free_arg)
		e->action->free_arg(e->arg);
	free(e->what);
	free(e);
}

int txn_rollback(struct txn *t, struct buf *report)
{
	int failed = 0;

	if (!t)
		return 0;
	while (t->last) {
		struct txn_entry *e = t->last;
		struct phx_err uerr = PHX_ERR_INIT;

		t->last = e->prev;
		t->count--;
		if (e->action->undo(t->ctx, e->arg, &uerr) < 0) {
			failed++;
			log_warn("rollback: could not remove %s: %s", e->what, uerr.msg);
			if (report)
				buf_printf(report, NULL, "could not remove %s: %s\n", e->what,
					   uerr.msg);
		} else {
			struct phx_err jerr = PHX_ERR_INIT;

			if (e->seq && jrn_undone(t->jrn, e->seq, &jerr) < 0)
				log_warn("%s", jerr.msg);
			log_info("rollback: removed %s", e->what);
			if (report)
				buf_printf(report, NULL, "removed %s\n", e->what);
		}
		txn_entry_free(e);
	}
	return failed;
}

void txn_forget_last(struct txn *t)
{
	struct txn_entry *e = t ? t->last : NULL;
	struct phx_err err = PHX_ERR_INIT;

	if (!e)
		return;
	if (e->seq && jrn_undone(t->jrn, e->seq, &err) < 0)
		log_warn("%s", err.msg);
	t->last = e->prev;
	t->count--;
	txn_entry_free(e);
}

static void txn_forget(struct txn *t)
{
	while (t->last) {
		struct txn_entry *e = t->last;

		t->last = e->prev;
		txn_entry_free(e);
	}
	t->count = 0;
}

void txn_commit(struct txn *t)
{
	bool journaled = false;

	if (!t)
		return;
	for (struct txn_entry *e = t->last; e && !journaled; e = e->prev)
		journaled = e->seq != 0;
	if (journaled) {
		struct phx_err err = PHX_ERR_INIT;

		/* a missing commit line makes the next run undo finished work: say so loudly */
		if (jrn_commit(t->jrn, t->id, &err) < 0)
			log_warn("%s: the next run will take this run's work for half-made", err.msg);
	}
	txn_forget(t);
}

void txn_free(struct txn *t)
{
	if (!t)
		return;
	txn_forget(t);
	free(t);
}
