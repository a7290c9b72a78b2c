/* series: version names, VMID allocation, membership and order, what linked clones use, and
 * the retention decision of --prune. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

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
	cr_assert_eq(guests[series_find_version("noble", guests, N_GUESTS, "noble-20261121-001")]
			     .vmid,
		     9001);
	cr_assert_eq(series_find_version("noble", guests, N_GUESTS, "noble-20200101-001"), -1);
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

Test(series, uses_scan_reads_the_base_a_linked_clone_names)
{
	struct series_uses u = SERIES_USES_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(series_uses_scan(&u, 8001,
				      "local:9000/base-9000-disk-0.qcow2/8001/vm-8001-disk-0.qcow2,"
				      "size=2G",
				      &err),
		     0);
	cr_assert_eq(series_uses_scan(&u, 8002, "tank:base-9101-disk-0/vm-8002-disk-0", &err), 0);
	/* not volumes, or "base-" outside the volume id */
	cr_assert_eq(series_uses_scan(&u, 8003, "local-lvm:vm-8003-disk-0,serial=base-9102", &err),
		     0);
	cr_assert_eq(series_uses_scan(&u, 8003, "virtio,bridge=vmbr0", &err), 0);
	cr_assert_eq(series_uses_scan(&u, 8003, NULL, &err), 0);
	cr_assert_eq(u.n, 2);
	cr_assert_eq(series_uses_user(&u, 9000), 8001);
	cr_assert_eq(series_uses_user(&u, 9101), 8002);
	cr_assert_eq(series_uses_user(&u, 9102), 0);
	cr_assert_eq(series_uses_user(NULL, 9000), 0);
	series_uses_release(&u);
	series_uses_release(&u); /* idempotent */
	cr_assert_eq(u.n, 0);
}

Test(series, parse_time_takes_the_build_record_format_only)
{
	time_t t = 42;

	cr_assert(series_parse_time("2026-11-21T12:00:00Z", &t));
	cr_assert_eq(t, NOV21);
	cr_assert_not(series_parse_time("2026-11-21 12:00:00", &t));
	cr_assert_not(series_parse_time("2026-11-21T12:00:00Z trailing", &t));
	cr_assert_not(series_parse_time("", &t));
	cr_assert_not(series_parse_time(NULL, &t));
	cr_assert_eq(t, NOV21, "output untouched on failure");
}

/* ---- retention: a series on two nodes, the clock passed in ---- */

#define DAY ((time_t)86400)

static const struct series_guest ret_guests[] = {
	{9100, "noble-20250801-001", "phoenix;phx-noble", true},
	{9101, "noble-20261001-001", "phoenix;phx-noble;validated", true},
	{9102, "noble-20261101-001", "phoenix;phx-noble", true},
	{9103, "noble-20261120-001", "phoenix;phx-noble", true},
	{9200, "noble-20250801-001", "phoenix;phx-noble", true},
	{9300, "jammy-20200101-001", "phoenix;phx-jammy", true},
	{8100, "user", "phoenix", false},
};
#define N_RET (sizeof(ret_guests) / sizeof(ret_guests[0]))

static const struct series_prune_guest ret_extra[] = {
	{"pve1", NOV21 - 477 * DAY}, /* 2025-08-01 */
	{"pve1", NOV21 - 51 * DAY},  /* 2026-10-01 */
	{"pve1", NOV21 - 20 * DAY},
	{"pve1", NOV21 - 1 * DAY},
	{"pve2", NOV21 - 477 * DAY},
	{"pve1", NOV21 - 3000 * DAY},
	{"pve1", 0},
};

/* The verdict for VMID `vmid`, NULL when the version was not listed. */
static const struct series_verdict *verdict(const struct series_verdict *v, size_t n,
					    unsigned long vmid)
{
	for (size_t i = 0; i < n; i++)
		if (ret_guests[v[i].guest].vmid == vmid)
			return &v[i];
	return NULL;
}

static void decide(const struct series_guest *g, const struct series_prune_guest *x,
		   const struct series_retention *r, time_t now, struct series_verdict **v,
		   size_t *n)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(series_prune_decide("noble", g, x, N_RET, r, now, v, n, &err), 0, "%s",
		     err.msg);
}

#define ASSERT_VERDICT(v, n, vmid, gone, text)                                                     \
	do {                                                                                       \
		const struct series_verdict *d_ = verdict(v, n, vmid);                             \
		cr_assert_not_null(d_, "%d not listed", vmid);                                     \
		cr_assert_eq(d_->remove, gone, "%d: remove %d (%s)", vmid, d_->remove, d_->why);   \
		cr_assert_str_eq(d_->why, text);                                                   \
	} while (0)

