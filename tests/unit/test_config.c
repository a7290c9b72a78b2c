/* Unit tests for the config module: every bad-config case must fail with -1, PHX_E_INPUT, the
 * output untouched, and a message line naming the file and the exact JSON path; good configs
 * load with the right values and defaults; environment overrides and the secret sources. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/config_int.h"
#include "config.h"
#include "secret.h"

#define KEY_ED "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 a@b"
#define KEY_EC                                                                                    \
	"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAjsN52ZuIjHIqEc4h8y" \
	"w5BObvQGt+c1YI/4YwRlkg1z3+U8Qx/f3td6GqRU4shP4IesrXuiFhp62hlXXnT8rH0= root@vm"
#define HASH6                                                                                      \
	"$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi.qce9HICTZjmn1EWAShiibwc0fAu7nPQNEHutqs6KQK0" \
	"SWFhH/UAiuQS."
#define HASHY "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5"
#define HASH5 "$5$saltsalt$0rl.MZtoLLPP3X0Rdl8riRnphIcAXJY27/aOAyK2hB5"
#define HASH2B "$2b$10$abcdefghijklmnopqrstuuj7m4XYqbm74SxoBcXyw8to0CQ061DVG"

#define F_VMID "\"vmid\": 8001"
#define F_NAME "\"name\": \"web-1\""
#define F_CLONE "\"clone_from_vmid\": 9000"
#define USER_WITH(fields) "\"user_config\": {\"username\": \"admin\"" fields "}"
#define F_USER USER_WITH(", \"password_hash\": \"" HASH6 "\", \"ssh_public_key\": \"" KEY_ED "\"")
/* a valid VM plus extra fields (each starting with ", ") */
#define VM(extra) "{" F_VMID ", " F_NAME ", " F_CLONE ", " F_USER extra "}"
#define VMS(vms) "{\"vms\": [" vms "]}"
/* a valid VM whose user has only a password hash */
#define VM_HASH(h)                                                                                 \
	"{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(", \"password_hash\": \"" h "\"") "}"
#define TPL(extra)                                                                                 \
	"{\"name\": \"ubuntu-noble\", \"image_url\": \"https://example.com/noble.img\", "         \
	"\"checksum_url\": \"https://example.com/SHA256SUMS\"" extra "}"
#define TPLV(extra) TPL(", \"vmid\": 9000" extra)
#define DOC(tpls, vms) "{\"templates\": [" tpls "], \"vms\": [" vms "]}"
#define NET(fields) ", \"network_config\": {" fields "}"
#define CT_KIND ", \"kind\": \"lxc\""
#define USERS(items) ", \"customize\": {\"users\": [" items "]}"

