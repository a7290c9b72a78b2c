/* The cloud-init rendering cases shared by tests/unit/test_cloudinit.c (which compares the
 * module's output with <name>.{user-data,meta-data,network-config}.golden) and
 * tests/tools/ci-schema/ci_render.c (which renders them for the cloud-init schema check).
 * Inputs are deliberately hostile to YAML: every value that a plain scalar would turn into a
 * boolean, null, number, alias, tag, comment or mapping appears somewhere. */
#ifndef PHX_TEST_CI_CASES_H
#define PHX_TEST_CI_CASES_H

#include <stddef.h>

#include "cloudinit.h"

static const char *const ci_case_keys[] = {
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd3ZWnCqAq1mQzJ0zJmY2tqZGVmZ2hpamtsbW5vcHFy "
	"alice@laptop",
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7+/a= ops key #2: backup",
};
static const char *const ci_case_groups[] = {"docker", "adm"};
static const char *const ci_case_dns[] = {"10.0.0.53", "1.1.1.1"};
static const char *const ci_case_search[] = {"example.com", "lab.example.com"};
static const char *const ci_case_packages[] = {"qemu-guest-agent", "curl", "yes", "on"};

static const struct ci_write_file ci_case_files[] = {
	{"/etc/phoenix/app.conf",
	 "# managed by phoenix\nkey: value\nlist:\n  - *not_an_alias\n  - &not_an_anchor x\n"
	 "enabled: yes\nmode: 0755\nlimit: 1e3\n",
	 "0644", "root:root"},
	{"/etc/phoenix/one-line", "key: value # not a comment", "0600", "root:root"},
	{"/etc/phoenix/star", "*star", "0644", NULL},
	{"/etc/phoenix/no-trailing-newline", "first line\nsecond line", NULL, NULL},
	{"/etc/phoenix/trailing-spaces", "line with trailing space \nnext\n", NULL, NULL},
	{"/etc/phoenix/tabs", "#!/bin/sh\n\techo tabbed\n", "0755", NULL},
	{"/etc/phoenix/empty", "", NULL, NULL},
	{"/etc/phoenix/yes", "yes", NULL, NULL},
	{"/etc/phoenix/null", "~", NULL, NULL},
	{"/etc/phoenix/unicode", "gr\xc3\xbc\xc3\x9f dich \xe2\x9c\x93\n", NULL, NULL},
};

static const struct ci_feature ci_case_features[] = {
	{"docker", "#!/bin/sh\n# test stand-in for configs/features/docker.sh\nset -eu\n"
		   "echo \"docker for ${PHOENIX_USER:-nobody}\"\n"},
	{"hello.world", "#!/bin/sh\necho 'hello: world' > /tmp/hello\n"},
};

/* static IP, everything filled */
static const struct ci_input ci_case_static = {
	.hostname = "web-01",
	.fqdn = "web-01.example.com",
	.user = {.name = "alice",
		 .password_hash =
			 "$6$rounds=4096$saltsalt$Xb6hN0r9mJ3V1qYzRk.u/8wTz1aYQm2E0JgqKf9Q",
		 .ssh_keys = ci_case_keys,
		 .n_ssh_keys = 2,
		 .groups = ci_case_groups,
		 .n_groups = 2},
	.packages = ci_case_packages,
	.n_packages = 4,
	.write_files = ci_case_files,
	.n_write_files = sizeof(ci_case_files) / sizeof(ci_case_files[0]),
	.features = ci_case_features,
	.n_features = 2,
	.network = {.mac = "BC:24:11:AB:CD:EF",
		    .ip_cidr = "10.0.0.5/24",
		    .gateway = "10.0.0.1",
		    .dns_servers = ci_case_dns,
		    .n_dns_servers = 2,
		    .search_domains = ci_case_search,
		    .n_search_domains = 2},
	.instance_seed = "8001",
};

/* DHCP, no password (locked), no keys, nothing optional */
static const struct ci_input ci_case_dhcp = {
	.hostname = "db",
	.user = {.name = "ubuntu"},
	.network = {.mac = "12:34:56:78:90:12"},
	.instance_seed = "8002",
};

