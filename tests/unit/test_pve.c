/* Unit tests for the pve module with recorded real responses (tests/data/pve/, see SOURCE.md
 * there): envelope, numbers as strings, task states, agent answers, error mapping, UPIDs,
 * redaction, dry-run. No network: the client in dry-run points at a closed port. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pve.h"

TestSuite(pve);

#define FIXTURES "tests/data/pve/"

static char *slurp(const char *name, size_t *ret_len)
{
	char path[512];
	FILE *f;
	char *data;
	long n;

	snprintf(path, sizeof(path), "%s%s", FIXTURES, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "fixture %s missing (run from the repo root)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return data;
}

static json_t *fixture_data(const char *name)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t len;
	char *body = slurp(name, &len);
	json_t *data = NULL;

	cr_assert_eq(pve_envelope_parse(body, len, name, &data, &err), 0, "%s", err.msg);
	free(body);
	return data;
}

Test(pve, envelope_gives_data_member)
{
	json_t *v = fixture_data("version.pve7.2.proxmoxer.json");
	int major = 0, minor = 0;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_str_eq(json_string_value(json_object_get(v, "version")), "7.2-3");
	cr_assert_eq(pve_version_parse("7.2-3", &major, &minor, &err), 0);
	cr_assert_eq(major, 7);
	cr_assert_eq(minor, 2);
	cr_assert_eq(pve_version_parse("9.1.9", &major, &minor, &err), 0);
	cr_assert_eq(major * 100 + minor, 901);
	json_decref(v);
}

Test(pve, version_parse_rejects_garbage_and_names_it)
{
	struct phx_err err = PHX_ERR_INIT;
	int major = -7, minor = -7;

	cr_assert_eq(pve_version_parse("pve-manager", &major, &minor, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert(strstr(err.msg, "'pve-manager'"), "%s", err.msg);
	cr_assert_eq(major, -7);
}

Test(pve, envelope_rejects_non_json_and_missing_data)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *data = (json_t *)0x1;

	cr_assert_eq(pve_envelope_parse("<html>proxy</html>", 18, "GET /version", &data, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert(strstr(err.msg, "GET /version"), "%s", err.msg);
	cr_assert_eq(data, (json_t *)0x1, "output written on failure");
	phx_err_clear(&err);
	cr_assert_eq(pve_envelope_parse("{\"errors\":{}}", 13, "GET /x", &data, &err), -1);
	cr_assert(strstr(err.msg, "\"data\""), "%s", err.msg);
	cr_assert_eq(data, (json_t *)0x1);
}

Test(pve, nextid_string_is_read_as_integer)
{
	json_t *v = fixture_data("cluster-nextid.go-proxmox.json");
	struct phx_err err = PHX_ERR_INIT;
	long long id = 0;

	cr_assert(json_is_string(v), "fixture changed: nextid should be a string");
	cr_assert_eq(pve_json_int(v, "nextid", &id, &err), 0, "%s", err.msg);
	cr_assert_eq(id, 100);
	json_decref(v);
}

Test(pve, json_int_rejects_non_numeric_string)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = json_string("10x");
	long long id = 42;

	cr_assert_eq(pve_json_int(v, "nextid", &id, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert(strstr(err.msg, "nextid") && strstr(err.msg, "'10x'"), "%s", err.msg);
	cr_assert_eq(id, 42);
	json_decref(v);
}

Test(pve, task_status_ok_error_running)
{
	struct {
		const char *file;
		enum pve_task_state state;
		const char *exit;
	} cases[] = {
		{"task-status-ok.proxmoxer.json", PVE_TASK_OK, "OK"},
		{"task-status-error.proxmoxer.json", PVE_TASK_FAILED, "interrupted by signal"},
		{"task-status-running.proxmoxer.json", PVE_TASK_RUNNING, NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		json_t *v = fixture_data(cases[i].file);
		enum pve_task_state st;
		const char *exit = "unset";

		cr_assert_eq(pve_task_status_parse(v, &st, &exit, &err), 0, "%s", err.msg);
		cr_assert_eq(st, cases[i].state, "%s", cases[i].file);
		if (cases[i].exit)
			cr_assert_str_eq(exit, cases[i].exit);
		else
			cr_assert_null(exit);
		json_decref(v);
	}
}

Test(pve, task_status_warnings_are_success)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = json_pack("{ssss}", "status", "stopped", "exitstatus", "WARNINGS: 2");
	enum pve_task_state st;
	const char *exit;

	cr_assert_eq(pve_task_status_parse(v, &st, &exit, &err), 0);
	cr_assert_eq(st, PVE_TASK_WARNINGS);
	json_decref(v);
}

Test(pve, network_interfaces_parse)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = fixture_data("qemu-agent-network-get-interfaces.pve6.2.community-proxmox.json");
	struct pve_iface_list l;

	cr_assert_eq(pve_iface_list_parse(v, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.items[0].name, "lo");
	cr_assert_eq(l.items[0].n_ipv4, 1, "ipv6 must not be listed as ipv4");
	cr_assert_str_eq(l.items[0].ipv4[0], "127.0.0.1/8");
	cr_assert_str_eq(l.items[1].name, "eth0");
	cr_assert_str_eq(l.items[1].mac, "ff:ff:ff:ff:ff:ff");
	cr_assert_str_eq(l.items[1].ipv4[0], "10.1.2.3/24");
	cr_assert_str_eq(l.items[2].ipv4[0], "10.10.2.3/16");
	pve_iface_list_release(&l);
	json_decref(v);
}

Test(pve, network_interfaces_unsupported_error_object)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = fixture_data(
		"qemu-agent-network-get-interfaces-unsupported.pve6.2.community-proxmox.json");
	struct pve_iface_list l = {(struct pve_iface *)0x1, 77};

	cr_assert_eq(pve_iface_list_parse(v, &l, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert(strstr(err.msg, "Unsupported") &&
		  strstr(err.msg, "this feature or command is not currently supported"),
		  "%s", err.msg);
	cr_assert_eq(l.n, 77, "output written on failure");
	json_decref(v);
}

Test(pve, cluster_resources_lists_qemu_only)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = fixture_data("cluster-resources.pve8.go-proxmox.json");
	struct pve_vm_list l;
	size_t i, qemu = 0;
	bool saw_tpl = false, saw_tags = false;

	for (i = 0; i < json_array_size(v); i++)
		qemu += strcmp(json_string_value(json_object_get(json_array_get(v, i), "type")),
			       "qemu") == 0;
	cr_assert_eq(pve_vm_list_parse(v, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, qemu);
	cr_assert_gt(l.n, 0);
	for (i = 0; i < l.n; i++) {
		if (l.items[i].vmid == 101) {
			saw_tpl = l.items[i].template;
			cr_assert_str_eq(l.items[i].node, "node1");
			cr_assert_str_eq(l.items[i].name, "leap154");
		}
		if (l.items[i].vmid == 102)
			saw_tags = strcmp(l.items[i].tags, "go-proxmox+cloud-init") == 0;
		if (l.items[i].vmid == 100)
			cr_assert_not(l.items[i].template);
	}
	cr_assert(saw_tpl && saw_tags);
	pve_vm_list_release(&l);
	json_decref(v);
}

Test(pve, vm_status_parse)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = fixture_data("qemu-status-current.pve6.2.community-proxmox.json");
	struct pve_vm_status s;

	cr_assert_eq(pve_vm_status_parse(v, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s.status, "stopped");
	cr_assert_str_eq(s.name, "test-qemu");
	cr_assert_str_eq(s.lock, "");
	json_decref(v);
}

static void map_fixture(const char *file, long status, const char *reason, const char *method,
			const char *path, struct phx_err *err)
{
	size_t len = 0;
	char *body = file ? slurp(file, &len) : NULL;

	cr_assert_eq(pve_error_from_http(method, path, status, reason, body, len, err), -1);
	free(body);
}

Test(pve, error_400_names_each_parameter)
{
	struct phx_err err = PHX_ERR_INIT;

	map_fixture("error-400-param-verification.proxmoxer.json", 400,
		    "Parameter verification failed.", "POST", "/nodes/pve1/qemu", &err);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert_eq(err.http_status, 400);
	cr_assert_str_eq(err.msg, "POST /nodes/pve1/qemu: HTTP 400 Parameter verification failed: "
				  "command: type check ('string') failed - got ARRAY");
}

Test(pve, error_vm_exists_is_conflict)
{
	struct phx_err err = PHX_ERR_INIT;

	map_fixture("error-400-nextid-vm-exists.go-proxmox.json", 400,
		    "Parameter verification failed.", "GET", "/cluster/nextid", &err);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "vmid: VM 200 already exists"), "%s", err.msg);
}

Test(pve, error_401_is_token_rejected)
{
	struct phx_err err = PHX_ERR_INIT;

	map_fixture(NULL, 401, "authentication failure", "GET", "/version", &err);
	cr_assert_eq(err.code, PHX_E_AUTH);
	cr_assert(strstr(err.msg, "GET /version: HTTP 401 token rejected"), "%s", err.msg);
}

Test(pve, error_403_names_privilege_path_and_privsep_hint)
{
	struct phx_err err = PHX_ERR_INIT;

	map_fixture(NULL, 403, "Permission check failed (/vms/100, VM.Allocate)", "POST",
		    "/nodes/pve1/qemu", &err);
	cr_assert_eq(err.code, PHX_E_PERM);
	cr_assert(strstr(err.msg, "token lacks VM.Allocate on /vms/100"), "%s", err.msg);
	cr_assert(strstr(err.msg, "privilege separation"), "%s", err.msg);
	cr_assert_eq(err.http_status, 403);
}

Test(pve, error_prefers_full_message_member)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *body = "{\"data\":null,\"message\":\"VM 105 is locked (clone)\\n\"}";

	cr_assert_eq(pve_error_from_http("POST", "/nodes/pve1/qemu/105/config", 500,
					 "VM 105 is locked (clone)", body, strlen(body), &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert_str_eq(err.msg, "POST /nodes/pve1/qemu/105/config: HTTP 500 VM 105 is locked "
				  "(clone)");
}

Test(pve, lock_timeout_detected)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *reason = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";

	cr_assert(pve_is_lock_timeout(reason));
	cr_assert_not(pve_is_lock_timeout("VM 100 is locked (clone)"));
	cr_assert_not(pve_is_lock_timeout(NULL));
	pve_error_from_http("POST", "/nodes/pve1/qemu/100/config", 500, reason, NULL, 0, &err);
	cr_assert_eq(err.code, PHX_E_TIMEOUT);
	cr_assert(strstr(err.msg, "lock-100.conf"), "%s", err.msg);
}

Test(pve, upid_node_extraction)
{
	struct {
		const char *upid, *node;
	} ok[] = {
		{"UPID:node1:000FF1FD:10F9374C:630D702C:vzdump:110:root@pam:", "node1"},
		{"UPID:pve-2:0012ABCD:0A1B2C3D:66F1D6A2:imgcopy::automation@pve!builder:", "pve-2"},
	};
	const char *bad[] = {"node1:0000", "UPID::x:", "UPID:no_underscore:1:", "UPID:nocolon"};
	size_t i;

	for (i = 0; i < 2; i++) {
		struct phx_err err = PHX_ERR_INIT;
		char node[64];

		cr_assert_eq(pve_upid_node(ok[i].upid, node, sizeof(node), &err), 0, "%s", err.msg);
		cr_assert_str_eq(node, ok[i].node);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char node[64] = "untouched";

		cr_assert_eq(pve_upid_node(bad[i], node, sizeof(node), &err), -1, "%s", bad[i]);
		cr_assert(strstr(err.msg, bad[i]), "%s", err.msg);
		cr_assert_str_eq(node, "untouched");
	}
}

Test(pve, path_parts_are_escaped)
{
	struct phx_err err = PHX_ERR_INIT;
	char *p = pve_path(&err, "nodes", "pve1", "storage", "local", "content",
			   "local:import/noble.qcow2", NULL);

	cr_assert_str_eq(p, "/nodes/pve1/storage/local/content/local%3Aimport%2Fnoble.qcow2");
	free(p);
}

static struct pve_client *read_only_client(struct phx_secret **ret_secret)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s = secret_from_string("11111111-2222-3333-4444-555555555555", &err);
	struct pve_client_opts o = {
		.api_url = "https://127.0.0.1:1/",
		.token_id = "phoenix@pve!ci",
		.secret = s,
		.node = "pve1",
		.read_only = true,
		.retry_base_ms = 10,
	};
	struct pve_client *c;

	cr_assert_not_null(s);
	c = pve_client_new(&o, &err);
	cr_assert_not_null(c, "%s", err.msg);
	*ret_secret = s;
	return c;
}

Test(pve, read_only_client_refuses_mutations_unsent)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s;
	struct pve_client *c = read_only_client(&s);
	struct pve_param p[] = {{"vmid", "9000"}, {"cipassword", "hunter2"}};

	cr_assert_eq(http_global_init(&err), 0);
	/* port 1 is closed: a request that went out would fail with PHX_E_NET */
	cr_assert_eq(pve_vm_create(c, NULL, p, 2, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL, "%s", err.msg);
	cr_assert(strstr(err.msg, "POST /nodes/pve1/qemu: refused, this run is read-only"), "%s",
		  err.msg);
	cr_assert_null(strstr(err.msg, "hunter2"));
	phx_err_clear(&err);
	cr_assert_eq(pve_vm_destroy(c, "pve2", 9000, PVE_DESTROY_PURGE, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL, "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(pve_upload_multipart(c, "/nodes/pve1/storage/local/upload", NULL, 0, "x.iso",
					  "/dev/null", NULL, NULL, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL, "%s", err.msg);
	pve_client_free(c);
	secret_free(s);
	http_global_cleanup();
}

Test(pve, read_only_client_still_sends_gets)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s;
	struct pve_client *c = read_only_client(&s);
	int id = -1;

	cr_assert_eq(http_global_init(&err), 0);
	/* port 1 is closed: a GET really goes out and fails (after retries) */
	cr_assert_eq(pve_nextid(c, &id, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET);
	cr_assert(strstr(err.msg, "GET /cluster/nextid"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "11111111"), "secret in message: %s", err.msg);
	cr_assert_eq(id, -1);
	pve_client_free(c);
	secret_free(s);
	http_global_cleanup();
}

Test(pve, client_rejects_bad_url_and_token_id)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s = secret_from_string("x", &err);
	struct pve_client_opts o = {.api_url = "pve.example:8006", .token_id = "a@pve!t",
				    .secret = s};

	cr_assert_null(pve_client_new(&o, &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'pve.example:8006'"), "%s", err.msg);
	phx_err_clear(&err);
	o.api_url = "https://pve.example:8006";
	o.token_id = "automation-no-realm";
	cr_assert_null(pve_client_new(&o, &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'automation-no-realm'"), "%s", err.msg);
	secret_free(s);
}