static char tmpdir[64];

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert(fd >= 0, "open %s", path);
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void setup(void)
{
	char p[256];

	strcpy(tmpdir, "/tmp/phx-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(p, sizeof(p), "%s/configs", tmpdir);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/configs/features", tmpdir);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/configs/features/docker.sh", tmpdir);
	write_file(p, "#!/bin/sh\necho docker\n", 0644);
	snprintf(p, sizeof(p), "%s/k8s.sh", tmpdir);
	write_file(p, "#!/bin/sh\necho k8s\n", 0644);
	snprintf(p, sizeof(p), "%s/motd", tmpdir);
	write_file(p, "hello\n", 0644);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes `json` as tmpdir/name and loads it. */
static int load_json(const char *name, const char *json, struct cfg **ret, struct phx_err *err,
		     char *path, size_t n)
{
	snprintf(path, n, "%s/%s", tmpdir, name);
	write_file(path, json, 0644);
	return cfg_load(path, ret, err);
}

/* True when one line of msg starts with "<file>: <jpath>: " (or "<file><jpath>" when jpath
 * starts with ':', for parse errors) and contains needle. */
static bool has_line(const char *msg, const char *file, const char *jpath, const char *needle)
{
	char prefix[512];

	if (jpath[0] == ':')
		snprintf(prefix, sizeof(prefix), "%s%s", file, jpath);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s: ", file, jpath);
	while (*msg) {
		size_t len = strcspn(msg, "\n");
		char line[2048];

		snprintf(line, sizeof(line), "%.*s", (int)len, msg);
		if (!strncmp(line, prefix, strlen(prefix)) && strstr(line, needle))
			return true;
		msg += len + (msg[len] == '\n');
	}
	return false;
}

static bool every_line_names_file(const char *msg, const char *file)
{
	while (*msg) {
		size_t len = strcspn(msg, "\n");

		if (strncmp(msg, file, strlen(file)))
			return false;
		msg += len + (msg[len] == '\n');
	}
	return true;
}

struct bad_case {
	const char *what;
	const char *json;
	const char *jpath;
	const char *needle;
};

/* Criterion runs each parameter in a fresh process of a position-independent binary, so
 * parameters must not carry pointers: they are indexes into this table. */
static const struct bad_case bad_cases[] = {
		{"syntax error", "{\"vms\": [ {\"vmid\": 1,}]}", ":1:", "expected"},
		{"duplicate JSON key", "{\"vms\": [], \"vms\": []}", ":1:", "duplicate"},
		{"root is an array", "[1, 2]", "$", "expected an object"},
		{"unknown top-level key", "{\"vm\": []}", "$.vm", "did you mean 'vms'?"},
		{"nothing to do", "{\"defaults\": {}}", "$", "'vms' or 'templates'"},
		{"vms not an array", "{\"vms\": {}}", "$.vms", "expected an array, got an object"},
		{"vm not an object", VMS("42"), "$.vms[0]", "expected an object, got an integer 42"},
		{"vmid missing", VMS("{" F_NAME ", " F_CLONE "}"), "$.vms[0].vmid", "required"},
		{"vmid as string", VMS("{\"vmid\": \"8001\", " F_NAME ", " F_CLONE "}"),
		 "$.vms[0].vmid", "got a string '8001'"},
		{"vmid below 100", VMS("{\"vmid\": 99, " F_NAME ", " F_CLONE "}"), "$.vms[0].vmid",
		 "from 100 to 999999999, got 99"},
		{"vmid above range", VMS("{\"vmid\": 1000000000, " F_NAME ", " F_CLONE "}"),
		 "$.vms[0].vmid", "got 1000000000"},
		{"vmid fractional", VMS("{\"vmid\": 8001.5, " F_NAME ", " F_CLONE "}"),
		 "$.vms[0].vmid", "got a number 8001.5"},
		{"name missing", VMS("{" F_VMID ", " F_CLONE "}"), "$.vms[0].name", "required"},
		{"name with underscore", VMS("{" F_VMID ", \"name\": \"web_1\", " F_CLONE "}"),
		 "$.vms[0].name", "got 'web_1'"},
		{"name too long",
		 VMS("{" F_VMID ", \"name\": \"a123456789012345678901234567890123456789012345678901234"
		     "567890123\", " F_CLONE "}"),
		 "$.vms[0].name", "DNS label"},
		{"name with trailing hyphen", VMS("{" F_VMID ", \"name\": \"web-\", " F_CLONE "}"),
		 "$.vms[0].name", "got 'web-'"},
		{"cores zero", VMS(VM(", \"cores\": 0")), "$.vms[0].cores", "from 1 to 128, got 0"},
		{"cores too many", VMS(VM(", \"cores\": 129")), "$.vms[0].cores", "got 129"},
		{"cores as string", VMS(VM(", \"cores\": \"4\"")), "$.vms[0].cores",
		 "got a string '4'"},
		{"memory too small", VMS(VM(", \"memory_mb\": 32")), "$.vms[0].memory_mb",
		 "from 64 to 4194304, got 32"},
		{"memory too big", VMS(VM(", \"memory_mb\": 5000000")), "$.vms[0].memory_mb",
		 "got 5000000"},
		{"disk zero", VMS(VM(", \"disk_size_gb\": 0")), "$.vms[0].disk_size_gb", "got 0"},
		{"disk negative", VMS(VM(", \"disk_size_gb\": -5")), "$.vms[0].disk_size_gb",
		 "got -5"},
		{"misspelt key", VMS(VM(", \"corse\": 4")), "$.vms[0].corse",
		 "did you mean 'cores'?"},
		{"misspelt nested key", VMS(VM(NET("\"ipp\": \"10.0.0.5/24\""))),
		 "$.vms[0].network_config.ipp", "did you mean 'ip'?"},
		{"both clone sources", VMS(VM(", \"clone_from_template\": \"x\"")),
		 "$.vms[0].clone_from_template", "got both"},
		{"no clone source", VMS("{" F_VMID ", " F_NAME "}"), "$.vms[0].clone_from_vmid",
		 "required"},
		{"unknown template",
		 VMS("{" F_VMID ", " F_NAME ", \"clone_from_template\": \"focal\"}"),
		 "$.vms[0].clone_from_template", "got 'focal'"},
		{"clones itself", VMS("{" F_VMID ", " F_NAME ", \"clone_from_vmid\": 8001}"),
		 "$.vms[0].clone_from_vmid", "cannot clone itself"},
		{"clones a config VM",
		 VMS(VM("") ",{\"vmid\": 8002, \"name\": \"web-2\", \"clone_from_vmid\": 8001}"),
		 "$.vms[1].clone_from_vmid", "is the VM 'web-1'"},
		{"duplicate vmid", VMS(VM("") ",{" F_VMID ", \"name\": \"other\", " F_CLONE "}"),
		 "$.vms[1].vmid", "duplicate VMID 8001 (also $.vms[0].vmid)"},
		{"duplicate name", VMS(VM("") ",{\"vmid\": 8002, " F_NAME ", " F_CLONE "}"),
		 "$.vms[1].name", "duplicate VM name 'web-1'"},
		{"ip without prefix", VMS(VM(NET("\"ip\": \"10.0.0.5\", \"gw\": \"10.0.0.1\""))),
		 "$.vms[0].network_config.ip", "expected CIDR like '10.0.0.5/24', got '10.0.0.5'"},
		{"ip octet out of range", VMS(VM(NET("\"ip\": \"10.0.0.256/24\""))),
		 "$.vms[0].network_config.ip", "got '10.0.0.256/24'"},
		{"prefix too long", VMS(VM(NET("\"ip\": \"10.0.0.5/33\""))),
		 "$.vms[0].network_config.ip", "CIDR"},
		{"network address", VMS(VM(NET("\"ip\": \"10.0.0.0/24\""))),
		 "$.vms[0].network_config.ip", "network address"},
		{"broadcast address", VMS(VM(NET("\"ip\": \"10.0.0.255/24\""))),
		 "$.vms[0].network_config.ip", "broadcast address"},
		{"gateway outside subnet",
		 VMS(VM(NET("\"ip\": \"10.0.0.5/24\", \"gw\": \"10.0.1.1\""))),
		 "$.vms[0].network_config.gw", "inside '10.0.0.5/24', got '10.0.1.1'"},
		{"gateway not an address", VMS(VM(NET("\"ip\": \"10.0.0.5/24\", \"gw\": \"gw\""))),
		 "$.vms[0].network_config.gw", "got 'gw'"},
		{"gateway equals ip", VMS(VM(NET("\"ip\": \"10.0.0.5/24\", \"gw\": \"10.0.0.5\""))),
		 "$.vms[0].network_config.gw", "other than"},
		{"gateway without ip", VMS(VM(NET("\"gw\": \"10.0.0.1\""))),
		 "$.vms[0].network_config.gw", "static 'ip'"},
		{"plaintext password",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(", \"password_hash\": "
								 "\"hunter2\"") "}"),
		 "$.vms[0].user_config.password_hash", "mkpasswd -m sha-512"},
		{"truncated sha512 hash",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(", \"password_hash\": "
								 "\"$6$salt$abc\"") "}"),
		 "$.vms[0].user_config.password_hash", "malformed SHA-512"},
		{"md5 hash",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE
		     ", " USER_WITH(", \"password_hash\": \"$1$salt$qJH7.N4xYta3aEG/dfqo/0\"") "}"),
		 "$.vms[0].user_config.password_hash", "too weak"},
		{"plaintext password key",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(", \"password\": \"x\", "
								 "\"ssh_public_key\": "
								 "\"" KEY_ED "\"") "}"),
		 "$.vms[0].user_config.password", "mkpasswd"},
		{"ssh key unknown type",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE
		     ", " USER_WITH(", \"ssh_public_key\": \"ssh-foo AAAAC3Nz\"") "}"),
		 "$.vms[0].user_config.ssh_public_key", "ssh-ed25519"},
		{"ssh key bad base64",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE
		     ", " USER_WITH(", \"ssh_public_key\": \"ssh-ed25519 AAAA!!!! x\"") "}"),
		 "$.vms[0].user_config.ssh_public_key", "does not decode"},
		{"ssh key type mismatch",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(
			 ", \"ssh_public_key\": \"ssh-rsa "
			 "AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4\"") "}"),
		 "$.vms[0].user_config.ssh_public_key", "does not match its type"},
		{"ssh private key",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE
		     ", " USER_WITH(", \"ssh_public_key\": \"-----BEGIN OPENSSH PRIVATE KEY-----\"") "}"),
		 "$.vms[0].user_config.ssh_public_key", "private key"},
		{"ssh key list item",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH(
			 ", \"ssh_public_key\": [\"" KEY_ED "\", \"ssh-ed25519\"]") "}"),
		 "$.vms[0].user_config.ssh_public_key[1]", "no base64"},
		{"user cannot log in", VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", " USER_WITH("") "}"),
		 "$.vms[0].user_config", "never log in"},
		{"bad username",
		 VMS("{" F_VMID ", " F_NAME ", " F_CLONE ", \"user_config\": {\"username\": \"Admin\", "
		     "\"ssh_public_key\": \"" KEY_ED "\"}}"),
		 "$.vms[0].user_config.username", "got 'Admin'"},
		{"unknown feature", VMS(VM(", \"features\": [\"k8s\"]")), "$.vms[0].features[0]",
		 "got 'k8s'"},
		{"feature script missing",
		 "{\"features\": {\"k8s\": {\"script\": \"nope.sh\"}}, \"vms\": [" VM("") "]}",
		 "$.features.k8s.script", "existing script"},
		{"feature without script",
		 "{\"features\": {\"k8s\": {\"packages\": [\"kubeadm\"]}}, \"vms\": [" VM("") "]}",
		 "$.features.k8s.script", "required"},
		{"secret in config",
		 "{\"proxmox\": {\"token_secret\": \"abc\"}, \"vms\": [" VM("") "]}",
		 "$.proxmox.token_secret", "PVE_TOKEN_SECRET"},
		{"api url plain http",
		 "{\"proxmox\": {\"api_url\": \"http://pve:8006\"}, \"vms\": [" VM("") "]}",
		 "$.proxmox.api_url", "https"},
		{"api url bad port",
		 "{\"proxmox\": {\"api_url\": \"https://pve:99999\"}, \"vms\": [" VM("") "]}",
		 "$.proxmox.api_url", "port out of range"},
		{"bad token id",
		 "{\"proxmox\": {\"token_id\": \"phoenix@pve\"}, \"vms\": [" VM("") "]}",
		 "$.proxmox.token_id", "got 'phoenix@pve'"},
		{"bad fingerprint",
		 "{\"proxmox\": {\"tls\": {\"fingerprint\": \"AB:CD\"}}, \"vms\": [" VM("") "]}",
		 "$.proxmox.tls.fingerprint", "got 'AB:CD'"},
		{"timeout zero",
		 "{\"proxmox\": {\"timeouts\": {\"task_s\": 0}}, \"vms\": [" VM("") "]}",
		 "$.proxmox.timeouts.task_s", "got 0"},
		{"bad cloudinit mode",
		 "{\"defaults\": {\"cloudinit_mode\": \"nocloud\"}, \"vms\": [" VM("") "]}",
		 "$.defaults.cloudinit_mode", "got 'nocloud'"},
		{"template nodes need versions",
		 DOC(TPLV(", \"nodes\": [\"pve1\", \"pve2\"]"), ""), "$.templates[0].nodes",
		 "several nodes need 'versions'"},
		{"template nodes and node",
		 DOC(TPLV(", \"node\": \"pve1\", \"nodes\": [\"pve1\"]"), ""),
		 "$.templates[0].nodes", "either 'node' or 'nodes'"},
		{"template nodes neither all nor a list", DOC(TPLV(", \"nodes\": \"every\""), ""),
		 "$.templates[0].nodes", "expected \"all\" or a list of node names, got 'every'"},
		{"template on all nodes with a fixed vmid",
		 DOC(TPLV(", \"nodes\": \"all\", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": "
			  "9009}"),
		     ""),
		 "$.templates[0].vmid", "no fixed VMID with several nodes"},
		/* qemu-server $update_vm_api re-hashes what does not match ^\$(?:[156]|2[ay])(\$.+){2} */
		{"yescrypt hash in native mode",
		 "{\"defaults\": {\"cloudinit_mode\": \"native\"}, \"vms\": [" VM_HASH(HASHY) "]}",
		 "$.vms[0].user_config.password_hash", "Proxmox hashes a '$y$j...' hash again"},
		{"bcrypt $2b$ hash in native mode",
		 "{\"defaults\": {\"cloudinit_mode\": \"native\"}, \"vms\": [" VM_HASH(HASH2B) "]}",
		 "$.vms[0].user_config.password_hash", "use 'mkpasswd -m sha-512'"},
		{"bad dns server",
		 "{\"defaults\": {\"dns_servers\": [\"1.1.1.1\", \"1.1.1\"]}, \"vms\": [" VM("") "]}",
		 "$.defaults.dns_servers[1]", "got '1.1.1'"},
		{"boolean as string",
		 "{\"defaults\": {\"full_clone\": \"yes\"}, \"vms\": [" VM("") "]}",
		 "$.defaults.full_clone", "expected true or false, got a string 'yes'"},
		{"bad storage id", "{\"defaults\": {\"storage\": \"x\"}, \"vms\": [" VM("") "]}",
		 "$.defaults.storage", "storage ID"},
		{"bad tag", VMS(VM(", \"tags\": [\"web server\"]")), "$.vms[0].tags[0]",
		 "got 'web server'"},
		{"bad pool", VMS(VM(", \"pool\": \"a//b\"")), "$.vms[0].pool", "got 'a//b'"},
		{"duplicate key inside a template", DOC(TPLV(", \"image_url\": \"ftp://x/y.img\"") , ""),
		 ":1:", "duplicate"},
		{"template image url ftp (real)",
		 DOC("{\"name\": \"t\", \"vmid\": 9000, \"image_url\": \"ftp://x/y.img\", "
		     "\"sha256\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		     "\"}",
		     ""),
		 "$.templates[0].image_url", "http or https"},
		{"template without checksum",
		 DOC("{\"name\": \"t\", \"vmid\": 9000, \"image_url\": \"https://x/y.img\"}", ""),
		 "$.templates[0]", "never used unverified"},
		{"template bad sha256", DOC(TPLV(", \"sha256\": \"abc\""), ""),
		 "$.templates[0].sha256", "64 hex digits"},
		{"template vmid missing", DOC(TPL(""), ""), "$.templates[0].vmid", "required"},
		{"template vmid used by a VM", DOC(TPL(", \"vmid\": 8001"), VM("")), "$.vms[0].vmid",
		 "belongs to template 'ubuntu-noble'"},
		{"duplicate template name", DOC(TPLV("") "," TPL(", \"vmid\": 9001"), ""),
		 "$.templates[1].name", "duplicate template name"},
		{"versions reversed",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9100, \"vmid_max\": 9000}"), ""),
		 "$.templates[0].versions.vmid_max", "at least vmid_min"},
		{"versions keep zero",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9010, \"keep\": 0}"),
		     ""),
		 "$.templates[0].versions.keep", "got 0"},
		{"versions max_age_days zero",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9010, "
			 "\"max_age_days\": 0}"),
		     ""),
		 "$.templates[0].versions.max_age_days", "from 1 to 36500, got 0"},
		{"versions max_age_days beyond a century",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9010, "
			 "\"max_age_days\": 36501}"),
		     ""),
		 "$.templates[0].versions.max_age_days", "got 36501"},
		{"versions max_age_days as string",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9010, "
			 "\"max_age_days\": \"90\"}"),
		     ""),
		 "$.templates[0].versions.max_age_days", "expected an integer"},
		{"versions overlap a template",
		 DOC(TPL(", \"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9010}") ","
		     "{\"name\": \"other\", \"vmid\": 9005, \"sha256\": "
		     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", "
		     "\"image_url\": \"https://x/y.img\"}",
		     ""),
		 "$.templates[1].vmid", "overlap"},
		{"file mode not octal",
		 DOC(TPLV(", \"customize\": {\"files\": [{\"path\": \"/etc/motd\", \"mode\": \"0648\", "
			  "\"content\": \"x\"}]}"),
		     ""),
		 "$.templates[0].customize.files[0].mode", "got '0648'"},
		{"file mode as number",
		 DOC(TPLV(", \"customize\": {\"files\": [{\"path\": \"/etc/motd\", \"mode\": 644, "
			  "\"content\": \"x\"}]}"),
		     ""),
		 "$.templates[0].customize.files[0].mode", "expected a string, got an integer 644"},
		{"file content and source",
		 DOC(TPLV(", \"customize\": {\"files\": [{\"path\": \"/etc/motd\", \"content\": \"x\", "
			  "\"source\": \"motd\"}]}"),
		     ""),
		 "$.templates[0].customize.files[0].source", "got both"},
		{"file relative path",
		 DOC(TPLV(", \"customize\": {\"files\": [{\"path\": \"etc/motd\", \"content\": "
			  "\"x\"}]}"),
		     ""),
		 "$.templates[0].customize.files[0].path", "absolute"},
		{"file source missing",
		 DOC(TPLV(", \"customize\": {\"files\": [{\"path\": \"/etc/motd\", \"source\": "
			  "\"missing.txt\"}]}"),
		     ""),
		 "$.templates[0].customize.files[0].source", "existing file"},
		{"bad package name",
		 DOC(TPLV(", \"customize\": {\"packages\": [\"curl\", \"-curl\"]}"), ""),
		 "$.templates[0].customize.packages[1]", "got '-curl'"},
		{"deb file missing", DOC(TPLV(", \"customize\": {\"debs\": [\"x.deb\"]}"), ""),
		 "$.templates[0].customize.debs[0]", "existing package file"},
		{"local package of no known format",
		 DOC(TPLV(", \"customize\": {\"debs\": [\"x.tar.gz\"]}"), ""),
		 "$.templates[0].customize.debs[0]", "a path to a .deb, .rpm or .apk file"},
		{"template cores zero", DOC(TPLV(", \"hardware\": {\"cores\": 0}"), ""),
		 "$.templates[0].hardware.cores", "got 0"},
		{"vm disk smaller than template",
		 DOC(TPLV(", \"hardware\": {\"disk_size_gb\": 20}"), VM(", \"disk_size_gb\": 10")),
		 "$.vms[0].disk_size_gb", "disks only grow"},
		{"bad timezone", DOC(TPLV(", \"customize\": {\"timezone\": \"../etc\"}"), ""),
		 "$.templates[0].customize.timezone", "got '../etc'"},
		{"listed twice", VMS(VM(", \"packages\": [\"curl\", \"curl\"]")),
		 "$.vms[0].packages[1]", "listed twice"},
		{"signature without keyring",
		 DOC(TPLV(", \"signature_url\": \"https://example.com/SHA256SUMS.gpg\""), ""),
		 "$.templates[0].signature_url", "expected 'keyring' next to it"},
		{"keyring without signature", DOC(TPLV(", \"keyring\": \"motd\""), ""),
		 "$.templates[0].keyring", "expected 'signature_url' next to it"},
		{"keyring with no key",
		 DOC(TPLV(", \"signature_url\": \"https://example.com/SHA256SUMS.gpg\", "
			  "\"keyring\": \"motd\""),
		     ""),
		 "$.templates[0].keyring", "with no key in it"},
		{"keyring missing",
		 DOC(TPLV(", \"signature_url\": \"https://example.com/SHA256SUMS.gpg\", "
			  "\"keyring\": \"nope.gpg\""),
		     ""),
		 "$.templates[0].keyring", "no file at"},
		{"signature url not a url",
		 DOC(TPLV(", \"signature_url\": \"SHA256SUMS.gpg\", \"keyring\": \"motd\""), ""),
		 "$.templates[0].signature_url", "expected an http(s) URL"},
		{"signature of a pinned sha256",
		 DOC("{\"name\": \"n\", \"vmid\": 9000, \"image_url\": \"https://e.com/n.img\", "
		     "\"sha256\": \"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\", "
		     "\"signature_url\": \"https://e.com/S.gpg\", \"keyring\": \"motd\"}",
		     ""),
		 "$.templates[0].signature_url", "expected 'checksum_url' next to it"},
		{"signature of a published artifact",
		 DOC("{\"name\": \"n\", \"vmid\": 9000, \"artifact\": \"motd\", "
		     "\"signature_url\": \"https://e.com/S.gpg\", \"keyring\": \"motd\"}",
		     ""),
		 "$.templates[0].keyring", "does not go with 'artifact'"},
		/* hardware (#17): firmware, machine, CPU */
		{"bios unknown", VMS(VM(", \"bios\": \"uefi\"")), "$.vms[0].bios",
		 "'seabios' or 'ovmf' (UEFI), got 'uefi'"},
		{"bios not a string", VMS(VM(", \"bios\": 1")), "$.vms[0].bios", "got an integer"},
		{"template bios unknown", DOC(TPLV(", \"hardware\": {\"bios\": \"OVMF\"}"), ""),
		 "$.templates[0].hardware.bios", "got 'OVMF'"},
		{"pre-enrolled keys with seabios",
		 VMS(VM(", \"bios\": \"seabios\", \"efi_pre_enrolled_keys\": true")),
		 "$.vms[0].efi_pre_enrolled_keys", "expected bios 'ovmf'"},
		{"pre-enrolled keys not a bool", VMS(VM(", \"efi_pre_enrolled_keys\": \"yes\"")),
		 "$.vms[0].efi_pre_enrolled_keys", "expected true or false"},
		{"machine unknown", VMS(VM(", \"machine\": \"q36\"")), "$.vms[0].machine",
		 "machine type like 'q35'"},
		{"machine version without number", VMS(VM(", \"machine\": \"pc-q35-\"")),
		 "$.vms[0].machine", "got 'pc-q35-'"},
		{"machine arm on x86", DOC(TPLV(", \"hardware\": {\"machine\": \"virt\"}"), ""),
		 "$.templates[0].hardware.machine", "got 'virt'"},
		{"tpm not a bool", VMS(VM(", \"tpm\": 1")), "$.vms[0].tpm", "expected true or false"},
		{"cpu unknown", VMS(VM(", \"cpu\": \"pentium9\"")), "$.vms[0].cpu",
		 "CPU type like 'x86-64-v2-AES'"},
		{"cpu with flags", VMS(VM(", \"cpu\": \"host,flags=+aes\"")), "$.vms[0].cpu",
		 "got 'host,flags=+aes'"},
		{"cpu custom without name", VMS(VM(", \"cpu\": \"custom-\"")), "$.vms[0].cpu",
		 "got 'custom-'"},
		{"sockets zero", VMS(VM(", \"sockets\": 0")), "$.vms[0].sockets", "from 1 to 4, got 0"},
		{"sockets five", DOC(TPLV(", \"hardware\": {\"sockets\": 5}"), ""),
		 "$.templates[0].hardware.sockets", "got 5"},
		{"balloon negative", VMS(VM(", \"balloon\": -1")), "$.vms[0].balloon", "got -1"},
		{"balloon above memory", VMS(VM(", \"memory_mb\": 2048, \"balloon\": 4096")),
		 "$.vms[0].balloon", "at most memory_mb (2048"},
		{"template balloon above memory", DOC(TPLV(", \"hardware\": {\"balloon\": 4096}"), ""),
		 "$.templates[0].hardware.balloon", "at most memory_mb (2048"},
		{"vm balloon above template memory",
		 DOC(TPLV(", \"hardware\": {\"memory_mb\": 1024}"), VM(", \"balloon\": 2048")),
		 "$.vms[0].balloon", "at most the template's memory_mb (1024"},
		{"numa not a bool", VMS(VM(", \"numa\": \"on\"")), "$.vms[0].numa",
		 "expected true or false, got a string 'on'"},
		/* networks (#17) */
		{"networks and network_config", VMS(VM(NET("\"ip\": \"dhcp\"") ", \"networks\": [{}]")),
		 "$.vms[0].networks", "either 'networks' or 'network_config', got both"},
		{"networks empty", VMS(VM(", \"networks\": []")), "$.vms[0].networks",
		 "1 to 32 NICs, got 0"},
		{"nic not an object", VMS(VM(", \"networks\": [\"vmbr0\"]")), "$.vms[0].networks[0]",
		 "expected an object"},
		{"nic model unknown", VMS(VM(", \"networks\": [{\"model\": \"virtio-net\"}]")),
		 "$.vms[0].networks[0].model", "got 'virtio-net'"},
		{"nic vlan zero", VMS(VM(", \"networks\": [{}, {\"vlan\": 0}]")),
		 "$.vms[0].networks[1].vlan", "from 1 to 4094, got 0"},
		{"nic vlan too big", VMS(VM(", \"networks\": [{\"vlan\": 4095}]")),
		 "$.vms[0].networks[0].vlan", "got 4095"},
		{"nic bridge bad", VMS(VM(", \"networks\": [{\"bridge\": \"vmbr 0\"}]")),
		 "$.vms[0].networks[0].bridge", "a bridge name like 'vmbr0'"},
		{"nic mtu on e1000", VMS(VM(", \"networks\": [{\"model\": \"e1000\", \"mtu\": 9000}]")),
		 "$.vms[0].networks[0].mtu", "virtio only"},
		{"nic mtu too big", VMS(VM(", \"networks\": [{\"mtu\": 65521}]")),
		 "$.vms[0].networks[0].mtu", "from 1 to 65520"},
		{"nic firewall string", VMS(VM(", \"networks\": [{\"firewall\": \"1\"}]")),
		 "$.vms[0].networks[0].firewall", "true or false"},
		{"nic multicast mac", VMS(VM(", \"networks\": [{\"macaddr\": \"01:00:5E:00:00:01\"}]")),
		 "$.vms[0].networks[0].macaddr", "unicast MAC"},
		{"nic mac twice",
		 VMS(VM(", \"networks\": [{\"macaddr\": \"BC:24:11:00:00:01\"}, "
			"{\"macaddr\": \"bc:24:11:00:00:01\"}]")),
		 "$.vms[0].networks[1].macaddr", "already $.vms[0].networks[0]'s"},
		{"nic rate negative", VMS(VM(", \"networks\": [{\"rate\": -1}]")),
		 "$.vms[0].networks[0].rate", "from 0"},
		{"nic rate string", VMS(VM(", \"networks\": [{\"rate\": \"fast\"}]")),
		 "$.vms[0].networks[0].rate", "number of MB/s"},
		{"nic ip not cidr", VMS(VM(", \"networks\": [{\"ip\": \"10.0.0.5\"}]")),
		 "$.vms[0].networks[0].ip", "expected CIDR"},
		{"nic gateway outside", VMS(VM(", \"networks\": [{\"ip\": \"10.0.0.5/24\", "
					   "\"gateway\": \"10.0.1.1\"}]")),
		 "$.vms[0].networks[0].gateway", "inside '10.0.0.5/24'"},
		{"nic gateway with dhcp", VMS(VM(", \"networks\": [{\"gateway\": \"10.0.0.1\"}]")),
		 "$.vms[0].networks[0].gateway", "needs a static 'ip'"},
		{"nic ip6 bad", VMS(VM(", \"networks\": [{\"ip6\": \"slaac\"}]")),
		 "$.vms[0].networks[0].ip6", "'dhcp' or 'auto' (SLAAC), got 'slaac'"},
		{"nic ip6 prefix too long", VMS(VM(", \"networks\": [{\"ip6\": \"2001:db8::5/129\"}]")),
		 "$.vms[0].networks[0].ip6", "got '2001:db8::5/129'"},
		{"nic gateway6 with slaac",
		 VMS(VM(", \"networks\": [{\"ip6\": \"auto\", \"gateway6\": \"2001:db8::1\"}]")),
		 "$.vms[0].networks[0].gateway6", "needs a static 'ip6'"},
		{"nic gateway6 v4", VMS(VM(", \"networks\": [{\"ip6\": \"2001:db8::5/64\", "
					  "\"gateway6\": \"10.0.0.1\"}]")),
		 "$.vms[0].networks[0].gateway6", "IPv6 address"},
		{"nic route family mismatch",
		 VMS(VM(", \"networks\": [{\"routes\": [{\"to\": \"10.1.0.0/16\", \"via\": \"fe80::1\"}]}]")),
		 "$.vms[0].networks[0].routes[0].via", "IPv4 address (the family of 'to')"},
		{"nic route without via", VMS(VM(", \"networks\": [{\"routes\": [{\"to\": \"10.1.0.0/16\"}]}]")),
		 "$.vms[0].networks[0].routes[0].via", "required"},
		{"nic route bad cidr",
		 VMS(VM(", \"networks\": [{\"routes\": [{\"to\": \"10.1.0.0\", \"via\": \"10.0.0.1\"}]}]")),
		 "$.vms[0].networks[0].routes[0].to", "CIDR"},
		{"nic dns not ip", VMS(VM(", \"networks\": [{\"dns\": [\"dns.example\"]}]")),
		 "$.vms[0].networks[0].dns[0]", "IP address"},
		{"nic key misspelt", VMS(VM(", \"networks\": [{\"vlam\": 10}]")),
		 "$.vms[0].networks[0].vlam", "did you mean 'vlan'?"},
		/* disks (#17) */
		{"disk bus ide", VMS(VM(", \"disk\": {\"bus\": \"ide\"}")), "$.vms[0].disk.bus",
		 "'scsi', 'virtio' or 'sata', got 'ide'"},
		{"disk ssd on virtio", VMS(VM(", \"disk\": {\"bus\": \"virtio\", \"ssd\": true}")),
		 "$.vms[0].disk.ssd", "no ssd emulation on bus 'virtio'"},
		{"disk iothread on sata",
		 DOC(TPLV(", \"hardware\": {\"disk\": {\"bus\": \"sata\", \"iothread\": true}}"), ""),
		 "$.templates[0].hardware.disk.iothread", "no iothread on bus 'sata'"},
		{"disk cache unknown", VMS(VM(", \"disk\": {\"cache\": \"fast\"}")),
		 "$.vms[0].disk.cache", "got 'fast'"},
		{"disk discard string", VMS(VM(", \"disk\": {\"discard\": \"on\"}")),
		 "$.vms[0].disk.discard", "true or false"},
		{"disk unknown key", VMS(VM(", \"disk\": {\"size_gb\": 10}")), "$.vms[0].disk.size_gb",
		 "unknown key"},
		{"disks size missing", VMS(VM(", \"disks\": [{\"bus\": \"scsi\"}]")),
		 "$.vms[0].disks[0].size_gb", "required"},
		{"disks size zero", VMS(VM(", \"disks\": [{\"size_gb\": 0}]")),
		 "$.vms[0].disks[0].size_gb", "from 1 to"},
		{"disks bad storage", VMS(VM(", \"disks\": [{\"size_gb\": 1, \"storage\": \"a b\"}]")),
		 "$.vms[0].disks[0].storage", "storage ID"},
		{"disks not an object", VMS(VM(", \"disks\": [10]")), "$.vms[0].disks[0]",
		 "expected an object"},
		{"disks sata beyond sata5",
		 VMS(VM(", \"disks\": [{\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, "
			"{\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1, \"bus\": \"sata\"}]")),
		 "$.vms[0].disks[5].bus", "would be sata6"},
		{"disks scsi beyond scsi29 (scsi30 is the seed's)",
		 VMS(VM(", \"disks\": [{\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}, {\"size_gb\": 1}]")),
		 "$.vms[0].disks[29].bus", "would be scsi30, and 'scsi' goes up to scsi29"},
		/* lifecycle (#17) */
		{"onboot string", VMS(VM(", \"onboot\": \"yes\"")), "$.vms[0].onboot",
		 "true or false"},
		{"protection number", VMS(VM(", \"protection\": 1")), "$.vms[0].protection",
		 "true or false"},
		{"start string", VMS(VM(", \"start\": \"no\"")), "$.vms[0].start", "true or false"},
		{"startup not an object", VMS(VM(", \"startup\": \"order=1\"")), "$.vms[0].startup",
		 "expected an object"},
		{"startup empty", VMS(VM(", \"startup\": {}")), "$.vms[0].startup",
		 "at least one of 'order', 'up' or 'down'"},
		{"startup order negative", VMS(VM(", \"startup\": {\"order\": -1}")),
		 "$.vms[0].startup.order", "got -1"},
		{"startup unknown key", VMS(VM(", \"startup\": {\"delay\": 5}")),
		 "$.vms[0].startup.delay", "unknown key"},
		/* ha (#17) */
		{"ha not an object", VMS(VM(", \"ha\": true")), "$.vms[0].ha", "expected an object"},
		{"ha state unknown", VMS(VM(", \"ha\": {\"state\": \"running\"}")), "$.vms[0].ha.state",
		 "'started', 'stopped'"},
		{"ha max_restart above 10", VMS(VM(", \"ha\": {\"max_restart\": 11}")),
		 "$.vms[0].ha.max_restart", "from 0 to 10, got 11"},
		{"ha max_relocate string", VMS(VM(", \"ha\": {\"max_relocate\": \"1\"}")),
		 "$.vms[0].ha.max_relocate", "got a string"},
		{"ha group bad", VMS(VM(", \"ha\": {\"group\": \"9prod\"}")), "$.vms[0].ha.group",
		 "HA group name"},
		{"ha comment two lines", VMS(VM(", \"ha\": {\"comment\": \"a\\nb\"}")),
		 "$.vms[0].ha.comment", "one line"},
		{"ha started with start false", VMS(VM(", \"start\": false, \"ha\": {}")),
		 "$.vms[0].ha.state", "HA manager starts a 'started' resource"},
		{"ha key misspelt", VMS(VM(", \"ha\": {\"max_restarts\": 1}")),
		 "$.vms[0].ha.max_restarts", "did you mean 'max_restart'?"},
		{"hardware key misspelt", VMS(VM(", \"socket\": 2")), "$.vms[0].socket",
		 "did you mean 'sockets'?"},
		/* container templates (#21) */
		{"kind unknown", DOC(TPLV(", \"kind\": \"docker\""), ""), "$.templates[0].kind",
		 "'qemu' (a VM template) or 'lxc'"},
		{"hardware on kind lxc", DOC(TPLV(CT_KIND ", \"hardware\": {\"cores\": 2}"), ""),
		 "$.templates[0].hardware", "does not go with kind 'lxc'"},
		{"container on a VM template", DOC(TPLV(", \"container\": {}"), ""),
		 "$.templates[0].container", "only goes with"},
		{"container feature other than nesting",
		 DOC(TPLV(CT_KIND ", \"container\": {\"features\": {\"keyctl\": true}}"), ""),
		 "$.templates[0].container.features.keyctl", "only root@pam"},
		{"container nesting not boolean",
		 DOC(TPLV(CT_KIND ", \"container\": {\"features\": {\"nesting\": 1}}"), ""),
		 "$.templates[0].container.features.nesting", "true or false"},
		{"container rootfs_gb zero", DOC(TPLV(CT_KIND ", \"container\": {\"rootfs_gb\": 0}"), ""),
		 "$.templates[0].container.rootfs_gb", "got 0"},
		{"container memory below 16",
		 DOC(TPLV(CT_KIND ", \"container\": {\"memory_mb\": 8}"), ""),
		 "$.templates[0].container.memory_mb", "from 16"},
		{"container storage bad", DOC(TPLV(CT_KIND ", \"container\": {\"storage\": \"a b\"}"), ""),
		 "$.templates[0].container.storage", "got 'a b'"},
		{"container ostype unknown",
		 DOC(TPLV(CT_KIND ", \"container\": {\"ostype\": \"windows\"}"), ""),
		 "$.templates[0].container.ostype", "pve-container's ostypes"},
		{"container key misspelt", DOC(TPLV(CT_KIND ", \"container\": {\"swap\": 0}"), ""),
		 "$.templates[0].container.swap", "did you mean 'swap_mb'?"},
		{"artifact on kind lxc",
		 DOC("{\"name\": \"ct\", \"vmid\": 9000, \"artifact\": \"/x\"" CT_KIND "}", ""),
		 "$.templates[0].artifact", "does not go with kind 'lxc'"},
		{"VM clones a container template",
		 DOC(TPLV(CT_KIND), "{" F_VMID ", " F_NAME ", \"clone_from_template\": "
				    "\"ubuntu-noble\", " F_USER "}"),
		 "$.vms[0].clone_from_template", "is a container template"},
		{"user without name", DOC(TPLV(USERS("{\"uid\": 1500}")), ""),
		 "$.templates[0].customize.users[0].name", "required"},
		{"user root", DOC(TPLV(USERS("{\"name\": \"root\"}")), ""),
		 "$.templates[0].customize.users[0].name", "other than 'root'"},
		{"user uid system range", DOC(TPLV(USERS("{\"name\": \"ada\", \"uid\": 999}")), ""),
		 "$.templates[0].customize.users[0].uid", "from 1000 to 60000, got 999"},
		{"user bad group", DOC(TPLV(USERS("{\"name\": \"ada\", \"groups\": [\"Wheel\"]}")), ""),
		 "$.templates[0].customize.users[0].groups[0]", "group name"},
		{"user bad key",
		 DOC(TPLV(USERS("{\"name\": \"ada\", \"ssh_authorized_keys\": [\"ssh-rsa xx\"]}")),
		     ""),
		 "$.templates[0].customize.users[0].ssh_authorized_keys[0]", ""},
		{"user plaintext password",
		 DOC(TPLV(USERS("{\"name\": \"ada\", \"password_hash\": \"hunter2\"}")), ""),
		 "$.templates[0].customize.users[0].password_hash", ""},
		{"user expired without password",
		 DOC(TPLV(USERS("{\"name\": \"ada\", \"password_expired\": true}")), ""),
		 "$.templates[0].customize.users[0].password_expired", "only a password"},
		{"user git name with quote",
		 DOC(TPLV(USERS("{\"name\": \"ada\", \"git_name\": \"a\\\"b\"}")), ""),
		 "$.templates[0].customize.users[0].git_name", "no quote"},
		{"user shell relative", DOC(TPLV(USERS("{\"name\": \"ada\", \"shell\": \"bash\"}")), ""),
		 "$.templates[0].customize.users[0].shell", "absolute path"},
		{"user twice",
		 DOC(TPLV(USERS("{\"name\": \"ada\"}, {\"name\": \"ada\"}")), ""),
		 "$.templates[0].customize.users[1].name", "already made by"},
		{"user uid twice",
		 DOC(TPLV(USERS("{\"name\": \"ada\", \"uid\": 1500}, {\"name\": \"bob\", "
				"\"uid\": 1500}")),
		     ""),
		 "$.templates[0].customize.users[1].uid", "already $.templates[0].customize.users[0]'s"},
		{"defaults template_storage bad", "{\"defaults\": {\"template_storage\": \"-x\"}, "
						 "\"vms\": []}",
		 "$.defaults.template_storage", "got '-x'"},
		/* cloud-init parts (#17) */
		{"user_data_parts not a list", VMS(VM(", \"user_data_parts\": {}")),
		 "$.vms[0].user_data_parts", "expected an array"},
		{"user_data_parts empty", VMS(VM(", \"user_data_parts\": []")),
		 "$.vms[0].user_data_parts", "at least one part"},
		{"user_data_parts item a string", VMS(VM(", \"user_data_parts\": [\"#!/bin/sh\"]")),
		 "$.vms[0].user_data_parts[0]", "expected an object"},
		{"user_data_parts type unknown",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/plain\", \"content\": \"x\"}]")),
		 "$.vms[0].user_data_parts[0].type", "'text/x-shellscript'"},
		{"user_data_parts type missing", VMS(VM(", \"user_data_parts\": [{\"content\": \"x\"}]")),
		 "$.vms[0].user_data_parts[0].type", "required"},
		{"user_data_parts content and source",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\", \"content\": "
			"\"#!/bin/sh\", \"source\": \"k8s.sh\"}]")),
		 "$.vms[0].user_data_parts[0].source", "got both"},
		{"user_data_parts neither content nor source",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\"}]")),
		 "$.vms[0].user_data_parts[0]", "got neither"},
		{"user_data_parts source missing file",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\", \"source\": "
			"\"nope.sh\"}]")),
		 "$.vms[0].user_data_parts[0].source", "expected an existing file"},
		{"user_data_parts content empty",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\", \"content\": "
			"\"\"}]")),
		 "$.vms[0].user_data_parts[0].content", "non-empty string"},
		{"user_data_parts key misspelt",
		 VMS(VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\", \"contents\": "
			"\"#!/bin/sh\"}]")),
		 "$.vms[0].user_data_parts[0].contents", "did you mean 'content'?"},
		{"vendor_data not a list", VMS(VM(", \"vendor_data\": \"#cloud-config\"")),
		 "$.vms[0].vendor_data", "expected an array"},
		{"defaults vendor_data type unknown",
		 "{\"defaults\": {\"vendor_data\": [{\"type\": \"cloud-config\", \"content\": "
		 "\"x\"}]}, \"vms\": [" VM("") "]}",
		 "$.defaults.vendor_data[0].type", "a cloud-init part type"},
};

