/* pve_calls: the typed Proxmox calls (see pve.h) built on pve_request and pve_task_wait, and
 * the parsers that turn their JSON into small structs. Knows the API's shapes and quirks
 * (numbers as strings, QGA errors inside HTTP 200), not the orchestrator's policies. */
#include "pve.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static const char *node_or_default(struct pve_client *c, const char *node)
{
	return node && *node ? node : pve_client_node(c);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static void fmt_int(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%lld", v);
}

char *pve_guest_path(struct pve_client *c, const char *node, const char *kind, int vmid,
		     const char *s1, const char *s2, struct phx_err *err)
{
	char id[24];

	fmt_int(id, sizeof(id), vmid);
	return pve_path(err, "nodes", node_or_default(c, node), kind, id, s1, s2, NULL);
}

static char *vm_path(struct pve_client *c, const char *node, int vmid, const char *s1,
		     const char *s2, struct phx_err *err)
{
	return pve_guest_path(c, node, "qemu", vmid, s1, s2, err);
}

/* ---- version, permissions ---- */

int pve_version_parse(const char *text, int *ret_major, int *ret_minor, struct phx_err *err)
{
	int major, minor;

	if (!text || sscanf(text, "%d.%d", &major, &minor) != 2 || major < 1 || minor < 0)
		return phx_err_set(err, PHX_E_API, "version '%s': expected MAJOR.MINOR[.PATCH]",
				   text ? text : "");
	*ret_major = major;
	*ret_minor = minor;
	return 0;
}

int pve_version_get(struct pve_client *c, struct pve_version *ret, struct phx_err *err)
{
	struct pve_version v;
	json_t *data = NULL;
	const char *ver, *rel;
	int rc = -1;

	memset(&v, 0, sizeof(v));
	if (pve_get(c, "/version", NULL, 0, &data, err) < 0)
		return -1;
	ver = json_string_value(json_object_get(data, "version"));
	rel = json_string_value(json_object_get(data, "release"));
	if (pve_version_parse(ver, &v.major, &v.minor, err) < 0) {
		phx_err_wrap(err, "GET /version");
		goto out;
	}
	snprintf(v.version, sizeof(v.version), "%s", ver);
	snprintf(v.release, sizeof(v.release), "%s", rel ? rel : "");
	*ret = v;
	rc = 0;
out:
	json_decref(data);
	return rc;
}

int pve_permissions_check(struct pve_client *c, const char *path, const char *const *privs,
			  size_t n_privs, struct phx_err *err)
{
	struct pve_param q[] = {{"path", path}};
	struct buf missing = BUF_INIT;
	json_t *data = NULL, *granted;
	const char *tok = pve_client_token_id(c);
	size_t i, n_missing = 0;
	int rc = -1;

	if (pve_get(c, "/access/permissions", q, 1, &data, err) < 0)
		return -1;
	granted = json_object_get(data, path);
	for (i = 0; i < n_privs; i++) {
		if (json_object_get(granted, privs[i]))
			continue;
		n_missing++;
		if (buf_printf(&missing, err, "%s%s", missing.len ? ", " : "", privs[i]) < 0)
			goto out;
	}
	if (n_missing) {
		const char *bang = strchr(tok, '!');

		phx_err_set(err, PHX_E_PERM,
			    "token '%s' lacks %s on '%s'; with privilege separation a token only "
			    "gets privileges granted to both its user and the token: pveum acl "
			    "modify %s --users %.*s --tokens '%s' --roles <role with %s>",
			    tok, buf_str(&missing), path, path, (int)(bang ? bang - tok : 0), tok,
			    tok, n_missing > 1 ? "these privileges" : "it");
		goto out;
	}
	rc = 0;
out:
	buf_release(&missing);
	json_decref(data);
	return rc;
}

/* ---- cluster ---- */

void pve_vm_list_release(struct pve_vm_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].node);
		free(l->items[i].tags);
		free(l->items[i].status);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int guest_list_parse(const json_t *data, bool with_lxc, struct pve_vm_list *ret,
			    struct phx_err *err)
{
	struct pve_vm_list l = {NULL, 0};
	size_t i, n = json_array_size(data);

	if (!json_is_array(data))
		return phx_err_set(err, PHX_E_API, "cluster resources: expected an array");
	l.items = calloc(n ? n : 1, sizeof(*l.items));
	if (!l.items)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(data, i);
		const char *type = json_string_value(json_object_get(e, "type"));
		struct pve_vm_info *vm = &l.items[l.n];
		long long vmid, tpl = 0;
		char what[64];

