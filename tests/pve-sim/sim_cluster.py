"""Cluster-wide endpoints: version, nextid, cluster resources, nodes, access permissions."""

import hashlib
import json
import os
import re

import pve_schema
from sim_common import ApiError, param_exc, perm_exc

ALL_PRIVS = ['VM.Allocate', 'VM.Audit', 'VM.Clone', 'VM.Config.CDROM', 'VM.Config.CPU',
	'VM.Config.Cloudinit', 'VM.Config.Disk', 'VM.Config.HWType', 'VM.Config.Memory',
	'VM.Config.Network', 'VM.Config.Options', 'VM.Console', 'VM.Migrate',
	'VM.PowerMgmt', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.GuestAgent.Audit',
	'VM.GuestAgent.Unrestricted', 'Datastore.Allocate', 'Datastore.AllocateSpace',
	'Datastore.AllocateTemplate', 'Datastore.Audit', 'Sys.Audit', 'Sys.Modify',
	'Sys.AccessNetwork', 'SDN.Use', 'SDN.Audit', 'SDN.Allocate',
	# pac AccessControl.pm $privgroups Sys: what HA resources need (pve-ha-manager)
	'Sys.Console']
# pac AccessControl.pm before 9.0 (commit 0706945 'privileges: drop VM.Monitor', with the
# VM.GuestAgent.* privileges of July 2025)
ALL_PRIVS_8 = [p for p in ALL_PRIVS if not p.startswith('VM.GuestAgent.')] + ['VM.Monitor']


# Per-node resources (--node-resources, harness node_resources=, POST /_sim/node/<name>): what a
# node has without any running VM. 'mem' grows by the memory of each running VM on the node.
NODE_DEFAULTS = {'maxmem': 8 << 30, 'mem': 1 << 30, 'maxcpu': os.cpu_count() or 1, 'cpu': 0.01,
	'maxdisk': 100 << 30, 'disk': 1 << 30, 'uptime': 86400}
NODE_KEYS = ('maxmem', 'mem', 'maxcpu', 'cpu', 'maxdisk', 'disk', 'uptime')


def load_node_resources(spec, nodes):
	"""{node: {online, maxmem, mem, maxcpu, cpu, ...}} from --node-resources (a JSON file or
	a JSON string) over the defaults."""
	res = {n: dict(NODE_DEFAULTS, online=True) for n in nodes}
	if not spec:
		return res
	if spec.lstrip().startswith('{'):
		raw = json.loads(spec)
	else:
		with open(spec) as f:
			raw = json.load(f)
	for n, v in raw.items():
		if n not in res:
			raise SystemExit('node resources: unknown node %r (nodes: %s)' % (n, ', '.join(nodes)))
		for k, val in v.items():
			if k not in NODE_KEYS + ('online',):
				raise SystemExit('node resources: %s: unknown key %r' % (n, k))
			res[n][k] = bool(val) if k == 'online' else (float(val) if k == 'cpu' else int(val))
	return res


