/* Integration: the pve + http modules against the Proxmox simulator over HTTPS. One simulator
 * per test (own state dir, log in $PHX_BUILD/sim-logs/pve-client-<test>.jsonl). Every test
 * ends in sim_finish(), which asserts zero schema violations in the simulator log and that
 * the token secret appears in none of: the simulator log, its stderr, our stderr (where the
 * --verbose --verbose HTTP trace goes). */
#include <criterion/criterion.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "pve.h"
#include "simproc.h"

TestSuite(pve_client, .timeout = 180);

struct ctx {
	struct simproc sim;
	struct phx_secret *secret;
	char name[64];
	char our_stderr[PATH_MAX];
};

static void sim_setup(struct ctx *x, const char *name, const char *const *extra)
{
	struct phx_err err = PHX_ERR_INIT;
	int fd;

	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "pve-client-%s", name);
	if (!getenv("PHX_SRC"))
		cr_skip_test("PHX_SRC is not set (run through 'make integration')");
	cr_assert_eq(http_global_init(&err), 0);
	cr_assert_eq(simproc_start(&x->sim, x->name, extra), 0,
		     "simulator did not start; see %s", x->sim.stderr_path);
	/* our diagnostics (and the HTTP trace) go to a file that is checked for the secret */
	snprintf(x->our_stderr, sizeof(x->our_stderr), "%s/sim-logs/%s.client-stderr",
		 simproc_build_dir(), x->name);
	fd = open(x->our_stderr, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	log_setup(2, false);
	x->secret = secret_from_string(SIM_SECRET, &err);
	cr_assert_not_null(x->secret);
}

static struct pve_client *client_ex(struct ctx *x, const char *fingerprint, const char *ca_file,
				    const struct phx_secret *secret, bool read_only,
				    struct phx_err *err)
{
	struct pve_client_opts o = {
		.api_url = x->sim.url,
		.token_id = SIM_TOKEN_ID,
		.secret = secret ? secret : x->secret,
		.node = "pve1",
		.tls = {.fingerprint = fingerprint, .ca_file = ca_file},
		.retry_base_ms = 20,
		.read_only = read_only,
	};

	return pve_client_new(&o, err);
}

static struct pve_client *client(struct ctx *x)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c = client_ex(x, x->sim.fingerprint, NULL, NULL, false, &err);

	cr_assert_not_null(c, "%s", err.msg);
	return c;
}

static void sim_finish(struct ctx *x)
{
	char first[2048] = "";
	size_t v;

	fflush(stderr);
	v = simproc_violations(&x->sim, first, sizeof(first));
	cr_expect_eq(v, 0, "%zu schema violations in %s, first: %s", v, x->sim.log_path, first);
	cr_expect_not(simproc_file_contains(x->sim.log_path, SIM_SECRET), "secret in sim log");
	cr_expect_not(simproc_file_contains(x->sim.stderr_path, SIM_SECRET),
		      "secret in sim stderr");
	cr_expect_not(simproc_file_contains(x->our_stderr, SIM_SECRET),
		      "secret in client stderr/trace %s", x->our_stderr);
	simproc_stop(&x->sim);
	secret_free(x->secret);
	http_global_cleanup();
}

static void ctl(struct ctx *x, const char *method, const char *path, const char *json)
{
	long st = simproc_control(&x->sim, method, path, json, NULL);

	cr_assert_eq(st, 200, "control %s %s -> %ld", method, path, st);
}

/* ---- TLS ---- */