		if (!type || (strcmp(type, "qemu") != 0 && (!with_lxc || strcmp(type, "lxc") != 0)))
			continue;
		vm->lxc = strcmp(type, "lxc") == 0;
		snprintf(what, sizeof(what), "cluster resources[%zu].vmid", i);
		if (pve_json_int(json_object_get(e, "vmid"), what, &vmid, err) < 0)
			goto fail;
		if (json_object_get(e, "template"))
			pve_json_int(json_object_get(e, "template"), "template", &tpl, NULL);
		vm->vmid = (int)vmid;
		vm->template = tpl != 0;
		vm->name = dup_or_empty(json_string_value(json_object_get(e, "name")));
		vm->node = dup_or_empty(json_string_value(json_object_get(e, "node")));
		vm->tags = dup_or_empty(json_string_value(json_object_get(e, "tags")));
		vm->status = dup_or_empty(json_string_value(json_object_get(e, "status")));
		l.n++;
		if (!vm->name || !vm->node || !vm->tags || !vm->status) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto fail;
		}
	}
	*ret = l;
	return 0;
fail:
	pve_vm_list_release(&l);
	return -1;
}

int pve_vm_list_parse(const json_t *data, struct pve_vm_list *ret, struct phx_err *err)
{
	return guest_list_parse(data, false, ret, err);
}

static int cluster_guests(struct pve_client *c, bool with_lxc, struct pve_vm_list *ret,
			  struct phx_err *err)
{
	struct pve_param q[] = {{"type", "vm"}};
	json_t *data = NULL;
	int rc;

	if (pve_get(c, "/cluster/resources", q, 1, &data, err) < 0)
		return -1;
	rc = guest_list_parse(data, with_lxc, ret, err);
	json_decref(data);
	return rc;
}

int pve_cluster_vms(struct pve_client *c, struct pve_vm_list *ret, struct phx_err *err)
{
	return cluster_guests(c, false, ret, err);
}

int pve_cluster_guests(struct pve_client *c, struct pve_vm_list *ret, struct phx_err *err)
{
	return cluster_guests(c, true, ret, err);
}

int pve_nextid(struct pve_client *c, int *ret_vmid, struct phx_err *err)
{
	json_t *data = NULL;
	long long id;
	int rc;

	if (pve_get(c, "/cluster/nextid", NULL, 0, &data, err) < 0)
		return -1;
	rc = pve_json_int(data, "GET /cluster/nextid", &id, err);
	json_decref(data);
	if (rc == 0)
		*ret_vmid = (int)id;
	return rc;
}

int pve_vm_exists(struct pve_client *c, int vmid, bool *ret_exists, char **ret_node,
		  struct phx_err *err)
{
	struct pve_vm_list l;
	size_t i;

	if (pve_cluster_vms(c, &l, err) < 0)
		return -1;
	for (i = 0; i < l.n; i++) {
		if (l.items[i].vmid != vmid)
			continue;
		if (ret_node) {
			*ret_node = strdup(l.items[i].node);
			if (!*ret_node) {
				pve_vm_list_release(&l);
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			}
		}
		*ret_exists = true;
		pve_vm_list_release(&l);
		return 0;
	}
	pve_vm_list_release(&l);
	*ret_exists = false;
	return 0;
}

/* ---- VMs ---- */

int pve_guest_config_get(struct pve_client *c, const char *node, const char *kind, int vmid,
			 json_t **ret_config, struct phx_err *err)
{
	char *path = pve_guest_path(c, node, kind, vmid, "config", NULL, err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0) {
		if (json_is_object(data)) {
			*ret_config = data;
			data = NULL;
			rc = 0;
		} else {
			phx_err_set(err, PHX_E_API, "GET %s: expected an object", path);
		}
	}
	json_decref(data);
	free(path);
	return rc;
}

int pve_vm_config_get(struct pve_client *c, const char *node, int vmid, json_t **ret_config,
		      struct phx_err *err)
{
	return pve_guest_config_get(c, node, "qemu", vmid, ret_config, err);
}

/* A VM request that starts a task of type `ttype` whose id is the VMID (qemu-server
 * API2/Qemu.pm fork_worker calls), so a lost answer can be followed to its task. */
