/* Unit tests for the container planner (deploy_ct.c): the creation path and why, the netN
 * values, what a new, an unchanged and a changed container's plan holds, what stays pending on
 * a running container, and the privileges pve-container checks for each request. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "record.h"

#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 a@b"
#define HASH6 "$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi.qce9HICTZjmn1EWAShiibwc0fAu7nPQ"

static struct cfg_ct_nic nic0 = {.bridge = "vmbr0", .ip = "dhcp"};
static char *keys[] = {KEY};

static struct cfg_ct base_ct(void)
{
	struct cfg_ct ct = {.vmid = 301,
			    .name = "web-1",
			    .clone_from_vmid = 9100,
			    .cores = 2,
			    .memory_mb = 1024,
			    .storage = "local-lvm",
			    .nics = &nic0,
			    .n_nics = 1};

	snprintf(ct.config_id, sizeof(ct.config_id), "sha256:%064d", 0);
	return ct;
}

static json_t *tpl_conf(void)
{
	return json_pack("{ss si si si ss ss ss ss ss}", "hostname", "golden", "cores", 1, "memory",
			 512, "swap", 512, "rootfs", "local-lvm:base-9100-disk-0,size=2G", "net0",
			 "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp,type=veth",
			 "tags", "phoenix", "ostype", "debian", "arch", "amd64");
}

static struct deploy_ct_input new_input(const struct cfg_ct *ct, json_t *src, const char *type)
{
	return (struct deploy_ct_input){.ct = ct,
					.node = "pve1",
					.src_vmid = 9100,
					.src_conf = src,
					.src_storage_type = type,
					.archive = "local:vztmpl/golden.tar.zst"};
}

static const char *summaries(const struct plan *p, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "|" : "",
				      p->actions[i]->summary);
	return buf;
}

Test(deploy_ct, path_is_linked_only_where_the_storage_clones_raw_or_subvol)
{
	struct cfg_ct ct = base_ct();
	struct deploy_ct_input in = new_input(&ct, NULL, "lvmthin");
	char why[400];

	cr_assert_eq(deploy_ct_path(&in, why, sizeof(why)), DEPLOY_CT_LINKED);
	in.src_storage_type = "zfspool";
	cr_assert_eq(deploy_ct_path(&in, why, sizeof(why)), DEPLOY_CT_LINKED);
	in.src_storage_type = "dir";
	cr_assert_eq(deploy_ct_path(&in, why, sizeof(why)), DEPLOY_CT_FULL);
	cr_assert(strstr(why, "'dir' storage"), "%s", why);
	in.src_storage_type = "lvmthin";
	ct.full_clone = true;
	cr_assert_eq(deploy_ct_path(&in, why, sizeof(why)), DEPLOY_CT_FULL);
	ct.ssh_public_keys = (struct cfg_strv){keys, 1};
	cr_assert_eq(deploy_ct_path(&in, why, sizeof(why)), DEPLOY_CT_CREATE);
	cr_assert(strstr(why, "golden.tar.zst") && strstr(why, "SSH keys"), "%s", why);
}

Test(deploy_ct, net_value_keeps_the_mac_and_other_options)
{
	struct cfg_ct_nic n = {.bridge = "vmbr1",
			       .ip = "10.0.0.5/24",
			       .gw = "10.0.0.1",
			       .vlan = 20,
			       .mtu = 1400,
			       .firewall = CFG_TRI_TRUE};
	struct phx_err err = PHX_ERR_INIT;
	char *v = NULL;

	cr_assert_eq(deploy_ct_net_value(&n, 1,
					 "name=eth1,bridge=vmbr0,hwaddr=BC:24:11:00:00:09,"
					 "ip=dhcp,link_down=1,type=veth",
					 &v, &err),
		     0);
	cr_assert_str_eq(v,
			 "name=eth1,bridge=vmbr1,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:00:00:09,"
			 "ip=10.0.0.5/24,mtu=1400,tag=20,link_down=1,type=veth");
	cr_assert(deploy_ct_net_same(v, "type=veth,link_down=1,tag=20,mtu=1400,ip=10.0.0.5/24,"
					"hwaddr=bc:24:11:00:00:09,gw=10.0.0.1,firewall=1,"
					"bridge=vmbr1,name=eth1"));
	cr_assert_not(deploy_ct_net_same(v, "name=eth1,bridge=vmbr1"));
	free(v);
}

Test(deploy_ct, new_linked_clone_is_configured_grown_and_started)
{
	struct cfg_ct ct = base_ct();
	json_t *src = tpl_conf();
	struct deploy_ct_input in = new_input(&ct, src, "lvmthin");
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;
	char buf[512], *pending = NULL;
	const struct plan_action *clone, *conf;

	ct.rootfs_gb = 4;
	cr_assert_eq(deploy_plan_ct(&in, &p, &pending, &err), 0, "%s", err.msg);
	cr_assert_str_eq(summaries(&p, buf, sizeof(buf)),
			 "linked clone of CT 9100|configure|grow rootfs to 4G|start");
	clone = p.actions[0];
	cr_assert_str_eq(clone->path, "/nodes/pve1/lxc/9100/clone");
	cr_assert_str_eq(plan_param_get(clone, "newid"), "301");
	cr_assert_str_eq(plan_param_get(clone, "hostname"), "web-1");
	cr_assert_null(plan_param_get(clone, "full"));
	cr_assert_null(plan_param_get(clone, "storage"), "storage only goes with a full clone");
	cr_assert_eq(clone->undo.kind, PLAN_UNDO_CT);
	conf = p.actions[1];
	cr_assert_str_eq(conf->method, "PUT");
	cr_assert_str_eq(plan_param_get(conf, "cores"), "2");
	cr_assert_str_eq(plan_param_get(conf, "memory"), "1024");
	cr_assert_null(plan_param_get(conf, "swap"), "not asked for: the template's stays");
	cr_assert_null(plan_param_get(conf, "net0"),
		       "the template's net0 already is what is asked");
	cr_assert_null(plan_param_get(conf, "tags"), "the template's 'phoenix' tag is there");
	cr_assert(strstr(plan_param_get(conf, "description"), "ct: web-1"));
	cr_assert_str_eq(plan_param_get(p.actions[2], "size"), "4G");
	cr_assert_str_eq(pending, "");
	free(pending);
	plan_release(&p);
	json_decref(src);
}

Test(deploy_ct, full_clone_names_the_target_storage)
{
	struct cfg_ct ct = base_ct();
	json_t *src = tpl_conf();
	struct deploy_ct_input in = new_input(&ct, src, "dir");
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), 0, "%s", err.msg);
	cr_assert_str_eq(plan_param_get(p.actions[0], "full"), "1");
	cr_assert_str_eq(plan_param_get(p.actions[0], "storage"), "local-lvm");
	cr_assert_eq(p.n_notes, 1);
	cr_assert(strstr(p.notes[0].text, "full clone"), "%s", p.notes[0].text);
	plan_release(&p);
	json_decref(src);
}

Test(deploy_ct, create_from_archive_sends_keys_and_a_secret_password)
{
	struct cfg_ct ct = base_ct();
	json_t *src = tpl_conf();
	struct deploy_ct_input in = new_input(&ct, src, "lvmthin");
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;
	const struct plan_action *a;

	ct.ssh_public_keys = (struct cfg_strv){keys, 1};
	ct.password_hash = HASH6;
	ct.n_nics = 0; /* the template's net0, without its MAC */
	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n, 2);
	a = p.actions[0];
	cr_assert_str_eq(a->path, "/nodes/pve1/lxc");
	cr_assert_str_eq(plan_param_get(a, "ostemplate"), "local:vztmpl/golden.tar.zst");
	cr_assert_str_eq(plan_param_get(a, "rootfs"), "local-lvm:2", "the template's size");
	cr_assert_str_eq(plan_param_get(a, "unprivileged"), "1");
	cr_assert_str_eq(plan_param_get(a, "ssh-public-keys"), KEY);
	cr_assert_str_eq(plan_param_get(a, "net0"), "name=eth0,bridge=vmbr0,ip=dhcp,type=veth");
	cr_assert_str_eq(plan_param_get(a, "swap"), "512");
	for (size_t i = 0; i < a->n_params; i++)
		if (!strcmp(a->params[i].key, "password"))
			cr_assert(a->params[i].flags & PLAN_SECRET);
	cr_assert_str_eq(p.actions[1]->summary, "start");
	plan_release(&p);
	json_decref(src);
}

