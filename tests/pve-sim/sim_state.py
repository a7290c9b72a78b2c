"""Cluster, VM and config state of the simulator: API tokens and their privileges, the VM table
(saved as STATE/qemu-server/<vmid>.json), injected faults, and qemu-server's config flock."""

import contextlib
import hashlib
import json
import os
import random
import re
import threading
import time

import pve_schema
from sim_cluster import load_node_resources
from sim_common import ApiError, perm_exc

DEFAULT_TOKEN = 'phoenix@pve!ci'
DEFAULT_SECRET = '11111111-2222-3333-4444-555555555555'


# ----------------------------------------------------------------------------------------------
# Locks: the config flock of qemu-server (/var/lock/qemu-server/lock-<vmid>.conf), shared for
# clone sources, exclusive for everything else (pc Tools.pm lock_file_full, qs clone_vm).
class RWLock:
	def __init__(self):
		self.cond = threading.Condition()
		self.readers = 0
		self.writer = False

	def acquire(self, shared, timeout):
		end = time.monotonic() + timeout
		with self.cond:
			while self.writer or (not shared and self.readers):
				left = end - time.monotonic()
				if left <= 0:
					return False
				self.cond.wait(left)
			if shared:
				self.readers += 1
			else:
				self.writer = True
			return True

	def release(self, shared):
		with self.cond:
			if shared:
				self.readers -= 1
			else:
				self.writer = False
			self.cond.notify_all()


# ----------------------------------------------------------------------------------------------
# Versions: --pve-version names a release (8.4, 9.0, 9.1) or a full pve-manager version; each
# release has the pve-manager and qemu-server versions below (--qemu-server-version overrides
# the latter). What differs between them:
#   qemu-server < 9.0.3: agent calls need VM.Monitor (qs API2/Qemu/Agent.pm before commit
#     b92a40ce 'api: agent: use more specific guest agent privileges'); pac < 9.0 has
#     VM.Monitor and no VM.GuestAgent.* privileges (pac commit 0706945 drops VM.Monitor);
#   qemu-server < 9.1.19: POST .../config takes the config flock before the fork (qs
#     API2/Qemu.pm $update_vm_api; commit 797ab238 'api: update vm: fork before locking').
RELEASES = {
	# release: (pve-manager, qemu-server). 8.4: the heads of pve-manager stable-8 and
	# qemu-server stable-bookworm; 9.0: the last 9.0.x of each; 9.1: pve-manager 9.1.9 (the
	# simulator's default before versions) with the qemu-server of its day (9.1.6,
	# 2026-03-30; pve-manager 9.1.9 is of 2026-04-21).
	'8.4': ('8.4.21', '8.4.10'),
	'9.0': ('9.0.18', '9.0.30'),
	'9.1': ('9.1.9', '9.1.6'),
}


def vtuple(v):
	return tuple(int(x) for x in re.findall(r'\d+', v)[:3])


def load_sdn_config(path):
	"""SDN VNets ({vnet: {vnet, zone, ...}}) from a JSON file: {"vnets": [{"vnet": "v1",
	"zone": "z1", "tag": 100}]} or a bare list."""
	if not path:
		return {}
	with open(path) as f:
		raw = json.load(f)
	if isinstance(raw, dict):
		raw = raw.get('vnets', [])
	res = {}
	for e in raw:
		if not e.get('vnet') or not e.get('zone'):
			raise SystemExit('sdn config: each vnet needs "vnet" and "zone"')
		res[e['vnet']] = dict(e, type='vnet')
	return res