int pve_guest_async(struct pve_client *c, const char *method, const char *node, const char *kind,
		    int vmid, const char *s1, const char *s2, const struct pve_param *params,
		    size_t n, const char *ttype, long timeout_s, struct phx_err *err)
{
	char *path = pve_guest_path(c, node, kind, vmid, s1, s2, err);
	char id[24];
	struct pve_task_key key = {ttype, id, NULL};
	int rc;

	if (!path)
		return -1;
	fmt_int(id, sizeof(id), vmid);
	rc = pve_request_task_key(c, method, path, params, n, &key, timeout_s, err);
	free(path);
	return rc;
}

static int vm_async(struct pve_client *c, const char *method, const char *node, int vmid,
		    const char *s1, const char *s2, const struct pve_param *params, size_t n,
		    const char *ttype, long timeout_s, struct phx_err *err)
{
	return pve_guest_async(c, method, node, "qemu", vmid, s1, s2, params, n, ttype, timeout_s,
			       err);
}

int pve_vm_config_set(struct pve_client *c, const char *node, int vmid,
		      const struct pve_param *params, size_t n_params, long timeout_s,
		      struct phx_err *err)
{
	return vm_async(c, "POST", node, vmid, "config", NULL, params, n_params, "qmconfig",
			timeout_s, err);
}

int pve_guest_create(struct pve_client *c, const char *node, const char *kind, const char *ttype,
		     const struct pve_param *params, size_t n_params, long timeout_s,
		     struct phx_err *err)
{
	char *path = pve_path(err, "nodes", node_or_default(c, node), kind, NULL);
	/* create_vm forks its worker with the new VMID */
	struct pve_task_key key = {ttype, NULL, NULL};
	int rc;

	if (!path)
		return -1;
	for (size_t i = 0; i < n_params; i++)
		if (params[i].value && strcmp(params[i].key, "vmid") == 0)
			key.id = params[i].value;
	rc = pve_request_task_key(c, "POST", path, params, n_params, key.id ? &key : NULL,
				  timeout_s, err);
	free(path);
	return rc;
}

int pve_vm_create(struct pve_client *c, const char *node, const struct pve_param *params,
		  size_t n_params, long timeout_s, struct phx_err *err)
{
	return pve_guest_create(c, node, "qemu", "qmcreate", params, n_params, timeout_s, err);
}

int pve_vm_clone(struct pve_client *c, const char *node, int vmid, int newid,
		 const struct pve_param *params, size_t n_params, long timeout_s,
		 struct phx_err *err)
{
	struct pve_param *all = calloc(n_params + 1, sizeof(*all));
	char id[24], src[24], mark[96];
	/* clone_vm forks qmclone with the SOURCE VMID, which parallel clones of one template
	 * share; its worker logs "creating a clone of VM $vmid with ID $newid" */
	struct pve_task_key key = {"qmclone", src, mark};
	char *path;
	int rc = -1;

	if (!all)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	fmt_int(id, sizeof(id), newid);
	fmt_int(src, sizeof(src), vmid);
	snprintf(mark, sizeof(mark), "creating a clone of VM %d with ID %d", vmid, newid);
	all[0].key = "newid";
	all[0].value = id;
	if (n_params)
		memcpy(all + 1, params, n_params * sizeof(*params));
	path = vm_path(c, node, vmid, "clone", NULL, err);
	if (path)
		rc = pve_request_task_key(c, "POST", path, all, n_params + 1, &key, timeout_s, err);
	free(path);
	free(all);
	return rc;
}

int pve_vm_template(struct pve_client *c, const char *node, int vmid, long timeout_s,
		    struct phx_err *err)
{
	return vm_async(c, "POST", node, vmid, "template", NULL, NULL, 0, "qmtemplate", timeout_s,
			err);
}

int pve_vm_resize(struct pve_client *c, const char *node, int vmid, const char *disk,
		  const char *size, long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {{"disk", disk}, {"size", size}};

	return vm_async(c, "PUT", node, vmid, "resize", NULL, p, 2, "resize", timeout_s, err);
}

int pve_vm_start(struct pve_client *c, const char *node, int vmid, long timeout_s,
		 struct phx_err *err)
{
	return vm_async(c, "POST", node, vmid, "status", "start", NULL, 0, "qmstart", timeout_s,
			err);
}

