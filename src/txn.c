/* txn: reverse-order undo list, shaped like git's ref transactions. */
#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct txn_entry {
	char *what;
	const struct txn_action *action;
	void *arg;
	struct txn_entry *prev;
};

struct txn {
	void *ctx;
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
			log_info("rollback: removed %s", e->what);
			if (report)
				buf_printf(report, NULL, "removed %s\n", e->what);
		}
		txn_entry_free(e);
	}
	return failed;
}

void txn_commit(struct txn *t)
{
	if (!t)
		return;
	while (t->last) {
		struct txn_entry *e = t->last;

		t->last = e->prev;
		txn_entry_free(e);
	}
	t->count = 0;
}

void txn_free(struct txn *t)
{
	if (!t)
		return;
	txn_commit(t);
	free(t);
}
