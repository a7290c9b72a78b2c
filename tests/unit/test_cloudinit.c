/* cloudinit: golden user-data/meta-data/network-config, determinism, instance-id, YAML
 * quoting round-trips, input errors, and Proxmox native sshkeys/ipconfig values.
 * Goldens live in tests/data/cloudinit/ (relative to PHX_SRC, default the working directory);
 * after an intended change, regenerate them with tests/tools/ci-schema/ci_render and review
 * the diff. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../data/cloudinit/ci_cases.h"
#include "buf.h"
#include "cloudinit.h"
#include "fsutil.h"

TestSuite(cloudinit);

static void read_golden(const char *name, const char *ext, struct buf *out)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *src = getenv("PHX_SRC");
	char path[4096];

	snprintf(path, sizeof(path), "%s/tests/data/cloudinit/%s.%s.golden", src ? src : ".", name,
		 ext);
	cr_assert_eq(fs_read_file(path, out, &err), 0, "%s", err.msg);
}

static void assert_same(const char *what, const char *got, size_t got_len, const struct buf *want)
{
	cr_assert_eq(strlen(got), got_len, "%s: length does not match the NUL", what);
	cr_assert_eq(got_len, want->len, "%s: %zu bytes, golden has %zu\n--- got:\n%s", what,
		     got_len, want->len, got);
	cr_assert(memcmp(got, buf_str(want), got_len) == 0,
		  "%s differs\n--- got:\n%s\n--- want:\n%s", what, got, buf_str(want));
}

Test(cloudinit, every_case_matches_its_golden_files)
{
	for (size_t i = 0; i < CI_N_CASES; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct ci_output o = CI_OUTPUT_INIT;
		struct buf ud = BUF_INIT, md = BUF_INIT, nc = BUF_INIT;
		char what[128];

		cr_assert_eq(ci_render(ci_cases[i].in, &o, &err), 0, "%s: %s", ci_cases[i].name,
			     err.msg);
		read_golden(ci_cases[i].name, "user-data", &ud);
		read_golden(ci_cases[i].name, "meta-data", &md);
		read_golden(ci_cases[i].name, "network-config", &nc);
		snprintf(what, sizeof(what), "%s user-data", ci_cases[i].name);
		assert_same(what, o.user_data, o.user_data_len, &ud);
		snprintf(what, sizeof(what), "%s meta-data", ci_cases[i].name);
		assert_same(what, o.meta_data, o.meta_data_len, &md);
		snprintf(what, sizeof(what), "%s network-config", ci_cases[i].name);
		assert_same(what, o.network_config, o.network_config_len, &nc);
		cr_assert_eq(!o.vendor_data, !ci_cases[i].in->n_vendor_parts, "%s",
			     ci_cases[i].name);
		if (o.vendor_data) {
			struct buf vd = BUF_INIT;

			read_golden(ci_cases[i].name, "vendor-data", &vd);
			snprintf(what, sizeof(what), "%s vendor-data", ci_cases[i].name);
			assert_same(what, o.vendor_data, o.vendor_data_len, &vd);
			buf_release(&vd);
		}
		buf_release(&ud);
		buf_release(&md);
		buf_release(&nc);
		ci_output_release(&o);
	}
}

Test(cloudinit, rendering_twice_gives_identical_bytes)
{
	for (size_t i = 0; i < CI_N_CASES; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct ci_output a = CI_OUTPUT_INIT, b = CI_OUTPUT_INIT;

		cr_assert_eq(ci_render(ci_cases[i].in, &a, &err), 0, "%s", err.msg);
		cr_assert_eq(ci_render(ci_cases[i].in, &b, &err), 0, "%s", err.msg);
		cr_assert_eq(a.user_data_len, b.user_data_len);
		cr_assert(memcmp(a.user_data, b.user_data, a.user_data_len) == 0);
		cr_assert_eq(a.network_config_len, b.network_config_len);
		cr_assert(memcmp(a.network_config, b.network_config, a.network_config_len) == 0);
		cr_assert_eq(a.meta_data_len, b.meta_data_len);
		cr_assert(memcmp(a.meta_data, b.meta_data, a.meta_data_len) == 0);
		cr_assert_str_eq(a.instance_id, b.instance_id);
		ci_output_release(&a);
		ci_output_release(&b);
	}
}

Test(cloudinit, instance_id_is_iid_plus_16_hex_and_is_in_meta_data)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output o = CI_OUTPUT_INIT;
	char line[64];

	cr_assert_eq(ci_render(&ci_case_static, &o, &err), 0, "%s", err.msg);
	cr_assert_eq(strlen(o.instance_id), 20);
	cr_assert(strncmp(o.instance_id, "iid-", 4) == 0);
	cr_assert_eq(strspn(o.instance_id + 4, "0123456789abcdef"), 16, "%s", o.instance_id);
	snprintf(line, sizeof(line), "instance-id: %s\n", o.instance_id);
	cr_assert(strncmp(o.meta_data, line, strlen(line)) == 0, "%s", o.meta_data);
	cr_assert(strstr(o.meta_data, "local-hostname: web-01\n"));
	ci_output_release(&o);
}

/* A change anywhere in the rendered content (or the seed) must give a new id so cloud-init
 * re-runs its per-instance modules; the same content must keep it. */
