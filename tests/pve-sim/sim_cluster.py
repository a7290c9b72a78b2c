"""Cluster-wide endpoints: version, nextid, cluster resources, nodes, access permissions."""

import hashlib
import json
import os

from sim_common import ApiError, param_exc, perm_exc

ALL_PRIVS = ['VM.Allocate', 'VM.Audit', 'VM.Clone', 'VM.Config.CDROM', 'VM.Config.CPU',
	'VM.Config.Cloudinit', 'VM.Config.Disk', 'VM.Config.HWType', 'VM.Config.Memory',
	'VM.Config.Network', 'VM.Config.Options', 'VM.Console', 'VM.Migrate',
	'VM.PowerMgmt', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.GuestAgent.Audit',
	'VM.GuestAgent.Unrestricted', 'Datastore.Allocate', 'Datastore.AllocateSpace',
	'Datastore.AllocateTemplate', 'Datastore.Audit', 'Sys.Audit', 'Sys.Modify',
	'Sys.AccessNetwork', 'SDN.Use', 'SDN.Audit', 'SDN.Allocate']
# pac AccessControl.pm before 9.0 (commit 0706945 'privileges: drop VM.Monitor', with the
# VM.GuestAgent.* privileges of July 2025)
ALL_PRIVS_8 = [p for p in ALL_PRIVS if not p.startswith('VM.GuestAgent.')] + ['VM.Monitor']


def node_entry(n):
	"""What /nodes and /cluster/resources say about a node (always online, idle)."""
	return {'id': 'node/' + n, 'type': 'node', 'node': n, 'status': 'online', 'cpu': 0.01,
		'maxcpu': os.cpu_count(), 'mem': 1 << 30, 'maxmem': 8 << 30, 'disk': 1 << 30,
		'maxdisk': 100 << 30, 'uptime': 86400, 'level': ''}


class ClusterHandlers:
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
				d = self.vm_resource(vm)
				d.update({'id': 'qemu/%d' % vm['vmid'], 'type': 'qemu', 'node': vm['node'],
					'template': 1 if vm['conf'].get('template') else 0})
				d['maxcpu'] = d.pop('cpus')  # /cluster/resources names it maxcpu
				d.pop('pid', None)
				d.setdefault('tags', vm['conf'].get('tags', ''))
				if not d['tags']:
					d.pop('tags')
				res.append(d)
		if rtype in (None, 'node'):
			for n in self.nodes:
				res.append(dict(node_entry(n), **{'cgroup-mode': 2}))
		if rtype in (None, 'storage'):
			for n in self.nodes:
				for st in self.storages.values():
					if not self.on_node(st, n) or not self.sees_storage(r.authid, st['storage']):
						continue
					si = self.storage_status(st)
					res.append({'id': 'storage/%s/%s' % (n, st['storage']), 'type': 'storage',
						'node': n, 'storage': st['storage'], 'status': 'available',
						'plugintype': st['type'], 'shared': si['shared'],
						'content': si['content'], 'disk': si['used'], 'maxdisk': si['total']})
		return res

	def h_get_nodes(self, r):
		return [dict(node_entry(n), ssl_fingerprint=self.fingerprint) for n in self.nodes]

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