Test(series, prune_keeps_n_per_node_and_the_newest_validated)
{
	const struct series_retention r = {.keep = 2};
	struct series_verdict *v = NULL;
	size_t n = 0;

	decide(ret_guests, ret_extra, &r, NOV21, &v, &n);
	cr_assert_eq(n, 2, "only pve1's two oldest are beyond keep 2");
	ASSERT_VERDICT(v, n, 9101, false, "the newest validated version");
	ASSERT_VERDICT(v, n, 9100, true, "beyond keep 2");
	cr_assert_null(verdict(v, n, 9200), "pve2 has one version");
	free(v);
}

Test(series, prune_removes_versions_older_than_max_age_within_keep)
{
	const struct series_retention r = {.keep = 10, .max_age_days = 30};
	struct series_verdict *v = NULL;
	size_t n = 0;

	decide(ret_guests, ret_extra, &r, NOV21, &v, &n);
	cr_assert_eq(n, 3);
	ASSERT_VERDICT(v, n, 9100, true, "older than 30 days (built 2025-08-01)");
	ASSERT_VERDICT(v, n, 9101, false, "the newest validated version");
	/* the only version on pve2 is its newest: never aged out */
	ASSERT_VERDICT(v, n, 9200, false, "the newest version on 'pve2'");
	cr_assert_null(verdict(v, n, 9102), "20 days old");
	cr_assert_null(verdict(v, n, 9300), "another series");
	free(v);
}

Test(series, prune_age_follows_the_clock_passed_in)
{
	const struct series_retention r = {.keep = 10, .max_age_days = 30};
	struct series_verdict *v = NULL;
	size_t n = 0;

	/* 9102 is exactly 30 days old: not older than 30 days */
	decide(ret_guests, ret_extra, &r, NOV21 + 10 * DAY, &v, &n);
	cr_assert_null(verdict(v, n, 9102));
	free(v);
	decide(ret_guests, ret_extra, &r, NOV21 + 10 * DAY + 1, &v, &n);
	ASSERT_VERDICT(v, n, 9102, true, "older than 30 days (built 2026-11-01)");
	free(v);
	/* two years on, only what protects a version keeps it */
	decide(ret_guests, ret_extra, &r, NOV21 + 730 * DAY, &v, &n);
	ASSERT_VERDICT(v, n, 9103, false, "the newest version on 'pve1'");
	ASSERT_VERDICT(v, n, 9101, false, "the newest validated version");
	cr_assert(verdict(v, n, 9102)->remove);
	free(v);
}

Test(series, prune_names_both_reasons_when_both_hold)
{
	const struct series_retention r = {.keep = 1, .max_age_days = 30};
	struct series_verdict *v = NULL;
	size_t n = 0;

	decide(ret_guests, ret_extra, &r, NOV21, &v, &n);
	ASSERT_VERDICT(v, n, 9100, true, "beyond keep 1, older than 30 days (built 2025-08-01)");
	ASSERT_VERDICT(v, n, 9102, true, "beyond keep 1");
	cr_assert_null(verdict(v, n, 9103));
	free(v);
}

Test(series, prune_never_removes_what_a_clone_or_the_config_uses)
{
	struct series_uses u = SERIES_USES_INIT;
	struct phx_err err = PHX_ERR_INIT;
	const unsigned long pinned[] = {9102};
	const struct series_retention r = {
		.keep = 1, .max_age_days = 30, .uses = &u, .pinned = pinned, .n_pinned = 1};
	struct series_verdict *v = NULL;
	size_t n = 0;

	cr_assert_eq(series_uses_scan(&u, 8100,
				      "local:9100/base-9100-disk-0.qcow2/8100/"
				      "vm-8100-disk-0.qcow2",
				      &err),
		     0);
	decide(ret_guests, ret_extra, &r, NOV21, &v, &n);
	ASSERT_VERDICT(v, n, 9100, false, "linked clone 8100 uses it");
	ASSERT_VERDICT(v, n, 9102, false, "a VM in the config clones it (clone_from_vmid)");
	free(v);
	series_uses_release(&u);
}