int pve_vm_stop(struct pve_client *c, const char *node, int vmid, long timeout_s,
		struct phx_err *err)
{
	return vm_async(c, "POST", node, vmid, "status", "stop", NULL, 0, "qmstop", timeout_s,
			err);
}

int pve_vm_shutdown(struct pve_client *c, const char *node, int vmid, bool force_stop,
		    long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {{"forceStop", force_stop ? "1" : NULL}};

	return vm_async(c, "POST", node, vmid, "status", "shutdown", p, 1, "qmshutdown",
			timeout_s, err);
}

int pve_vm_destroy(struct pve_client *c, const char *node, int vmid, unsigned flags,
		   long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {
		{"purge", flags & PVE_DESTROY_PURGE ? "1" : NULL},
		{"destroy-unreferenced-disks", flags & PVE_DESTROY_UNREFERENCED_DISKS ? "1" : NULL},
	};

	return vm_async(c, "DELETE", node, vmid, NULL, NULL, p, 2, "qmdestroy", timeout_s, err);
}

int pve_vm_status_parse(const json_t *data, struct pve_vm_status *ret, struct phx_err *err)
{
	struct pve_vm_status s;
	const char *st = json_string_value(json_object_get(data, "status"));
	long long v;

	if (!st)
		return phx_err_set(err, PHX_E_API, "VM status: no 'status' member");
	memset(&s, 0, sizeof(s));
	snprintf(s.status, sizeof(s.status), "%s", st);
	snprintf(s.qmpstatus, sizeof(s.qmpstatus), "%s",
		 json_string_value(json_object_get(data, "qmpstatus")) ?: "");
	snprintf(s.name, sizeof(s.name), "%s",
		 json_string_value(json_object_get(data, "name")) ?: "");
	snprintf(s.lock, sizeof(s.lock), "%s",
		 json_string_value(json_object_get(data, "lock")) ?: "");
	if (pve_json_int(json_object_get(data, "agent"), "agent", &v, NULL) == 0)
		s.agent = v != 0;
	if (pve_json_int(json_object_get(data, "template"), "template", &v, NULL) == 0)
		s.template = v != 0;
	if (pve_json_int(json_object_get(data, "uptime"), "uptime", &v, NULL) == 0)
		s.uptime = v;
	if (pve_json_int(json_object_get(json_object_get(data, "ha"), "managed"), "ha.managed", &v,
			 NULL) == 0)
		s.ha_managed = v != 0;
	*ret = s;
	return 0;
}

int pve_vm_status_get(struct pve_client *c, const char *node, int vmid,
		      struct pve_vm_status *ret, struct phx_err *err)
{
	char *path = vm_path(c, node, vmid, "status", "current", err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0)
		rc = pve_vm_status_parse(data, ret, err);
	json_decref(data);
	free(path);
	return rc;
}

/* ---- guest agent ---- */

/* {"result": ...} or a QGA error {"result":{"error":{"class","desc"}}} inside HTTP 200. */
static int agent_result(const json_t *data, const char *what, json_t **ret_result,
			struct phx_err *err)
{
	json_t *result = json_object_get(data, "result");
	json_t *qerr = json_is_object(result) ? json_object_get(result, "error") : NULL;

	if (qerr)
		return phx_err_set(err, PHX_E_API, "%s: guest agent: %s: %s", what,
				   json_string_value(json_object_get(qerr, "class")) ?: "error",
				   json_string_value(json_object_get(qerr, "desc")) ?: "");
	if (!result)
		return phx_err_set(err, PHX_E_API, "%s: guest agent answer has no 'result'", what);
	*ret_result = result;
	return 0;
}

int pve_agent_ping(struct pve_client *c, const char *node, int vmid, struct phx_err *err)
{
	char *path = vm_path(c, node, vmid, "agent", "ping", err);
	json_t *data = NULL, *result;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_post(c, path, NULL, 0, &data, err) == 0) {
		if (agent_result(data, path, &result, err) == 0)
			rc = 0;
	}
	json_decref(data);
	free(path);
	return rc;
}

