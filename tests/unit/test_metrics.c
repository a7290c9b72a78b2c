/* metrics: the text exposition format node_exporter's textfile collector reads. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

TestSuite(metrics);

Test(metrics, renders_run_and_template_samples_with_escaped_labels)
{
	const struct met_template ts[] = {
		{"tpl \"a\\b\"", "pve1", "tpl-20261202-001", "ab12", 9100, true, true,
		 {1.5, 40, 3, 1, 0.5}},
		{"other", "pve2", NULL, "", 0, false, false, {0}},
	};
	const struct met_run run = {1000, 1060.5, false, 900, ts, 2};
	struct buf out = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(met_render(&run, &out, &err), 0, "%s", err.msg);
	cr_assert_not_null(strstr(out.data, "# TYPE phoenix_provision_success gauge\n"
					    "phoenix_provision_success 0\n"));
	cr_assert_not_null(strstr(out.data, "phoenix_provision_last_success_timestamp_seconds 900\n"),
			   "a failed run keeps the last success time");
	cr_assert_not_null(strstr(out.data, "phoenix_provision_duration_seconds 60.500\n"));
	cr_assert_not_null(strstr(out.data, "phoenix_template_ok{template=\"tpl \\\"a\\\\b\\\"\","
					    "node=\"pve1\"} 1\n"),
			   "quotes and backslashes escaped:\n%s", out.data);
	cr_assert_not_null(strstr(out.data, "phoenix_template_phase_seconds{template=\"other\","
					    "node=\"pve2\",phase=\"customize\"} 0\n"));
	cr_assert_not_null(strstr(out.data, "phoenix_template_info{template=\"tpl \\\"a\\\\b\\\"\","
					    "node=\"pve1\",vmid=\"9100\",version=\"tpl-20261202-001\","
					    "sha256=\"ab12\"} 1\n"));
	cr_assert_null(strstr(out.data, "template=\"other\",node=\"pve2\",vmid"),
		       "no info for a template that failed");
	buf_release(&out);
}

Test(metrics, a_successful_run_is_its_own_last_success_and_the_file_is_read_back)
{
	char path[] = "/tmp/phx-met-XXXXXX";
	const struct met_run run = {1000, 2000, true, 900, NULL, 0};
	struct phx_err err = PHX_ERR_INIT;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(met_write(path, &run, &err), 0, "%s", err.msg);
	cr_assert_float_eq(met_read_last_success(path), 2000, 1e-9);
	unlink(path);
	cr_assert_float_eq(met_read_last_success(path), 0, 1e-9, "no file: never");
}
