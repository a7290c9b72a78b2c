/* cmd_recover: `--recover`, only the start every locked run makes (session.h): finish what a
 * killed run left half-made, from its journal, and say what was done. For a timer unit's
 * ExecStartPre, or an operator after a crash who wants the cleanup without a build. */
#include <stdio.h>

#include "cmd.h"
#include "session.h"

static int cmd_recover_run(struct session *s, struct phx_err *err)
{
	size_t i;
	json_t *r;

	if (session_connect(s, err) < 0)
		return -1;
	if (s->opts->output == CLI_OUTPUT_JSON) {
		if (cmd_print_json(json_incref(s->recovered), err) < 0)
			return -1;
	} else if (!json_array_size(s->recovered)) {
		printf("nothing to recover: no interrupted run left work behind\n");
	} else {
		json_array_foreach(s->recovered, i, r)
			printf("%s: %s\n", json_string_value(json_object_get(r, "what")),
			       json_string_value(json_object_get(r, "result")));
	}
	if (s->recover_failed)
		return phx_err_set(err, PHX_E_RUNTIME,
				   "%zu undo(s) of interrupted runs failed; they stay in the journal "
				   "for the next run",
				   s->recover_failed);
	return 0;
}

const struct cmd_entry cmd_recover_entry = {"recover", CMD_SERVER | CMD_LOCK, cmd_recover_run};