class SimState:
	"""The simulator's state. The endpoint mixins composed with it in pve_sim.SimServer
	provide init_storage/reset_storage/list_volumes (sim_storage) and make_hypervisor
	(sim_agent)."""

	def __init__(self, opts):
		self.opts = opts
		self.init_versions(opts)
		self.sdn_vnets = load_sdn_config(getattr(opts, 'sdn_config', None))
		self.state_dir = os.path.abspath(opts.state_dir)
		self.confdir = os.path.join(self.state_dir, 'qemu-server')
		self.tmpdir = os.path.join(self.state_dir, 'tmp')
		for d in (self.confdir, self.tmpdir):
			os.makedirs(d, exist_ok=True)
		self.nodes = opts.nodes.split(',')
		self.node_res = load_node_resources(getattr(opts, 'node_resources', None), self.nodes)
		self.init_storage()
		self.lock = threading.RLock()
		self.log_lock = threading.Lock()
		self.ha_resources = {}  # /etc/pve/ha/resources.cfg: sid -> options
		self.vms = {}
		self.tasks = {}
		self.faults = []
		self.task_durations = {}
		self.default_duration = opts.task_duration
		self.lock_timeout = opts.lock_timeout
		self.flocks = {}
		self.pid_counter = random.randint(0x1000, 0x8000)
		self.pstart = random.randint(0x100000, 0x900000)
		self.tokens = {}
		self.hv = self.make_hypervisor(opts)
		self.lxc_rt = self.make_lxc_runtime(opts)
		self.validator = pve_schema.Validator(pve_schema.load_schema())
		for tok in (opts.token or ['%s=%s' % (DEFAULT_TOKEN, DEFAULT_SECRET)]):
			tid, _, secret = tok.rpartition('=')
			self.tokens[tid] = {'secret': secret, 'privs': None}
		for spec in opts.token_privs or []:
			tid, _, acl = spec.partition('=')
			privs = {}
			for entry in acl.split(';'):
				if not entry.strip():
					continue
				path, _, pl = entry.partition(':')
				privs[path.strip()] = set(p.strip() for p in pl.split(',') if p.strip())
			if tid not in self.tokens:
				raise SystemExit('--token-privs for unknown token %s' % tid)
			self.tokens[tid]['privs'] = privs
		self.load_state()

	def init_versions(self, opts):
		v = opts.pve_version or '9.1'
		m = re.match(r'^(\d+)\.(\d+)(?:\.(\d+))?$', v)
		if not m:
			raise SystemExit('--pve-version: expected 8.4, 9.0, 9.1 or a full version')
		self.release = '%s.%s' % (m.group(1), m.group(2))
		behaves_as = self.release
		if self.release not in RELEASES:
			# an older release is only ever asked for its GET /version (a client must refuse
			# it before anything else); everything else then behaves as the oldest modelled
			if vtuple(v) >= vtuple(min(RELEASES, key=vtuple)):
				raise SystemExit('--pve-version: release %s not simulated (one of %s)' % (
					self.release, ', '.join(sorted(RELEASES))))
			behaves_as = min(RELEASES, key=vtuple)
		self.manager_version = v if m.group(3) is not None else RELEASES[behaves_as][0]
		self.qs_version = getattr(opts, 'qemu_server_version', None) or \
			RELEASES[behaves_as][1]

	def qs_at_least(self, v):
		return vtuple(self.qs_version) >= vtuple(v)

	# -- bookkeeping ------------------------------------------------------------------------
	def next_pid(self):
		with self.lock:
			self.pid_counter += random.randint(1, 40)
			return self.pid_counter

	def load_state(self):
		for fn in sorted(os.listdir(self.confdir)):
			if fn.endswith('.json'):
				with open(os.path.join(self.confdir, fn)) as f:
					vm = json.load(f)
				vm['status'] = 'stopped'
				vm['conf'].pop('lock', None) if vm['conf'].get('lock') in ('create', 'clone') \
					else None
				self.vms[vm['vmid']] = vm

	def save_vm(self, vm):
		with self.lock:
			path = os.path.join(self.confdir, '%d.json' % vm['vmid'])
			tmp = path + '.tmp'
			keep = {k: v for k, v in vm.items() if k in ('vmid', 'node', 'conf', 'snapshots',
				'type', 'pending', 'rootfs_info')}
			with open(tmp, 'w') as f:
				json.dump(keep, f, indent=1, sort_keys=True)
			os.replace(tmp, path)

	def add_locked_vm(self, vmid, node, lock):
		"""Registers and saves a new, stopped VM whose config is only `lock: <lock>` (the
		placeholder a create or clone task fills in). Call with self.lock held."""
		vm = {'vmid': vmid, 'node': node, 'status': 'stopped', 'conf': {'lock': lock},
			'snapshots': {}}
		self.vms[vmid] = vm
		self.save_vm(vm)
		return vm

	def drop_vm(self, vmid):
		self.hv.forget(vmid)
		if self.lxc_rt:
			self.lxc_rt.forget(vmid)
		with self.lock:
			self.vms.pop(vmid, None)
			try:
				os.unlink(os.path.join(self.confdir, '%d.json' % vmid))
			except FileNotFoundError:
				pass

	def reset(self):
		self.hv.close(final=False)
		if self.lxc_rt:
			self.lxc_rt.close(final=False)
		with self.lock:
			for vmid in list(self.vms):
				self.drop_vm(vmid)
			self.tasks.clear()
			self.ha_resources.clear()
			self.faults.clear()
			self.task_durations.clear()
			self.flocks.clear()
			self.reset_storage()

	def dump_state(self):
		with self.lock:
			vms = {}
			for vmid, vm in sorted(self.vms.items()):
				vms[str(vmid)] = {'node': vm['node'], 'status': vm['status'],
					'conf': dict(vm['conf']), 'agent_up': bool(vm.get('agent_up')),
					'snapshots': sorted(vm.get('snapshots', {})),
					'type': vm.get('type', 'qemu')}
				if vm.get('pending'):
					vms[str(vmid)]['pending'] = dict(vm['pending'])
				if vm.get('pid'):
					vms[str(vmid)]['pid'] = vm['pid']
			tasks = [t.status_dict() for t in self.tasks.values()]
		return {'vms': vms, 'volumes': self.list_volumes(), 'tasks': tasks,
			'faults': list(self.faults), 'nodes': self.nodes,
			'ha_resources': {k: dict(v) for k, v in sorted(self.ha_resources.items())},
			'lxc_bridges': self.lxc_rt.bridges_state() if self.lxc_rt else {},
			'node_status': {n: dict(self.node_res[n], mem_used=self.node_mem_used(n))
				for n in self.nodes}}

	# -- permissions (pac RPCEnvironment.pm permissions: most specific ACL path wins) -------
	def privs_at(self, authid, path):
		tok = self.tokens.get(authid)
		if tok is None or tok['privs'] is None:
			return None  # all privileges
		best = None
		for p in tok['privs']:
			if path == p or p == '/' or path.startswith(p.rstrip('/') + '/'):
				if best is None or len(p) > len(best):
					best = p
		return tok['privs'][best] if best is not None else set()

	def has(self, authid, path, priv):
		pv = self.privs_at(authid, path)
		return pv is None or priv in pv

	def check(self, authid, path, privs, any_of=False):
		if any_of:
			if not any(self.has(authid, path, p) for p in privs):
				raise perm_exc('%s, %s' % (path, '|'.join(privs)))
			return
		for p in privs:
			if not self.has(authid, path, p):
				raise perm_exc('%s, %s' % (path, p))

	# -- faults ------------------------------------------------------------------------------
	def take_fault(self, kind, **match):
		with self.lock:
			for f in self.faults:
				if f['kind'] != kind or f.get('count', 1) <= 0:
					continue
				ok = True
				if kind == 'http':
					if f.get('method') and f['method'] != match['method']:
						ok = False
					if f.get('path') and not re.search(f['path'], match['path']):
						ok = False
				elif kind == 'task':
					if f.get('type') and f['type'] != match['type']:
						ok = False
					if f.get('id') is not None and str(f['id']) != match['id']:
						ok = False
				elif kind == 'lock-timeout':
					if f.get('vmid') is not None and int(f['vmid']) != match['vmid']:
						ok = False
					# with a task type: only the flock taken inside such a task; without:
					# only a flock the API process takes before it forks a worker
					if (f.get('type') or None) != match.get('type'):
						ok = False
				if ok:
					f['count'] = f.get('count', 1) - 1
					if f['count'] <= 0:
						self.faults.remove(f)
					return f
		return None

	# -- the config flock ---------------------------------------------------------------------
	def flock(self, vmid, shared=False, timeout=None, ttype=None):
		"""Takes the config file lock or raises the Perl timeout error; returns its release
		function (for a lock held past the request, as a clone source's is). ttype: the
		type of the task that takes it (None: the API process, before any fork)."""
		msg = "can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout\n" % vmid
		if self.take_fault('lock-timeout', vmid=vmid, type=ttype):
			raise ApiError(500, msg)
		with self.lock:
			lk = self.flocks.setdefault(vmid, RWLock())
		if not lk.acquire(shared, self.lock_timeout if timeout is None else timeout):
			raise ApiError(500, msg)
		return lambda: lk.release(shared)

	@contextlib.contextmanager
	def config_lock(self, vmid, shared=False, timeout=None, ttype=None):
		"""`with sim.config_lock(vmid):` holds the config flock for the block (the code qs
		runs inside QemuConfig->lock_config)."""
		release = self.flock(vmid, shared, timeout, ttype)
		try:
			yield
		finally:
			release()

	# -- VM configs -------------------------------------------------------------------------
	def get_vm(self, vmid, node=None):
		vm = self.vms.get(int(vmid))
		if vm is None or vm.get('type') == 'lxc' or (node is not None and vm['node'] != node):
			# qs PVE/QemuConfig.pm load_config via PVE::Cluster (a container's config is
			# elsewhere: nodes/<node>/lxc/<vmid>.conf)
			raise ApiError(500, "Configuration file 'nodes/%s/qemu-server/%s.conf' does not "
				"exist\n" % (node or self.nodes[0], vmid))
		return vm

	def audited_vm(self, r):
		"""The VM of the request, after the VM.Audit check that reading it needs."""
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		return vm

	def check_lock(self, vm):
		# pgc AbstractConfig.pm check_lock
		lk = vm['conf'].get('lock')
		if lk:
			raise ApiError(500, 'VM %d is locked (%s)\n' % (vm['vmid'], lk))

	def conf_digest(self, vm):
		return hashlib.sha1(json.dumps(vm['conf'], sort_keys=True).encode()).hexdigest()

	def assert_if_modified(self, vm, digest):
		if digest and digest != self.conf_digest(vm):
			# pgc AbstractConfig.pm / pc Tools.pm assert_if_modified
			raise ApiError(500, 'detected modified configuration - file changed by other '
				'user? Try again.\n')