#define N_BAD_CASES (sizeof(bad_cases) / sizeof(bad_cases[0]))

ParameterizedTestParameters(config, rejects_bad_config_with_json_path)
{
	static size_t idx[N_BAD_CASES];

	for (size_t i = 0; i < N_BAD_CASES; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, N_BAD_CASES);
}

Test(config, has_at_least_forty_bad_cases)
{
	cr_assert_geq(N_BAD_CASES, 40);
}

ParameterizedTest(size_t *i, config, rejects_bad_config_with_json_path, .init = setup,
		  .fini = teardown)
{
	const struct bad_case *c = &bad_cases[*i];
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *sentinel = (struct cfg *)0x1, *cfg = sentinel;
	char path[256];

	cr_assert_eq(load_json("bad.json", c->json, &cfg, &err, path, sizeof(path)), -1, "%s",
		     c->what);
	cr_assert_eq(err.code, PHX_E_INPUT, "%s: code %d", c->what, err.code);
	cr_assert_eq(cfg, sentinel, "%s: output written on failure", c->what);
	cr_assert(has_line(err.msg, path, c->jpath, c->needle),
		  "%s: no line '%s: %s: ...%s...' in:\n%s", c->what, path, c->jpath, c->needle,
		  err.msg);
	cr_assert(every_line_names_file(err.msg, path), "%s: a line without the file:\n%s",
		  c->what, err.msg);
}