void pve_iface_list_release(struct pve_iface_list *l)
{
	size_t i, k;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].mac);
		for (k = 0; k < l->items[i].n_ipv4; k++)
			free(l->items[i].ipv4[k]);
		free(l->items[i].ipv4);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int pve_iface_list_parse(const json_t *data, struct pve_iface_list *ret, struct phx_err *err)
{
	struct pve_iface_list l = {NULL, 0};
	json_t *result;
	size_t i, n;

	if (agent_result(data, "network-get-interfaces", &result, err) < 0)
		return -1;
	if (!json_is_array(result))
		return phx_err_set(err, PHX_E_API, "network-get-interfaces: expected a list");
	n = json_array_size(result);
	l.items = calloc(n ? n : 1, sizeof(*l.items));
	if (!l.items)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(result, i), *ips = json_object_get(e, "ip-addresses");
		struct pve_iface *f = &l.items[l.n++];
		size_t k, nip = json_array_size(ips);

		f->name = dup_or_empty(json_string_value(json_object_get(e, "name")));
		f->mac = dup_or_empty(json_string_value(json_object_get(e, "hardware-address")));
		f->ipv4 = calloc(nip ? nip : 1, sizeof(*f->ipv4));
		if (!f->name || !f->mac || !f->ipv4)
			goto nomem;
		for (k = 0; k < nip; k++) {
			json_t *ip = json_array_get(ips, k);
			const char *type = json_string_value(json_object_get(ip, "ip-address-type"));
			const char *addr = json_string_value(json_object_get(ip, "ip-address"));
			long long prefix = 32;

			if (!type || strcmp(type, "ipv4") != 0 || !addr)
				continue;
			pve_json_int(json_object_get(ip, "prefix"), "prefix", &prefix, NULL);
			if (asprintf(&f->ipv4[f->n_ipv4], "%s/%lld", addr, prefix) < 0) {
				f->ipv4[f->n_ipv4] = NULL;
				goto nomem;
			}
			f->n_ipv4++;
		}
	}
	*ret = l;
	return 0;
nomem:
	pve_iface_list_release(&l);
	return phx_err_set(err, PHX_E_NOMEM, "out of memory");
}

int pve_agent_network(struct pve_client *c, const char *node, int vmid,
		      struct pve_iface_list *ret, struct phx_err *err)
{
	char *path = vm_path(c, node, vmid, "agent", "network-get-interfaces", err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0) {
		rc = pve_iface_list_parse(data, ret, err);
		if (rc < 0)
			phx_err_wrap(err, "GET %s", path);
	}
	json_decref(data);
	free(path);
	return rc;
}

int pve_agent_exec(struct pve_client *c, const char *node, int vmid, const char *const *argv,
		   const char *input_data, long long *ret_pid, struct phx_err *err)
{
	char *path = vm_path(c, node, vmid, "agent", "exec", err);
	json_t *body = NULL, *cmd, *data = NULL;
	long long pid;
	size_t i;
	int rc = -1;

	if (!path)
		return -1;
	/* `command` is an array: only a JSON body expresses it unambiguously */
	body = json_object();
	cmd = json_array();
	if (!body || !cmd || json_object_set_new(body, "command", cmd) < 0) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; argv && argv[i]; i++)
		if (json_array_append_new(cmd, json_string(argv[i])) < 0) {
			phx_err_set(err, PHX_E_INPUT, "agent exec: argument %zu is not UTF-8", i);
			goto out;
		}
	if (input_data && json_object_set_new(body, "input-data", json_string(input_data)) < 0) {
		phx_err_set(err, PHX_E_INPUT, "agent exec: input data is not UTF-8");
		goto out;
	}
	if (pve_request_json(c, "POST", path, body, &data, err) < 0)
		goto out;
	if (pve_json_int(json_object_get(data, "pid"), "agent exec pid", &pid, err) < 0) {
		phx_err_wrap(err, "POST %s", path);
		goto out;
	}
	*ret_pid = pid;
	rc = 0;
out:
	json_decref(body);
	json_decref(data);
	free(path);
	return rc;
}

void pve_exec_status_release(struct pve_exec_status *s)
{
	if (!s)
		return;
	free(s->out_data);
	free(s->err_data);
	s->out_data = s->err_data = NULL;
}

int pve_agent_exec_status(struct pve_client *c, const char *node, int vmid, long long pid,
			  struct pve_exec_status *ret, struct phx_err *err)
{
	char *path = vm_path(c, node, vmid, "agent", "exec-status", err);
	char spid[24];
	struct pve_param q[] = {{"pid", spid}};
	struct pve_exec_status s;
	json_t *data = NULL;
	const char *o, *e;
	long long v;
	int rc = -1;