Test(cloudinit, instance_id_follows_content)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output base = CI_OUTPUT_INIT, o = CI_OUTPUT_INIT;
	struct ci_input in = ci_case_static;

	cr_assert_eq(ci_render(&in, &base, &err), 0, "%s", err.msg);

	in.network.ip_cidr = "10.0.0.6/24";
	cr_assert_eq(ci_render(&in, &o, &err), 0, "%s", err.msg);
	cr_assert_str_neq(o.instance_id, base.instance_id);
	cr_assert_str_eq(o.user_data, base.user_data);
	ci_output_release(&o);

	in = ci_case_static;
	in.user.shell = "/bin/sh";
	cr_assert_eq(ci_render(&in, &o, &err), 0, "%s", err.msg);
	cr_assert_str_neq(o.instance_id, base.instance_id);
	ci_output_release(&o);

	in = ci_case_static;
	in.instance_seed = "8009";
	cr_assert_eq(ci_render(&in, &o, &err), 0, "%s", err.msg);
	cr_assert_str_neq(o.instance_id, base.instance_id);
	cr_assert_str_eq(o.user_data, base.user_data);
	ci_output_release(&o);
	ci_output_release(&base);
}

/* user_data_parts: ours first as text/cloud-config, then each part with its type, content
 * byte for byte before the delimiter's line break, Merge-Type only on cloud-config parts */
