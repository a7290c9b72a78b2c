/* recover: dead runs' journals and temp dirs (see recover.h). */
#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "undo.h"

static int rcv_report(json_t *report, const char *what, const char *journal, const char *result)
{
	return json_array_append_new(report, json_pack("{s:s, s:s, s:s}", "what",
						       what ? what : "?", "journal", journal,
						       "result", result));
}

/* One dead run's journal: its pending undos, newest first. Returns the number that failed. */
static size_t rcv_journal(struct pve_client *c, const char *path, long timeout_s, bool dry_run,
			  json_t *report)
{
	struct buf text = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;
	struct journal *j = NULL;
	json_t *pending = NULL, *u;
	size_t failed = 0, i;

	if (fs_read_file(path, &text, &err) < 0 || !(pending = jrn_pending(text.data, text.len))) {
		log_warn("recover: %s", phx_err_is_set(&err) ? err.msg : "out of memory");
		buf_release(&text);
		return 1;
	}
	buf_release(&text);
	if (json_array_size(pending) && !dry_run && jrn_open_existing(path, &j, &err) < 0) {
		log_warn("recover: %s", err.msg);
		json_decref(pending);
		return json_array_size(pending);
	}
	json_array_foreach(pending, i, u)
	{
		const char *what = json_string_value(json_object_get(u, "what"));
		char result[PHX_ERR_MSG_MAX + 16];

		phx_err_clear(&err);
		if (dry_run) {
			log_warn("recover: an interrupted run left %s; a run without --dry-run "
				 "removes it",
				 what);
			rcv_report(report, what, path, "would remove");
			continue;
		}
		if (undo_run_record(c, json_object_get(u, "undo"), timeout_s, &err) < 0 &&
		    err.code == PHX_E_CONFLICT) {
			/* someone else's now: nothing of that run is left to remove */
			log_warn("recover: %s", err.msg);
			snprintf(result, sizeof(result), "left alone: %s", err.msg);
			rcv_report(report, what, path, result);
		} else if (phx_err_is_set(&err)) {
			failed++;
			log_warn("recover: could not remove %s, left by an interrupted run: %s", what,
				 err.msg);
			snprintf(result, sizeof(result), "failed: %s", err.msg);
			rcv_report(report, what, path, result);
			continue;
		} else {
			/* removed, or found already gone (a task that failed cleans its own) */
			log_info("recover: cleaned up %s, left half-made by an interrupted run",
				 what);
			rcv_report(report, what, path, "cleaned up");
		}
		if (jrn_undone(j, (unsigned long)json_integer_value(json_object_get(u, "seq")),
			       &err) < 0)
			log_warn("recover: %s", err.msg);
	}
	jrn_close(j);
	if (!dry_run && failed == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn("recover: remove the journal '%s': %s", path, strerror(errno));
	json_decref(pending);
	return failed;
}

int rcv_run(struct pve_client *c, const char *dir, long timeout_s, bool dry_run, json_t *report,
	    size_t *ret_failed, struct phx_err *err)
{
	struct dirent **names = NULL;
	size_t failed = 0;
	int n = scandir(dir, &names, NULL, alphasort);

	if (n < 0) {
		if (errno == ENOENT) {
			*ret_failed = 0;
			return 0;
		}
		return phx_err_set_errno(err, PHX_E_IO, errno, "read the journal directory '%s'",
					 dir);
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		char path[4096];

		if (!strncmp(name, "run-", 4) && len > 6 && !strcmp(name + len - 6, ".jsonl") &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path))
			failed += rcv_journal(c, path, timeout_s, dry_run, report);
		free(names[i]);
	}
	free(names);
	*ret_failed = failed;
	return 0;
}

/* The VMID a seed ISO of ours names ("STORAGE:iso/phoenix-ci-8001-<sha>.iso"), 0 if none. */
static long rcv_seed_vmid(const char *volid)
{
	static const char *const prefixes[] = {":iso/phoenix-ci-", ":iso/phoenix-validate-"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const char *p = strstr(volid, prefixes[i]);
		char *end;
		long v;

		if (!p)
			continue;
		v = strtol(p + strlen(prefixes[i]), &end, 10);
		if (v > 0 && *end == '-')
			return v;
	}
	return 0;
}