	if (!path)
		return -1;
	fmt_int(spid, sizeof(spid), pid);
	memset(&s, 0, sizeof(s));
	if (pve_get(c, path, q, 1, &data, err) < 0)
		goto out;
	s.exited = json_is_true(json_object_get(data, "exited")) ||
		   (pve_json_int(json_object_get(data, "exited"), "exited", &v, NULL) == 0 && v);
	if (pve_json_int(json_object_get(data, "exitcode"), "exitcode", &v, NULL) == 0)
		s.exitcode = (int)v;
	if (pve_json_int(json_object_get(data, "signal"), "signal", &v, NULL) == 0) {
		s.signalled = true;
		s.signal = (int)v;
	}
	o = json_string_value(json_object_get(data, "out-data"));
	e = json_string_value(json_object_get(data, "err-data"));
	if ((o && !(s.out_data = strdup(o))) || (e && !(s.err_data = strdup(e)))) {
		pve_exec_status_release(&s);
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	*ret = s;
	rc = 0;
out:
	json_decref(data);
	free(path);
	return rc;
}

/* ---- storage ---- */

void pve_storage_list_release(struct pve_storage_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->items[i].storage);
		free(l->items[i].type);
		free(l->items[i].content);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static uint64_t json_u64(const json_t *v)
{
	long long n = 0;

	if (pve_json_int(v, "size", &n, NULL) < 0 || n < 0)
		return 0;
	return (uint64_t)n;
}

static bool json_flag(const json_t *v)
{
	long long n = 0;

	return json_is_true(v) || (pve_json_int(v, "flag", &n, NULL) == 0 && n != 0);
}

int pve_storage_list(struct pve_client *c, const char *node, struct pve_storage_list *ret,
		     struct phx_err *err)
{
	char *path = pve_path(err, "nodes", node_or_default(c, node), "storage", NULL);
	struct pve_storage_list l = {NULL, 0};
	json_t *data = NULL;
	size_t i, n;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) < 0)
		goto out;
	if (!json_is_array(data)) {
		phx_err_set(err, PHX_E_API, "GET %s: expected an array", path);
		goto out;
	}
	n = json_array_size(data);
	l.items = calloc(n ? n : 1, sizeof(*l.items));
	if (!l.items)
		goto nomem;
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(data, i);
		struct pve_storage_info *s = &l.items[l.n++];

		s->storage = dup_or_empty(json_string_value(json_object_get(e, "storage")));
		s->type = dup_or_empty(json_string_value(json_object_get(e, "type")));
		s->content = dup_or_empty(json_string_value(json_object_get(e, "content")));
		if (!s->storage || !s->type || !s->content)
			goto nomem;
		s->avail = json_u64(json_object_get(e, "avail"));
		s->total = json_u64(json_object_get(e, "total"));
		s->active = json_flag(json_object_get(e, "active"));
		/* "enabled" is absent on older servers: a listed storage is enabled */
		s->enabled = !json_object_get(e, "enabled") || json_flag(json_object_get(e, "enabled"));
		s->shared = json_flag(json_object_get(e, "shared"));
	}
	*ret = l;
	l.items = NULL;
	l.n = 0;
	rc = 0;
	goto out;
nomem:
	phx_err_set(err, PHX_E_NOMEM, "out of memory");
out:
	pve_storage_list_release(&l);
	json_decref(data);
	free(path);
	return rc;
}

void pve_volume_list_release(struct pve_volume_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->items[i].volid);
		free(l->items[i].content);
		free(l->items[i].format);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int pve_storage_content(struct pve_client *c, const char *node, const char *storage,
			const char *content, struct pve_volume_list *ret, struct phx_err *err)
{
	char *path = pve_path(err, "nodes", node_or_default(c, node), "storage", storage,
			      "content", NULL);
	struct pve_param q[] = {{"content", content}};
	struct pve_volume_list l = {NULL, 0};
	json_t *data = NULL;
	size_t i, n;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, q, 1, &data, err) < 0)
		goto out;
	if (!json_is_array(data)) {
		phx_err_set(err, PHX_E_API, "GET %s: expected an array", path);
		goto out;
	}
	n = json_array_size(data);
	l.items = calloc(n ? n : 1, sizeof(*l.items));
	if (!l.items)
		goto nomem;
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(data, i);
		struct pve_volume *v = &l.items[l.n++];
		long long vmid = 0;

		v->volid = dup_or_empty(json_string_value(json_object_get(e, "volid")));
		v->content = dup_or_empty(json_string_value(json_object_get(e, "content")));
		v->format = dup_or_empty(json_string_value(json_object_get(e, "format")));
		if (!v->volid || !v->content || !v->format)
			goto nomem;
		v->size = json_u64(json_object_get(e, "size"));
		v->ctime = (long long)json_u64(json_object_get(e, "ctime"));
		if (json_object_get(e, "vmid"))
			pve_json_int(json_object_get(e, "vmid"), "vmid", &vmid, NULL);
		v->vmid = (int)vmid;
	}
	*ret = l;
	l.items = NULL;
	l.n = 0;
	rc = 0;
	goto out;