Test(cloudinit, parts_make_user_data_mime_multipart_with_ours_first)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output o = CI_OUTPUT_INIT, plain = CI_OUTPUT_INIT;
	struct ci_input in = ci_case_parts;
	const char *ud, *b, *p1, *p2, *p3, *end;
	char boundary[40], delim[48];

	cr_assert_eq(ci_render(&in, &o, &err), 0, "%s", err.msg);
	ud = o.user_data;
	cr_assert(!strncmp(ud, "Content-Type: multipart/mixed; boundary=\"", 41), "%s", ud);
	b = ud + 41;
	snprintf(boundary, sizeof(boundary), "%.*s", (int)strcspn(b, "\""), b);
	cr_assert_eq(strlen(boundary), 28, "%s", boundary);
	cr_assert(!strncmp(boundary, "==phoenix-", 10));
	snprintf(delim, sizeof(delim), "\n--%s\n", boundary);
	p1 = strstr(ud, delim);
	cr_assert_not_null(p1);
	cr_assert(strstr(p1, "Content-Type: text/cloud-config; charset=\"utf-8\"\n"));
	cr_assert(strstr(p1, "\n\n#cloud-config\nhostname: parts\n"), "ours first:\n%s", p1);
	p2 = strstr(ud, "Content-Type: text/x-shellscript; charset=\"utf-8\"");
	p3 = strstr(ud, "Content-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\n"
			"Content-Transfer-Encoding: 8bit\nContent-Disposition: attachment; "
			"filename=\"part-002\"\nMerge-Type: list(append)+dict(no_replace,"
			"recurse_list)+str()\n\n#cloud-config\npackages: [htop]\n");
	cr_assert(p2 && p3 && p2 < p3, "parts in order, merge type on the cloud-config one:\n%s",
		  ud);
	cr_assert(strstr(ud, "filename=\"part-001\"\n\n#!/bin/sh\necho part one"));
	cr_assert(strstr(ud, "filename=\"part-003\"\n\n#!/bin/sh\n# no trailing newline\ntrue\n--"));
	p1 = strstr(ud, "Merge-Type");
	cr_assert(p1 && !strstr(p1 + 1, "Merge-Type"), "Merge-Type on the one cloud-config part");
	snprintf(delim, sizeof(delim), "--%s--\n", boundary);
	end = strstr(ud, delim);
	cr_assert(end && !end[strlen(delim)], "ends with the close delimiter:\n%s", ud);
	/* the same document without parts is the plain #cloud-config */
	in.parts = NULL;
	in.n_parts = 0;
	cr_assert_eq(ci_render(&in, &plain, &err), 0, "%s", err.msg);
	cr_assert(!strncmp(plain.user_data, "#cloud-config\n", 14));
	cr_assert(strstr(ud, plain.user_data), "the plain document is the first part");
	cr_assert_str_neq(plain.instance_id, o.instance_id);
	ci_output_release(&plain);
	ci_output_release(&o);
}

Test(cloudinit, vendor_data_is_its_own_file_and_moves_the_instance_id)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output a = CI_OUTPUT_INIT, b = CI_OUTPUT_INIT;
	struct ci_input in = ci_case_parts;
	const struct ci_part other = {"text/cloud-config", "#cloud-config\nntp: {enabled: false}\n"};

	cr_assert_eq(ci_render(&in, &a, &err), 0, "%s", err.msg);
	cr_assert_not_null(a.vendor_data);
	cr_assert(strstr(a.vendor_data, "\n\n#cloud-config\nntp:\n  enabled: true\n"));
	cr_assert_null(strstr(a.vendor_data, "Merge-Type"), "vendor-data keeps cloud-init's merge");
	cr_assert_null(strstr(a.vendor_data, "hostname"), "vendor-data has no user-data of ours");
	in.vendor_parts = &other;
	cr_assert_eq(ci_render(&in, &b, &err), 0, "%s", err.msg);
	cr_assert_str_eq(a.user_data, b.user_data);
	cr_assert_str_neq(a.instance_id, b.instance_id);
	ci_output_release(&b);
	in.n_vendor_parts = 0;
	cr_assert_eq(ci_render(&in, &b, &err), 0, "%s", err.msg);
	cr_assert_null(b.vendor_data);
	cr_assert_eq(b.vendor_data_len, 0);
	ci_output_release(&b);
	ci_output_release(&a);
}

