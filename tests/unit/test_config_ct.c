/* Unit tests for the `containers` array (config_ct.c): each key's bad values fail with -1,
 * PHX_E_INPUT, the output untouched and a line naming the file and the JSON path; a good
 * container loads with its values and the defaults it inherits. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 a@b"
#define HASH6                                                                                      \
	"$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi."                                       \
	"qce9HICTZjmn1EWAShiibwc0fAu7nPQNEHutqs6KQK0"                                              \
	"SWFhH/UAiuQS."
#define HASHY "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5"
#define HASH6R                                                                                     \
	"$6$rounds=5000$saltsalt$8RWsOfwR6M6PpnoeQiEiWzNTPo1f0HjVYjDnLZhGx16aBFRkeqiHAzfXP/"       \
	"LgrOWMBMXqiU2p"                                                                           \
	"LrXsSOHNUyUm91"

#define CT(extra) "{\"vmid\": 301, \"name\": \"web-1\", \"clone_from_vmid\": 9100" extra "}"
#define CT_AT(vmid, name, extra)                                                                   \
	"{\"vmid\": " vmid ", \"name\": \"" name "\", \"clone_from_vmid\": 9100" extra "}"
#define CTS(cts) "{\"containers\": [" cts "]}"

static char path[256];

static int load(const char *json, struct cfg **ret, struct phx_err *err)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/phx-cfgct-%d.json", (int)getpid());
	f = fopen(path, "w");
	cr_assert(f);
	fputs(json, f);
	cr_assert_eq(fclose(f), 0);
	return cfg_load(path, ret, err);
}

static void cleanup(void)
{
	unlink(path);
}

struct bad_case {
	const char *what, *json, *jpath, *needle;
};

static const struct bad_case bad_cases[] = {
	{"vmid missing", CTS("{\"name\": \"a\", \"clone_from_vmid\": 9100}"),
	 "$.containers[0].vmid", "required"},
	{"vmid too small", CTS(CT_AT("99", "web-1", "")), "$.containers[0].vmid", "got 99"},
	{"name not a hostname", CTS(CT_AT("301", "web_1", "")), "$.containers[0].name", "hostname"},
	{"no source", CTS("{\"vmid\": 301, \"name\": \"a\"}"), "$.containers[0].clone_from_vmid",
	 "required"},
	{"both sources", CTS(CT(", \"clone_from_template\": \"deb\"")),
	 "$.containers[0].clone_from_template", "got both"},
	{"unknown template",
	 CTS("{\"vmid\": 301, \"name\": \"a\", \"clone_from_template\": \"deb\"}"),
	 "$.containers[0].clone_from_template", "expected the name of a template"},
	{"a VM template",
	 "{\"templates\": [{\"name\": \"deb\", \"vmid\": 9000, \"image_url\": "
	 "\"https://example.com/d.img\", \"sha256\": "
	 "\"0000000000000000000000000000000000000000000000000000000000000000\"}], "
	 "\"containers\": [{\"vmid\": 301, \"name\": \"a\", \"clone_from_template\": \"deb\"}]}",
	 "$.containers[0].clone_from_template", "a VM template"},
	{"node auto", CTS(CT(", \"node\": \"auto\"")), "$.containers[0].node", "got 'auto'"},
	{"cores zero", CTS(CT(", \"cores\": 0")), "$.containers[0].cores", "got 0"},
	{"memory below 16", CTS(CT(", \"memory_mb\": 8")), "$.containers[0].memory_mb", "got 8"},
	{"swap string", CTS(CT(", \"swap_mb\": \"512\"")), "$.containers[0].swap_mb",
	 "got a string"},
	{"rootfs zero", CTS(CT(", \"rootfs_gb\": 0")), "$.containers[0].rootfs_gb", "got 0"},
	{"storage bad", CTS(CT(", \"storage\": \"a b\"")), "$.containers[0].storage", "storage ID"},
	{"full_clone string", CTS(CT(", \"full_clone\": \"yes\"")), "$.containers[0].full_clone",
	 "true or false"},
	{"networks and network_config", CTS(CT(", \"networks\": [{}], \"network_config\": {}")),
	 "$.containers[0].networks", "got both"},
	{"networks empty", CTS(CT(", \"networks\": []")), "$.containers[0].networks",
	 "1 to 32 NICs"},
	{"nic ip not a CIDR", CTS(CT(", \"networks\": [{\"ip\": \"10.0.0.5\"}]")),
	 "$.containers[0].networks[0].ip", "IPv4 CIDR"},
	{"nic ip6 bad", CTS(CT(", \"networks\": [{\"ip6\": \"slaac\"}]")),
	 "$.containers[0].networks[0].ip6", "'auto'"},
	{"nic gateway without static ip",
	 CTS(CT(", \"networks\": [{\"ip\": \"dhcp\", \"gateway\": \"10.0.0.1\"}]")),
	 "$.containers[0].networks[0].gateway", "needs a static 'ip'"},
	{"nic gateway6 not v6",
	 CTS(CT(", \"networks\": [{\"ip6\": \"2001:db8::5/64\", \"gateway6\": \"10.0.0.1\"}]")),
	 "$.containers[0].networks[0].gateway6", "IPv6 address"},
	{"nic vlan 4095", CTS(CT(", \"networks\": [{\"vlan\": 4095}]")),
	 "$.containers[0].networks[0].vlan", "got 4095"},
	{"nic mtu 63", CTS(CT(", \"networks\": [{\"mtu\": 63}]")),
	 "$.containers[0].networks[0].mtu", "got 63"},
	{"nic macaddr multicast", CTS(CT(", \"networks\": [{\"macaddr\": \"01:00:00:00:00:01\"}]")),
	 "$.containers[0].networks[0].macaddr", "unicast MAC"},
	{"nic rate string", CTS(CT(", \"networks\": [{\"rate\": \"fast\"}]")),
	 "$.containers[0].networks[0].rate", "MB/s"},
	{"nic model (a VM key)", CTS(CT(", \"networks\": [{\"model\": \"virtio\"}]")),
	 "$.containers[0].networks[0].model", "unknown key"},
	{"network_config gw without ip", CTS(CT(", \"network_config\": {\"gw\": \"10.0.0.1\"}")),
	 "$.containers[0].network_config.gw", "needs a static 'ip'"},
	{"dns not an address", CTS(CT(", \"dns_servers\": [\"dns.example\"]")),
	 "$.containers[0].dns_servers[0]", "IP address"},
	{"searchdomain bad", CTS(CT(", \"searchdomain\": \"a b\"")), "$.containers[0].searchdomain",
	 "DNS domain"},
	{"ssh key bad", CTS(CT(", \"ssh_public_keys\": [\"ssh-ed25519 nope\"]")),
	 "$.containers[0].ssh_public_keys[0]", ""},
	{"password plaintext", CTS(CT(", \"password_hash\": \"secret1\"")),
	 "$.containers[0].password_hash", ""},
	{"password yescrypt (rehashed by pve-container)",
	 CTS(CT(", \"password_hash\": \"" HASHY "\"")), "$.containers[0].password_hash",
	 "crypts a '$y$j...' hash again"},
	{"password sha512 with rounds (rehashed by pve-container)",
	 CTS(CT(", \"password_hash\": \"" HASH6R "\"")), "$.containers[0].password_hash",
	 "without options"},
	{"features keyctl (root only)", CTS(CT(", \"features\": {\"keyctl\": true}")),
	 "$.containers[0].features.keyctl", "unknown key"},
	{"features nesting string", CTS(CT(", \"features\": {\"nesting\": 1}")),
	 "$.containers[0].features.nesting", "true or false"},
	{"unprivileged string", CTS(CT(", \"unprivileged\": \"yes\"")),
	 "$.containers[0].unprivileged", "true or false"},
	{"onboot number", CTS(CT(", \"onboot\": 1")), "$.containers[0].onboot", "true or false"},
	{"startup empty", CTS(CT(", \"startup\": {}")), "$.containers[0].startup",
	 "at least one of"},
	{"tags bad", CTS(CT(", \"tags\": [\"a b\"]")), "$.containers[0].tags[0]", ""},
	{"pool bad", CTS(CT(", \"pool\": \"a b\"")), "$.containers[0].pool", "pool name"},
	{"start string", CTS(CT(", \"start\": \"no\"")), "$.containers[0].start", "true or false"},
	{"disk_size_gb (a VM key)", CTS(CT(", \"disk_size_gb\": 8")),
	 "$.containers[0].disk_size_gb", "unknown key"},
	{"duplicate VMID", CTS(CT("") ", " CT_AT("301", "web-2", "")), "$.containers[1].vmid",
	 "duplicate VMID 301"},
	{"duplicate name", CTS(CT("") ", " CT_AT("302", "WEB-1", "")), "$.containers[1].name",
	 "duplicate name"},
	{"VMID of a VM",
	 "{\"vms\": [{\"vmid\": 301, \"name\": \"vm\", \"clone_from_vmid\": 9000}], "
	 "\"containers\": [" CT("") "]}",
	 "$.containers[0].vmid", "also $.vms[0].vmid"},
	{"name of a VM",
	 "{\"vms\": [{\"vmid\": 8001, \"name\": \"web-1\", \"clone_from_vmid\": 9000}], "
	 "\"containers\": [" CT("") "]}",
	 "$.containers[0].name", "also $.vms[0].name"},
	{"clones a container of the config",
	 CTS(CT("") ", {\"vmid\": 302, \"name\": \"b\", \"clone_from_vmid\": 301}"),
	 "$.containers[1].clone_from_vmid", "is the container 'web-1'"},
	{"key misspelt", CTS(CT(", \"memory\": 512")), "$.containers[0].memory", "did you mean"},
};

#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

ParameterizedTestParameters(config_ct, rejects_bad_container_with_json_path)
{
	static size_t idx[N_BAD];

	for (size_t i = 0; i < N_BAD; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, N_BAD);
}

ParameterizedTest(size_t *i, config_ct, rejects_bad_container_with_json_path, .fini = cleanup)
{
	const struct bad_case *c = &bad_cases[*i];
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *sentinel = (struct cfg *)0x1, *cfg = sentinel;
	char prefix[512];

	cr_assert_eq(load(c->json, &cfg, &err), -1, "%s", c->what);
	cr_assert_eq(err.code, PHX_E_INPUT, "%s", c->what);
	cr_assert_eq(cfg, sentinel, "%s: output written on failure", c->what);
	snprintf(prefix, sizeof(prefix), "%s: %s: ", path, c->jpath);
	cr_assert(strstr(err.msg, prefix) && strstr(strstr(err.msg, prefix), c->needle),
		  "%s: no '%s...%s' in:\n%s", c->what, prefix, c->needle, err.msg);
	cr_assert_null(strstr(err.msg, "secret1"), "%s: a password is never quoted", c->what);
}

Test(config_ct, loads_a_container_with_its_values_and_defaults, .fini = cleanup)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_ct *ct;

	cr_assert_eq(
		load("{\"defaults\": {\"storage\": \"local-lvm\", \"bridge\": \"vmbr1\", "
		     "\"dns_servers\": [\"1.1.1.1\"], \"tags\": [\"lab\"]}, \"containers\": [" CT(
			     ", \"cores\": 2, \"memory_mb\": 1024, \"swap_mb\": 0, "
			     "\"rootfs_gb\": 8, \"networks\": [{\"ip\": \"10.0.0.5/24\", "
			     "\"gateway\": \"10.0.0.1\", \"vlan\": 20, \"firewall\": true}, "
			     "{\"bridge\": \"vmbr2\", \"ip\": \"dhcp\", \"ip6\": \"auto\", "
			     "\"macaddr\": \"bc:24:11:00:00:01\", \"rate\": 12.5}], "
			     "\"ssh_public_keys\": \"" KEY "\", \"password_hash\": \"" HASH6 "\", "
			     "\"features\": {\"nesting\": true}, \"onboot\": true, "
			     "\"startup\": {\"order\": 2, \"up\": 30}, \"tags\": [\"web\"], "
			     "\"start\": false") "]}",
		     &cfg, &err),
		0, "%s", err.msg);
	ct = cfg_find_ct(cfg, 301);
	cr_assert_not_null(ct);
	cr_assert_eq(ct->cores, 2);
	cr_assert_eq(ct->memory_mb, 1024);
	cr_assert(ct->has_swap);
	cr_assert_eq(ct->swap_mb, 0);
	cr_assert_eq(ct->rootfs_gb, 8);
	cr_assert_str_eq(ct->storage, "local-lvm");
	cr_assert_eq(ct->n_nics, 2);
	cr_assert_str_eq(ct->nics[0].bridge, "vmbr1");
	cr_assert_str_eq(ct->nics[0].ip, "10.0.0.5/24");
	cr_assert_str_eq(ct->nics[0].gw, "10.0.0.1");
	cr_assert_eq(ct->nics[0].vlan, 20);
	cr_assert_eq(ct->nics[0].firewall, CFG_TRI_TRUE);
	cr_assert_str_eq(ct->nics[1].bridge, "vmbr2");
	cr_assert_str_eq(ct->nics[1].ip6, "auto");
	cr_assert_str_eq(ct->nics[1].macaddr, "BC:24:11:00:00:01");
	cr_assert_str_eq(ct->nics[1].rate, "12.5");
	cr_assert_eq(ct->dns_servers.n, 1);
	cr_assert_eq(ct->ssh_public_keys.n, 1);
	cr_assert_str_eq(ct->password_hash, HASH6);
	cr_assert(cfg_ct_needs_create(ct));
	cr_assert_eq(ct->nesting, CFG_TRI_TRUE);
	cr_assert_eq(ct->unprivileged, CFG_TRI_UNSET);
	cr_assert_eq(ct->onboot, CFG_TRI_TRUE);
	cr_assert_str_eq(ct->startup, "order=2,up=30");
	cr_assert_eq(ct->tags.n, 2);
	cr_assert_str_eq(ct->tags.items[0], "lab");
	cr_assert(ct->no_start);
	cr_assert_eq(strncmp(ct->config_id, "sha256:", 7), 0);
	cfg_free(cfg);
}

Test(config_ct, network_config_without_ip_is_dhcp, .fini = cleanup)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;

	cr_assert_eq(load(CTS(CT(", \"network_config\": {\"bridge\": \"vmbr9\"}")), &cfg, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(cfg->cts[0].n_nics, 1);
	cr_assert_str_eq(cfg->cts[0].nics[0].ip, "dhcp");
	cr_assert_str_eq(cfg->cts[0].nics[0].bridge, "vmbr9");
	cr_assert_not(cfg_ct_needs_create(&cfg->cts[0]));
	cfg_free(cfg);
}