Test(pve_client, pin_accepts_right_fingerprint_in_any_form)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	char plain[128];
	size_t i, n = 0;
	struct pve_client *c;
	struct pve_version v;

	sim_setup(&x, "pin-ok", NULL);
	/* lower case, no colons: as pasted from `openssl x509 -fingerprint` output mangled */
	for (i = 0; x.sim.fingerprint[i]; i++)
		if (x.sim.fingerprint[i] != ':')
			plain[n++] = (char)(x.sim.fingerprint[i] | 0x20);
	plain[n] = '\0';
	c = client_ex(&x, plain, NULL, NULL, false, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_version_get(c, &v, &err), 0, "%s", err.msg);
	cr_assert_eq(v.major, 9);
	cr_assert_eq(v.minor, 1);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, pin_mismatch_refuses_before_sending_anything)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	const char *wrong =
		"00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:"
		"AA:BB:CC:DD:EE:FF";
	struct pve_param p[] = {{"vmid", "9100"}, {"name", "never"}, {"memory", "512"}};
	struct pve_client *c;

	sim_setup(&x, "pin-wrong", NULL);
	c = client_ex(&x, wrong, NULL, NULL, false, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_vm_create(c, NULL, p, 3, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_TLS, "%s", err.msg);
	cr_assert(strstr(err.msg, wrong), "expected fingerprint missing: %s", err.msg);
	cr_assert(strstr(err.msg, x.sim.fingerprint), "actual fingerprint missing: %s", err.msg);
	cr_assert_eq(phx_err_exit_status(&err), 1);
	/* the handshake failed, so the simulator never saw a request, let alone its body */
	cr_assert_eq(simproc_count(&x.sim, NULL, NULL), 0);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, ca_file_verifies_and_missing_trust_is_refused)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_version v;

	sim_setup(&x, "ca-file", NULL);
	c = client_ex(&x, NULL, x.sim.cert_path, NULL, false, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_version_get(c, &v, &err), 0, "%s", err.msg);
	pve_client_free(c);

	/* neither pin nor CA: the system store does not know the self-signed certificate */
	c = client_ex(&x, NULL, NULL, NULL, false, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_version_get(c, &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_TLS, "%s", err.msg);
	cr_assert(strstr(err.msg, "tls.fingerprint"), "no hint: %s", err.msg);
	cr_assert(strstr(err.msg, x.sim.url), "origin not named: %s", err.msg);
	pve_client_free(c);

	/* insecure works, and says loudly that it is insecure */
	{
		struct pve_client_opts o = {.api_url = x.sim.url, .token_id = SIM_TOKEN_ID,
					    .secret = x.secret, .node = "pve1",
					    .tls = {.insecure = true}};

		phx_err_clear(&err);
		c = pve_client_new(&o, &err);
		cr_assert_not_null(c, "%s", err.msg);
		cr_assert_eq(pve_version_get(c, &v, &err), 0, "%s", err.msg);
		fflush(stderr);
		cr_assert(simproc_file_contains(x.our_stderr, "TLS VERIFICATION IS DISABLED"));
		pve_client_free(c);
	}
	sim_finish(&x);
}

/* ---- auth and permissions ---- */

Test(pve_client, wrong_secret_is_token_rejected)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *bad;
	struct pve_client *c;
	int id;

	sim_setup(&x, "auth", NULL);
	bad = secret_from_string("99999999-0000-0000-0000-000000000000", &err);
	c = client_ex(&x, x.sim.fingerprint, NULL, bad, false, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_nextid(c, &id, &err), -1);
	cr_assert_eq(err.code, PHX_E_AUTH, "%s", err.msg);
	cr_assert(strstr(err.msg, "token rejected"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "99999999"), "secret in message: %s", err.msg);
	/* a 401 is not retried */
	cr_assert_eq(simproc_count(&x.sim, "GET", "/cluster/nextid"), 1);
	pve_client_free(c);
	secret_free(bad);
	sim_finish(&x);
}