Test(cloudinit, bad_parts_are_rejected_naming_the_part)
{
	static const struct {
		struct ci_part part;
		bool vendor;
		const char *needle;
	} cases[] = {
		{{"text/x-shellscript", "echo no shebang\n"}, false,
		 "user_data_parts[0]: a text/x-shellscript part must start with '#!'"},
		{{"text/x-shellscript-per-once", "set -e\n"}, true, "vendor_data[0]: a "
								    "text/x-shellscript-per-once"},
		{{"text/cloud-config", "packages: [a]\n"}, false,
		 "user_data_parts[0]: a text/cloud-config part must be a YAML mapping"},
		{{"text/cloud-config", "#cloud-config\n- a list\n"}, false, "YAML mapping"},
		{{"text/cloud-config", "#cloud-config\nkey: [unclosed\n"}, true,
		 "vendor_data[0]: a text/cloud-config part must be a YAML mapping"},
		{{"text/cloud-config", "#cloud-configx\na: 1\n"}, false, "YAML mapping"},
		{{"text/x-shellscript", ""}, false, "user_data_parts[0]: empty content"},
		{{"text/plain\nX-Evil: 1", "x"}, false, "user_data_parts[0].type"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct ci_output o = CI_OUTPUT_INIT;
		struct ci_input in = ci_case_parts;

		if (cases[i].vendor) {
			in.vendor_parts = &cases[i].part;
		} else {
			in.parts = &cases[i].part;
			in.n_parts = 1;
		}
		cr_assert_eq(ci_render(&in, &o, &err), -1, "case %zu", i);
		cr_assert_eq(err.code, PHX_E_INPUT, "case %zu", i);
		cr_assert(strstr(err.msg, cases[i].needle), "case %zu: %s", i, err.msg);
		cr_assert_null(o.user_data, "case %zu: output untouched", i);
	}
}

Test(cloudinit, dhcp_when_no_ip_and_static_routes_without_gateway4)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output d = CI_OUTPUT_INIT, s = CI_OUTPUT_INIT;

	cr_assert_eq(ci_render(&ci_case_dhcp, &d, &err), 0, "%s", err.msg);
	cr_assert(strstr(d.network_config, "    dhcp4: true\n"));
	cr_assert_null(strstr(d.network_config, "addresses"));
	cr_assert_null(strstr(d.network_config, "routes"));

	cr_assert_eq(ci_render(&ci_case_static, &s, &err), 0, "%s", err.msg);
	cr_assert_null(strstr(s.network_config, "dhcp4"));
	cr_assert_null(strstr(s.network_config, "gateway4"));
	cr_assert(strstr(s.network_config, "    routes:\n    - to: \"0.0.0.0/0\"\n"
					   "      via: \"10.0.0.1\"\n"));
	cr_assert(strstr(s.network_config, "      macaddress: \"bc:24:11:ab:cd:ef\"\n"),
		  "MAC must be lower-cased: %s", s.network_config);
	ci_output_release(&d);
	ci_output_release(&s);
}

Test(cloudinit, user_without_password_is_locked_and_defaults_apply)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output o = CI_OUTPUT_INIT;

	cr_assert_eq(ci_render(&ci_case_dhcp, &o, &err), 0, "%s", err.msg);
	cr_assert(strstr(o.user_data, "  lock_passwd: true\n"));
	cr_assert_null(strstr(o.user_data, "passwd:  "));
	cr_assert_null(strstr(o.user_data, "  passwd:"));
	cr_assert(strstr(o.user_data, "  sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"));
	cr_assert(strstr(o.user_data, "  shell: /bin/bash\n"));
	cr_assert(strncmp(o.user_data, "#cloud-config\n", 14) == 0);
	ci_output_release(&o);
}

Test(cloudinit, empty_sudo_means_no_sudo_rule)
{
	struct phx_err err = PHX_ERR_INIT;
	struct ci_output o = CI_OUTPUT_INIT;
	struct ci_input in = ci_case_dhcp;

	in.user.sudo = "";
	cr_assert_eq(ci_render(&in, &o, &err), 0, "%s", err.msg);
	cr_assert_null(strstr(o.user_data, "sudo"));
	ci_output_release(&o);
}

