/* journal: the run's intent log (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

struct jrn_entry {
	unsigned long seq, txn;
	bool pending;
};

struct journal {
	pthread_mutex_t mu;
	int fd;
	bool own; /* this run's: deleted at a clean close */
	char *path;
	unsigned long next_txn, next_seq;
	struct jrn_entry *entries; /* this run's undos */
	size_t n, cap;
};

static int jrn_new(const char *path, int fd, struct journal **ret, struct phx_err *err)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (!j || !(j->path = strdup(path))) {
		free(j);
		close(fd);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	pthread_mutex_init(&j->mu, NULL);
	j->fd = fd;
	j->next_txn = j->next_seq = 1;
	*ret = j;
	return 0;
}

int jrn_open(const char *dir, struct journal **ret, struct phx_err *err)
{
	char path[4096];
	int fd;

	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/run-%ld-%lld.jsonl", dir, (long)getpid(),
		 (long long)time(NULL));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "create the journal '%s'", path);
	if (jrn_new(path, fd, ret, err) < 0)
		return -1;
	(*ret)->own = true;
	return 0;
}

int jrn_open_existing(const char *path, struct journal **ret, struct phx_err *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open the journal '%s'", path);
	return jrn_new(path, fd, ret, err);
}

unsigned long jrn_txn_begin(struct journal *j)
{
	unsigned long id;

	pthread_mutex_lock(&j->mu);
	id = j->next_txn++;
	pthread_mutex_unlock(&j->mu);
	return id;
}

/* Caller holds j->mu. One write of a whole line, then fdatasync: what the next run reads is
 * either the whole line or a torn one it skips. */
static int jrn_write(struct journal *j, json_t *line, struct phx_err *err)
{
	char *text = json_dumps(line, JSON_COMPACT);
	size_t len, off = 0;
	int rc = 0;

	json_decref(line);
	if (!text)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	len = strlen(text);
	text[len++] = '\n'; /* replaces the terminator; len counts the newline */
	while (off < len) {
		ssize_t w = write(j->fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = phx_err_set_errno(err, PHX_E_IO, errno, "write the journal '%s'",
					       j->path);
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fdatasync(j->fd) < 0)
		rc = phx_err_set_errno(err, PHX_E_IO, errno, "sync the journal '%s'", j->path);
	free(text);
	return rc;
}

int jrn_add_undo(struct journal *j, unsigned long txn, const char *what, const json_t *undo,
		 unsigned long *ret_seq, struct phx_err *err)
{
	json_t *line;
	int rc = -1;

	pthread_mutex_lock(&j->mu);
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 16;
		struct jrn_entry *e = realloc(j->entries, cap * sizeof(*e));

		if (!e) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		j->entries = e;
		j->cap = cap;
	}
	line = json_pack("{s:I, s:I, s:s, s:O}", "seq", (json_int_t)j->next_seq, "txn",
			 (json_int_t)txn, "what", what, "undo", undo);
	if (!line) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (jrn_write(j, line, err) < 0)
		goto out;
	j->entries[j->n++] = (struct jrn_entry){j->next_seq, txn, true};
	*ret_seq = j->next_seq++;
	rc = 0;
out:
	pthread_mutex_unlock(&j->mu);
	return rc;
}

/* Writes `line` (stolen), then marks settled the entries of transaction `txn` (0: any) or
 * the one numbered `seq` (0: any). */
static int jrn_settle(struct journal *j, json_t *line, unsigned long txn, unsigned long seq,
		      struct phx_err *err)
{
	int rc;

	if (!line)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	pthread_mutex_lock(&j->mu);
	rc = jrn_write(j, line, err);
	for (size_t i = 0; rc == 0 && i < j->n; i++)
		if ((!txn || j->entries[i].txn == txn) && (!seq || j->entries[i].seq == seq))
			j->entries[i].pending = false;
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int jrn_commit(struct journal *j, unsigned long txn, struct phx_err *err)
{
	return jrn_settle(j, json_pack("{s:I, s:s}", "txn", (json_int_t)txn, "end", "commit"), txn,
			  0, err);
}

int jrn_undone(struct journal *j, unsigned long seq, struct phx_err *err)
{
	return jrn_settle(j, json_pack("{s:I}", "undone", (json_int_t)seq), 0, seq, err);
}

bool jrn_has_pending(const struct journal *j)
{
	bool any = false;

	for (size_t i = 0; j && i < j->n && !any; i++)
		any = j->entries[i].pending;
	return any;
}

void jrn_close(struct journal *j)
{
	if (!j)
		return;
	close(j->fd);
	if (j->own && !jrn_has_pending(j))
		unlink(j->path);
	pthread_mutex_destroy(&j->mu);
	free(j->entries);
	free(j->path);
	free(j);
}

/* ---- reading a journal ---- */

/* Drops from `undos` those of transaction `txn` (recorded before its commit line). */
static void jrn_settle_txn(json_t *undos, json_int_t txn)
{
	for (size_t i = json_array_size(undos); i-- > 0;)
		if (json_integer_value(json_object_get(json_array_get(undos, i), "txn")) == txn)
			json_array_remove(undos, i);
}

static void jrn_settle_seq(json_t *undos, json_int_t seq)
{
	for (size_t i = json_array_size(undos); i-- > 0;)
		if (json_integer_value(json_object_get(json_array_get(undos, i), "seq")) == seq)
			json_array_remove(undos, i);
}

json_t *jrn_pending(const char *text, size_t len)
{
	json_t *undos = json_array(), *ret = json_array();
	const char *p = text, *end = text + len;
	size_t i;
	json_t *u;

	if (!undos || !ret)
		goto oom;
	/* in order: a commit settles the undos its transaction recorded before it, not the
	 * ones after (a cleanup recorded once the work stood) */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *line = json_loadb(p, n, 0, NULL);

		p += n + 1;
		if (json_is_object(line) && json_is_object(json_object_get(line, "undo")) &&
		    json_is_integer(json_object_get(line, "seq"))) {
			if (json_array_append(undos, line) < 0) {
				json_decref(line);
				goto oom;
			}
		} else if (json_is_object(line) && json_is_string(json_object_get(line, "end"))) {
			jrn_settle_txn(undos, json_integer_value(json_object_get(line, "txn")));
		} else if (json_is_object(line) &&
			   json_is_integer(json_object_get(line, "undone"))) {
			jrn_settle_seq(undos, json_integer_value(json_object_get(line, "undone")));
		}
		json_decref(line);
	}
	for (i = json_array_size(undos); i-- > 0;) {
		u = json_array_get(undos, i);
		if (json_array_append_new(ret, json_pack("{s:O, s:O?, s:O}", "seq",
							 json_object_get(u, "seq"), "what",
							 json_object_get(u, "what"), "undo",
							 json_object_get(u, "undo"))) < 0)
			goto oom;
	}
	json_decref(undos);
	return ret;
oom:
	json_decref(undos);
	json_decref(ret);
	return NULL;
}