static bool rcv_vm_exists(const struct pve_vm_list *vms, long vmid)
{
	for (size_t i = 0; i < vms->n; i++)
		if (vms->items[i].vmid == vmid)
			return true;
	return false;
}

/* Whether `volid` on this storage is a leftover to sweep now. */
static bool rcv_is_leftover(const struct pve_volume *v, bool import, const struct pve_vm_list *vms,
			    long long before)
{
	long vmid;

	if (!v->ctime || v->ctime > before)
		return false; /* young: a run on another host may be using it */
	if (import)
		return strstr(v->volid, ":import/phoenix-") != NULL;
	vmid = rcv_seed_vmid(v->volid);
	return vmid && !rcv_vm_exists(vms, vmid);
}

int rcv_sweep(struct pve_client *c, const char *const *nodes, size_t n_nodes,
	      const char *import_storage, const char *iso_storage, const struct pve_vm_list *vms,
	      long grace_s, long timeout_s, json_t *report, size_t *ret_failed,
	      struct phx_err *err)
{
	const long long before = (long long)time(NULL) - grace_s;
	json_t *seen = json_object();
	size_t failed = 0;
	int rc = -1;

	if (!seen)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t k = 0; k < n_nodes; k++) {
		for (int import = 1; import >= 0; import--) {
			const char *storage = import ? import_storage : iso_storage;
			struct pve_volume_list l = {NULL, 0};

			if (!storage)
				continue;
			if (pve_storage_content(c, nodes[k], storage, import ? "import" : "iso", &l,
						err) < 0)
				goto out;
			for (size_t i = 0; i < l.n; i++) {
				const struct pve_volume *v = &l.items[i];
				struct phx_err e = PHX_ERR_INIT;
				char result[PHX_ERR_MSG_MAX + 16];

				if (json_object_get(seen, v->volid) ||
				    !rcv_is_leftover(v, import, vms, before))
					continue;
				json_object_set_new(seen, v->volid, json_true());
				if (undo_volume_remove(c, nodes[k], v->volid, timeout_s, NULL, &e) <
				    0) {
					failed++;
					log_warn("sweep: could not remove %s: %s", v->volid, e.msg);
					snprintf(result, sizeof(result), "failed: %s", e.msg);
				} else {
					log_info("sweep: removed %s, a leftover of ours older than "
						 "%ld h that no journal and no VM refers to",
						 v->volid, grace_s / 3600);
					snprintf(result, sizeof(result), "swept");
				}
				json_array_append_new(report,
						      json_pack("{s:s, s:s}", "what", v->volid,
								"result", result));
			}
			pve_volume_list_release(&l);
		}
	}
	*ret_failed = failed;
	rc = 0;
out:
	json_decref(seen);
	return rc;
}

int rcv_private_tmp(const char *dir, char **ret_path, struct phx_err *err)
{
	DIR *d;
	struct dirent *e;
	char *path = NULL;

	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	/* the parent too: a dir made by an older release may be wider */
	if (chmod(dir, 0700) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "chmod '%s'", dir);
	if (!(d = opendir(dir)))
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", dir);
	while ((e = readdir(d))) {
		char sub[4096];
		struct phx_err e2 = PHX_ERR_INIT;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (fs_remove_tree(sub, &e2) < 0)
			log_warn("%s", e2.msg);
		else
			log_info("removed '%s', left by an interrupted run", sub);
	}
	closedir(d);
	if (asprintf(&path, "%s/run-%ld", dir, (long)getpid()) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (mkdir(path, 0700) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", path);
		free(path);
		return -1;
	}
	*ret_path = path;
	return 0;
}

void rcv_private_tmp_remove(const char *path)
{
	struct phx_err err = PHX_ERR_INIT;

	if (path && fs_remove_tree(path, &err) < 0)
		log_warn("%s", err.msg);
}