Test(deploy_ct, create_without_an_archive_is_input_error)
{
	struct cfg_ct ct = base_ct();
	json_t *src = tpl_conf();
	struct deploy_ct_input in = new_input(&ct, src, "lvmthin");
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;

	ct.password_hash = HASH6;
	in.archive = NULL;
	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "names no 'archive:'"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, HASH6));
	plan_release(&p);
	json_decref(src);
}

/* The config a deployed web-1 has: what the plan of a new one set. */
static json_t *deployed_conf(const struct cfg_ct *ct)
{
	const struct rec_field f[] = {{"config", ct->config_id}, {"ct", ct->name}};
	struct phx_err err = PHX_ERR_INIT;
	char *desc = rec_write(DEPLOY_MANAGED_LINE, f, 2, &err);
	json_t *c =
		json_pack("{ss si si si ss ss ss ss}", "hostname", "web-1", "cores", 2, "memory",
			  1024, "swap", 512, "rootfs", "local-lvm:vm-301-disk-0,size=4G", "net0",
			  "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth",
			  "tags", "phoenix", "description", desc);

	free(desc);
	return c;
}

Test(deploy_ct, unchanged_running_container_plans_nothing)
{
	struct cfg_ct ct = base_ct();
	json_t *conf = deployed_conf(&ct);
	struct deploy_ct_input in = {.ct = &ct, .node = "pve1", .conf = conf, .running = true};
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;

	ct.rootfs_gb = 3; /* smaller: kept, with a note */
	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), 0, "%s", err.msg);
	cr_assert(plan_empty(&p));
	cr_assert_eq(p.n_notes, 1);
	cr_assert(strstr(p.notes[0].text, "only grow"), "%s", p.notes[0].text);
	plan_release(&p);
	json_decref(conf);
}