/* YAML-special scalars in every user-controlled place */
static const char *const ci_case_tricky_keys[] = {"no", "null"};
static const char *const ci_case_tricky_groups[] = {"on", "0755", "1e3", "*g", "&g", "!g"};
static const char *const ci_case_tricky_packages[] = {
	"Yes",	      "OFF",  "~",     "0x1F", "12:30", "2024-01-01", ".inf",  "-dash", "? q",
	"@at",	      "%p",   "`tick", "[a]",  "{b}",	"a, b",	      "|pipe", ">gt",	"'single'",
	"\"double\"", "x #c", "a: b",  "a:b",  " lead", "trail ",     "=",     "<<",
};
static const struct ci_input ci_case_tricky = {
	.hostname = "true",
	.fqdn = "1e3.example",
	.user = {.name = "yes",
		 .password_hash = "!",
		 .ssh_keys = ci_case_tricky_keys,
		 .n_ssh_keys = 2,
		 .sudo = "ALL=(ALL:ALL) ALL # audited",
		 .shell = "/usr/bin/zsh",
		 .groups = ci_case_tricky_groups,
		 .n_groups = sizeof(ci_case_tricky_groups) / sizeof(ci_case_tricky_groups[0])},
	.packages = ci_case_tricky_packages,
	.n_packages = sizeof(ci_case_tricky_packages) / sizeof(ci_case_tricky_packages[0]),
	.network = {.mac = "00:00:00:00:00:01",
		    .ip_cidr = "2001:db8::5/64",
		    .gateway = "2001:db8::1",
		    .dns_servers = ci_case_dns,
		    .n_dns_servers = 1},
	.instance_seed = "8003",
};

/* several NICs (#17): static v4+v6 with routes and DNS, SLAAC, DHCPv6 without IPv4 */
static const char *const ci_case_multinic_dns[] = {"10.0.0.53", "2001:db8::53"};
static const struct ci_route ci_case_multinic_routes[] = {
	{"10.1.0.0/16", "10.0.1.1"},
	{"fd00::/8", "fe80::1"},
};
static const struct ci_network ci_case_multinic_more[] = {
	{.mac = "BC:24:11:00:00:02", .ip6 = "auto", .routes = ci_case_multinic_routes,
	 .n_routes = 2},
	{.mac = "BC:24:11:00:00:03", .no_dhcp4 = true, .ip6 = "dhcp"},
};
static const struct ci_input ci_case_multinic = {
	.hostname = "router",
	.user = {.name = "ops"},
	.network = {.mac = "BC:24:11:00:00:01",
		    .ip_cidr = "10.0.0.5/24",
		    .gateway = "10.0.0.1",
		    .ip6 = "2001:db8::5/64",
		    .gateway6 = "2001:db8::1",
		    .dns_servers = ci_case_multinic_dns,
		    .n_dns_servers = 2},
	.more_networks = ci_case_multinic_more,
	.n_more_networks = 2,
	.instance_seed = "8004",
};

/* user-data parts and vendor-data (#17): user-data becomes MIME multipart */
static const struct ci_part ci_case_parts_user[] = {
	{"text/x-shellscript", "#!/bin/sh\necho part one > /run/phoenix-part-1\n"},
	{"text/cloud-config", "#cloud-config\npackages: [htop]\nruncmd:\n- [touch, /run/phx-cc]\n"},
	{"text/x-shellscript-per-boot", "#!/bin/sh\n# no trailing newline\ntrue"},
};
static const struct ci_part ci_case_parts_vendor[] = {
	{"text/cloud-config", "#cloud-config\nntp:\n  enabled: true\n  servers: [ntp.example]\n"},
};
static const struct ci_input ci_case_parts = {
	.hostname = "parts",
	.user = {.name = "ops"},
	.packages = ci_case_packages,
	.n_packages = 1,
	.network = {.mac = "BC:24:11:00:00:09"},
	.parts = ci_case_parts_user,
	.n_parts = 3,
	.vendor_parts = ci_case_parts_vendor,
	.n_vendor_parts = 1,
	.instance_seed = "8005",
};

struct ci_case {
	const char *name;
	const struct ci_input *in;
};

static const struct ci_case ci_cases[] = {
	{"static", &ci_case_static},
	{"dhcp", &ci_case_dhcp},
	{"tricky", &ci_case_tricky},
	{"multinic", &ci_case_multinic},
	{"parts", &ci_case_parts},
};

#define CI_N_CASES (sizeof(ci_cases) / sizeof(ci_cases[0]))

#endif