Test(config, keeps_signature_url_and_resolves_keyring_holding_keys, .init = setup,
     .fini = teardown)
{
	const char *build = getenv("PHX_BUILD"), *src = getenv("PHX_SRC");
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256], cmd[1024], want[300];

	snprintf(cmd, sizeof(cmd),
		 "k='%s/pgp-keys' && mkdir -p \"$k\" && flock \"$k.lock\" '%s/tests/tools/pgp-keys.sh' "
		 "\"$k\" && cp \"$k/trusted.asc\" '%s/ring.asc'",
		 build ? build : "build", src ? src : ".", tmpdir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(load_json("ok.json",
			       DOC(TPLV(", \"signature_url\": \"https://example.com/SHA256SUMS.gpg\", "
					"\"keyring\": \"ring.asc\""),
				   ""),
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	cr_assert_str_eq(cfg->templates[0].signature_url, "https://example.com/SHA256SUMS.gpg");
	snprintf(want, sizeof(want), "%s/ring.asc", tmpdir);
	cr_assert_str_eq(cfg->templates[0].keyring, want);
	cfg_free(cfg);
}

Test(config, reports_every_problem_not_just_the_first, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];

	cr_assert_eq(load_json("multi.json",
			       VMS(VM(", \"cores\": 0") ","
				   "{\"vmid\": 8002, \"name\": \"b\", " F_CLONE
				   NET("\"ip\": \"10.0.0.5\"") "},"
				   "{\"vmid\": 8003, \"name\": \"c\", " F_CLONE ", \"memroy_mb\": 1}"),
			       &cfg, &err, path, sizeof(path)),
		     -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(has_line(err.msg, path, "$.vms[0].cores", "got 0"), "%s", err.msg);
	cr_assert(has_line(err.msg, path, "$.vms[1].network_config.ip", "CIDR"), "%s", err.msg);
	cr_assert(has_line(err.msg, path, "$.vms[2].memroy_mb", "did you mean 'memory_mb'?"), "%s",
		  err.msg);
	cr_assert(every_line_names_file(err.msg, path));
}

Test(config, caps_the_number_of_reported_problems, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256], *json;
	size_t len = 0, lines = 1;
	FILE *f = open_memstream(&json, &len);

	fputs("{\"vms\": [", f);
	for (int i = 0; i < 80; i++)
		fprintf(f, "%s{\"vmid\": %d, \"name\": \"vm%d\", \"clone_from_vmid\": 9000, "
			   "\"cores\": 0}",
			i ? ", " : "", 8000 + i, i);
	fputs("]}", f);
	fclose(f);
	cr_assert_eq(load_json("many.json", json, &cfg, &err, path, sizeof(path)), -1);
	free(json);
	for (const char *p = err.msg; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, CFG_MAX_ERRORS + 1, "%zu lines:\n%s", lines, err.msg);
	cr_assert(strstr(err.msg, "... and 30 more problems"), "%s", err.msg);
	cr_assert(strlen(err.msg) < PHX_ERR_MSG_MAX - 1);
}

Test(config, missing_file_is_input_error_naming_it)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;

	cr_assert_eq(cfg_load("/nonexistent/phx.json", &cfg, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "/nonexistent/phx.json"), "%s", err.msg);
	cr_assert_null(cfg);
}

