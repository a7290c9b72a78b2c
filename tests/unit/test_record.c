/* record: the build record in a description, written and read back by one module. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

TestSuite(record);

Test(record, writes_intro_and_fields_and_reads_them_back)
{
	const struct rec_field f[] = {{"sha256", "ab12"},
				      {"customized-sha256", "cd34"},
				      {"built", "2026-12-02T04:00:00Z"}};
	struct phx_err err = PHX_ERR_INIT;
	char *r = rec_write("Built by phoenix-orchestrator 1.0; do not edit the lines below.", f, 3,
			    &err);
	char v[64] = "untouched";

	cr_assert_not_null(r, "%s", err.msg);
	cr_assert_str_eq(r, "Built by phoenix-orchestrator 1.0; do not edit the lines below.\n"
			    "sha256: ab12\ncustomized-sha256: cd34\nbuilt: 2026-12-02T04:00:00Z\n");
	cr_assert(rec_get(r, "sha256", v, sizeof(v)));
	cr_assert_str_eq(v, "ab12", "a key is matched at the start of a line only");
	cr_assert(rec_get(r, "customized-sha256", v, sizeof(v)));
	cr_assert_str_eq(v, "cd34");
	cr_assert(rec_get(r, "built", v, sizeof(v)));
	cr_assert_str_eq(v, "2026-12-02T04:00:00Z");
	free(r);
}

Test(record, missing_keys_and_prefixes_are_not_found)
{
	char v[8] = "x";

	cr_assert(!rec_get("my text mentions sha256: here\nvm: a\n", "sha256", v, sizeof(v)));
	cr_assert_str_eq(v, "");
	cr_assert(!rec_get("vmx: a\n", "vm", v, sizeof(v)));
	cr_assert(!rec_get(NULL, "vm", v, sizeof(v)));
	cr_assert(rec_get("vm: a-long-value\n", "vm", v, sizeof(v)));
	cr_assert_str_eq(v, "a-long-", "cut to the buffer");
}