Test(pve_client, permissions_report_every_missing_privilege)
{
	static const char *const extra[] = {
		"--token-privs", "phoenix@pve!ci=/:Sys.Audit;/vms:VM.Audit,VM.Config.Options", NULL};
	static const char *const want[] = {"VM.Audit", "VM.Allocate", "VM.Clone",
					   "Datastore.Allocate"};
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_param p[] = {{"vmid", "9200"}, {"name", "denied"}};
	struct pve_client *c;

	sim_setup(&x, "perms", extra);
	c = client(&x);
	cr_assert_eq(pve_permissions_check(c, "/vms", want, 2 - 1, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_permissions_check(c, "/vms", want, 4, &err), -1);
	cr_assert_eq(err.code, PHX_E_PERM);
	cr_assert(strstr(err.msg, "lacks VM.Allocate, VM.Clone, Datastore.Allocate on '/vms'"),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "privilege separation"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(pve_vm_create(c, NULL, p, 2, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_PERM, "%s", err.msg);
	/* qemu-server create_vm checks VM.Allocate with rpcenv->check_vm_perm, whose failure
	 * is the bare "Permission check failed" */
	cr_assert(strstr(err.msg, "HTTP 403 Permission check failed"), "%s", err.msg);

	/* an upload refused before its body is read is still a clean 403, not a send error */
	{
		char big[PATH_MAX];
		FILE *f;

		snprintf(big, sizeof(big), "%s/big.qcow2", x.sim.state_dir);
		f = fopen(big, "w");
		cr_assert_not_null(f);
		cr_assert_eq(ftruncate(fileno(f), 32 << 20), 0);
		fclose(f);
		phx_err_clear(&err);
		cr_assert_eq(pve_storage_upload(c, NULL, "local", "import", big, "big.qcow2", NULL,
						NULL, NULL, 60, NULL, &err),
			     -1);
		cr_assert_eq(err.code, PHX_E_PERM, "%s", err.msg);
		cr_assert(strstr(err.msg, "Datastore.AllocateTemplate"), "%s", err.msg);
	}
	pve_client_free(c);
	sim_finish(&x);
}

/* ---- the typed calls ---- */

static bool has_vm(struct pve_client *c, int vmid)
{
	struct phx_err err = PHX_ERR_INIT;
	bool exists = false;
	char *node = NULL;

	cr_assert_eq(pve_vm_exists(c, vmid, &exists, &node, &err), 0, "%s", err.msg);
	if (exists)
		cr_assert_str_eq(node, "pve1");
	free(node);
	return exists;
}

Test(pve_client, every_typed_call_succeeds)
{
	static const char *const privs[] = {"VM.Allocate", "VM.Clone", "Datastore.AllocateSpace"};
	static const char *const argv[] = {"/bin/echo", "hello", NULL};
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_version ver;
	struct pve_vm_list vms;
	struct pve_vm_status st;
	struct pve_iface_list ifs;
	struct pve_exec_status es;
	json_t *conf = NULL;
	int id = 0;
	long long pid = 0;
	char sid[16], cid[16];
	size_t i;
	bool saw_tpl = false;

	sim_setup(&x, "typed", NULL);
	c = client(&x);
	cr_assert_eq(pve_version_get(&*c, &ver, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_permissions_check(c, "/vms", privs, 3, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_nextid(c, &id, &err), 0, "%s", err.msg);
	cr_assert_geq(id, 100);
	snprintf(sid, sizeof(sid), "%d", id);
	snprintf(cid, sizeof(cid), "%d", id + 1);
	cr_assert_not(has_vm(c, id));

	{
		struct pve_param p[] = {
			{"vmid", sid},
			{"name", "phx-tpl"},
			{"memory", "1024"},
			{"cores", "2"},
			{"scsihw", "virtio-scsi-single"},
			{"scsi0", "local:1"},
			{"net0", "virtio,bridge=vmbr0"},
			{"agent", "enabled=1"},
			{"tags", "phoenix;template"},
			{"ostype", "l26"},
		};
		cr_assert_eq(pve_vm_create(c, NULL, p, sizeof(p) / sizeof(p[0]), 60, &err), 0,
			     "%s", err.msg);
	}
	cr_assert(has_vm(c, id));
	{
		struct pve_param p[] = {{"description", "built by phoenix"},
					{"ciuser", "ubuntu"},
					{"cipassword", "not-logged-anywhere"}};
		cr_assert_eq(pve_vm_config_set(c, NULL, id, p, 3, 60, &err), 0, "%s", err.msg);
	}
	cr_assert_eq(pve_vm_config_get(c, NULL, id, &conf, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(conf, "name")), "phx-tpl");
	cr_assert_str_eq(json_string_value(json_object_get(conf, "description")),
			 "built by phoenix");
	json_decref(conf);
	cr_assert_eq(pve_vm_resize(c, NULL, id, "scsi0", "+1G", 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_template(c, NULL, id, 60, &err), 0, "%s", err.msg);

	{
		struct pve_param p[] = {{"name", "phx-clone"}, {"full", "1"}};
		cr_assert_eq(pve_vm_clone(c, NULL, id, id + 1, p, 2, 60, &err), 0, "%s", err.msg);
	}
	cr_assert_eq(pve_cluster_vms(c, &vms, &err), 0, "%s", err.msg);
	for (i = 0; i < vms.n; i++)
		if (vms.items[i].vmid == id)
			saw_tpl = vms.items[i].template;
	cr_assert(saw_tpl, "template flag not seen in cluster resources");
	pve_vm_list_release(&vms);

	cr_assert_eq(pve_vm_start(c, NULL, id + 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_status_get(c, NULL, id + 1, &st, &err), 0, "%s", err.msg);
	cr_assert_str_eq(st.status, "running");
	cr_assert(st.agent);

	/* agent not up yet: the error is reported, not hidden */
	cr_assert_eq(pve_agent_ping(c, NULL, id + 1, &err), -1);
	cr_assert(strstr(err.msg, "guest agent is not running"), "%s", err.msg);
	phx_err_clear(&err);
	/* a GET that fails for a state reason is not retried (agent wait loops poll this) */
	cr_assert_eq(pve_agent_network(c, NULL, id + 1, &ifs, &err), -1);
	cr_assert(strstr(err.msg, "guest agent is not running"), "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "GET", "/agent/network-get-interfaces"), 1);
	phx_err_clear(&err);
	{
		char path[64];

		snprintf(path, sizeof(path), "/_sim/agent/%d", id + 1);
		ctl(&x, "POST", path, "{\"up\":true,\"exec_out\":\"hello\\n\"}");
	}
	cr_assert_eq(pve_agent_ping(c, NULL, id + 1, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_agent_network(c, NULL, id + 1, &ifs, &err), 0, "%s", err.msg);
	cr_assert_geq(ifs.n, 2);
	cr_assert_str_eq(ifs.items[1].name, "eth0");
	cr_assert_eq(ifs.items[1].n_ipv4, 1);
	cr_assert_eq(strncmp(ifs.items[1].ipv4[0], "10.0.0.", 7), 0, "%s", ifs.items[1].ipv4[0]);
	cr_assert_eq(strlen(ifs.items[1].mac), 17);
	pve_iface_list_release(&ifs);
	cr_assert_eq(pve_agent_exec(c, NULL, id + 1, argv, NULL, &pid, &err), 0, "%s", err.msg);
	cr_assert_gt(pid, 0);
	cr_assert_eq(pve_agent_exec_status(c, NULL, id + 1, pid, &es, &err), 0, "%s", err.msg);
	cr_assert(es.exited);
	cr_assert_eq(es.exitcode, 0);
	cr_assert_str_eq(es.out_data, "hello\n");
	pve_exec_status_release(&es);

	cr_assert_eq(pve_vm_shutdown(c, NULL, id + 1, true, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_start(c, NULL, id + 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_stop(c, NULL, id + 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_status_get(c, NULL, id + 1, &st, &err), 0, "%s", err.msg);
	cr_assert_str_eq(st.status, "stopped");
	cr_assert_eq(pve_vm_destroy(c, NULL, id + 1,
				    PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS, 60, &err),
		     0, "%s", err.msg);
	cr_assert_eq(pve_vm_destroy(c, NULL, id, PVE_DESTROY_PURGE, 60, &err), 0, "%s", err.msg);
	cr_assert_not(has_vm(c, id));
	cr_assert_not(has_vm(c, id + 1));
	(void)cid;
	pve_client_free(c);
	sim_finish(&x);
}

struct progress_rec {
	unsigned calls;
	uint64_t last_now, last_total;
};

static void progress_note(void *ud, uint64_t now, uint64_t total)
{
	struct progress_rec *r = ud;

	r->calls++;
	if (total) {
		r->last_now = now;
		r->last_total = total;
	}
}

Test(pve_client, upload_list_and_delete_content)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_storage_list sl;
	struct pve_volume_list vl;
	char img[PATH_MAX], cmd[PATH_MAX + 64], hex[CRYPTO_SHA256_HEX_LEN + 1];
	char *volid = NULL;
	size_t i;
	bool found = false, local = false;
	struct stat st_img;
	struct progress_rec pr = {0, 0, 0};
	struct http_progress prog = {progress_note, &pr};

	sim_setup(&x, "upload", NULL);
	c = client(&x);
	snprintf(img, sizeof(img), "%s/in.qcow2", x.sim.state_dir);
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 '%s' 16M", img);
	if (system(cmd) != 0)
		cr_skip_test("qemu-img is not installed");
	cr_assert_eq(crypto_sha256_file(img, hex, &err), 0, "%s", err.msg);
	cr_assert_eq(stat(img, &st_img), 0);

	cr_assert_eq(pve_storage_list(c, NULL, &sl, &err), 0, "%s", err.msg);
	for (i = 0; i < sl.n; i++)
		if (strcmp(sl.items[i].storage, "local") == 0)
			local = strstr(sl.items[i].content, "import") != NULL && sl.items[i].avail > 0;
	cr_assert(local, "storage 'local' with import content not listed");
	pve_storage_list_release(&sl);

	cr_assert_eq(pve_storage_upload(c, NULL, "local", "import", img, "phx-test.qcow2",
					"sha256", hex, &prog, 60, &volid, &err),
		     0, "%s", err.msg);
	/* progress counts the whole multipart body: file plus its part headers */
	cr_assert_gt(pr.calls, 0);
	cr_assert_eq(pr.last_now, pr.last_total, "%llu of %llu", (unsigned long long)pr.last_now,
		     (unsigned long long)pr.last_total);
	cr_assert_gt(pr.last_total, (uint64_t)st_img.st_size);
	cr_assert_lt(pr.last_total, (uint64_t)st_img.st_size + 4096);
	cr_assert_str_eq(volid, "local:import/phx-test.qcow2");
	cr_assert_eq(pve_storage_content(c, NULL, "local", "import", &vl, &err), 0, "%s", err.msg);
	for (i = 0; i < vl.n; i++)
		if (strcmp(vl.items[i].volid, volid) == 0)
			found = strcmp(vl.items[i].content, "import") == 0;
	cr_assert(found, "uploaded volume not listed");
	pve_volume_list_release(&vl);

	/* a wrong checksum is caught by the server-side task and reported with its text */
	cr_assert_eq(pve_storage_upload(c, NULL, "local", "import", img, "phx-bad.qcow2",
					"sha256",
					"0000000000000000000000000000000000000000000000000000000000000000",
					NULL, 60, NULL, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_TASK, "%s", err.msg);
	cr_assert(strstr(err.msg, "checksum mismatch"), "%s", err.msg);
	phx_err_clear(&err);

	cr_assert_eq(pve_storage_content_delete(c, NULL, volid, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_storage_content(c, NULL, "local", "import", &vl, &err), 0, "%s", err.msg);
	for (i = 0; i < vl.n; i++)
		cr_assert_str_neq(vl.items[i].volid, volid);
	pve_volume_list_release(&vl);
	free(volid);
	pve_client_free(c);
	sim_finish(&x);
}

/* ---- faults ---- */

Test(pve_client, get_survives_503_then_ok)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_version v;

	sim_setup(&x, "get-503", NULL);
	c = client(&x);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"GET\",\"path\":\"/version$\",\"status\":503,"
	    "\"message\":\"service unavailable\",\"count\":2}");
	cr_assert_eq(pve_version_get(c, &v, &err), 0, "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "GET", "/version"), 3);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, get_gives_up_after_bounded_tries)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_version v;

	sim_setup(&x, "get-503-forever", NULL);
	c = client(&x);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"GET\",\"path\":\"/version$\",\"status\":503,"
	    "\"message\":\"still down\",\"count\":100}");
	cr_assert_eq(pve_version_get(c, &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert(strstr(err.msg, "GET /version: HTTP 503 still down"), "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "GET", "/version"), 4);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, post_500_is_reported_not_retried)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param p[] = {{"vmid", "9300"}, {"name", "once"}};

	sim_setup(&x, "post-500", NULL);
	c = client(&x);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/qemu$\",\"status\":500,"
	    "\"message\":\"internal hiccup\"}");
	cr_assert_eq(pve_vm_create(c, NULL, p, 2, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert_eq(err.http_status, 500);
	cr_assert(strstr(err.msg, "POST /nodes/pve1/qemu: HTTP 500 internal hiccup"), "%s",
		  err.msg);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/nodes/pve1/qemu"), 1);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, post_lock_timeout_is_retried)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param create[] = {{"vmid", "9400"}, {"name", "locked"}, {"memory", "512"}};
	struct pve_param set[] = {{"description", "after lock timeout"}};

	sim_setup(&x, "lock-timeout", NULL);
	c = client(&x);
	cr_assert_eq(pve_vm_create(c, NULL, create, 3, 60, &err), 0, "%s", err.msg);
	ctl(&x, "POST", "/_sim/fault", "{\"kind\":\"lock-timeout\",\"vmid\":9400}");
	cr_assert_eq(pve_vm_config_set(c, NULL, 9400, set, 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/qemu/9400/config"), 2);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, failed_task_reports_exitstatus_and_log_tail)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param create[] = {{"vmid", "9500"}, {"name", "src"}, {"scsi0", "local:1"}};
	struct pve_param p[] = {{"name", "doomed"}, {"full", "1"}};

	sim_setup(&x, "task-fail", NULL);
	c = client(&x);
	cr_assert_eq(pve_vm_create(c, NULL, create, 3, 60, &err), 0, "%s", err.msg);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"task\",\"type\":\"qmclone\",\"id\":\"9500\","
	    "\"message\":\"clone failed: simulated disk full\"}");
	cr_assert_eq(pve_vm_clone(c, NULL, 9500, 9501, p, 2, 60, &err), -1);
	cr_assert_eq(err.code, PHX_E_TASK, "%s", err.msg);
	cr_assert(strstr(err.msg, "failed: clone failed: simulated disk full"), "%s", err.msg);
	cr_assert(strstr(err.msg, "task log ends:") && strstr(err.msg, "TASK ERROR"), "%s",
		  err.msg);
	cr_assert(strstr(err.msg, "UPID:pve1:"), "%s", err.msg);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, read_only_sends_gets_and_no_mutation)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	int id = 0;
	struct pve_param p[] = {{"vmid", "9600"}, {"name", "dry"}};

	sim_setup(&x, "read-only", NULL);
	c = client_ex(&x, x.sim.fingerprint, NULL, NULL, true, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_nextid(c, &id, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_create(c, NULL, p, 2, 0, &err), -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL, "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "GET", "/cluster/nextid"), 1);
	cr_assert_eq(simproc_count(&x.sim, "POST", NULL), 0);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, trace_redacts_token_and_cipassword)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param create[] = {{"vmid", "9700"}, {"name", "traced"}};
	struct pve_param set[] = {{"cipassword", "plaintext-pw-xyz"}};

	sim_setup(&x, "trace", NULL);
	c = client(&x);
	cr_assert_eq(pve_vm_create(c, NULL, create, 2, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_config_set(c, NULL, 9700, set, 1, 60, &err), 0, "%s", err.msg);
	fflush(stderr);
	cr_assert(simproc_file_contains(x.our_stderr, "Authorization: [redacted]"),
		  "no trace of the request headers in %s", x.our_stderr);
	cr_assert(simproc_file_contains(x.our_stderr, "cipassword=[redacted]"),
		  "no trace of the form body in %s", x.our_stderr);
	cr_assert(simproc_file_contains(x.our_stderr, "User-Agent: phoenix-orchestrator/"),
		  "user agent not seen");
	cr_assert_not(simproc_file_contains(x.our_stderr, "plaintext-pw-xyz"));
	pve_client_free(c);
	sim_finish(&x);
}

/* ---- http layer details ---- */

struct sink_rec {
	struct buf data;
	unsigned calls;
};

static int sink_write(void *ud, const void *data, size_t len, struct phx_err *err)
{
	struct sink_rec *r = ud;

	r->calls++;
	return buf_append(&r->data, data, len, err);
}

static int sink_refuse(void *ud, const void *data, size_t len, struct phx_err *err)
{
	(void)ud;
	(void)data;
	(void)len;
	return phx_err_set(err, PHX_E_IO, "disk full (test sink)");
}

Test(pve_client, http_sink_streams_2xx_and_buffers_errors)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct sink_rec rec = {BUF_INIT, 0};
	struct http_sink sink = {sink_write, &rec};
	struct http_sink refuse = {sink_refuse, NULL};
	struct http_response r;
	char url[256], ctype[128];
	struct http_request req = {.method = "GET", .url = url, .sink = &sink};

	sim_setup(&x, "http-sink", NULL);
	snprintf(url, sizeof(url), "%s/_sim/state", x.sim.url);
	http_response_init(&r);
	cr_assert_eq(http_perform(x.sim.ctl, &req, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.reason, "OK");
	cr_assert_gt(rec.calls, 0);
	cr_assert_eq(r.body.len, 0, "2xx body went to the buffer despite a sink");
	cr_assert(strstr(buf_str(&rec.data), "\"vms\""), "%s", buf_str(&rec.data));
	cr_assert(http_response_header(&r, "content-type", ctype, sizeof(ctype)));
	cr_assert(strstr(ctype, "application/json"), "%s", ctype);

	/* an error answer lands in resp->body with its reason phrase, never in the sink */
	snprintf(url, sizeof(url), "%s/api2/json/version", x.sim.url);
	rec.calls = 0;
	cr_assert_eq(http_perform(x.sim.ctl, &req, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.status, 401);
	cr_assert_eq(rec.calls, 0);
	cr_assert_neq(r.reason[0], '\0');

	/* a failing sink aborts the transfer with the sink's own error */
	snprintf(url, sizeof(url), "%s/_sim/state", x.sim.url);
	req.sink = &refuse;
	cr_assert_eq(http_perform(x.sim.ctl, &req, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, "disk full (test sink)"), "%s", err.msg);
	http_response_release(&r);
	buf_release(&rec.data);
	sim_finish(&x);
}

/* ---- lost answers: a changing request goes out once; the task list tells what happened ---- */

static struct pve_client *client_lookup(struct ctx *x, long lookup_s)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client_opts o = {
		.api_url = x->sim.url,
		.token_id = SIM_TOKEN_ID,
		.secret = x->secret,
		.node = "pve1",
		.tls = {.fingerprint = x->sim.fingerprint},
		.retry_base_ms = 20,
		.task_lookup_s = lookup_s,
	};
	struct pve_client *c = pve_client_new(&o, &err);

	cr_assert_not_null(c, "%s", err.msg);
	return c;
}

static void make_template(struct pve_client *c, int vmid)
{
	struct phx_err err = PHX_ERR_INIT;
	char id[16];
	struct pve_param p[] = {{"vmid", id}, {"name", "phx-tpl"}, {"scsi0", "local:1"}};

	snprintf(id, sizeof(id), "%d", vmid);
	cr_assert_eq(pve_vm_create(c, NULL, p, 3, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(pve_vm_template(c, NULL, vmid, 60, &err), 0, "%s", err.msg);
}

/* How often /cluster/resources lists the VM. */
static size_t vm_listed(struct pve_client *c, int vmid)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pve_vm_list l;
	size_t i, n = 0;

	cr_assert_eq(pve_cluster_vms(c, &l, &err), 0, "%s", err.msg);
	for (i = 0; i < l.n; i++)
		n += l.items[i].vmid == vmid;
	pve_vm_list_release(&l);
	return n;
}

/* Logged requests with `method` whose path ends with `suffix` and whose parameter `key` is
 * `value`. */
static size_t count_with_param(struct ctx *x, const char *method, const char *suffix,
			       const char *key, const char *value)
{
	json_t *all = simproc_requests(&x->sim), *o;
	size_t i, n = 0;

	json_array_foreach(all, i, o) {
		const char *m = json_string_value(json_object_get(o, "method"));
		const char *p = json_string_value(json_object_get(o, "path"));
		json_t *params = json_object_get(o, "params");
		const char *v = json_string_value(json_object_get(params, key));

		if (m && p && v && strcmp(m, method) == 0 && strlen(p) >= strlen(suffix) &&
		    strcmp(p + strlen(p) - strlen(suffix), suffix) == 0 && strcmp(v, value) == 0)
			n++;
	}
	json_decref(all);
	return n;
}

Test(pve_client, clone_whose_answer_is_lost_is_sent_once_and_its_task_waited_for)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param p[] = {{"name", "phx-clone"}};
	struct pve_param guessed[] = {{"newid", "9802"}, {"name", "phx-clone-2"}};
	json_t *conf = NULL;

	sim_setup(&x, "lost-clone", NULL);
	c = client(&x);
	make_template(c, 9800);
	/* the clone still runs when the client looks for it (the active task list) */
	ctl(&x, "POST", "/_sim/task-duration", "{\"type\":\"qmclone\",\"seconds\":1}");
	/* the simulator clones, then closes the connection without the answer; before the
	 * fix libcurl or a retry sent the clone again on a reused connection */
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/clone$\","
	    "\"action\":\"close-after\"}");
	cr_assert_eq(pve_vm_clone(c, NULL, 9800, 9801, p, 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(count_with_param(&x, "POST", "/qemu/9800/clone", "newid", "9801"), 1);
	cr_assert_geq(simproc_count(&x.sim, "GET", "/nodes/pve1/tasks"), 1);
	cr_assert_eq(vm_listed(c, 9801), 1);
	cr_assert_eq(pve_vm_config_get(c, NULL, 9801, &conf, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(conf, "name")), "phx-clone");
	json_decref(conf);
	fflush(stderr);
	cr_assert(simproc_file_contains(x.our_stderr, "found the task it started"));

	/* the generic call (plan actions) knows the clone's task from its path and newid, and
	 * tells it from the earlier clone of the same template, already finished */
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/clone$\","
	    "\"action\":\"close-after\"}");
	cr_assert_eq(pve_request_task(c, "POST", "/nodes/pve1/qemu/9800/clone", guessed, 2, 60,
				      &err),
		     0, "%s", err.msg);
	cr_assert_eq(count_with_param(&x, "POST", "/qemu/9800/clone", "newid", "9802"), 1);
	cr_assert_eq(vm_listed(c, 9802), 1);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/clone"), 2);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, create_and_config_whose_answers_are_lost_find_their_finished_tasks)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param create[] = {{"vmid", "9810"}, {"name", "lost-create"}, {"memory", "512"}};
	struct pve_param set1[] = {{"description", "first"}};
	struct pve_param set2[] = {{"description", "second"}};
	json_t *conf = NULL;

	sim_setup(&x, "lost-create", NULL);
	c = client(&x);
	/* the tasks end before the client looks: found in the archive */
	ctl(&x, "POST", "/_sim/task-duration", "{\"seconds\":0}");
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/qemu$\","
	    "\"action\":\"close-after\"}");
	cr_assert_eq(pve_vm_create(c, NULL, create, 3, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/nodes/pve1/qemu"), 1);
	cr_assert_eq(vm_listed(c, 9810), 1);

	/* two config tasks of one VM within a second: the one this client was answered with
	 * is not taken for the one whose answer was lost */
	cr_assert_eq(pve_vm_config_set(c, NULL, 9810, set1, 1, 60, &err), 0, "%s", err.msg);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/config$\","
	    "\"action\":\"close-after\"}");
	cr_assert_eq(pve_vm_config_set(c, NULL, 9810, set2, 1, 60, &err), 0, "%s", err.msg);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/qemu/9810/config"), 2);
	cr_assert_eq(pve_vm_config_get(c, NULL, 9810, &conf, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(conf, "description")), "second");
	json_decref(conf);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, clone_cut_off_before_the_server_is_not_sent_again_and_reported_unknown)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c, *other;
	struct pve_param p[] = {{"name", "never"}};
	struct pve_param q[] = {{"newid", "9822"}};
	json_t *upid = NULL;
	double t0;

	sim_setup(&x, "lost-before", NULL);
	c = client_lookup(&x, 1);
	other = client(&x);
	make_template(c, 9820);
	/* another worker with the same token clones the same template meanwhile: its task has
	 * the type, id and user a lost clone would have, but its log names another VMID */
	ctl(&x, "POST", "/_sim/task-duration", "{\"type\":\"qmclone\",\"seconds\":2}");
	cr_assert_eq(pve_request(other, "POST", "/nodes/pve1/qemu/9820/clone", q, 1, &upid, &err),
		     0, "%s", err.msg);
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/clone$\",\"action\":\"close\"}");
	t0 = clk_now();
	cr_assert_eq(pve_vm_clone(c, NULL, 9820, 9821, p, 1, 60, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert(strstr(err.msg, "POST /nodes/pve1/qemu/9820/clone: "), "%s", err.msg);
	cr_assert(strstr(err.msg, "the outcome is unknown: GET /nodes/pve1/tasks shows no qmclone "
				  "task for '9820' by 'phoenix@pve!ci' started since "),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "whose log says 'creating a clone of VM 9820 with ID 9821'"),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "it was not sent again"), "%s", err.msg);
	cr_assert_lt(clk_now() - t0, 10.0);
	cr_assert_eq(count_with_param(&x, "POST", "/qemu/9820/clone", "newid", "9821"), 1);
	cr_assert_eq(simproc_count(&x.sim, "POST", "/clone"), 2);
	phx_err_clear(&err);
	cr_assert_eq(pve_task_wait(other, json_string_value(upid), 60, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(vm_listed(c, 9821), 0);
	cr_assert_eq(vm_listed(c, 9822), 1);
	json_decref(upid);
	pve_client_free(other);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, lost_answer_without_a_task_is_reported_unknown_and_not_sent_again)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param create[] = {{"vmid", "9830"}, {"name", "sync"}};
	struct pve_param set[] = {{"description", "sync"}};

	sim_setup(&x, "lost-sync", NULL);
	c = client(&x);
	cr_assert_eq(pve_vm_create(c, NULL, create, 2, 60, &err), 0, "%s", err.msg);
	/* PUT .../config answers synchronously: there is no task to look for */
	ctl(&x, "POST", "/_sim/fault",
	    "{\"kind\":\"http\",\"method\":\"PUT\",\"path\":\"/config$\","
	    "\"action\":\"close-after\",\"count\":2}");
	cr_assert_eq(pve_request(c, "PUT", "/nodes/pve1/qemu/9830/config", set, 1, NULL, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert(strstr(err.msg, "no answer arrived, so whether Proxmox carried the request out "
				  "is unknown; it was not sent again"),
		  "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(pve_request_task(c, "PUT", "/nodes/pve1/qemu/9830/config", set, 1, 60, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert(strstr(err.msg, "the outcome is unknown: this request starts no task"), "%s",
		  err.msg);
	cr_assert_eq(simproc_count(&x.sim, "PUT", "/qemu/9830/config"), 2);
	pve_client_free(c);
	sim_finish(&x);
}

Test(pve_client, request_that_never_left_is_not_called_unknown)
{
	struct ctx x;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c;
	struct pve_param p[] = {{"vmid", "9840"}, {"name", "unsent"}};
	struct pve_client_opts o;

	sim_setup(&x, "never-left", NULL);
	/* nothing listens on port 1: the connection fails before a byte of the request */
	o = (struct pve_client_opts){.api_url = "https://127.0.0.1:1", .token_id = SIM_TOKEN_ID,
				     .secret = x.secret, .node = "pve1",
				     .tls = {.fingerprint = x.sim.fingerprint}};
	c = pve_client_new(&o, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(pve_vm_create(c, NULL, p, 2, 60, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert_null(strstr(err.msg, "unknown"), "%s", err.msg);
	pve_client_free(c);
	sim_finish(&x);
}