/* The example shipped at the repository root, loaded from a temp dir holding the feature. */
Test(config, loads_the_example_with_its_values, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_vm *vm;
	const struct cfg_template *t;
	char path[256], *json = NULL;
	size_t n = 0;
	FILE *f = fopen("phoenix_vm_configs.example.json", "r");

	cr_assert_not_null(f, "run from the repository root");
	cr_assert_geq(getdelim(&json, &n, '\0', f), 100);
	fclose(f);
	cr_assert_eq(load_json("example.json", json, &cfg, &err, path, sizeof(path)), 0, "%s",
		     err.msg);
	free(json);
	cr_assert_eq(err.code, PHX_E_NONE);
	cr_assert_str_eq(cfg->proxmox.api_url, "https://pve.example.com:8006");
	cr_assert_str_eq(cfg->proxmox.token_id, "phoenix@pve!automation");
	cr_assert_eq(cfg->proxmox.timeouts.task_s, 1800);
	cr_assert_str_eq(cfg->defaults.import_storage, "local");
	cr_assert_eq(cfg->defaults.cloudinit_mode, CFG_CLOUDINIT_ISO);
	cr_assert_eq(cfg->n_templates, 1);
	t = cfg_find_template(cfg, "ubuntu-noble");
	cr_assert_not_null(t);
	cr_assert_eq(t->vmid, 9000);
	cr_assert_str_eq(t->image_url, "https://cloud-images.ubuntu.com/noble/current/"
				       "noble-server-cloudimg-amd64.img");
	cr_assert_str_eq(t->checksum_url,
			 "https://cloud-images.ubuntu.com/noble/current/SHA256SUMS");
	cr_assert_eq(t->customize.n_files, 1);
	cr_assert_eq(t->customize.files[0].mode, 0644);

	vm = cfg_find_vm(cfg, 8001);
	cr_assert_not_null(vm);
	cr_assert_eq(vm->cores, 4);
	cr_assert_eq(vm->memory_mb, 8192);
	cr_assert_eq(vm->disk_size_gb, 100);
	cr_assert_eq(vm->clone_from_vmid, 9000);
	cr_assert_eq(cfg_vm_template(cfg, vm), t);
	cr_assert_str_eq(vm->network.ip, "192.168.1.51/24");
	cr_assert_eq(vm->network.prefix, 24);
	cr_assert_eq(vm->network.addr, (192u << 24) | (168u << 16) | (1u << 8) | 51u);
	cr_assert_eq(vm->network.gw_addr, (192u << 24) | (168u << 16) | (1u << 8) | 1u);
	cr_assert_str_eq(vm->network.bridge, "vmbr0");
	cr_assert(vm->has_user);
	cr_assert_str_eq(vm->user.username, "admin");
	cr_assert_eq(strncmp(vm->user.password_hash, "$6$", 3), 0);
	cr_assert_eq(vm->user.ssh_public_keys.n, 1);
	cr_assert_eq(vm->features.n, 1);
	cr_assert_str_eq(vm->features.items[0], "docker");
	cr_assert_not_null(cfg_find_feature(cfg, "docker")->script_path);
	cr_assert_str_eq(vm->storage, "local-lvm");
	cr_assert_eq(vm->dns_servers.n, 2);
	cr_assert_str_eq(vm->search_domain, "example.com");
	cr_assert_str_eq(cfg_vm_node(cfg, vm), "pve1");

	vm = cfg_find_vm(cfg, 8002);
	cr_assert_not_null(vm);
	cr_assert_null(vm->network.ip); /* DHCP */
	cr_assert_str_eq(vm->clone_from_template, "ubuntu-noble");
	cr_assert_eq(cfg_vm_template(cfg, vm), t);
	cr_assert_eq(vm->tags.n, 2);
	cr_assert_str_eq(vm->tags.items[0], "phoenix-managed");
	cr_assert_str_eq(vm->tags.items[1], "web");
	cr_assert_null(cfg_find_vm(cfg, 8003));
	cfg_free(cfg);
}