/* Parses YAML with libyaml and collects the scalars of the sequence under top-level `key`. */
static size_t yaml_seq_values(const char *doc, const char *key, char **vals, size_t max)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0;
	bool want = false, in_seq = false, next_is_value = false, done = false;
	size_t n = 0;

	cr_assert(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)doc, strlen(doc));
	while (!done) {
		cr_assert(yaml_parser_parse(&p, &ev), "parse error: %s", p.problem);
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
			depth++;
			next_is_value = false;
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			in_seq = want;
			break;
		case YAML_SEQUENCE_END_EVENT:
			if (in_seq)
				want = in_seq = false;
			break;
		case YAML_SCALAR_EVENT:
			if (in_seq && n < max) {
				vals[n++] = strdup((const char *)ev.data.scalar.value);
			} else if (depth == 1 && !in_seq) {
				if (!next_is_value)
					want = strcmp((const char *)ev.data.scalar.value, key) == 0;
				next_is_value = !next_is_value;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return n;
}

Test(cloudinit, yaml_special_values_round_trip_as_the_same_strings)
{
	struct phx_err err = PHX_ERR_INIT;
	char *ud = NULL;
	size_t len = 0;
	char *vals[64];
	size_t n;

	cr_assert_eq(ci_render_user_data(&ci_case_tricky, &ud, &len, &err), 0, "%s", err.msg);
	n = yaml_seq_values(ud, "packages", vals, 64);
	cr_assert_eq(n, ci_case_tricky.n_packages);
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(vals[i], ci_case_tricky.packages[i]);
		free(vals[i]);
	}
	/* none of the YAML 1.1 booleans/nulls/numbers may be emitted plain */
	cr_assert(strstr(ud, "- \"Yes\"\n"));
	cr_assert(strstr(ud, "- \"OFF\"\n"));
	cr_assert(strstr(ud, "- \"~\"\n"));
	cr_assert(strstr(ud, "- \"0755\"\n"));
	cr_assert(strstr(ud, "- \"1e3\"\n"));
	cr_assert(strstr(ud, "- \"12:30\"\n"));
	cr_assert(strstr(ud, "- name: \"yes\"\n"));
	cr_assert(strstr(ud, "hostname: \"true\"\n"));
	free(ud);
}