Test(series, prune_keeps_a_version_of_unknown_age_and_says_so)
{
	struct series_prune_guest x[N_RET];
	struct series_retention r = {.keep = 10, .max_age_days = 30};
	struct series_verdict *v = NULL;
	size_t n = 0;

	memcpy(x, ret_extra, sizeof(x));
	x[2].built = 0; /* 9102: no build record */
	decide(ret_guests, x, &r, NOV21, &v, &n);
	ASSERT_VERDICT(v, n, 9102, false,
		       "build time unknown (no 'built' line in its description): not removed for "
		       "age");
	free(v);
	/* without max_age_days the age does not matter, and nothing is said */
	r.max_age_days = 0;
	decide(ret_guests, x, &r, NOV21, &v, &n);
	cr_assert_eq(n, 0);
	free(v);
}

/* ---- --remove-template: which guest, and may it go ---- */

static const char *const ret_nodes[] = {"pve1", "pve1", "pve1", "pve1", "pve2", "pve1", "pve1"};

Test(series, resolve_takes_a_vmid_a_unique_name_or_the_config_vmid)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t idx = 99;

	cr_assert_eq(series_resolve("9102", ret_guests, ret_nodes, N_RET, 0, false, &idx, &err),
		     0, "%s", err.msg);
	cr_assert_eq(ret_guests[idx].vmid, 9102);
	cr_assert_eq(series_resolve("noble-20261101-001", ret_guests, ret_nodes, N_RET, 0, false,
				    &idx, &err),
		     0, "%s", err.msg);
	cr_assert_eq(ret_guests[idx].vmid, 9102);
	/* a guest's own name wins over the config's VMID for that name */
	cr_assert_eq(series_resolve("user", ret_guests, ret_nodes, N_RET, 9103, false, &idx, &err),
		     0);
	cr_assert_eq(ret_guests[idx].vmid, 8100);
	/* a fixed-VMID template named in the config, whatever Proxmox calls it */
	cr_assert_eq(series_resolve("jammy", ret_guests, ret_nodes, N_RET, 9300, false, &idx, &err),
		     0);
	cr_assert_eq(ret_guests[idx].vmid, 9300);
}

Test(series, resolve_refuses_ambiguous_and_unknown_names)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t idx = 99;

	/* the same version on two nodes */
	cr_assert_eq(series_resolve("noble-20250801-001", ret_guests, ret_nodes, N_RET, 0, false,
				    &idx, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "9100 on 'pve1', 9200 on 'pve2'"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(series_resolve("noble", ret_guests, ret_nodes, N_RET, 0, true, &idx, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	cr_assert(strstr(err.msg, "'noble' is a version series"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(series_resolve("nope", ret_guests, ret_nodes, N_RET, 0, false, &idx, &err),
		     -1);
	cr_assert(strstr(err.msg, "no guest named 'nope'"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(series_resolve("gone", ret_guests, ret_nodes, N_RET, 9000, false, &idx, &err),
		     -1);
	cr_assert(strstr(err.msg, "template 'gone' (VMID 9000 in the config) does not exist"),
		  "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(series_resolve("4242", ret_guests, ret_nodes, N_RET, 0, false, &idx, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	cr_assert(strstr(err.msg, "VM 4242 does not exist"), "%s", err.msg);
	cr_assert_eq(idx, 99, "output untouched on failure");
}

Test(series, removable_only_when_ours_a_template_and_unused)
{
	struct series_uses u = SERIES_USES_INIT;
	struct phx_err err = PHX_ERR_INIT;
	const struct series_guest foreign = {9500, "golden", "base;prod", true};

	cr_assert_eq(series_check_removable(&ret_guests[2], &u, &err), 0, "%s", err.msg);
	cr_assert_eq(series_check_removable(&foreign, &u, &err), -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "VM 9500 'golden' has no 'phoenix' tag"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(series_check_removable(&ret_guests[6], &u, &err), -1);
	cr_assert(strstr(err.msg, "VM 8100 'user' is not a template"), "%s", err.msg);
	phx_err_clear(&err);
	/* two clones, one of them with two disks on the base: each named once */
	cr_assert_eq(series_uses_scan(&u, 8100, "local:9102/base-9102-disk-0.qcow2/8100/x", &err),
		     0);
	cr_assert_eq(series_uses_scan(&u, 8100, "local:9102/base-9102-disk-1.qcow2/8100/y", &err),
		     0);
	cr_assert_eq(series_uses_scan(&u, 8101, "local:9102/base-9102-disk-0.qcow2/8101/x", &err),
		     0);
	cr_assert_eq(series_uses_scan(&u, 8102, "local:9103/base-9103-disk-0.qcow2/8102/x", &err),
		     0);
	cr_assert_eq(series_check_removable(&ret_guests[2], &u, &err), -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "in use by linked clones 8100, 8101: remove them first"), "%s",
		  err.msg);
	series_uses_release(&u);
}