Test(config, seed_vm_gets_defaults, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_vm *vm;
	char path[256];

	cr_assert_eq(load_json("seed.json",
			       VMS("{\"vmid\": 8001, \"name\": \"db\", \"clone_from_vmid\": 9100, "
				   "\"cores\": 2, \"memory_mb\": 2048, \"disk_size_gb\": 40, "
				   "\"network_config\": {\"ip\": \"10.1.2.3/16\", \"gw\": "
				   "\"10.1.0.1\"}, \"user_config\": {\"username\": \"ops\", "
				   "\"password_hash\": \"" HASHY "\", \"ssh_public_key\": "
				   "\"" KEY_EC "\"}}"),
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	vm = &cfg->vms[0];
	cr_assert_null(cfg_vm_template(cfg, vm)); /* the server must provide 9100 */
	cr_assert_str_eq(vm->storage, "local-lvm");
	cr_assert_not(vm->full_clone);
	cr_assert_eq(vm->dns_servers.n, 0);
	cr_assert_null(cfg_vm_node(cfg, vm));
	cr_assert_null(cfg->proxmox.api_url);
	cr_assert_eq(cfg->proxmox.timeouts.agent_s, 600);
	cr_assert_eq(cfg->proxmox.timeouts.connect_s, 10);
	cr_assert_eq(cfg->defaults.agent_timeout_s, 600);
	cr_assert_str_eq(cfg->defaults.bridge, "vmbr0");
	cr_assert_str_eq(cfg->defaults.iso_storage, "local");
	/* the built-in docker feature is there even when the config names none */
	cr_assert(cfg_find_feature(cfg, "docker")->builtin);
	cr_assert_str_eq(cfg->dir, tmpdir);
	cfg_free(cfg);
}

Test(config, template_defaults_versions_and_features, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_template *t;
	const struct cfg_feature *f;
	char path[256], want[256];

	cr_assert_eq(
		load_json("tv.json",
			  "{\"defaults\": {\"storage\": \"ceph-vm\", \"full_clone\": true, \"tags\": "
			  "[\"ci\"]}, \"features\": {\"k8s\": {\"script\": \"k8s.sh\", \"packages\": "
			  "[\"kubeadm\"]}}, \"templates\": [" TPL(
				  ", \"sha256\": "
				  "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\", "
				  "\"versions\": {\"vmid_min\": 9000, \"vmid_max\": 9009, \"keep\": 2, "
				  "\"max_age_days\": 90, \"rebuild_on_change\": true}, \"customize\": {\"files\": [{\"path\": "
				  "\"/etc/motd\", \"source\": \"motd\", \"mode\": \"0600\"}]}") "], "
			  "\"vms\": [{\"vmid\": 8001, \"name\": \"k\", \"clone_from_vmid\": 9003, "
			  "\"features\": [\"k8s\", \"docker\"], \"user_config\": {\"username\": \"u\", "
			  "\"password_hash\": \"" HASH2B "\"}}, {\"vmid\": 8002, \"name\": \"j\", "
			  "\"clone_from_template\": \"ubuntu-noble\", \"full_clone\": false, "
			  "\"user_config\": {\"username\": \"u\", \"password_hash\": \"" HASH5 "\"}}]}",
			  &cfg, &err, path, sizeof(path)),
		0, "%s", err.msg);
	t = &cfg->templates[0];
	cr_assert_eq(t->vmid, 0);
	cr_assert(t->has_versions);
	cr_assert_eq(t->versions.vmid_min, 9000);
	cr_assert_eq(t->versions.keep, 2);
	cr_assert_eq(t->versions.max_age_days, 90);
	cr_assert(t->versions.rebuild_on_change);
	cr_assert_str_eq(t->sha256,
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	cr_assert_eq(t->customize.packages.n, 1);
	cr_assert_str_eq(t->customize.packages.items[0], "qemu-guest-agent");
	cr_assert_eq(t->hardware.cores, 2);
	cr_assert_eq(t->hardware.memory_mb, 2048);
	cr_assert_str_eq(t->hardware.storage, "ceph-vm");
	cr_assert_eq(t->customize.files[0].mode, 0600);
	snprintf(want, sizeof(want), "%s/motd", tmpdir);
	cr_assert_str_eq(t->customize.files[0].source, want);
	/* clone_from_vmid names a template by its VMID or any VMID of its version range */
	cr_assert_eq(cfg_vm_template(cfg, &(struct cfg_vm){.clone_from_vmid = 9009}), t);
	cr_assert_null(cfg_vm_template(cfg, &(struct cfg_vm){.clone_from_vmid = 9010}));
	cr_assert_eq(cfg_vm_template(cfg, &cfg->vms[0]), t);
	cr_assert(cfg->vms[0].full_clone);
	cr_assert_not(cfg->vms[1].full_clone);
	cr_assert_str_eq(cfg->vms[0].storage, "ceph-vm");
	cr_assert_str_eq(cfg->vms[0].tags.items[0], "ci");
	f = cfg_find_feature(cfg, "k8s");
	cr_assert_not_null(f);
	cr_assert_not(f->builtin);
	snprintf(want, sizeof(want), "%s/k8s.sh", tmpdir);
	cr_assert_str_eq(f->script_path, want);
	cr_assert_str_eq(f->packages.items[0], "kubeadm");
	cfg_free(cfg);
}

/* ---- hardware (#17) ---------------------------------------------------------------------- */

Test(config, hardware_keys_of_templates_and_vms, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];
	const struct cfg_machine *t, *v, *plain;

	cr_assert_eq(load_json("hw.json",
			       DOC(TPLV(", \"hardware\": {\"bios\": \"ovmf\", "
					"\"efi_pre_enrolled_keys\": true, \"machine\": "
					"\"pc-q35-9.2+pve1\", \"tpm\": true, \"sockets\": 2, "
					"\"balloon\": 0, \"numa\": false}"),
				   VM(", \"bios\": \"seabios\", \"machine\": \"pc\", \"tpm\": false, "
				      "\"cpu\": \"custom-fast\", \"sockets\": 4, \"balloon\": 512, "
				      "\"numa\": true") ","
				   "{\"vmid\": 8002, \"name\": \"b\", \"clone_from_vmid\": 9000}"),
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	t = &cfg->templates[0].hardware.mach;
	cr_assert_str_eq(t->bios, "ovmf");
	cr_assert_eq(t->efi_pre_enrolled_keys, CFG_TRI_TRUE);
	cr_assert_str_eq(t->machine, "pc-q35-9.2+pve1");
	cr_assert_eq(t->tpm, CFG_TRI_TRUE);
	cr_assert_str_eq(t->cpu, CFG_CPU_DEFAULT, "a template gets the default CPU");
	cr_assert_eq(t->sockets, 2);
	cr_assert(t->has_balloon);
	cr_assert_eq(t->balloon_mb, 0, "0 turns the balloon off");
	cr_assert_eq(t->numa, CFG_TRI_FALSE);
	v = &cfg->vms[0].mach;
	cr_assert_str_eq(v->bios, "seabios");
	cr_assert_str_eq(v->machine, "pc");
	cr_assert_eq(v->tpm, CFG_TRI_FALSE);
	cr_assert_str_eq(v->cpu, "custom-fast");
	cr_assert_eq(v->sockets, 4);
	cr_assert_eq(v->balloon_mb, 512);
	cr_assert_eq(v->numa, CFG_TRI_TRUE);
	plain = &cfg->vms[1].mach;
	cr_assert_null(plain->bios, "a VM keeps its template's firmware");
	cr_assert_null(plain->cpu, "a VM keeps its template's CPU");
	cr_assert_null(plain->machine);
	cr_assert_eq(plain->tpm, CFG_TRI_UNSET);
	cr_assert_eq(plain->sockets, 0);
	cr_assert(!plain->has_balloon);
	cr_assert_eq(plain->numa, CFG_TRI_UNSET);
	cfg_free(cfg);
}

Test(config, networks_several_nics_and_the_first_mirrors_network, .init = setup,
     .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];
	const struct cfg_vm *vm;

	cr_assert_eq(load_json("nics.json",
			       VMS(VM(", \"networks\": [{\"bridge\": \"vmbr1\", \"vlan\": 10, "
				      "\"mtu\": 1400, \"firewall\": true, \"ip\": \"10.0.0.5/24\", "
				      "\"gateway\": \"10.0.0.1\", \"ip6\": \"2001:db8::5/64\", "
				      "\"gateway6\": \"2001:db8::1\", \"dns\": [\"2001:db8::53\"]}, "
				      "{\"model\": \"e1000\", \"macaddr\": \"bc:24:11:0a:0b:0c\", "
				      "\"rate\": 12.5, \"ip\": \"none\", \"ip6\": \"auto\", "
				      "\"routes\": [{\"to\": \"fd00::/8\", \"via\": \"fe80::1\"}]}]")),
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	vm = &cfg->vms[0];
	cr_assert_eq(vm->n_nics, 2);
	cr_assert_str_eq(vm->nics[0].model, "virtio");
	cr_assert_eq(vm->nics[0].vlan, 10);
	cr_assert_eq(vm->nics[0].mtu, 1400);
	cr_assert_eq(vm->nics[0].firewall, CFG_TRI_TRUE);
	cr_assert_str_eq(vm->nics[0].ip6, "2001:db8::5/64");
	cr_assert_str_eq(vm->nics[0].gateway6, "2001:db8::1");
	cr_assert(vm->nics[0].has_dns);
	cr_assert_str_eq(vm->network.ip, "10.0.0.5/24", "NIC 0 is also vm->network");
	cr_assert_str_eq(vm->network.gw, "10.0.0.1");
	cr_assert_str_eq(vm->network.bridge, "vmbr1");
	cr_assert_str_eq(vm->nics[1].macaddr, "BC:24:11:0A:0B:0C", "upper-cased like Proxmox");
	cr_assert_str_eq(vm->nics[1].rate, "12.5");
	cr_assert(vm->nics[1].ip4_none);
	cr_assert_null(vm->nics[1].v4.ip);
	cr_assert_eq(vm->nics[1].firewall, CFG_TRI_UNSET);
	cr_assert_eq(vm->nics[1].n_routes, 1);
	cr_assert_str_eq(vm->nics[1].routes[0].via, "fe80::1");
	cr_assert_str_eq(vm->nics[1].v4.bridge, "vmbr0", "defaults.bridge");
	cfg_free(cfg);
}

Test(config, native_mode_takes_one_ipv4_nic, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];

	cr_assert_eq(load_json("native.json",
			       "{\"defaults\": {\"cloudinit_mode\": \"native\"}, \"vms\": ["
			       VM(", \"networks\": [{\"ip\": \"10.0.0.5/24\"}, {}]") "]}",
			       &cfg, &err, path, sizeof(path)),
		     -1);
	cr_assert(has_line(err.msg, path, "$.vms[0].networks", "use cloudinit_mode 'iso'"), "%s",
		  err.msg);
}

Test(config, lifecycle_keys, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];

	cr_assert_eq(load_json("life.json",
			       VMS(VM(", \"onboot\": true, \"protection\": false, \"start\": false, "
				      "\"startup\": {\"order\": 0, \"down\": 60}") ","
				   "{\"vmid\": 8002, \"name\": \"b\", \"clone_from_vmid\": 9000}"),
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	cr_assert_eq(cfg->vms[0].onboot, CFG_TRI_TRUE);
	cr_assert_eq(cfg->vms[0].protection, CFG_TRI_FALSE);
	cr_assert(cfg->vms[0].no_start);
	cr_assert(cfg->vms[0].has_startup);
	cr_assert(cfg->vms[0].startup.has_order && cfg->vms[0].startup.order == 0);
	cr_assert(!cfg->vms[0].startup.has_up);
	cr_assert_eq(cfg->vms[0].startup.down, 60);
	cr_assert(!cfg->vms[1].no_start, "start defaults to true");
	cr_assert(!cfg->vms[1].has_ha);
	cr_assert_eq(cfg->vms[1].onboot, CFG_TRI_UNSET);
	cr_assert(!cfg->vms[1].has_startup);
	cfg_free(cfg);
}

Test(config, cloud_init_parts_and_vendor_data, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_part *v;
	char path[256], want[320];
	size_t n;

	cr_assert_eq(
		load_json("parts.json",
			  "{\"defaults\": {\"vendor_data\": [{\"type\": \"text/cloud-config\", "
			  "\"content\": \"#cloud-config\\nntp: {enabled: true}\\n\"}]}, \"vms\": ["
			  VM(", \"user_data_parts\": [{\"type\": \"text/x-shellscript\", \"source\": "
			     "\"k8s.sh\"}, {\"type\": \"text/cloud-config\", \"content\": "
			     "\"#cloud-config\\nruncmd: [date]\\n\"}]") ","
			  "{\"vmid\": 8002, \"name\": \"b\", \"clone_from_vmid\": 9000, "
			  "\"vendor_data\": [{\"type\": \"text/x-shellscript-per-boot\", "
			  "\"content\": \"#!/bin/sh\\ntrue\\n\"}]}]}",
			  &cfg, &err, path, sizeof(path)),
		0, "%s", err.msg);
	cr_assert_eq(cfg->vms[0].n_user_data_parts, 2);
	cr_assert_str_eq(cfg->vms[0].user_data_parts[0].type, "text/x-shellscript");
	snprintf(want, sizeof(want), "%s/k8s.sh", tmpdir);
	cr_assert_str_eq(cfg->vms[0].user_data_parts[0].source, want, "resolved against the dir");
	cr_assert_null(cfg->vms[0].user_data_parts[0].content);
	cr_assert_str_eq(cfg->vms[0].user_data_parts[1].content, "#cloud-config\nruncmd: [date]\n");
	v = cfg_vm_vendor_data(cfg, &cfg->vms[0], &n);
	cr_assert_eq(n, 1, "VM 0 takes defaults.vendor_data");
	cr_assert_str_eq(v[0].type, "text/cloud-config");
	v = cfg_vm_vendor_data(cfg, &cfg->vms[1], &n);
	cr_assert_eq(n, 1, "VM 1 has its own");
	cr_assert_str_eq(v[0].type, "text/x-shellscript-per-boot");
	cr_assert_eq(cfg->vms[1].n_user_data_parts, 0);
	cfg_free(cfg);
}

Test(config_check, machine_and_cpu_types)
{
	static const char *const machines[] = {"q35", "pc", "pc-q35-9.2", "pc-q35-9.2+pve1",
					       "pc-i440fx-8.1", "pc-8.1.5.pxe"};
	static const char *const not_machines[] = {"", "q35 ", "pc-q35", "virt", "pc-q35-9.x",
						   "microvm"};
	static const char *const cpus[] = {"x86-64-v2-AES", "host", "kvm64", "EPYC-Genoa",
					   "custom-my_model"};
	static const char *const not_cpus[] = {"", "Host", "custom-", "x86-64-v5", "host,flags=+aes"};

	for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++)
		cr_assert(cfg_is_machine(machines[i]), "%s", machines[i]);
	for (size_t i = 0; i < sizeof(not_machines) / sizeof(not_machines[0]); i++)
		cr_assert(!cfg_is_machine(not_machines[i]), "%s", not_machines[i]);
	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++)
		cr_assert(cfg_is_cpu_type(cpus[i]), "%s", cpus[i]);
	for (size_t i = 0; i < sizeof(not_cpus) / sizeof(not_cpus[0]); i++)
		cr_assert(!cfg_is_cpu_type(not_cpus[i]), "%s", not_cpus[i]);
}

/* ---- environment ------------------------------------------------------------------------- */

/* Needs the setup fixture (it writes tmpdir/env.json). */
static struct cfg *load_minimal(void)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];

	cr_assert_eq(load_json("env.json",
			       "{\"proxmox\": {\"api_url\": \"https://cfg:8006/api2/json/\", "
			       "\"token_id\": \"cfg@pve!tk\", \"node\": \"cfgnode\"}, "
			       "\"vms\": [" VM("") "]}",
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	return cfg;
}

Test(config, api_url_is_normalized, .init = setup, .fini = teardown)
{
	struct cfg *cfg = load_minimal();

	cr_assert_str_eq(cfg->proxmox.api_url, "https://cfg:8006");
	cfg_free(cfg);
}

Test(config, env_overrides_the_config, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();

	setenv("PVE_API_URL", "https://127.0.0.1:8443/", 1);
	setenv("PVE_TOKEN_ID", "phoenix@pve!ci", 1);
	setenv("PVE_NODE", "pve2", 1);
	setenv("PVE_TLS_FINGERPRINT",
	       "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:"
	       "23:45:67:89",
	       1);
	setenv("PVE_TOKEN_SECRET_FILE", "/run/secret", 1);
	setenv("PVE_TLS_CA_FILE", "/etc/ca.pem", 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg->proxmox.api_url, "https://127.0.0.1:8443");
	cr_assert_str_eq(cfg->proxmox.token_id, "phoenix@pve!ci");
	cr_assert_str_eq(cfg->proxmox.node, "pve2");
	cr_assert_str_eq(cfg_default_node(cfg), "pve2");
	cr_assert_str_eq(cfg->proxmox.tls.fingerprint,
			 "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
			 "AB:CD:EF:01:23:45:67:89");
	cr_assert_str_eq(cfg->proxmox.token_secret_file, "/run/secret");
	cr_assert_str_eq(cfg->proxmox.tls.ca_file, "/etc/ca.pem");
	cfg_free(cfg);
}

Test(config, env_accepts_terraform_bpg_names, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();
	struct phx_secret *s = NULL;

	setenv("PROXMOX_VE_ENDPOINT", "https://bpg:8006/", 1);
	setenv("PROXMOX_VE_API_TOKEN", "terraform@pve!provider=11111111-2222-3333-4444-555555555555",
	       1);
	cr_assert_eq(cfg_apply_env(cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg->proxmox.api_url, "https://bpg:8006");
	cr_assert_str_eq(cfg->proxmox.token_id, "terraform@pve!provider");
	cr_assert_eq(cfg_load_secret(cfg, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(secret_value(s), "11111111-2222-3333-4444-555555555555");
	secret_free(s);
	cfg_free(cfg);
}

Test(config, pve_names_win_over_bpg_names, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();

	setenv("PVE_API_URL", "https://pve:8006", 1);
	setenv("PROXMOX_VE_ENDPOINT", "https://bpg:8006", 1);
	setenv("PVE_TOKEN_ID", "a@pve!b1", 1);
	setenv("PROXMOX_VE_API_TOKEN", "c@pve!d1=secret", 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg->proxmox.api_url, "https://pve:8006");
	cr_assert_str_eq(cfg->proxmox.token_id, "a@pve!b1");
	cfg_free(cfg);
}

Test(config, bad_env_fails_naming_the_variable_and_changes_nothing, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();

	setenv("PVE_TOKEN_ID", "ok@pve!fine", 1);
	setenv("PVE_API_URL", "pve.example.com", 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "PVE_API_URL"), "%s", err.msg);
	cr_assert(strstr(err.msg, "'pve.example.com'"), "%s", err.msg);
	cr_assert_str_eq(cfg->proxmox.api_url, "https://cfg:8006");
	cr_assert_str_eq(cfg->proxmox.token_id, "cfg@pve!tk");
	cfg_free(cfg);
}

Test(config, bad_token_id_names_the_rule_and_the_broken_part, .init = setup, .fini = teardown)
{
	static const struct {
		const char *id, *why;
	} cases[] = {
		{"a@pve!b", "the token name 'b' has 1 character, 2 or more are needed"},
		{"a@pve!1ci", "the token name '1ci' does not start with a letter"},
		{"a@p!ci", "the realm 'p' has 1 character"},
		{"a@pve!c+i", "the token name 'c+i' has a '+'"},
		{"a/b@pve!ci", "the user has a space, control character, ':', '/' or '!'"},
		{"a@pve", "it is not USER@REALM!TOKENNAME"},
		{"@pve!ci", "the user is empty"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cfg *cfg = load_minimal();

		setenv("PVE_TOKEN_ID", cases[i].id, 1);
		cr_assert_eq(cfg_apply_env(cfg, &err), -1, "%s", cases[i].id);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, "environment PVE_TOKEN_ID: expected a token ID "
					  "USER@REALM!TOKENNAME like 'phoenix@pve!ci' (realm and token "
					  "name: a letter then 1 or more of A-Z a-z 0-9 . - _"),
			  "%s", err.msg);
		cr_assert(strstr(err.msg, cases[i].why), "%s: %s", cases[i].id, err.msg);
		cr_assert_str_eq(cfg->proxmox.token_id, "cfg@pve!tk");
		cfg_free(cfg);
	}
	/* the shortest IDs Proxmox accepts */
	cr_assert(cfg_is_token_id("a@pv!ci"));
	cr_assert(cfg_is_token_id("a.b-c@pve!c_1.x-y"));
}

Test(config, vm_identity_ignores_layout_order_and_comments_only, .init = setup, .fini = teardown)
{
	static const char *const docs[] = {
		"{\"vms\": [{\"vmid\": 8001, \"name\": \"a\", \"clone_from_vmid\": 9000, "
		"\"network_config\": {\"ip\": \"10.0.0.5/24\", \"gw\": \"10.0.0.1\"}}]}",
		"{\"_c\": 1, \"vms\": [\n  {\"network_config\": {\"gw\": \"10.0.0.1\", \"_why\": \"x\", "
		"\"ip\": \"10.0.0.5/24\"},\n   \"clone_from_vmid\": 9000, \"name\": \"a\", "
		"\"vmid\": 8001, \"_note\": \"moved\"}]}",
		"{\"vms\": [{\"vmid\": 8001, \"name\": \"a\", \"clone_from_vmid\": 9000, "
		"\"network_config\": {\"ip\": \"10.0.0.6/24\", \"gw\": \"10.0.0.1\"}}]}",
	};
	char ids[3][CFG_ID_MAX];

	for (size_t i = 0; i < 3; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cfg *cfg = NULL;
		char path[512], name[32];

		snprintf(name, sizeof(name), "id%zu.json", i);
		cr_assert_eq(load_json(name, docs[i], &cfg, &err, path, sizeof(path)), 0, "%s",
			     err.msg);
		cr_assert_eq(strncmp(cfg->vms[0].config_id, "sha256:", 7), 0);
		cr_assert_eq(strlen(cfg->vms[0].config_id), 7 + 64);
		memcpy(ids[i], cfg->vms[0].config_id, CFG_ID_MAX);
		cfg_free(cfg);
	}
	cr_assert_str_eq(ids[0], ids[1], "key order, whitespace and comments are no change");
	cr_assert_str_neq(ids[0], ids[2], "a value is");
}

Test(config, bad_bpg_token_never_echoes_the_secret, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();

	setenv("PROXMOX_VE_API_TOKEN", "not-a-token-id=SUPERSECRET", 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "PROXMOX_VE_API_TOKEN"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "SUPERSECRET"), "%s", err.msg);
	cfg_free(cfg);
}

Test(config, secret_sources_in_order, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();
	struct phx_secret *s = NULL;
	char file[256];

	snprintf(file, sizeof(file), "%s/secret", tmpdir);
	write_file(file, "from-file\n", 0600);
	setenv("PVE_TOKEN_SECRET_FILE", file, 1);
	setenv("PROXMOX_VE_API_TOKEN", "c@pve!d1=from-bpg", 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), 0, "%s", err.msg);
	cr_assert_eq(cfg_load_secret(cfg, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(secret_value(s), "from-file");
	secret_free(s);
	setenv("PVE_TOKEN_SECRET", "from-env", 1);
	cr_assert_eq(cfg_load_secret(cfg, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(secret_value(s), "from-env");
	/* read once: no child (the customization appliance) inherits it */
	cr_assert_null(getenv("PVE_TOKEN_SECRET"));
	cr_assert_null(getenv("PROXMOX_VE_API_TOKEN"));
	secret_free(s);
	cfg_free(cfg);
}

Test(config, secret_file_readable_by_others_is_refused, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();
	struct phx_secret *s = (struct phx_secret *)0x1;
	char file[256];

	snprintf(file, sizeof(file), "%s/secret", tmpdir);
	write_file(file, "x\n", 0644);
	setenv("PVE_TOKEN_SECRET_FILE", file, 1);
	cr_assert_eq(cfg_apply_env(cfg, &err), 0);
	cr_assert_eq(cfg_load_secret(cfg, &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, file), "%s", err.msg);
	cr_assert_eq(s, (struct phx_secret *)0x1);
	cfg_free(cfg);
}

Test(config, no_secret_anywhere_is_an_input_error, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = load_minimal();
	struct phx_secret *s = NULL;

	unsetenv("PVE_TOKEN_SECRET");
	unsetenv("PVE_TOKEN_SECRET_FILE");
	unsetenv("PROXMOX_VE_API_TOKEN");
	cr_assert_eq(cfg_load_secret(cfg, &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "PVE_TOKEN_SECRET"), "%s", err.msg);
	cr_assert_null(s);
	cfg_free(cfg);
}

Test(config, require_connection_names_what_is_missing, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	char path[256];

	cr_assert_eq(load_json("c.json", VMS(VM("")), &cfg, &err, path, sizeof(path)), 0, "%s",
		     err.msg);
	cr_assert_eq(cfg_require_connection(cfg, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "$.proxmox.api_url") && strstr(err.msg, "PVE_API_URL"), "%s",
		  err.msg);
	cfg_free(cfg);
}

/* ---- validators -------------------------------------------------------------------------- */

Test(config_check, password_hash_formats)
{
	cr_assert_null(cfg_check_password_hash(HASH6));
	cr_assert_null(cfg_check_password_hash(HASHY));
	cr_assert_null(cfg_check_password_hash(HASH5));
	cr_assert_null(cfg_check_password_hash(HASH2B));
	cr_assert_null(cfg_check_password_hash(
		"$6$rounds=5000$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsg"
		"VgozkYH9B80bAip/08R2BPH2xk/"));
	cr_assert_not_null(strstr(cfg_check_password_hash("secret123"), "mkpasswd"));
	cr_assert_not_null(cfg_check_password_hash("$6$salt$short"));
	cr_assert_not_null(cfg_check_password_hash("$2b$10$short"));
	cr_assert_not_null(cfg_check_password_hash("$y$j9T$salt"));
	cr_assert_not_null(cfg_check_password_hash("$7$whatever"));
}

Test(config_check, ssh_key_shapes)
{
	cr_assert_null(cfg_check_ssh_key(KEY_ED));
	cr_assert_null(cfg_check_ssh_key(KEY_EC));
	cr_assert_null(cfg_check_ssh_key(
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4"));
	cr_assert_not_null(cfg_check_ssh_key("ssh-ed25519"));
	cr_assert_not_null(cfg_check_ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
	cr_assert_not_null(cfg_check_ssh_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP"));
	cr_assert_not_null(cfg_check_ssh_key("ecdsa-sha2-nistp384 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQ"
					     "i0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4"));
}

Test(config_check, addresses_and_names)
{
	uint32_t a;
	unsigned p;

	cr_assert(cfg_parse_cidr("10.0.0.5/24", &a, &p));
	cr_assert_eq(a, 0x0a000005u);
	cr_assert_eq(p, 24);
	cr_assert_not(cfg_parse_cidr("10.0.0.5/0", &a, &p));
	cr_assert_not(cfg_parse_cidr("10.0.0.5/", &a, &p));
	cr_assert_not(cfg_parse_cidr("010.0.0.5/24", &a, &p));
	cr_assert_not(cfg_parse_ipv4("1.2.3", &a));
	cr_assert_not(cfg_parse_ipv4("1.2.3.4.5", &a));
	cr_assert(cfg_is_dns_label("web-01"));
	cr_assert_not(cfg_is_dns_label("-web"));
	cr_assert(cfg_is_token_id("root@pam!ci"));
	cr_assert_not(cfg_is_token_id("root@pam"));
	cr_assert_not(cfg_is_token_id("root!ci"));
	cr_assert_null(cfg_check_url("https://[::1]:8006/", true));
	cr_assert_not_null(cfg_check_url("https://user:pw@pve:8006", true));
	cr_assert_not_null(cfg_check_url("https://", true));
}

Test(config_check, suggests_close_keys_only)
{
	static const char *const keys[] = {"cores", "memory_mb", "disk_size_gb", "name"};

	cr_assert_eq(cfg_edit_distance("corse", "cores"), 1); /* transposition */
	cr_assert_eq(cfg_edit_distance("kitten", "sitting"), 3);
	cr_assert_str_eq(cfg_suggest("memory", keys, 4), "memory_mb");
	cr_assert_str_eq(cfg_suggest("Cores", keys, 4), "cores");
	cr_assert_null(cfg_suggest("banana", keys, 4));
}

Test(config_check, fingerprint_normalization)
{
	char fp[96];

	cr_assert(cfg_normalize_fingerprint(
		"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", fp));
	cr_assert_str_eq(fp, "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
			     "67:89:AB:CD:EF:01:23:45:67:89");
	cr_assert_not(cfg_normalize_fingerprint("AB:CD", fp));
	cr_assert_not(cfg_normalize_fingerprint(
		"ABC:DEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", fp));
}

Test(config, native_mode_keeps_hashes_proxmox_keeps, .init = setup, .fini = teardown)
{
	/* the same hashes pass in iso mode and with snippets_dir (our user-data carries them) */
	static const char *const ok[] = {
		"{\"defaults\": {\"cloudinit_mode\": \"native\"}, \"vms\": [" VM("") "]}",
		"{\"defaults\": {\"cloudinit_mode\": \"native\"}, \"vms\": [" VM_HASH(HASH5) "]}",
		"{\"vms\": [" VM_HASH(HASHY) "]}",
		"{\"defaults\": {\"cloudinit_mode\": \"native\", \"snippets_dir\": "
		"\"/var/lib/vz/snippets\"}, \"vms\": [" VM_HASH(HASHY) "]}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cfg *cfg = NULL;
		char path[256];

		cr_assert_eq(load_json("ok.json", ok[i], &cfg, &err, path, sizeof(path)), 0,
			     "case %zu: %s", i, err.msg);
		cfg_free(cfg);
	}
}

Test(config, proxmox_keeps_only_the_hashes_its_regex_matches)
{
	/* qemu-server API2/Qemu.pm $update_vm_api: ^\$(?:[156]|2[ay])(\$.+){2} */
	static const struct {
		const char *hash;
		bool kept;
	} cases[] = {
		{HASH6, true},	     {HASH5, true},	 {"$1$salt$hash", true},
		{"$2a$10$xy", true}, {"$2y$10$xy", true}, {"$6$$x$y", true},
		{HASHY, false},	     {HASH2B, false},	 {"$7$salt$hash", false},
		{"$6$onlysalt", false}, {"$6$salt$", false}, {"6$salt$hash", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(cfg_proxmox_keeps_hash(cases[i].hash), cases[i].kept, "%s",
			     cases[i].hash);
}

Test(config, container_template_defaults_and_users, .init = setup, .fini = teardown)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cfg *cfg = NULL;
	const struct cfg_template *t, *c;
	char path[256];

	cr_assert_eq(load_json("ct.json",
			       "{\"defaults\": {\"storage\": \"local-lvm\", \"template_storage\": "
			       "\"tpl\"}, \"templates\": ["
			       TPLV(CT_KIND ", \"customize\": {\"users\": [{\"name\": \"ada\", "
					    "\"uid\": 1500, \"gid\": 1600, \"groups\": [\"sudo\", "
					    "\"docker\"], \"ssh_authorized_keys\": \"" KEY_ED "\", "
					    "\"password_hash\": \"" HASH6 "\", \"sudo\": true, "
					    "\"git_name\": \"Ada Lovelace\", \"git_email\": "
					    "\"ada@example.com\"}]}") ", "
			       "{\"name\": \"ct2\", \"vmid\": 9001, \"kind\": \"lxc\", \"image_url\": "
			       "\"https://example.com/r.tar.xz\", \"sha256\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", "
			       "\"container\": {\"unprivileged\": false, \"features\": {\"nesting\": "
			       "true}, \"rootfs_gb\": 8, \"storage\": \"tank\", \"template_storage\": "
			       "\"local\", \"cores\": 2, \"memory_mb\": 1024, \"swap_mb\": 0, "
			       "\"bridge\": \"vmbr1\", \"ostype\": \"ubuntu\", \"ifupdown\": false}}]}",
			       &cfg, &err, path, sizeof(path)),
		     0, "%s", err.msg);
	t = &cfg->templates[0];
	cr_assert_eq(t->kind, CFG_KIND_LXC);
	/* a container has no guest agent: no default package */
	cr_assert_eq(t->customize.packages.n, 0);
	cr_assert(t->ct.unprivileged && !t->ct.nesting && t->ct.ifupdown);
	cr_assert_eq(t->ct.rootfs_gb, 4);
	cr_assert_eq(t->ct.cores, 1);
	cr_assert_eq(t->ct.memory_mb, 512);
	cr_assert_eq(t->ct.swap_mb, 512);
	cr_assert_str_eq(t->ct.storage, "local-lvm");
	cr_assert_str_eq(t->ct.template_storage, "tpl");
	cr_assert_str_eq(t->ct.bridge, "vmbr0");
	cr_assert_null(t->ct.ostype);
	cr_assert_eq(t->customize.n_users, 1);
	cr_assert_str_eq(t->customize.users[0].name, "ada");
	cr_assert_eq(t->customize.users[0].uid, 1500);
	cr_assert_eq(t->customize.users[0].gid, 1600);
	cr_assert_eq(t->customize.users[0].groups.n, 2);
	cr_assert_eq(t->customize.users[0].ssh_public_keys.n, 1);
	cr_assert_str_eq(t->customize.users[0].password_hash, HASH6);
	/* a password in a golden image is a first-login password */
	cr_assert(t->customize.users[0].password_expired);
	cr_assert(t->customize.users[0].sudo);
	cr_assert_str_eq(t->customize.users[0].git_email, "ada@example.com");
	c = &cfg->templates[1];
	cr_assert(!c->ct.unprivileged && c->ct.nesting && !c->ct.ifupdown);
	cr_assert_eq(c->ct.rootfs_gb, 8);
	cr_assert_eq(c->ct.cores, 2);
	cr_assert_eq(c->ct.memory_mb, 1024);
	cr_assert_eq(c->ct.swap_mb, 0);
	cr_assert_str_eq(c->ct.storage, "tank");
	cr_assert_str_eq(c->ct.template_storage, "local");
	cr_assert_str_eq(c->ct.bridge, "vmbr1");
	cr_assert_str_eq(c->ct.ostype, "ubuntu");
	cfg_free(cfg);
}
