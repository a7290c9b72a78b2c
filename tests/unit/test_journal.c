/* journal: a run's undo journal, written by transactions and read back by the next run. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "journal.h"
#include "txn.h"

TestSuite(journal);

static const char *pending_seqs(json_t *pending, char *out, size_t n)
{
	size_t i, off = 0;
	json_t *u;

	out[0] = '\0';
	json_array_foreach(pending, i, u)
		off += (size_t)snprintf(out + off, n - off, "%s%lld", i ? "," : "",
					json_integer_value(json_object_get(u, "seq")));
	return out;
}

Test(journal, pending_skips_committed_and_undone_newest_first)
{
	const char text[] =
		"{\"seq\":1,\"txn\":1,\"what\":\"VM 100\",\"undo\":{\"kind\":\"vm\"}}\n"
		"{\"seq\":2,\"txn\":2,\"what\":\"VM 101\",\"undo\":{\"kind\":\"vm\"}}\n"
		"{\"seq\":3,\"txn\":2,\"what\":\"local:iso/a.iso\",\"undo\":{\"kind\":\"volume\"}}\n"
		"{\"txn\":1,\"end\":\"commit\"}\n"
		"{\"seq\":4,\"txn\":3,\"what\":\"VM 102\",\"undo\":{\"kind\":\"vm\"}}\n"
		"{\"undone\":3}\n"
		"{\"seq\":5,\"txn\":3,\"what\":\"torn";
	json_t *p = jrn_pending(text, strlen(text));
	char seqs[64];

	cr_assert_not_null(p);
	cr_assert_str_eq(pending_seqs(p, seqs, sizeof(seqs)), "4,2",
			 "txn 1 committed, seq 3 undone, the torn line never happened");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 1), "what")),
			 "VM 101");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(p, 0), "undo"), "kind")),
			 "vm");
	json_decref(p);
}

Test(journal, empty_or_garbage_text_has_nothing_pending)
{
	json_t *p = jrn_pending("", 0);

	cr_assert_eq(json_array_size(p), 0);
	json_decref(p);
	p = jrn_pending("not json\n[1,2]\n{\"seq\":\"x\",\"undo\":{}}\n", 38);
	cr_assert_eq(json_array_size(p), 0, "an undo without a numeric seq is not trusted");
	json_decref(p);
}

/* ---- through transactions ---- */

static int undone_count;

static int fake_undo(void *ctx, void *arg, struct phx_err *err)
{
	(void)ctx;
	if (!strcmp(arg, "fails"))
		return phx_err_set(err, PHX_E_API, "server said no");
	undone_count++;
	return 0;
}

static json_t *fake_record(const void *arg)
{
	return json_pack("{s:s, s:s}", "kind", "file", "path", (const char *)arg);
}

static const struct txn_action fake_action = {fake_undo, free, fake_record};

static char *journal_file(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *path = NULL;

	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "run-", 4))
			cr_assert(asprintf(&path, "%s/%s", dir, e->d_name) > 0);
	if (d)
		closedir(d);
	return path;
}

static json_t *read_pending(const char *path)
{
	struct buf b = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;
	json_t *p;

	cr_assert_eq(fs_read_file(path, &b, &err), 0, "%s", err.msg);
	p = jrn_pending(b.data, b.len);
	buf_release(&b);
	return p;
}

Test(journal, transactions_leave_only_unfinished_work_pending)
{
	char dir[] = "/tmp/phx-jrn-XXXXXX", jdir[64], seqs[64];
	struct phx_err err = PHX_ERR_INIT;
	struct journal *j = NULL;
	struct txn *done, *killed, *rolled;
	char *path;
	json_t *p;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(jdir, sizeof(jdir), "%s/journal", dir);
	cr_assert_eq(jrn_open(jdir, &j, &err), 0, "%s", err.msg);
	done = txn_new_journaled(NULL, j);
	killed = txn_new_journaled(NULL, j);
	rolled = txn_new_journaled(NULL, j);
	cr_assert_eq(txn_add_undo(done, "a", &fake_action, strdup("a"), &err), 0);
	cr_assert_eq(txn_add_undo(killed, "b", &fake_action, strdup("b"), &err), 0);
	cr_assert_eq(txn_add_undo(rolled, "c", &fake_action, strdup("c"), &err), 0);
	cr_assert_eq(txn_add_undo(rolled, "fails", &fake_action, strdup("fails"), &err), 0);
	cr_assert_eq(txn_add_undo(killed, "d", &fake_action, strdup("d"), &err), 0);
	txn_commit(done);
	undone_count = 0;
	cr_assert_eq(txn_rollback(rolled, NULL), 1);
	cr_assert_eq(undone_count, 1);

	path = journal_file(jdir);
	cr_assert_not_null(path);
	p = read_pending(path);
	/* seqs: a=1 b=2 c=3 fails=4 d=5; `killed` never ended, `fails` could not be undone */
	cr_assert_str_eq(pending_seqs(p, seqs, sizeof(seqs)), "5,4,2");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(p, 0), "undo"), "path")),
			 "d");
	json_decref(p);
	cr_assert(jrn_has_pending(j));
	txn_free(done);
	txn_free(killed);
	txn_free(rolled);
	jrn_close(j);
	cr_assert(fs_exists(path), "a journal with pending undos is kept for the next run");

	/* the next run finishes it through jrn_open_existing; the file is the caller's */
	cr_assert_eq(jrn_open_existing(path, &j, &err), 0, "%s", err.msg);
	cr_assert_eq(jrn_undone(j, 5, &err), 0);
	cr_assert_eq(jrn_undone(j, 4, &err), 0);
	cr_assert_eq(jrn_undone(j, 2, &err), 0);
	jrn_close(j);
	cr_assert(fs_exists(path));
	p = read_pending(path);
	cr_assert_eq(json_array_size(p), 0);
	json_decref(p);
	cr_assert_eq(fs_remove_tree(dir, &err), 0, "%s", err.msg);
	cr_assert(!fs_exists(dir));
	free(path);
}

Test(journal, a_clean_run_deletes_its_journal)
{
	char dir[] = "/tmp/phx-jrn-XXXXXX";
	struct phx_err err = PHX_ERR_INIT;
	struct journal *j = NULL;
	struct txn *t;
	char *path;

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(jrn_open(dir, &j, &err), 0, "%s", err.msg);
	t = txn_new_journaled(NULL, j);
	cr_assert_eq(txn_add_undo(t, "a", &fake_action, strdup("a"), &err), 0);
	txn_commit(t);
	txn_free(t);
	path = journal_file(dir);
	cr_assert_not_null(path);
	jrn_close(j);
	cr_assert(!fs_exists(path));
	free(path);
	rmdir(dir);
}

Test(journal, a_commit_settles_only_what_its_transaction_recorded_before_it)
{
	const char text[] =
		"{\"seq\":1,\"txn\":1,\"what\":\"VM 9000\",\"undo\":{\"kind\":\"vm\"}}\n"
		"{\"txn\":1,\"end\":\"commit\"}\n"
		"{\"seq\":2,\"txn\":1,\"what\":\"local:import/x\",\"undo\":{\"kind\":\"volume\"}}\n";
	json_t *p = jrn_pending(text, strlen(text));
	char seqs[64];

	cr_assert_str_eq(pending_seqs(p, seqs, sizeof(seqs)), "2",
			 "a cleanup recorded after the commit stays pending");
	json_decref(p);
}