nomem:
	phx_err_set(err, PHX_E_NOMEM, "out of memory");
out:
	pve_volume_list_release(&l);
	json_decref(data);
	free(path);
	return rc;
}

int pve_storage_content_delete(struct pve_client *c, const char *node, const char *volid,
			       long timeout_s, struct phx_err *err)
{
	const char *colon = volid ? strchr(volid, ':') : NULL;
	char storage[128];
	char *path, *mark = NULL;
	struct pve_task_key key = {"imgdel", NULL, NULL};
	int rc;

	if (!colon || colon == volid || (size_t)(colon - volid) >= sizeof(storage))
		return phx_err_set(err, PHX_E_INPUT, "volume '%s': expected STORAGE:PATH",
				   volid ? volid : "");
	snprintf(storage, sizeof(storage), "%.*s", (int)(colon - volid), volid);
	path = pve_path(err, "nodes", node_or_default(c, node), "storage", storage, "content",
			volid, NULL);
	if (!path)
		return -1;
	/* pve-storage Content.pm delete forks imgdel with id "<owner VMID>@<storage>" and logs
	 * "Removed volume '$volid'" once it is gone */
	if (asprintf(&mark, "Removed volume '%s'", volid) < 0) {
		free(path);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	key.log_mark = mark;
	rc = pve_request_task_key(c, "DELETE", path, NULL, 0, &key, timeout_s, err);
	free(mark);
	free(path);
	return rc;
}

int pve_storage_upload(struct pve_client *c, const char *node, const char *storage,
		       const char *content, const char *path, const char *filename,
		       const char *checksum_algo, const char *checksum,
		       const struct http_progress *progress, long timeout_s, char **ret_volid,
		       struct phx_err *err)
{
	struct http_form_field f[3];
	size_t nf = 0;
	char *upath = pve_path(err, "nodes", node_or_default(c, node), "storage", storage,
			       "upload", NULL);
	char *volid = NULL;
	json_t *data = NULL;
	int rc = -1;

	static const char *const need[] = {"Datastore.AllocateTemplate"};
	char *acl_path = NULL;

	if (!upath)
		return -1;
	/* Proxmox refuses an upload before reading its body and then drops the connection, so
	 * the 403 can get lost in a send error: ask first, it costs one GET. */
	if (asprintf(&acl_path, "/storage/%s", storage) < 0) {
		acl_path = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (pve_permissions_check(c, acl_path, need, 1, err) < 0) {
		phx_err_wrap(err, "upload '%s' to storage '%s'", filename, storage);
		goto out;
	}
	/* Proxmox's multipart parser knows these fields only in this order (NOTES.md §6) */
	f[nf++] = (struct http_form_field){"content", content};
	if (checksum_algo && checksum) {
		f[nf++] = (struct http_form_field){"checksum-algorithm", checksum_algo};
		f[nf++] = (struct http_form_field){"checksum", checksum};
	}
	if (asprintf(&volid, "%s:%s/%s", storage, content, filename) < 0) {
		volid = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (pve_upload_multipart(c, upath, f, nf, filename, path, progress, &data, err) < 0)
		goto out;
	if (json_is_string(data) &&
	    pve_task_wait(c, json_string_value(data), timeout_s, NULL, err) < 0) {
		phx_err_wrap(err, "upload '%s' to '%s'", path, volid);
		goto out;
	}
	if (ret_volid) {
		*ret_volid = volid;
		volid = NULL;
	}
	rc = 0;
out:
	json_decref(data);
	free(acl_path);
	free(volid);
	free(upath);
	return rc;
}