class ClusterHandlers:
	# -- nodes online/offline and their resources --------------------------------------------
	def node_online(self, n):
		return self.node_res[n]['online']

	def quorate(self):
		# corosync votequorum: a majority of the votes (one per node)
		return 2 * sum(1 for n in self.nodes if self.node_online(n)) > len(self.nodes)

	def node_entry(self, n, audit=True):
		"""pm API2Tools.pm extract_node_stats, as /nodes and /cluster/resources show a node.
		An offline node: status 'offline' and nothing else, as once its rrd data has expired
		(pmxcfs status.c rrd_entry_is_old: after 5 minutes; for the first 5 minutes Proxmox
		still shows its level and max* values). Without Sys.Audit on /nodes/<n>: no stats."""
		e = {'id': 'node/' + n, 'type': 'node', 'node': n, 'status': 'online'}
		if not self.node_online(n):
			e['status'] = 'offline'
			return e
		nr = self.node_res[n]
		e['level'] = ''
		if audit:
			e.update(uptime=nr['uptime'], cpu=nr['cpu'], mem=self.node_mem_used(n),
				disk=nr['disk'], maxcpu=nr['maxcpu'], maxmem=nr['maxmem'],
				maxdisk=nr['maxdisk'])
		return e

	def node_mem_used(self, n):
		"""The node's own memory use plus the memory of each running VM on it."""
		with self.lock:
			vms = [vm for vm in self.vms.values() if vm['node'] == n and
				vm['status'] == 'running']
		return self.node_res[n]['mem'] + sum(self.vm_resource(vm)['maxmem'] for vm in vms)

	def set_node(self, n, body):
		"""POST /_sim/node/<n>: online true/false and resource values. A node going offline
		is a node that lost power: its running VMs are stopped."""
		with self.lock:
			nr = self.node_res[n]
			for k, v in body.items():
				if k == 'online':
					nr['online'] = bool(v)
				elif k in NODE_KEYS:
					nr[k] = float(v) if k == 'cpu' else int(v)
				else:
					raise ValueError('unknown key %r' % k)
			if not nr['online']:
				for vm in list(self.vms.values()):
					if vm['node'] == n and vm['status'] == 'running':
						self.hv.stop(vm)
			return dict(nr)

	def check_schema_perms(self, ms, authid, params):
		"""pm HTTPServer.pm rest_handler -> pac RPCEnvironment.pm check_api2_permissions: the
		schema's ['perm', path, [privs], ('any', 1)] check, which pveproxy runs before it
		proxies a call to the node (other check forms are left to the handlers)."""
		chk = (ms.get('permissions') or {}).get('check')
		if not isinstance(chk, list) or len(chk) < 3 or chk[0] != 'perm' or \
				not isinstance(chk[2], list):
			return
		path = re.sub(r'\{(\w+)\}', lambda m: str(params.get(m.group(1), '')), chk[1])
		self.check(authid, path, chk[2], any_of='any' in chk[3:])

	def all_privs(self):
		return ALL_PRIVS_8 if self.release.startswith('8.') else ALL_PRIVS

	def h_get_version(self, r):
		# pm API2.pm version: the pve-manager version, the point release, a 16-hex repoid
		v = self.manager_version
		return {'version': v, 'release': self.release,
			'repoid': hashlib.sha1(v.encode()).hexdigest()[:16]}

	def h_get_cluster_nextid(self, r):
		# pm API2/Cluster.pm nextid: returns the ID as a string
		if r.params.get('vmid') is not None:
			vmid = int(r.params['vmid'])
			if vmid in self.vms:
				raise param_exc({'vmid': 'VM %d already exists' % vmid})
			return str(vmid)
		vmid = 100
		while vmid in self.vms:
			vmid += 1
		return str(vmid)

	def h_get_cluster_resources(self, r):
		res = []
		rtype = r.params.get('type')
		with self.lock:
			vms = list(self.vms.values())
		if rtype in (None, 'vm'):
			for vm in vms:
				if not self.has(r.authid, '/vms/%d' % vm['vmid'], 'VM.Audit'):
					continue
				vtype = vm.get('type', 'qemu')
				if not self.node_online(vm['node']):
					# pm API2Tools.pm extract_vm_stats without rrd data: status 'unknown';
					# lock and tags come from the config (get_guest_config_properties)
					d = {'id': '%s/%d' % (vtype, vm['vmid']), 'vmid': vm['vmid'], 'type': vtype,
						'node': vm['node'], 'status': 'unknown'}
					for k in ('lock', 'tags'):
						if vm['conf'].get(k):
							d[k] = vm['conf'][k]
					res.append(d)
					continue
				d = self.vm_resource(vm)
				d.update({'id': '%s/%d' % (vtype, vm['vmid']), 'type': vtype, 'node': vm['node'],
					'template': 1 if vm['conf'].get('template') else 0})
				d.pop('maxswap', None)
				d['maxcpu'] = d.pop('cpus')  # /cluster/resources names it maxcpu
				d.pop('pid', None)
				d.setdefault('tags', vm['conf'].get('tags', ''))
				if not d['tags']:
					d.pop('tags')
				res.append(d)
		if rtype in (None, 'node'):
			for n in self.nodes:
				res.append(dict(self.node_entry(n, self.has(r.authid, '/nodes/' + n,
					'Sys.Audit')), **{'cgroup-mode': 2}))
		if rtype in (None, 'storage'):
			for n in self.nodes:
				for st in self.storages.values():
					if not self.on_node(st, n) or not self.sees_storage(r.authid, st['storage']):
						continue
					si = self.storage_status(st)
					e = {'id': 'storage/%s/%s' % (n, st['storage']), 'type': 'storage',
						'node': n, 'storage': st['storage'], 'status': 'available',
						'plugintype': st['type'], 'shared': si['shared'],
						'content': si['content'], 'disk': si['used'], 'maxdisk': si['total']}
					if not self.node_online(n):
						# pm API2Tools.pm extract_storage_stats without rrd data
						e['status'] = 'unknown'
						del e['disk'], e['maxdisk']
					res.append(e)
		return res

	def h_get_nodes(self, r):
		# pm API2/Nodes.pm index
		return [dict(self.node_entry(n, self.has(r.authid, '/nodes/' + n, 'Sys.Audit')),
			ssl_fingerprint=self.fingerprint) for n in self.nodes]

	def h_get_nodes_node_status(self, r):
		# pm API2/Nodes.pm status (the node answers itself: only reached when it is online)
		self.check(r.authid, '/nodes/' + r.node, ['Sys.Audit'])
		nr = self.node_res[r.node]
		used = self.node_mem_used(r.node)
		return {'cpu': nr['cpu'], 'uptime': nr['uptime'], 'loadavg': ['0.10', '0.05', '0.01'],
			'wait': 0, 'idle': 0,
			'cpuinfo': {'cpus': nr['maxcpu'], 'cores': nr['maxcpu'], 'sockets': 1,
				'model': 'QEMU Virtual CPU (simulated)', 'mhz': '2400.000', 'hvm': '1',
				'user_hz': 100, 'flags': ''},
			'memory': {'total': nr['maxmem'], 'used': used, 'free': max(0, nr['maxmem'] - used),
				'available': max(0, nr['maxmem'] - used)},
			'swap': {'total': 0, 'used': 0, 'free': 0},
			'rootfs': {'total': nr['maxdisk'], 'used': nr['disk'], 'free': nr['maxdisk'] -
				nr['disk'], 'avail': nr['maxdisk'] - nr['disk']},
			'ksm': {'shared': 0},
			'kversion': 'Linux 6.14.11-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4',
			'current-kernel': {'sysname': 'Linux', 'release': '6.14.11-4-pve',
				'version': '#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4', 'machine': 'x86_64'},
			'boot-info': {'mode': 'efi', 'secureboot': 0},
			'pveversion': 'pve-manager/%s/%s' % (self.manager_version, hashlib.sha1(
				self.manager_version.encode()).hexdigest()[:16])}

	def h_get_cluster_status(self, r):
		# pm API2/Cluster.pm get_status: the cluster entry, then one per member
		self.check(r.authid, '/', ['Sys.Audit'])
		if len(self.nodes) == 1:
			# no cluster: the fake entry for the local node
			return [{'type': 'node', 'id': 'node/' + self.nodes[0], 'name': self.nodes[0],
				'ip': '127.0.0.1', 'local': 1, 'nodeid': 0, 'online': 1, 'level': ''}]
		res = [{'type': 'cluster', 'id': 'cluster', 'nodes': len(self.nodes), 'version':
			len(self.nodes), 'name': 'phoenix-sim', 'quorate': 1 if self.quorate() else 0}]
		for i, n in enumerate(self.nodes):
			res.append({'type': 'node', 'id': 'node/' + n, 'name': n, 'nodeid': i + 1,
				'local': 1 if i == 0 else 0, 'online': 1 if self.node_online(n) else 0,
				'ip': '127.0.0.%d' % (i + 1), 'level': ''})
		return res

	# -- HA resources (pve-ha-manager API2/HA/Resources.pm) ---------------------------------
	# No HA groups exist here: on 9.x a cluster without groups has them "migrated to rules"
	# (Config.pm have_groups_been_migrated: no group config), so `group` is refused; on 8.4
	# a group must exist (the update path's "HA group 'X' does not exist").
	HA_KEYS = ('state', 'group', 'max_restart', 'max_relocate', 'failback', 'comment')

	def ha_sid(self, sid):
		# Config.pm parse_sid: "vm:100", "ct:100", or a bare VMID meaning vm:
		m = re.match(r'^(?:(vm|ct):)?(\d+)$', sid)
		if not m:
			raise ApiError(500, "unable to parse service id '%s'\n" % sid)
		return '%s:%s' % (m.group(1) or 'vm', m.group(2)), m.group(1) or 'vm', int(m.group(2))

	def ha_value(self, k, v):
		# the section config's integer and boolean properties read back as numbers
		return int(v) if k in ('max_restart', 'max_relocate', 'failback') else v

	def ha_digest(self):
		return hashlib.sha1(json.dumps(self.ha_resources, sort_keys=True).encode()).hexdigest()

	def ha_check_group(self, p):
		if p.get('group') is None:
			return
		if not self.release.startswith('8.'):
			raise ApiError(500, "invalid parameter 'group': ha groups have been migrated to "
				"rules\n")
		raise ApiError(500, "HA group '%s' does not exist\n" % p['group'])

	def ha_entry(self, sid):
		# API2/HA/Resources.pm $api_copy_config
		if sid not in self.ha_resources:
			raise ApiError(500, "no such resource '%s'\n" % sid)
		e = dict(self.ha_resources[sid], sid=sid, digest=self.ha_digest())
		return e

	def h_get_cluster_ha_resources(self, r):
		self.check(r.authid, '/', ['Sys.Audit'])
		with self.lock:
			res = [self.ha_entry(sid) for sid in sorted(self.ha_resources)]
		return [e for e in res if not r.params.get('type') or e['type'] == r.params['type']]

	def h_get_cluster_ha_resources_sid(self, r):
		self.check(r.authid, '/', ['Sys.Audit'])
		sid = self.ha_sid(r.sid)[0]
		with self.lock:
			return self.ha_entry(sid)

	def h_post_cluster_ha_resources(self, r):
		# API2/HA/Resources.pm create: Sys.Console on /, then the checks in its order
		self.check(r.authid, '/', ['Sys.Console'])
		p = r.params
		sid, typ, vmid = self.ha_sid(p['sid'])
		if p.get('type') and p['type'] != typ:
			raise ApiError(500, 'types does not match\n')
		self.ha_check_group(p)
		with self.lock:
			if vmid not in self.vms:
				# Resources/PVEVM.pm exists
				raise ApiError(500, "resource '%s' does not exist in cluster\n" % sid)
			if sid in self.ha_resources:
				raise ApiError(500, "resource ID '%s' already defined\n" % sid)
			opts = {'type': typ}
			opts.update({k: self.ha_value(k, p[k]) for k in self.HA_KEYS if k in p})
			self.ha_resources[sid] = opts
		return None

	def h_put_cluster_ha_resources_sid(self, r):
		# API2/HA/Resources.pm update -> Config.pm update_resources_config
		self.check(r.authid, '/', ['Sys.Console'])
		p = r.params
		sid = self.ha_sid(r.sid)[0]
		self.ha_check_group(p)
		with self.lock:
			if sid not in self.ha_resources:
				raise ApiError(500, "no such resource '%s'\n" % sid)
			if p.get('digest') and p['digest'] != self.ha_digest():
				raise ApiError(500, 'detected modified configuration - file changed by other '
					'user? Try again.\n')
			opts = self.ha_resources[sid]
			for k in pve_schema.split_list(p.get('delete', '')) if p.get('delete') else []:
				opts.pop(k, None)
			opts.update({k: self.ha_value(k, p[k]) for k in self.HA_KEYS if k in p})
		return None

	def h_delete_cluster_ha_resources_sid(self, r):
		self.check(r.authid, '/', ['Sys.Console'])
		sid = self.ha_sid(r.sid)[0]
		with self.lock:
			if sid not in self.ha_resources:
				raise ApiError(500, "cannot delete service '%s', not HA managed!\n" % sid)
			del self.ha_resources[sid]
		return None

	def h_get_access_permissions(self, r):
		# pac API2/AccessControl.pm permissions
		authid = r.params.get('userid') or r.authid
		if authid != r.authid and not authid.startswith(r.authid.split('!')[0]):
			self.check(r.authid, '/access', ['Sys.Audit'])
		tok = self.tokens.get(authid)
		paths = {}
		if tok is None or tok['privs'] is None:
			acl = {'/': set(self.all_privs())}
		else:
			acl = tok['privs']
		if r.params.get('path'):
			p = r.params['path']
			pv = self.privs_at(authid, p)
			paths[p] = {k: 1 for k in sorted(self.all_privs() if pv is None else pv)}
		else:
			for p, pv in acl.items():
				paths[p] = {k: 1 for k in sorted(pv)}
		return paths

	def h_post_access_ticket(self, r):
		raise ApiError(401, 'authentication failure\n')

	# -- SDN (pve-network API2/Network/SDN/Vnets.pm index/read) ------------------------------
	def vnet_entry(self, v):
		d = {k: val for k, val in v.items()}
		d['digest'] = hashlib.sha1(json.dumps(v, sort_keys=True).encode()).hexdigest()
		return d

	def sdn_audit(self, authid, v):
		path = '/sdn/zones/%s/%s' % (v['zone'], v['vnet'])
		return self.has(authid, path, 'SDN.Audit') or self.has(authid, path, 'SDN.Allocate')

	def h_get_cluster_sdn_vnets(self, r):
		# only entries with SDN.Audit or SDN.Allocate on /sdn/zones/<zone>/<vnet>
		return [self.vnet_entry(v) for _, v in sorted(self.sdn_vnets.items())
			if self.sdn_audit(r.authid, v)]

	def h_get_cluster_sdn_vnets_vnet(self, r):
		v = self.sdn_vnets.get(r.vnet)
		if v is None:
			raise ApiError(500, "sdn vnet '%s' does not exist\n" % r.vnet)
		if not self.sdn_audit(r.authid, v):
			raise perm_exc('/sdn/zones/%s/%s, SDN.Audit|SDN.Allocate' % (v['zone'], v['vnet']))
		return self.vnet_entry(v)
