/* series: template version names, tags, selection and retention. */
#include "series.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool series_has_tag(const char *tags, const char *tag)
{
	size_t want = strlen(tag);
	const char *p = tags;

	if (!tags || !want)
		return false;
	while (*p) {
		size_t n;

		p += strspn(p, ";, \t\n");
		n = strcspn(p, ";, \t\n");
		if (n == want && !strncasecmp(p, tag, n))
			return true;
		p += n;
	}
	return false;
}

int series_tag(const char *template_name, char *ret, size_t len, struct phx_err *err)
{
	size_t i, n = strlen(template_name);

	if (n + 5 > len || n == 0)
		return phx_err_set(err, PHX_E_INPUT, "template name '%s' is too long for a tag",
				   template_name);
	memcpy(ret, "phx-", 4);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tolower((unsigned char)template_name[i]);

		ret[4 + i] = (isalnum(c) || c == '_' || c == '-' || c == '.' || c == '+') ? (char)c
											  : '-';
	}
	ret[4 + n] = '\0';
	return 0;
}

bool series_parse_version(const char *base, const char *vm_name, unsigned *ret_date,
			  unsigned *ret_seq)
{
	size_t n = strlen(base);
	const char *p;

	if (!vm_name || strncmp(vm_name, base, n) || vm_name[n] != '-')
		return false;
	p = vm_name + n + 1;
	for (int i = 0; i < 8; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	if (p[8] != '-')
		return false;
	for (int i = 9; i < 12; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	if (p[12])
		return false;
	*ret_date = (unsigned)strtoul(p, NULL, 10);
	*ret_seq = (unsigned)strtoul(p + 9, NULL, 10);
	return true;
}

int series_next_name(const char *base, time_t now, const struct series_guest *guests, size_t n,
		     char **ret, struct phx_err *err)
{
	unsigned today, date, seq, next = 1;
	struct tm tm;
	char *name;

	if (!gmtime_r(&now, &tm))
		return phx_err_set(err, PHX_E_INTERNAL, "bad clock value");
	today = (unsigned)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
	for (size_t i = 0; i < n; i++)
		if (series_parse_version(base, guests[i].name, &date, &seq) && date == today &&
		    seq >= next)
			next = seq + 1;
	if (next > 999)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "template '%s' already has 999 versions built on %u", base,
				   today);
	if (asprintf(&name, "%s-%08u-%03u", base, today, next) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret = name;
	return 0;
}

int series_next_vmid(unsigned long min, unsigned long max, const struct series_guest *guests,
		     size_t n, unsigned long *ret_vmid, struct phx_err *err)
{
	for (unsigned long id = min; id <= max; id++) {
		bool used = false;

		for (size_t i = 0; i < n && !used; i++)
			used = guests[i].vmid == id;
		if (!used) {
			*ret_vmid = id;
			return 0;
		}
	}
	return phx_err_set(err, PHX_E_CONFLICT,
			   "no free VMID left in the version range %lu-%lu: run --prune or widen "
			   "the range",
			   min, max);
}

static bool series_is_member(const char *base, const struct series_guest *g)
{
	char tag[128];
	unsigned date, seq;

	if (!g->is_template || !series_has_tag(g->tags, SERIES_TAG_OURS) ||
	    series_tag(base, tag, sizeof(tag), NULL) < 0 || !series_has_tag(g->tags, tag))
		return false;
	return series_parse_version(base, g->name, &date, &seq);
}

struct series_sort_ctx {
	const char *base;
	const struct series_guest *guests;
};

static unsigned long long series_key(const struct series_sort_ctx *ctx, size_t idx)
{
	unsigned date = 0, seq = 0;

	series_parse_version(ctx->base, ctx->guests[idx].name, &date, &seq);
	return (unsigned long long)date * 1000 + seq;
}

static int series_cmp_newest_first(const void *a, const void *b, void *arg)
{
	unsigned long long ka = series_key(arg, *(const size_t *)a);
	unsigned long long kb = series_key(arg, *(const size_t *)b);

	return ka < kb ? 1 : ka > kb ? -1 : 0;
}

int series_members(const char *base, const struct series_guest *guests, size_t n, size_t **ret,
		   size_t *ret_n, struct phx_err *err)
{
	size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	size_t count = 0;

	if (!idx)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (series_is_member(base, &guests[i]))
			idx[count++] = i;
	qsort_r(idx, count, sizeof(*idx), series_cmp_newest_first,
		&(struct series_sort_ctx){base, guests});
	*ret = idx;
	*ret_n = count;
	return 0;
}

long series_newest(const char *base, const struct series_guest *guests, size_t n,
		   bool validated_only)
{
	size_t *idx = NULL, count = 0;
	long found = -1;

	if (series_members(base, guests, n, &idx, &count, NULL) < 0)
		return -1;
	for (size_t i = 0; i < count && found < 0; i++)
		if (!validated_only || series_has_tag(guests[idx[i]].tags, SERIES_TAG_VALIDATED))
			found = (long)idx[i];
	free(idx);
	return found;
}

long series_find_version(const char *base, const struct series_guest *guests, size_t n,
			 const char *version)
{
	size_t *idx = NULL, count = 0;
	long found = -1;

	if (series_members(base, guests, n, &idx, &count, NULL) < 0)
		return -1;
	for (size_t i = 0; i < count && found < 0; i++)
		if (!strcasecmp(guests[idx[i]].name, version))
			found = (long)idx[i];
	free(idx);
	return found;
}

int series_uses_scan(struct series_uses *u, unsigned long user, const char *value,
		     struct phx_err *err)
{
	size_t vol_len;

	if (!value)
		return 0;
	/* only the volume id counts: options after ',' could spell "base-" too */
	vol_len = strcspn(value, ",");
	for (const char *b = strstr(value, "base-"); b && b < value + vol_len;
	     b = strstr(b + 5, "base-")) {
		unsigned long base = strtoul(b + 5, NULL, 10);

		if (!base)
			continue;
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 16;
			struct series_use *items = realloc(u->items, cap * sizeof(*items));

			if (!items)
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			u->items = items;
			u->cap = cap;
		}
		u->items[u->n++] = (struct series_use){base, user};
	}
	return 0;
}

unsigned long series_uses_user(const struct series_uses *u, unsigned long base)
{
	for (size_t i = 0; u && i < u->n; i++)
		if (u->items[i].base == base)
			return u->items[i].user;
	return 0;
}

void series_uses_release(struct series_uses *u)
{
	if (!u)
		return;
	free(u->items);
	u->items = NULL;
	u->n = u->cap = 0;
}

bool series_parse_time(const char *text, time_t *ret)
{
	struct tm tm;
	const char *end;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (!text || !(end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end)
		return false;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*ret = t;
	return true;
}

/* Why a candidate must stay; "" when nothing holds it. `k` indexes idx (newest first). */
static void series_hold(const struct series_guest *guests, const struct series_prune_guest *extra,
			const size_t *idx, size_t k, const struct series_retention *r, char *why,
			size_t len)
{
	const struct series_guest *g = &guests[idx[k]];
	const char *node = extra[idx[k]].node;
	unsigned long user = series_uses_user(r->uses, g->vmid);
	bool newest = true, newest_validated = series_has_tag(g->tags, SERIES_TAG_VALIDATED);

	why[0] = '\0';
	for (size_t j = 0; j < k; j++) {
		if (strcmp(extra[idx[j]].node, node))
			continue;
		newest = false;
		if (series_has_tag(guests[idx[j]].tags, SERIES_TAG_VALIDATED))
			newest_validated = false;
	}
	if (user) {
		snprintf(why, len, "linked clone %lu uses it", user);
	} else if (newest) {
		snprintf(why, len, "the newest version on '%s'", node);
	} else if (newest_validated) {
		/* clone_from_template picks the newest validated version on the VM's node */
		snprintf(why, len, "the newest validated version");
	} else {
		for (size_t p = 0; p < r->n_pinned && !why[0]; p++)
			if (r->pinned[p] == g->vmid)
				snprintf(why, len,
					 "a VM in the config clones it (clone_from_vmid)");
	}
}

int series_prune_decide(const char *base, const struct series_guest *guests,
			const struct series_prune_guest *extra, size_t n,
			const struct series_retention *r, time_t now, struct series_verdict **ret,
			size_t *ret_n, struct phx_err *err)
{
	struct series_verdict *v;
	size_t *idx = NULL, count = 0, nv = 0;

	if (series_members(base, guests, n, &idx, &count, err) < 0)
		return -1;
	v = calloc(count ? count : 1, sizeof(*v));
	if (!v) {
		free(idx);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	for (size_t k = 0; k < count; k++) {
		const struct series_prune_guest *x = &extra[idx[k]];
		struct series_verdict *d;
		size_t newer_here = 0, used = 0;
		bool beyond, aged, unknown;

		/* keep N per node: each node has its own copy of the series */
		for (size_t j = 0; j < k; j++)
			newer_here += !strcmp(extra[idx[j]].node, x->node);
		beyond = newer_here >= r->keep;
		aged = r->max_age_days && x->built &&
		       now - x->built > (time_t)r->max_age_days * 86400;
		unknown = r->max_age_days && !x->built;
		if (!beyond && !aged && !unknown)
			continue;
		d = &v[nv++];
		d->guest = idx[k];
		series_hold(guests, extra, idx, k, r, d->why, sizeof(d->why));
		if (d->why[0])
			continue;
		if (!beyond && !aged) {
			snprintf(d->why, sizeof(d->why),
				 "build time unknown (no 'built' line in its description): not "
				 "removed for age");
			continue;
		}
		d->remove = true;
		if (beyond)
			used = (size_t)snprintf(d->why, sizeof(d->why), "beyond keep %lu", r->keep);
		if (aged && used < sizeof(d->why)) {
			struct tm tm;
			char day[16] = "?";

			if (gmtime_r(&x->built, &tm))
				strftime(day, sizeof(day), "%Y-%m-%d", &tm);
			snprintf(d->why + used, sizeof(d->why) - used,
				 "%solder than %lu days (built %s)", used ? ", " : "",
				 r->max_age_days, day);
		}
	}
	free(idx);
	*ret = v;
	*ret_n = nv;
	return 0;
}

int series_resolve(const char *arg, const struct series_guest *guests, const char *const *nodes,
		   size_t n, unsigned long config_vmid, bool config_series, size_t *ret_idx,
		   struct phx_err *err)
{
	size_t found = 0, first = 0, all_digits = strspn(arg, "0123456789");
	unsigned long want = 0;
	bool by_config = false;
	char list[256] = "";

	if (*arg && !arg[all_digits]) {
		want = strtoul(arg, NULL, 10);
	} else {
		for (size_t i = 0; i < n; i++) {
			size_t used = strlen(list);

			if (!guests[i].name || strcmp(guests[i].name, arg))
				continue;
			if (!found++)
				first = i;
			if (used < sizeof(list))
				snprintf(list + used, sizeof(list) - used, "%s%lu on '%s'",
					 used ? ", " : "", guests[i].vmid, nodes[i]);
		}
		if (found == 1) {
			*ret_idx = first;
			return 0;
		}
		if (found > 1)
			return phx_err_set(err, PHX_E_CONFLICT,
					   "'%s' names %zu guests (%s): give the VMID of the one to "
					   "remove",
					   arg, found, list);
		if (config_series)
			return phx_err_set(err, PHX_E_NOTFOUND,
					   "'%s' is a version series in the config, not one template: "
					   "give a version's name or VMID (--list-templates lists them)",
					   arg);
		if (!config_vmid)
			return phx_err_set(err, PHX_E_NOTFOUND,
					   "no guest named '%s' on the cluster and no template '%s' in "
					   "the config",
					   arg, arg);
		want = config_vmid;
		by_config = true;
	}
	for (size_t i = 0; i < n; i++)
		if (guests[i].vmid == want) {
			*ret_idx = i;
			return 0;
		}
	if (by_config)
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "template '%s' (VMID %lu in the config) does not exist on the "
				   "cluster",
				   arg, want);
	return phx_err_set(err, PHX_E_NOTFOUND, "VM %lu does not exist on the cluster", want);
}

int series_check_removable(const struct series_guest *g, const struct series_uses *u,
			   struct phx_err *err)
{
	char users[256] = "";
	size_t n_users = 0;

	if (!series_has_tag(g->tags, SERIES_TAG_OURS))
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %lu '%s' has no '" SERIES_TAG_OURS "' tag: it was not built "
				   "by phoenix-orchestrator, refusing to remove it",
				   g->vmid, g->name ? g->name : "");
	if (!g->is_template)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %lu '%s' is not a template: --remove-template removes "
				   "templates; use --destroy for VMs",
				   g->vmid, g->name ? g->name : "");
	for (size_t i = 0; u && i < u->n; i++) {
		size_t used = strlen(users);
		bool seen = false;

		if (u->items[i].base != g->vmid)
			continue;
		/* a clone with several disks on the base is named once */
		for (size_t j = 0; j < i && !seen; j++)
			seen = u->items[j].base == g->vmid && u->items[j].user == u->items[i].user;
		if (seen)
			continue;
		n_users++;
		if (used < sizeof(users))
			snprintf(users + used, sizeof(users) - used, "%s%lu", used ? ", " : "",
				 u->items[i].user);
	}
	if (n_users)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "template %lu '%s' is in use by linked clone%s %s: remove %s "
				   "first (--destroy VMID)",
				   g->vmid, g->name ? g->name : "", n_users == 1 ? "" : "s", users,
				   n_users == 1 ? "it" : "them");
	return 0;
}