Test(cloudinit, write_files_content_keeps_every_byte)
{
	struct phx_err err = PHX_ERR_INIT;
	char *ud = NULL;
	size_t len = 0;
	yaml_parser_t p;
	yaml_event_t ev;
	size_t file = 0;
	bool next_is_content = false, done = false;
	const size_t nfiles = ci_case_static.n_write_files;

	cr_assert_eq(ci_render_user_data(&ci_case_static, &ud, &len, &err), 0, "%s", err.msg);
	cr_assert(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)ud, len);
	while (!done) {
		cr_assert(yaml_parser_parse(&p, &ev), "parse error: %s", p.problem);
		if (ev.type == YAML_SCALAR_EVENT) {
			const char *v = (const char *)ev.data.scalar.value;

			if (next_is_content) {
				if (file < nfiles)
					cr_assert_str_eq(v,
							 ci_case_static.write_files[file].content,
							 "write_files[%zu]", file);
				else
					cr_assert_str_eq(v, ci_case_static.features[file - nfiles]
								    .script_content);
				file++;
				next_is_content = false;
			} else if (strcmp(v, "content") == 0) {
				next_is_content = true;
			}
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	cr_assert_eq(file, nfiles + ci_case_static.n_features);
	free(ud);
}

/* Line breaks other than LF would be folded to LF inside a literal block. */
Test(cloudinit, content_with_crlf_or_unicode_breaks_keeps_its_bytes)
{
	static const struct ci_write_file files[] = {
		{"/etc/crlf", "line one\r\nline two\r\n", NULL, NULL},
		{"/etc/nel",
		 "a\xc2\x85"
		 "b\n",
		 NULL, NULL},
		{"/etc/ls",
		 "a\xe2\x80\xa8"
		 "b\n",
		 NULL, NULL},
		{"/etc/lf", "a\nb\n", NULL, NULL},
	};
	struct ci_input in = ci_case_dhcp;
	struct phx_err err = PHX_ERR_INIT;
	char *ud = NULL;
	size_t len = 0, file = 0;
	yaml_parser_t p;
	yaml_event_t ev;
	bool next_is_content = false, done = false;

	in.write_files = files;
	in.n_write_files = 4;
	cr_assert_eq(ci_render_user_data(&in, &ud, &len, &err), 0, "%s", err.msg);
	cr_assert(strstr(ud, "  content: \"line one\\r\\nline two\\r\\n\"\n"), "%s", ud);
	cr_assert(strstr(ud, "  content: |\n    a\n    b\n"), "LF-only text stays a literal block");
	cr_assert(yaml_parser_initialize(&p));
	yaml_parser_set_input_string(&p, (const unsigned char *)ud, len);
	while (!done) {
		cr_assert(yaml_parser_parse(&p, &ev), "parse error: %s", p.problem);
		if (ev.type == YAML_SCALAR_EVENT) {
			const char *v = (const char *)ev.data.scalar.value;

			if (next_is_content) {
				cr_assert_str_eq(v, files[file].content, "%s", files[file].path);
				file++;
				next_is_content = false;
			} else if (strcmp(v, "content") == 0) {
				next_is_content = true;
			}
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	cr_assert_eq(file, 4);
	free(ud);
}

Test(cloudinit, features_run_once_each_in_order_as_exec_lists)
{
	struct phx_err err = PHX_ERR_INIT;
	char *ud = NULL;
	size_t len = 0;
	const char *a, *b;

	cr_assert_eq(ci_render_user_data(&ci_case_static, &ud, &len, &err), 0, "%s", err.msg);
	a = strstr(ud,
		   "- [env, PHOENIX_USER=alice, /bin/sh, /var/lib/phoenix/features/docker.sh]\n");
	b = strstr(ud, "- [env, PHOENIX_USER=alice, /bin/sh, "
		       "/var/lib/phoenix/features/hello.world.sh]\n");
	cr_assert(a && b && a < b, "%s", ud);
	cr_assert(strstr(ud, "- path: /var/lib/phoenix/features/docker.sh\n"));
	free(ud);
}

struct bad_case {
	const char *name;
	void (*mutate)(struct ci_input *in);
	const char *want; /* substring of the message: the field and the value */
};

static void bad_mac(struct ci_input *in)
{
	in->network.mac = "BC:24:11:AB:CD";
}
static void bad_cidr(struct ci_input *in)
{
	in->network.ip_cidr = "10.0.0.5";
}
static void bad_prefix(struct ci_input *in)
{
	in->network.ip_cidr = "10.0.0.5/33";
}
static void gw_without_ip(struct ci_input *in)
{
	in->network.ip_cidr = NULL;
}
static void gw_other_family(struct ci_input *in)
{
	in->network.gateway = "2001:db8::1";
}
static const char *const bad_dns_list[] = {"10.0.0.53", "dns.example.com"};
static void bad_dns(struct ci_input *in)
{
	in->network.dns_servers = bad_dns_list;
}
static const struct ci_feature bad_feature_list[] = {{"../etc/cron", "#!/bin/sh\n"}};
static void bad_feature_name(struct ci_input *in)
{
	in->features = bad_feature_list;
	in->n_features = 1;
}
static const struct ci_feature dup_feature_list[] = {{"docker", "a"}, {"docker", "b"}};
static void dup_feature(struct ci_input *in)
{
	in->features = dup_feature_list;
	in->n_features = 2;
}
static const struct ci_write_file bad_utf8_files[] = {{"/etc/x", "bad \xff\xfe byte", NULL, NULL}};
static void bad_utf8(struct ci_input *in)
{
	in->write_files = bad_utf8_files;
	in->n_write_files = 1;
}
static const struct ci_write_file rel_files[] = {{"etc/x", "x", NULL, NULL}};
static void relative_path(struct ci_input *in)
{
	in->write_files = rel_files;
	in->n_write_files = 1;
}
static void no_hostname(struct ci_input *in)
{
	in->hostname = "";
}
static const char *const empty_key_list[] = {"ssh-ed25519 AAAA x", ""};
static void empty_key(struct ci_input *in)
{
	in->user.ssh_keys = empty_key_list;
}

static const struct bad_case bad_cases[] = {
	{"short mac", bad_mac,
	 "network.mac: expected a MAC like 'BC:24:11:00:00:01', got 'BC:24:11:AB:CD'"},
	{"cidr without prefix", bad_cidr,
	 "network.ip: expected CIDR like '10.0.0.5/24', got '10.0.0.5'"},
	{"prefix out of range", bad_prefix, "got '10.0.0.5/33'"},
	{"gateway without ip", gw_without_ip, "network.gateway: '10.0.0.1' needs a static address"},
	{"gateway of other family", gw_other_family, "got '2001:db8::1'"},
	{"dns name instead of address", bad_dns,
	 "network.dns_servers[1]: expected an IP address, got 'dns.example.com'"},
	{"feature name with slash", bad_feature_name, "features[0].name"},
	{"feature twice", dup_feature, "features[1]: 'docker' listed twice"},
	{"invalid utf-8", bad_utf8, "write_files[0].content: not valid UTF-8"},
	{"relative path", relative_path,
	 "write_files[0].path: expected an absolute path, got 'etc/x'"},
	{"no hostname", no_hostname, "hostname: missing"},
	{"empty ssh key", empty_key, "user.ssh_keys[1]: empty value"},
};

Test(cloudinit, bad_input_is_rejected_naming_field_and_value)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct ci_input in = ci_case_static;
		struct ci_output o = CI_OUTPUT_INIT;

		o.user_data = (char *)"sentinel";
		bad_cases[i].mutate(&in);
		cr_assert_eq(ci_render(&in, &o, &err), -1, "%s: accepted", bad_cases[i].name);
		cr_assert_eq(err.code, PHX_E_INPUT, "%s: code %s", bad_cases[i].name,
			     phx_err_code_name(err.code));
		cr_assert(strstr(err.msg, bad_cases[i].want), "%s: message '%s' lacks '%s'",
			  bad_cases[i].name, err.msg, bad_cases[i].want);
		cr_assert_str_eq(o.user_data, "sentinel", "%s: output touched", bad_cases[i].name);
	}
}

/* --- native mode --- */

/* What Proxmox does with the value: URI::Escape::uri_unescape. */
static char *uri_unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	cr_assert(out);
	for (; *s; s++) {
		unsigned v;

		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

Test(cloudinit, sshkeys_are_encoded_like_encodeuricomponent)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *one[] = {"ssh-ed25519 AAAAC3Nz+a/b= alice@laptop"};
	char *s = NULL;

	cr_assert_eq(ci_native_sshkeys_encode(one, 1, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s, "ssh-ed25519%20AAAAC3Nz%2Ba%2Fb%3D%20alice%40laptop");
	free(s);
}

Test(cloudinit, sshkeys_joined_by_encoded_newline_without_trailing_one)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *two[] = {"ssh-rsa AAA a", "ssh-ed25519 BBB b"};
	char *s = NULL;

	cr_assert_eq(ci_native_sshkeys_encode(two, 2, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s, "ssh-rsa%20AAA%20a%0Assh-ed25519%20BBB%20b");
	free(s);
}

Test(cloudinit, sshkeys_encoding_passes_pve_urlencoded_format_and_decodes_back)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *keys[] = {
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd3ZW+/== o'hara (work) ~x! *y* -_.",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNh= r\xc3\xa9mi@h\xc3\xb4te #1: \"quoted\" 100%",
	};
	char *s = NULL, *dec;

	cr_assert_eq(ci_native_sshkeys_encode(keys, 2, &s, &err), 0, "%s", err.msg);
	/* pve-common pve_verify_urlencoded: ^[-%a-zA-Z0-9_.!~*'()]*$ */
	cr_assert_eq(
		strspn(s,
		       "-%abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.!~*'()"),
		strlen(s), "%s", s);
	cr_assert(strstr(s, "o'hara%20(work)%20~x!%20*y*%20-_."), "%s", s);
	cr_assert(strstr(s, "r%C3%A9mi%40h%C3%B4te%20%231%3A%20%22quoted%22%20100%25"), "%s", s);
	dec = uri_unescape(s);
	cr_assert_eq(strlen(dec), strlen(keys[0]) + 1 + strlen(keys[1]));
	cr_assert(strncmp(dec, keys[0], strlen(keys[0])) == 0);
	cr_assert_eq(dec[strlen(keys[0])], '\n');
	cr_assert_str_eq(dec + strlen(keys[0]) + 1, keys[1]);
	free(dec);
	free(s);
}

Test(cloudinit, sshkeys_rejects_empty_and_multiline_keys)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *empty[] = {"ssh-rsa AAA", ""};
	const char *multi[] = {"ssh-rsa AAA a\nssh-rsa BBB b"};
	char *s = (char *)"untouched";

	cr_assert_eq(ci_native_sshkeys_encode(empty, 2, &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "ssh_keys[1]: empty key"), "%s", err.msg);
	cr_assert_str_eq(s, "untouched");

	phx_err_clear(&err);
	cr_assert_eq(ci_native_sshkeys_encode(multi, 1, &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "ssh_keys[0]: a key must be one line"), "%s", err.msg);
	cr_assert_str_eq(s, "untouched");
}