Test(deploy_ct, changed_running_container_reports_what_stays_pending)
{
	struct cfg_ct ct = base_ct();
	json_t *conf = deployed_conf(&ct);
	char *dns[] = {"9.9.9.9"};
	struct deploy_ct_input in = {.ct = &ct, .node = "pve1", .conf = conf, .running = true};
	struct plan p = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;
	char *pending = NULL;

	ct.memory_mb = 2048;
	ct.dns_servers = (struct cfg_strv){dns, 1};
	cr_assert_eq(deploy_plan_ct(&in, &p, &pending, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.actions[0]->n_changes, 2);
	cr_assert_str_eq(plan_param_get(p.actions[0], "memory"), "2048");
	cr_assert_str_eq(plan_param_get(p.actions[0], "nameserver"), "9.9.9.9");
	cr_assert_str_eq(pending, "nameserver", "memory is hot-plugged");
	free(pending);
	plan_release(&p);
	json_decref(conf);
}

Test(deploy_ct, stopped_container_is_started_unless_start_false)
{
	struct cfg_ct ct = base_ct();
	json_t *conf = deployed_conf(&ct);
	struct deploy_ct_input in = {.ct = &ct, .node = "pve1", .conf = conf};
	struct plan p = PLAN_INIT, q = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), 0);
	cr_assert_eq(p.n, 1);
	cr_assert_str_eq(p.actions[0]->path, "/nodes/pve1/lxc/301/status/start");
	ct.no_start = true;
	cr_assert_eq(deploy_plan_ct(&in, &q, NULL, &err), 0);
	cr_assert(plan_empty(&q));
	plan_release(&p);
	plan_release(&q);
	json_decref(conf);
}

static bool has_need(const struct pf_need *needs, size_t n, const char *path, const char *priv)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(needs[i].path, path))
			for (size_t k = 0; k < needs[i].n; k++)
				if (!strcmp(needs[i].privs[k], priv))
					return true;
	return false;
}

Test(deploy_ct, needs_the_privileges_pve_container_checks)
{
	struct cfg_ct ct = base_ct();
	json_t *src = tpl_conf();
	struct deploy_ct_input in = new_input(&ct, src, "dir");
	struct plan p = PLAN_INIT, q = PLAN_INIT;
	struct phx_err err = PHX_ERR_INIT;
	struct pf_need needs[8];
	size_t n;

	ct.rootfs_gb = 4;
	ct.nesting = CFG_TRI_TRUE;
	cr_assert_eq(deploy_plan_ct(&in, &p, NULL, &err), 0, "%s", err.msg);
	n = deploy_ct_needs(&p, &in, "/sdn/zones/localnetwork/vmbr0", needs, 8);
	cr_assert(has_need(needs, n, "/vms/9100", "VM.Clone"));
	cr_assert(has_need(needs, n, "/vms/301", "VM.Allocate"));
	cr_assert(has_need(needs, n, "/storage/local-lvm", "Datastore.AllocateSpace"));
	cr_assert(has_need(needs, n, "/vms/301", "VM.Config.CPU"));
	cr_assert(has_need(needs, n, "/vms/301", "VM.Config.Memory"));
	cr_assert(has_need(needs, n, "/vms/301", "VM.Config.Disk"));
	cr_assert(has_need(needs, n, "/vms/301", "VM.Config.Options"), "resize asks it too");
	cr_assert(has_need(needs, n, "/vms/301", "VM.PowerMgmt"));
	cr_assert_not(has_need(needs, n, "/", "Sys.Modify"));
	ct.unprivileged = CFG_TRI_FALSE;
	ct.password_hash = HASH6;
	cr_assert_eq(deploy_plan_ct(&in, &q, NULL, &err), 0, "%s", err.msg);
	n = deploy_ct_needs(&q, &in, "/sdn/zones/localnetwork/vmbr0", needs, 8);
	cr_assert(has_need(needs, n, "/", "Sys.Modify"), "a privileged container");
	cr_assert(has_need(needs, n, "/storage/local", "Datastore.Audit"), "the archive");
	cr_assert(has_need(needs, n, "/sdn/zones/localnetwork/vmbr0", "SDN.Use"));
	cr_assert_not(has_need(needs, n, "/vms/9100", "VM.Clone"));
	plan_release(&p);
	plan_release(&q);
	json_decref(src);
}
