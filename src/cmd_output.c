/* cmd_output: how the commands print their results, so they all read alike: a JSON
 * document, and the plan of a --dry-run as text (one block per object, then a count) or,
 * with --output json, one plan document (docs/plan-json.md). */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "plan.h"

int cmd_print_json(json_t *doc, struct phx_err *err)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	json_decref(doc);
	if (!text)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	printf("%s\n", text);
	free(text);
	return 0;
}

int cmd_plan_checked(const struct cli_opts *opts, const char *command, const struct plan *p,
		     struct phx_err *err)
{
	const struct plan *plans[] = {p};

	if (plan_check(p, err) < 0)
		return -1;
	if (!opts->dry_run)
		return 0;
	return cmd_plan_print(opts, command, plans, 1, err) < 0 ? -1 : 1;
}

int cmd_plan_run(struct session *s, const char *command, const struct plan *p,
		 struct phx_err *err)
{
	const struct plan_apply_ctx ax = {s->pve, NULL, session_task_timeout(s)};
	int rc = cmd_plan_checked(s->opts, command, p, err);

	if (rc != 0)
		return rc;
	return plan_apply(p, &ax, err);
}

int cmd_plan_print(const struct cli_opts *opts, const char *command,
		   const struct plan *const *plans, size_t n, struct phx_err *err)
{
	size_t changes = 0;

	if (opts->output == CLI_OUTPUT_JSON) {
		json_t *doc = plan_json_document(command, err);

		if (!doc)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (plan_json_append(plans[i], doc, err) < 0) {
				json_decref(doc);
				return -1;
			}
		return cmd_print_json(doc, err);
	}
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;

		if (plan_render_text(plans[i], &b, err) < 0) {
			buf_release(&b);
			return -1;
		}
		fputs(buf_str(&b), stdout);
		buf_release(&b);
		changes += plans[i]->n;
	}
	printf("Plan: %zu change%s (dry run: nothing was sent)\n", changes,
	       changes == 1 ? "" : "s");
	return 0;
}