Test(cloudinit, sshkeys_of_no_keys_is_empty_string)
{
	struct phx_err err = PHX_ERR_INIT;
	char *s = NULL;

	cr_assert_eq(ci_native_sshkeys_encode(NULL, 0, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s, "");
	free(s);
}

Test(cloudinit, ipconfig_values)
{
	static const struct {
		const char *ip, *gw, *want;
	} ok[] = {
		{"10.0.0.5/24", "10.0.0.1", "ip=10.0.0.5/24,gw=10.0.0.1"},
		{"10.0.0.5/24", NULL, "ip=10.0.0.5/24"},
		{NULL, NULL, "ip=dhcp"},
		{"2001:db8::5/64", "2001:db8::1", "ip6=2001:db8::5/64,gw6=2001:db8::1"},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char *s = NULL;

		cr_assert_eq(ci_native_ipconfig(ok[i].ip, ok[i].gw, &s, &err), 0, "%s", err.msg);
		cr_assert_str_eq(s, ok[i].want);
		free(s);
	}
}

Test(cloudinit, ipconfig_rejects_bad_values_naming_them)
{
	static const struct {
		const char *ip, *gw, *want;
	} bad[] = {
		{"10.0.0.5", NULL, "ip: expected CIDR like '10.0.0.5/24', got '10.0.0.5'"},
		{"10.0.0.256/24", NULL, "got '10.0.0.256/24'"},
		{NULL, "10.0.0.1", "gateway: '10.0.0.1' needs a static address"},
		{"10.0.0.5/24", "fe80::1", "got 'fe80::1'"},
		{"10.0.0.5/24", "gw", "got 'gw'"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char *s = (char *)"untouched";

		cr_assert_eq(ci_native_ipconfig(bad[i].ip, bad[i].gw, &s, &err), -1, "%zu", i);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, bad[i].want), "'%s' lacks '%s'", err.msg, bad[i].want);
		cr_assert_str_eq(s, "untouched");
	}
}

Test(cloudinit, release_accepts_null_and_empty)
{
	struct ci_output o = CI_OUTPUT_INIT;

	ci_output_release(NULL);
	ci_output_release(&o);
	cr_assert_null(o.user_data);
}
