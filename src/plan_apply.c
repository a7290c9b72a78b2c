/* plan_apply: runs a plan against the server (see plan.h). The only place that turns plan
 * actions into requests, so a real run sends exactly what its dry run showed. */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "progress.h"
#include "pve.h"
#include "txn.h"
#include "undo.h"

static int plan_record_undo(const struct plan_action *a, const struct plan_apply_ctx *ctx,
			    struct phx_err *err)
{
	const struct plan_undo *u = &a->undo;

	if (!ctx->txn)
		return 0;
	switch (u->kind) {
	case PLAN_UNDO_VM:
		return undo_add_vm(ctx->txn, u->node, u->vmid, u->name, u->tag, ctx->timeout_s,
				   err);
	case PLAN_UNDO_CT:
		return undo_add_ct(ctx->txn, u->node, u->vmid, u->name, u->tag, ctx->timeout_s,
				   err);
	case PLAN_UNDO_VOLUME:
		return undo_add_volume(ctx->txn, u->node, u->target, ctx->timeout_s, err);
	case PLAN_UNDO_FILE:
		return undo_add_file(ctx->txn, u->target, err);
	case PLAN_UNDO_NONE:
		break;
	}
	return 0;
}

static int plan_send_upload(const struct plan_action *a, const struct plan_apply_ctx *ctx,
			    struct phx_err *err)
{
	struct http_form_field *f = calloc(a->n_params ? a->n_params : 1, sizeof(*f));
	struct prog_bar bar;
	struct http_progress prog = {prog_bar_update, &bar};
	json_t *data = NULL;
	int rc = -1;

	if (!f)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	prog_bar_init(&bar, a->filename);
	for (size_t i = 0; i < a->n_params; i++)
		f[i] = (struct http_form_field){a->params[i].key, a->params[i].value};
	rc = pve_upload_multipart(ctx->pve, a->path, f, a->n_params, a->filename, a->file, &prog,
				  &data, err);
	prog_bar_finish(&bar);
	if (rc == 0) {
		if (json_is_string(data))
			rc = pve_task_wait(ctx->pve, json_string_value(data), ctx->timeout_s, NULL,
					   err);
		else
			rc = phx_err_set(err, PHX_E_API,
					 "POST %s: expected a task id (UPID) in the answer",
					 a->path);
	}
	json_decref(data);
	free(f);
	return rc;
}

static int plan_send(const struct plan_action *a, const struct plan_apply_ctx *ctx,
		     struct phx_err *err)
{
	struct pve_param *ps;
	int rc;

	switch (a->kind) {
	case PLAN_UPLOAD:
		return plan_send_upload(a, ctx, err);
	case PLAN_WRITE_FILE:
		return fs_write_atomic(a->path, a->data, a->data_len, 0644, err);
	case PLAN_REMOVE_FILE:
		if (unlink(a->path) < 0 && errno != ENOENT)
			return phx_err_set_errno(err, PHX_E_IO, errno, "remove '%s'", a->path);
		return 0;
	case PLAN_REQUEST:
		break;
	}
	ps = calloc(a->n_params ? a->n_params : 1, sizeof(*ps));
	if (!ps)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < a->n_params; i++)
		ps[i] = (struct pve_param){a->params[i].key, a->params[i].value};
	rc = pve_request_task(ctx->pve, a->method, a->path, ps, a->n_params, ctx->timeout_s, err);
	free(ps);
	return rc;
}

int plan_apply_action(const struct plan_action *a, const struct plan_apply_ctx *ctx,
		      struct phx_err *err)
{
	struct phx_err e = PHX_ERR_INIT;

	if (clk_signal() && (a->flags & PLAN_BEST_EFFORT) && !(a->flags & PLAN_CLEANUP)) {
		log_warn("%s: skipped after signal %d: %s", a->object, clk_signal(), a->summary);
		return 0;
	}
	if (clk_signal() && !(a->flags & PLAN_CLEANUP))
		return phx_err_set(err, PHX_E_INTERRUPTED, "stopped by signal %d before: %s",
				   clk_signal(), a->summary);
	for (size_t i = 0; i < a->n_params; i++)
		if (a->params[i].flags & PLAN_PENDING)
			return phx_err_set(err, PHX_E_INTERNAL,
					   "%s: parameter '%s' is still pending: %s", a->summary,
					   a->params[i].key, a->params[i].value);
	if (plan_record_undo(a, ctx, err) < 0)
		return -1;
	log_info("%s: %s", a->object, a->summary);
	if (plan_send(a, ctx, &e) == 0) {
		/* a stop that came while the task ran wins over the commit: the run ends as it
		 * began (the next run would only find half of what was asked for) */
		if (clk_signal() && (a->flags & PLAN_COMMIT_AFTER) && !(a->flags & PLAN_CLEANUP))
			return phx_err_set(err, PHX_E_INTERRUPTED, "stopped by signal %d during: %s",
					   clk_signal(), a->summary);
		if ((a->flags & PLAN_COMMIT_AFTER) && ctx->txn)
			txn_commit(ctx->txn);
		return 0;
	}
	/* Proxmox answered an error for the request itself (no task was started): nothing was
	 * made, and what is there now (a VMID another run took meanwhile, "already exists") is
	 * not ours to remove */
	if (e.http_status && ctx->txn && a->sym == PLAN_CREATE && a->undo.kind != PLAN_UNDO_NONE)
		txn_forget_last(ctx->txn);
	if (a->flags & PLAN_BEST_EFFORT) {
		log_warn("%s: could not %s: %s", a->object, a->summary, e.msg);
		return 0;
	}
	*err = e;
	return phx_err_wrap(err, "%s", a->summary);
}

void plan_log_notes(const struct plan *p)
{
	for (size_t i = 0; i < p->n_notes; i++)
		log_info("%s: %s", p->notes[i].object, p->notes[i].text);
}

int plan_apply(const struct plan *p, const struct plan_apply_ctx *ctx, struct phx_err *err)
{
	plan_log_notes(p);
	for (size_t i = 0; i < p->n; i++)
		if (plan_apply_action(p->actions[i], ctx, err) < 0)
			return -1;
	return 0;
}
