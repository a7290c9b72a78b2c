/* txn: undo order, reporting, commit. */
#include <criterion/criterion.h>
#include <string.h>

#include "txn.h"

struct undo_log {
	char order[16];
	size_t n;
	int fail_on; /* which id's undo fails, -1 none */
};

static int record_undo(void *ctx, void *arg, struct phx_err *err)
{
	struct undo_log *log = ctx;
	int id = *(int *)arg;

	log->order[log->n++] = (char)('0' + id);
	if (id == log->fail_on)
		return phx_err_set(err, PHX_E_API, "HTTP 500 vm %d is locked", id);
	return 0;
}

static void free_int(void *arg)
{
	free(arg);
}

static const struct txn_action int_action = {record_undo, free_int, NULL};

static int *new_int(int v)
{
	int *p = malloc(sizeof(*p));

	cr_assert(p);
	*p = v;
	return p;
}

TestSuite(txn);

Test(txn, rollback_runs_undos_in_reverse_and_reports_each)
{
	struct undo_log log = {.fail_on = 2};
	struct txn *t = txn_new(&log);
	struct buf report = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(txn_add_undo(t, "VM 1", &int_action, new_int(1), &err), 0);
	cr_assert_eq(txn_add_undo(t, "VM 2", &int_action, new_int(2), &err), 0);
	cr_assert_eq(txn_add_undo(t, "volume 3", &int_action, new_int(3), &err), 0);
	cr_assert_eq(txn_count(t), 3);
	cr_assert_eq(txn_rollback(t, &report), 1);
	cr_assert_str_eq(log.order, "321");
	cr_assert_str_eq(buf_str(&report), "removed volume 3\ncould not remove VM 2: HTTP 500 vm 2 "
					   "is locked\nremoved VM 1\n");
	cr_assert_eq(txn_count(t), 0);
	buf_release(&report);
	txn_free(t);
}

Test(txn, commit_forgets_undos_without_running_them)
{
	struct undo_log log = {.fail_on = -1};
	struct txn *t = txn_new(&log);
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(txn_add_undo(t, "VM 1", &int_action, new_int(1), &err), 0);
	txn_commit(t);
	cr_assert_eq(txn_rollback(t, NULL), 0);
	cr_assert_eq(log.n, 0);
	txn_free(t);
}
