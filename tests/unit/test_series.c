/* series: version names, VMID allocation, membership and order. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "series.h"

TestSuite(series);

/* 2026-11-21 12:00:00 UTC */
#define NOV21 ((time_t)1795262400)

static const struct series_guest guests[] = {
	{9000, "noble-20261120-001", "phoenix;phx-noble;validated", true},
	{9001, "noble-20261121-001", "phoenix;phx-noble", true},
	{9002, "noble-20261121-002", "PHOENIX;phx-noble", true},
	{9003, "noble-20261121-007", "phx-noble", true},	     /* not ours: no phoenix tag */
	{9004, "noble-20261121-009", "phoenix;phx-noble", false}, /* a VM, not a template */
	{9010, "jammy-20261121-004", "phoenix;phx-jammy", true},
	{8001, "web1", NULL, false},
};
#define N_GUESTS (sizeof(guests) / sizeof(guests[0]))

Test(series, has_tag_splits_and_ignores_case)
{
	cr_assert(series_has_tag("a;Phoenix;b", "phoenix"));
	cr_assert(series_has_tag("a, phoenix b", "phoenix"));
	cr_assert_not(series_has_tag("phoenixx;a", "phoenix"));
	cr_assert_not(series_has_tag(NULL, "phoenix"));
}

Test(series, next_name_follows_highest_sequence_of_the_day_among_all_guests)
{
	struct phx_err err = PHX_ERR_INIT;
	char *name = NULL;

	cr_assert_eq(series_next_name("noble", NOV21, guests, N_GUESTS, &name, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(name, "noble-20261121-010");
	free(name);
	cr_assert_eq(series_next_name("focal", NOV21, guests, N_GUESTS, &name, &err), 0);
	cr_assert_str_eq(name, "focal-20261121-001");
	free(name);
}

Test(series, next_vmid_skips_used_and_reports_full_range)
{
	struct phx_err err = PHX_ERR_INIT;
	unsigned long id = 0;

	cr_assert_eq(series_next_vmid(9000, 9099, guests, N_GUESTS, &id, &err), 0);
	cr_assert_eq(id, 9005);
	cr_assert_eq(series_next_vmid(9000, 9004, guests, N_GUESTS, &id, &err), -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "9000-9004"), "%s", err.msg);
	cr_assert_eq(id, 9005, "output untouched on failure");
}

Test(series, members_are_our_templates_of_that_series_newest_first)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t *idx = NULL, n = 0;

	cr_assert_eq(series_members("noble", guests, N_GUESTS, &idx, &n, &err), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(guests[idx[0]].vmid, 9002);
	cr_assert_eq(guests[idx[1]].vmid, 9001);
	cr_assert_eq(guests[idx[2]].vmid, 9000);
	free(idx);
	cr_assert_eq(guests[series_newest("noble", guests, N_GUESTS, false)].vmid, 9002);
	cr_assert_eq(guests[series_newest("noble", guests, N_GUESTS, true)].vmid, 9000);
	cr_assert_eq(series_newest("focal", guests, N_GUESTS, false), -1);
}

Test(series, parse_version_rejects_other_shapes)
{
	unsigned d = 0, s = 0;

	cr_assert(series_parse_version("noble", "noble-20261121-003", &d, &s));
	cr_assert_eq(d, 20261121);
	cr_assert_eq(s, 3);
	cr_assert_not(series_parse_version("noble", "noble-2026112-003", &d, &s));
	cr_assert_not(series_parse_version("noble", "noble-20261121-003x", &d, &s));
	cr_assert_not(series_parse_version("nob", "noble-20261121-003", &d, &s));
}
