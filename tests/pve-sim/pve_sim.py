#!/usr/bin/env python3
"""Proxmox VE API simulator (Python standard library only).

Strict where Proxmox is strict, slow where it is slow, failing the way it fails: every request
is validated against schema.json (copied from the official API dump), tokens have per-path
privileges, async calls run as tasks with real-format UPIDs, disks are real qcow2 files made
with qemu-img. Semantics follow ../shared/pve-api/NOTES.md; the Perl function each behaviour
comes from is named next to it. See README.md for the CLI and the /_sim/ control API.
"""

import argparse
import hashlib
import http.server
import json
import mmap
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pve_schema  # noqa: E402
from pve_schema import format_size, parse_size  # noqa: E402

DEFAULT_TOKEN = 'phoenix@pve!ci'
DEFAULT_SECRET = '11111111-2222-3333-4444-555555555555'
BASE = '/api2/json'
MAX_POST = 512 * 1024  # phs AnyEvent.pm $limit_max_post (newer versions)
STORAGE_CONTENT = 'images,import,iso,snippets,vztmpl'
DRIVE_RE = re.compile(r'^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])'
	r'|efidisk0|tpmstate0)$')
NEW_DISK_RE = re.compile(r'^(([^/:\s]+):)?(\d+(\.\d+)?)$')  # qs Drive.pm NEW_DISK_RE
PERL_AT = ' at /usr/share/perl5/%s line %d.\n'

# Option -> privilege needed to set it (qs API2/Qemu.pm $check_vm_modify_config_perm).
OPT_PRIV = {}
for _o in ('cores', 'cpu', 'numa', 'sockets', 'vcpus', 'cpulimit', 'cpuunits', 'smp'):
	OPT_PRIV[_o] = ('VM.Config.CPU',)
for _o in ('memory', 'balloon', 'shares'):
	OPT_PRIV[_o] = ('VM.Config.Memory',)
for _o in ('scsihw', 'vga', 'machine', 'smbios1', 'rng0', 'tablet', 'keyboard', 'watchdog',
		'audio0', 'serial', 'usb', 'parallel', 'tpmstate0', 'efidisk0-hw'):
	OPT_PRIV[_o] = ('VM.Config.HWType',)
for _o in ('agent', 'name', 'ostype', 'onboot', 'bios', 'template', 'tags', 'description',
		'protection', 'kvm', 'acpi', 'hotplug', 'startup', 'localtime', 'vmgenid', 'arch',
		'freeze', 'reboot', 'spice_enhancements', 'startdate', 'tdf', 'migrate_downtime',
		'migrate_speed', 'vmstatestorage', 'keephugepages', 'allow-ksm'):
	OPT_PRIV[_o] = ('VM.Config.Options',)
for _o in ('boot', 'bootdisk', 'unused'):
	OPT_PRIV[_o] = ('VM.Config.Disk',)
OPT_PRIV['net'] = ('VM.Config.Network',)
for _o in ('ciuser', 'cipassword', 'citype', 'ciupgrade', 'cicustom', 'sshkeys', 'ipconfig',
		'nameserver', 'searchdomain'):
	OPT_PRIV[_o] = ('VM.Config.Cloudinit', 'VM.Config.Network')
ROOT_ONLY = ('args', 'hookscript', 'lock', 'affinity', 'hugepages', 'hostpci', 'skiplock')
NOT_CONFIG = ('node', 'vmid', 'start', 'storage', 'pool', 'archive', 'force', 'unique',
	'live-restore', 'import-working-storage', 'bwlimit', 'digest', 'delete', 'revert',
	'background_delay', 'skiplock', 'ha-managed')
ALL_VM_CONFIG = ['VM.Config.CPU', 'VM.Config.Memory', 'VM.Config.HWType', 'VM.Config.Options',
	'VM.Config.Disk', 'VM.Config.Network', 'VM.Config.Cloudinit', 'VM.Config.CDROM']


def opt_base(k):
	m = re.match(r'^([a-z]+)\d+$', k)
	return m.group(1) if m and k not in ('rng0', 'audio0', 'efidisk0', 'tpmstate0') else k


class ApiError(Exception):
	"""An error answer: HTTP code, message (reason = first line), optional errors map."""

	def __init__(self, code, msg, errors=None, body=True):
		super().__init__(msg)
		self.code = code
		self.msg = msg
		self.errors = errors
		self.body = body


def param_exc(errors):
	# pve-common PVE/Exception.pm raise_param_exc
	return ApiError(400, 'Parameter verification failed.\n', errors)


def perm_exc(what):
	# pve-access-control RPCEnvironment.pm check / raise_perm_exc
	return ApiError(403, 'Permission check failed (%s)\n' % what)


class TaskFailed(Exception):
	pass


def run(cmd):
	p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	if p.returncode != 0:
		raise TaskFailed('%s failed: %s' % (cmd[0] + ' ' + cmd[1], p.stderr.strip()))
	return p.stdout


def qemu_img_info(path):
	out = run(['qemu-img', 'info', '--output=json', '-U', path])
	return json.loads(out)


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
class Task:
	def __init__(self, sim, node, ttype, tid, authid):
		self.sim = sim
		self.node = node
		self.type = ttype
		self.id = str(tid) if tid is not None else ''
		self.user = authid
		self.pid = sim.next_pid()
		self.pstart = sim.pstart + random.randint(1, 5000)
		self.starttime = int(time.time())
		self.upid = 'UPID:%s:%08X:%08X:%08X:%s:%s:%s:' % (node, self.pid, self.pstart,
			self.starttime, ttype, self.id, authid)
		self.lines = []
		self.status = 'running'
		self.exitstatus = None
		self.endtime = None
		self.warnings = 0
		self.stop_requested = False
		self.done = threading.Event()

	def log(self, line):
		with self.sim.lock:
			self.lines.append(line)

	def warn(self, line):
		self.warnings += 1
		self.log('WARN: ' + line)

	def status_dict(self):
		user, _, tok = self.user.partition('!')
		d = {'upid': self.upid, 'node': self.node, 'pid': self.pid, 'pstart': self.pstart,
			'starttime': self.starttime, 'type': self.type, 'id': self.id, 'user': user,
			'status': self.status}
		if tok:
			d['tokenid'] = tok
		if self.status == 'stopped':
			d['exitstatus'] = self.exitstatus
		return d


# ----------------------------------------------------------------------------------------------
class FakeHypervisor:
	"""Runs no guest: start/stop only flip state. The agent answers once the control API says
	it is up (/_sim/agent/<vmid>). A real qemu-system backend can replace this class: it gets
	the same calls (start, stop, agent)."""

	def __init__(self, sim):
		self.sim = sim

	def start(self, vm):
		vm['status'] = 'running'
		vm['started'] = time.time()
		vm['pid'] = self.sim.next_pid()

	def stop(self, vm):
		vm['status'] = 'stopped'
		vm.pop('pid', None)
		vm['agent_up'] = False

	def shutdown(self, vm, timeout=None, force=False):
		self.stop(vm)

	def reboot(self, vm):
		pass

	def forget(self, vmid):
		pass

	def close(self, final=True):
		pass

	def console_tail(self, vmid, nbytes=8192):
		return ''

	def agent(self, vm, command, args):
		if not vm.get('agent_up'):
			raise ApiError(500, 'QEMU guest agent is not running\n')
		if command == 'ping':
			return {}
		if command == 'network-get-interfaces':
			return vm.get('agent_ifaces') or self.default_ifaces(vm)
		if command == 'get-osinfo':
			return {'id': 'debian', 'kernel-release': '6.1.0-sim', 'machine': 'x86_64',
				'name': 'Debian GNU/Linux', 'pretty-name': 'Debian GNU/Linux 12 (bookworm)',
				'version': '12 (bookworm)', 'version-id': '12'}
		if command == 'exec':
			pid = random.randint(1000, 30000)
			vm.setdefault('exec', {})[str(pid)] = {'exited': 1, 'exitcode': 0,
				'out-data': vm.get('exec_out', '')}
			return {'pid': pid}
		if command == 'exec-status':
			st = vm.get('exec', {}).get(str(args.get('pid')))
			if st is None:
				raise ApiError(500, "Agent error: Invalid parameter 'pid'\n")
			return st
		raise ApiError(501, "Method '%s' not implemented\n" % command)

	def default_ifaces(self, vm):
		res = [{'name': 'lo', 'hardware-address': '00:00:00:00:00:00', 'ip-addresses': [
			{'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', 'prefix': 8}]}]
		for i in range(32):
			net = vm['conf'].get('net%d' % i)
			if not net:
				continue
			m = re.search(r'=([0-9A-Fa-f:]{17})', net)
			res.append({'name': 'eth%d' % i, 'hardware-address': (m.group(1) if m else '').lower(),
				'ip-addresses': [{'ip-address': '10.0.%d.%d' % (i, vm['vmid'] % 250 + 2),
					'ip-address-type': 'ipv4', 'prefix': 24}]})
		return res


# ----------------------------------------------------------------------------------------------
class Sim:
	def __init__(self, opts):
		self.opts = opts
		self.state_dir = os.path.abspath(opts.state_dir)
		self.store = os.path.join(self.state_dir, 'storage', 'local')
		self.confdir = os.path.join(self.state_dir, 'qemu-server')
		self.tmpdir = os.path.join(self.state_dir, 'tmp')
		for d in (self.store, self.confdir, self.tmpdir):
			os.makedirs(d, exist_ok=True)
		for sub in ('import', 'iso', 'vztmpl', 'snippets', 'images'):
			os.makedirs(os.path.join(self.store, sub), exist_ok=True)
		self.nodes = opts.nodes.split(',')
		self.lock = threading.RLock()
		self.log_lock = threading.Lock()
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
		if getattr(opts, 'qemu', False):
			from qemu_hv import QemuHypervisor
			self.hv = QemuHypervisor(self, opts, ApiError, TaskFailed)
		else:
			self.hv = FakeHypervisor(self)
		self.validator = pve_schema.Validator(pve_schema.load_schema())
		self.routes = self.build_routes()
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
			keep = {k: v for k, v in vm.items() if k in ('vmid', 'node', 'conf', 'snapshots')}
			with open(tmp, 'w') as f:
				json.dump(keep, f, indent=1, sort_keys=True)
			os.replace(tmp, path)

	def drop_vm(self, vmid):
		self.hv.forget(vmid)
		with self.lock:
			self.vms.pop(vmid, None)
			try:
				os.unlink(os.path.join(self.confdir, '%d.json' % vmid))
			except FileNotFoundError:
				pass

	def reset(self):
		self.hv.close(final=False)
		with self.lock:
			for vmid in list(self.vms):
				self.drop_vm(vmid)
			self.tasks.clear()
			self.faults.clear()
			self.task_durations.clear()
			self.flocks.clear()
			for sub in ('import', 'iso', 'vztmpl', 'snippets', 'images'):
				shutil.rmtree(os.path.join(self.store, sub), ignore_errors=True)
				os.makedirs(os.path.join(self.store, sub))

	def dump_state(self):
		with self.lock:
			vms = {}
			for vmid, vm in sorted(self.vms.items()):
				vms[str(vmid)] = {'node': vm['node'], 'status': vm['status'],
					'conf': dict(vm['conf']), 'agent_up': bool(vm.get('agent_up')),
					'snapshots': sorted(vm.get('snapshots', {}))}
				if vm.get('pid'):
					vms[str(vmid)]['pid'] = vm['pid']
			tasks = [t.status_dict() for t in self.tasks.values()]
		vols = []
		for v in self.list_volumes():
			vols.append(v)
		return {'vms': vms, 'volumes': vols, 'tasks': tasks, 'faults': list(self.faults),
			'nodes': self.nodes}

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
				if ok:
					f['count'] = f.get('count', 1) - 1
					if f['count'] <= 0:
						self.faults.remove(f)
					return f
		return None

	def flock(self, vmid, shared=False, timeout=None):
		"""Takes the config file lock or raises the Perl timeout error."""
		msg = "can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout\n" % vmid
		if self.take_fault('lock-timeout', vmid=vmid):
			raise ApiError(500, msg)
		with self.lock:
			lk = self.flocks.setdefault(vmid, RWLock())
		if not lk.acquire(shared, self.lock_timeout if timeout is None else timeout):
			raise ApiError(500, msg)
		return lambda: lk.release(shared)

	# -- storage -----------------------------------------------------------------------------
	def vol_path(self, volid):
		sid, _, name = volid.partition(':')
		if sid != 'local':
			raise ApiError(500, "storage '%s' does not exist\n" % sid)
		m = re.match(r'^(import|iso|vztmpl|snippets)/([^/]+)$', name)
		if m:
			return os.path.join(self.store, m.group(1), m.group(2)), m.group(1), None
		m = re.match(r'^(?:\d+/[^/]+/)?(\d+)/((?:vm|base)-\d+-[^/]+)$', name)
		if m:
			return os.path.join(self.store, 'images', m.group(1), m.group(2)), 'images', \
				int(m.group(1))
		raise ApiError(500, "unable to parse directory volume name '%s'\n" % name)

	def image_volid(self, vmid, fname):
		path = os.path.join(self.store, 'images', str(vmid), fname)
		try:
			back = qemu_img_info(path).get('backing-filename')
		except TaskFailed:
			back = None
		if back:
			m = re.match(r'^\.\./(\d+)/(base-[^/]+)$', back)
			if m:
				return 'local:%s/%s/%d/%s' % (m.group(1), m.group(2), vmid, fname)
		return 'local:%d/%s' % (vmid, fname)

	def list_volumes(self, content=None, vmid=None):
		res = []
		for sub, ctype in (('import', 'import'), ('iso', 'iso'), ('vztmpl', 'vztmpl'),
				('snippets', 'snippets')):
			if content and content != ctype:
				continue
			d = os.path.join(self.store, sub)
			for fn in sorted(os.listdir(d)):
				p = os.path.join(d, fn)
				if not os.path.isfile(p) or fn.startswith('.'):
					continue
				ext = fn.rsplit('.', 1)[-1] if '.' in fn else 'raw'
				fmt = {'iso': 'iso', 'vztmpl': 'tzst' if ext == 'zst' else ext,
					'snippets': 'snippet'}.get(ctype, ext)
				res.append({'volid': 'local:%s/%s' % (sub, fn), 'content': ctype, 'format': fmt,
					'size': os.path.getsize(p), 'ctime': int(os.path.getmtime(p))})
		if content in (None, 'images'):
			idir = os.path.join(self.store, 'images')
			for vd in sorted(os.listdir(idir), key=lambda x: int(x) if x.isdigit() else 0):
				if not vd.isdigit() or (vmid is not None and int(vd) != int(vmid)):
					continue
				for fn in sorted(os.listdir(os.path.join(idir, vd))):
					p = os.path.join(idir, vd, fn)
					if fn.startswith('.') or fn.endswith('.tmp'):
						continue
					try:
						info = qemu_img_info(p)
					except TaskFailed:
						continue
					volid = self.image_volid(int(vd), fn)
					e = {'volid': volid, 'content': 'images', 'format': info.get('format'),
						'size': info['virtual-size'], 'used': info.get('actual-size', 0),
						'vmid': int(vd), 'ctime': int(os.path.getmtime(p))}
					if volid.count('/') > 1:
						e['parent'] = volid.split(':', 1)[1].split('/')[1]
					res.append(e)
		return res

	def storage_info(self):
		du = shutil.disk_usage(self.state_dir)
		return {'storage': 'local', 'type': 'dir', 'content': STORAGE_CONTENT, 'active': 1,
			'enabled': 1, 'shared': 0, 'total': du.total, 'used': du.used, 'avail': du.free,
			'used_fraction': du.used / du.total if du.total else 0}

	# -- VMs -----------------------------------------------------------------------------------
	def get_vm(self, vmid, node=None):
		vm = self.vms.get(int(vmid))
		if vm is None:
			# qs PVE/QemuConfig.pm load_config via PVE::Cluster
			raise ApiError(500, "Configuration file 'nodes/%s/qemu-server/%s.conf' does not "
				"exist\n" % (node or self.nodes[0], vmid))
		if node is not None and vm['node'] != node:
			raise ApiError(500, "Configuration file 'nodes/%s/qemu-server/%s.conf' does not "
				"exist\n" % (node, vmid))
		return vm

	def check_lock(self, vm):
		# pgc AbstractConfig.pm check_lock
		lk = vm['conf'].get('lock')
		if lk:
			raise ApiError(500, 'VM %d is locked (%s)\n' % (vm['vmid'], lk))

	def new_task(self, node, ttype, tid, authid, work, on_error=None, lock_release=None):
		t = Task(self, node, ttype, tid, authid)
		with self.lock:
			self.tasks[t.upid] = t

		def runner():
			err = None
			try:
				# an injected failure ends the task before its work, as the checks that
				# fail real tasks (checksum, storage, qemu-img) run before anything is
				# moved into place; work that fails midway cleans up in on_error
				f = self.take_fault('task', type=ttype, id=t.id)
				if f:
					raise TaskFailed(f.get('message', 'simulated task failure'))
				work(t)
				dur = self.task_durations.get(ttype, self.default_duration)
				end = time.monotonic() + dur
				while time.monotonic() < end and not t.stop_requested:
					time.sleep(min(0.05, max(0, end - time.monotonic())))
				if t.stop_requested:
					raise TaskFailed('received interrupt')
			except (TaskFailed, ApiError) as e:
				err = str(e.msg if isinstance(e, ApiError) else e).strip()
			except Exception as e:  # a simulator bug must still end the task
				err = 'internal simulator error: %r' % e
			if err is not None and on_error:
				try:
					on_error(t)
				except Exception as e:
					t.log('cleanup failed: %r' % e)
			if lock_release:
				lock_release()
			with self.lock:
				if err is not None:
					t.lines.append('TASK ERROR: ' + err)
					t.exitstatus = err.replace('\n', ' ')
				elif t.warnings:
					t.lines.append('TASK WARNINGS: %d' % t.warnings)
					t.exitstatus = 'WARNINGS: %d' % t.warnings
				else:
					t.lines.append('TASK OK')
					t.exitstatus = 'OK'
				t.status = 'stopped'
				t.endtime = int(time.time())
			t.done.set()

		threading.Thread(target=runner, daemon=True, name='task-' + ttype).start()
		return t.upid

	# -- routing -----------------------------------------------------------------------------
	def build_routes(self):
		table = []
		for key, ms in self.validator.schema.items():
			if key.startswith('$'):
				continue
			method, path = key.split(' ', 1)
			rx = '^' + re.sub(r'\\\{(\w+)\\\}', lambda m: '(?P<%s>%s)' % (m.group(1),
				'.+' if m.group(1) == 'volume' else '[^/]+'), re.escape(path)) + '$'
			handler = getattr(self, 'h_' + re.sub(r'[^a-z0-9]+', '_',
				(method + path).lower().replace('{', '').replace('}', '')).strip('_'), None)
			table.append((method, re.compile(rx), ms, handler, path))
		return table

	def route(self, method, rel):
		for m, rx, ms, handler, path in self.routes:
			mm = rx.match(rel)
			if mm and m == method:
				return ms, handler, mm.groupdict(), path
		return None, None, None, None


# ----------------------------------------------------------------------------------------------
# Endpoint handlers: method name = h_ + lower-case method and path template.
# Each gets (req) with req.params, req.authid, req.sim and returns the 'data' value.
class Handlers:
	# -- simple reads --------------------------------------------------------------------
	def h_get_version(self, r):
		v = self.opts.pve_version
		return {'version': v, 'release': '.'.join(v.split('.')[:2]),
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

	def vm_resource(self, vm, full=True):
		conf = vm['conf']
		d = {'vmid': vm['vmid'], 'name': conf.get('name', 'VM %d' % vm['vmid']),
			'status': vm['status'], 'maxmem': int(str(conf.get('memory', '512')).split(',')[0]
				.replace('current=', '')) * 1024 * 1024,
			'maxdisk': self.vm_maxdisk(vm), 'cpus': int(conf.get('cores', 1)) *
			int(conf.get('sockets', 1)), 'mem': 0, 'disk': 0, 'cpu': 0, 'uptime':
			int(time.time() - vm['started']) if vm['status'] == 'running' else 0,
			'netin': 0, 'netout': 0, 'diskread': 0, 'diskwrite': 0}
		if conf.get('template'):
			d['template'] = 1
		if conf.get('tags'):
			d['tags'] = conf['tags']
		if conf.get('lock'):
			d['lock'] = conf['lock']
		if vm['status'] == 'running':
			d['pid'] = vm.get('pid')
		return d

	def vm_maxdisk(self, vm):
		for k in ('scsi0', 'virtio0', 'sata0', 'ide0'):
			v = vm['conf'].get(k)
			if v and 'media=cdrom' not in v:
				m = re.search(r'size=(\d+(?:\.\d+)?[KMGT]?)', v)
				if m:
					return parse_size(m.group(1)) or 0
		return 0

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
					'template': 1 if vm['conf'].get('template') else 0, 'hastate': None})
				d.pop('hastate')
				d['maxcpu'] = d.pop('cpus')  # /cluster/resources names it maxcpu
				d.pop('pid', None)
				d.setdefault('tags', vm['conf'].get('tags', ''))
				if not d['tags']:
					d.pop('tags')
				res.append(d)
		if rtype in (None, 'node'):
			for n in self.nodes:
				res.append({'id': 'node/' + n, 'type': 'node', 'node': n, 'status': 'online',
					'cpu': 0.01, 'maxcpu': os.cpu_count(), 'mem': 1 << 30, 'maxmem': 8 << 30,
					'disk': 1 << 30, 'maxdisk': 100 << 30, 'uptime': 86400, 'level': '',
					'cgroup-mode': 2})
		if rtype in (None, 'storage'):
			si = self.storage_info()
			for n in self.nodes:
				if not (self.has(r.authid, '/storage/local', 'Datastore.Audit') or
						self.has(r.authid, '/storage/local', 'Datastore.AllocateSpace')):
					continue
				res.append({'id': 'storage/%s/local' % n, 'type': 'storage', 'node': n,
					'storage': 'local', 'status': 'available', 'plugintype': 'dir', 'shared': 0,
					'content': STORAGE_CONTENT, 'disk': si['used'], 'maxdisk': si['total']})
		return res

	def h_get_nodes(self, r):
		return [{'node': n, 'status': 'online', 'type': 'node', 'id': 'node/' + n, 'level': '',
			'cpu': 0.01, 'maxcpu': os.cpu_count(), 'mem': 1 << 30, 'maxmem': 8 << 30,
			'disk': 1 << 30, 'maxdisk': 100 << 30, 'uptime': 86400,
			'ssl_fingerprint': self.fingerprint} for n in self.nodes]

	def h_get_access_permissions(self, r):
		# pac API2/AccessControl.pm permissions
		authid = r.params.get('userid') or r.authid
		if authid != r.authid and not authid.startswith(r.authid.split('!')[0]):
			self.check(r.authid, '/access', ['Sys.Audit'])
		tok = self.tokens.get(authid)
		allp = ['VM.Allocate', 'VM.Audit', 'VM.Clone', 'VM.Config.CDROM', 'VM.Config.CPU',
			'VM.Config.Cloudinit', 'VM.Config.Disk', 'VM.Config.HWType', 'VM.Config.Memory',
			'VM.Config.Network', 'VM.Config.Options', 'VM.Console', 'VM.Migrate',
			'VM.PowerMgmt', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.GuestAgent.Audit',
			'VM.GuestAgent.Unrestricted', 'Datastore.Allocate', 'Datastore.AllocateSpace',
			'Datastore.AllocateTemplate', 'Datastore.Audit', 'Sys.Audit', 'Sys.Modify',
			'Sys.AccessNetwork', 'SDN.Use']
		paths = {}
		if tok is None or tok['privs'] is None:
			acl = {'/': set(allp)}
		else:
			acl = tok['privs']
		if r.params.get('path'):
			p = r.params['path']
			pv = self.privs_at(authid, p)
			paths[p] = {k: 1 for k in sorted(allp if pv is None else pv)}
		else:
			for p, pv in acl.items():
				paths[p] = {k: 1 for k in sorted(pv)}
		return paths

	# -- qemu list / create ----------------------------------------------------------------
	def h_get_nodes_node_qemu(self, r):
		with self.lock:
			vms = [vm for vm in self.vms.values() if vm['node'] == r.node]
		return [self.vm_resource(vm) for vm in sorted(vms, key=lambda v: v['vmid'])
			if self.has(r.authid, '/vms/%d' % vm['vmid'], 'VM.Audit')]

	def check_opts_perm(self, r, vmid, params, create):
		"""qs API2/Qemu.pm $check_vm_modify_config_perm and $check_storage_access."""
		path = '/vms/%d' % vmid
		for k in sorted(params):
			if k in NOT_CONFIG:
				continue
			b = opt_base(k)
			if k in ROOT_ONLY or b in ROOT_ONLY:
				raise ApiError(500, "only root can set '%s' config\n" % k)
			if DRIVE_RE.match(k):
				self.check(r.authid, path, ['VM.Config.Disk'])
				continue
			privs = OPT_PRIV.get(b) or OPT_PRIV.get(k)
			if privs:
				self.check(r.authid, path, list(privs), any_of=len(privs) > 1)

	def parse_drive(self, key, value):
		ms = self.validator.schema['POST /nodes/{node}/qemu']['parameters']['properties']
		fmt = self.validator.lookup_indexed(ms, key)['format']
		return self.validator.parse_property_string(fmt, value, key)

	def print_drive(self, d):
		# PVE::JSONSchema::print_property_string: default key first, the rest sorted
		parts = [d['file']] + ['%s=%s' % (k, d[k]) for k in sorted(d) if k != 'file']
		return ','.join(parts)

	def plan_drives(self, r, vm_id, params, default_storage, existing_conf):
		"""Checks the drive options before the fork; returns jobs to run in the task."""
		jobs = []
		ci_present = any('cloudinit' in str(v) for k, v in existing_conf.items()
			if DRIVE_RE.match(k))
		for k in sorted(params):
			if not DRIVE_RE.match(k):
				continue
			d = self.parse_drive(k, str(params[k]))
			f = d['file']
			imp = d.get('import-from')
			m = NEW_DISK_RE.match(f)
			if f.endswith(':cloudinit') or f == 'cloudinit':
				sid = f.split(':')[0] if ':' in f else default_storage
				if ci_present:
					# qs API2/Qemu.pm create_disks
					raise ApiError(500, "cloud-init drive is already attached at '%s'\n" % k)
				ci_present = True
				self.need_storage(r, sid)
				jobs.append(('cloudinit', k, d, sid))
			elif m:
				sid = m.group(2) or default_storage
				if not sid:
					raise param_exc({k: 'missing storage'})
				size = m.group(3)
				if imp is not None:
					if float(size) != 0:
						# qs API2/Qemu.pm $check_drive_param
						raise param_exc({k: "'import-from' requires special syntax - use "
							"<storage ID>:0,import-from=<source>"})
					self.check_import_source(r, imp)
				self.need_storage(r, sid)
				jobs.append(('import' if imp is not None else 'new', k, d, sid))
			else:
				if imp is not None:
					raise param_exc({k: "'import-from' requires special syntax - use "
						"<storage ID>:0,import-from=<source>"})
				if f not in ('none', 'cdrom') and not f.startswith('/'):
					path, ctype, owner = self.vol_path(f)
					if not os.path.exists(path):
						raise ApiError(500, "volume '%s' does not exist\n" % f)
					if ctype == 'iso' and d.get('media') != 'cdrom':
						raise param_exc({k: "explicit 'media=cdrom' is required for iso images"})
				elif f.startswith('/'):
					raise ApiError(500, 'Only root can pass arbitrary filesystem paths.' +
						PERL_AT % ('PVE/Storage.pm', 651))
				jobs.append(('keep', k, d, None))
		return jobs

	def need_storage(self, r, sid):
		if sid != 'local':
			raise ApiError(500, "storage '%s' does not exist\n" % sid)
		self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])

	def check_import_source(self, r, src):
		# qs $check_storage_access, ps Storage.pm check_volume_access
		if src.startswith('/'):
			raise ApiError(500, 'Only root can pass arbitrary filesystem paths.' +
				PERL_AT % ('PVE/Storage.pm', 651))
		path, ctype, owner = self.vol_path(src)
		if ctype == 'images':
			self.check(r.authid, '/vms/%d' % owner, ['VM.Clone'])
		elif ctype == 'import':
			self.check(r.authid, '/storage/local', ['Datastore.Allocate',
				'Datastore.AllocateSpace', 'Datastore.Audit'], any_of=True)
		else:
			raise ApiError(500, "volume '%s' has wrong type '%s' - needs to be 'images' or "
				"'import'\n" % (src, ctype))
		if not os.path.exists(path):
			raise ApiError(500, "volume '%s' does not exist\n" % src)

	def free_disk_name(self, vmid, suffix='disk'):
		d = os.path.join(self.store, 'images', str(vmid))
		os.makedirs(d, exist_ok=True)
		with self.lock:
			used = set(os.listdir(d))
			for vm in self.vms.values():
				for v in vm['conf'].values():
					used.update(re.findall(r'((?:vm|base)-\d+-disk-\d+)', str(v)))
			for n in range(1000):
				if not any(u.startswith('vm-%d-disk-%d' % (vmid, n)) or
						u.startswith('base-%d-disk-%d' % (vmid, n)) for u in used):
					name = 'vm-%d-disk-%d.qcow2' % (vmid, n)
					open(os.path.join(d, name + '.tmp'), 'w').close()  # reserve
					return name
		raise TaskFailed('unable to allocate an image name for VM %d' % vmid)

	def run_drive_jobs(self, t, vmid, jobs, created):
		"""Executes plan_drives jobs inside a task; returns {key: final drive string}."""
		out = {}
		for kind, k, d, sid in jobs:
			d = dict(d)
			if kind == 'keep':
				out[k] = self.print_drive(d)
				continue
			ddir = os.path.join(self.store, 'images', str(vmid))
			os.makedirs(ddir, exist_ok=True)
			if kind == 'cloudinit':
				name = 'vm-%d-cloudinit.qcow2' % vmid
				path = os.path.join(ddir, name)
				run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, '4M'])
				created.append(path)
				d['file'] = 'local:%d/%s' % (vmid, name)
				d['media'] = 'cdrom'
				out[k] = self.print_drive(d)
				t.log("%s: successfully created disk 'local:%d/%s,media=cdrom'" % (k, vmid, name))
				continue
			name = self.free_disk_name(vmid)
			path = os.path.join(ddir, name)
			created.append(path)
			created.append(path + '.tmp')
			if kind == 'new':
				size = parse_size(NEW_DISK_RE.match(d['file']).group(3) + 'G') if '.' not in \
					d['file'].split(':')[-1] else int(float(d['file'].split(':')[-1]) * (1 << 30))
				t.log("Formatting '%s', fmt=qcow2 cluster_size=65536 extended_l2=off "
					"preallocation=metadata compression_type=zlib size=%d lazy_refcounts=off "
					"refcount_bits=16" % (path, size))
				run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, str(size)])
			else:
				src = d.pop('import-from')
				spath, _, _ = self.vol_path(src)
				sfmt = qemu_img_info(spath).get('format')
				t.log('importing disk \'%s\' to VM %d ...' % (src, vmid))
				t.log("transferred 0.0 B of %s (0.00%%)" % format_size(
					qemu_img_info(spath)['virtual-size']))
				run(['qemu-img', 'convert', '-p', '-n' if False else '-q', '-f', sfmt, '-O',
					'qcow2', spath, path])
				t.log('transferred all data (100.00%)')
			os.unlink(path + '.tmp')
			size = qemu_img_info(path)['virtual-size']
			d['file'] = 'local:%d/%s' % (vmid, name)
			d['size'] = format_size(size)
			out[k] = self.print_drive(d)
			t.log("%s: successfully created disk '%s'" % (k, out[k]))
		return out

	def to_conf_value(self, k, v):
		ms = self.validator.schema['POST /nodes/{node}/qemu']['parameters']['properties']
		sch = self.validator.lookup_indexed(ms, k) or {}
		if sch.get('type') in ('integer', 'boolean'):
			if isinstance(v, bool):
				return 1 if v else 0
			return int(v)
		return v if isinstance(v, str) else json.dumps(v)

	def norm_tags(self, v):
		# pgc GuestHelpers.pm get_unique_tags: lower-case, unique, sorted
		return ';'.join(sorted(set(t.lower() for t in pve_schema.split_list(v))))

	def gen_mac(self):
		return 'BC:24:11:%02X:%02X:%02X' % (random.randint(0, 255), random.randint(0, 255),
			random.randint(0, 255))

	def norm_net(self, k, v):
		ms = self.validator.schema['POST /nodes/{node}/qemu']['parameters']['properties']
		d = self.validator.parse_property_string(ms['net[n]']['format'], v, k)
		mac = d.pop('macaddr', None) or self.gen_mac()
		model = d.pop('model')
		return ','.join(['%s=%s' % (model, mac)] + ['%s=%s' % (x, d[x]) for x in sorted(d)])

	def apply_simple_opts(self, conf, params):
		for k, v in params.items():
			if k in NOT_CONFIG or DRIVE_RE.match(k):
				continue
			if k == 'tags':
				v = self.norm_tags(v)
			elif re.match(r'^net\d+$', k):
				v = self.norm_net(k, v)
			conf[k] = self.to_conf_value(k, v)

	def h_post_nodes_node_qemu(self, r):
		p = r.params
		vmid = int(p['vmid'])
		if p.get('archive'):
			raise ApiError(501, 'restore is not supported by the simulator\n')
		# qs API2/Qemu.pm create_vm: permissions first, then the VMID check
		if p.get('pool'):
			self.check(r.authid, '/pool/' + p['pool'], ['VM.Allocate'])
		else:
			self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		self.check_opts_perm(r, vmid, p, True)
		if p.get('start'):
			self.check(r.authid, '/vms/%d' % vmid, ['VM.PowerMgmt'])
		if p.get('storage'):
			self.need_storage(r, p['storage'])
		with self.lock:
			if vmid in self.vms:
				# pve-cluster Cluster.pm check_vmid_unused
				raise ApiError(500, "VM %d already exists on node '%s'\n" % (vmid,
					self.vms[vmid]['node']))
			jobs = self.plan_drives(r, vmid, p, p.get('storage'), {})
			vm = {'vmid': vmid, 'node': r.node, 'status': 'stopped',
				'conf': {'lock': 'create'}, 'snapshots': {}}
			self.vms[vmid] = vm
			self.save_vm(vm)
		created = []

		def work(t):
			conf = {}
			drives = self.run_drive_jobs(t, vmid, jobs, created)
			self.apply_simple_opts(conf, p)
			conf.update(drives)
			for i in range(32):
				if ('net%d' % i) in conf:
					pass
			if 'smbios1' not in conf:
				conf['smbios1'] = 'uuid=%s' % uuid.uuid4()
			conf.setdefault('vmgenid', str(uuid.uuid4()))
			conf['meta'] = 'creation-qemu=9.2.0,ctime=%d' % int(time.time())
			if 'boot' not in conf:
				disks = [k for k in sorted(drives) if 'media=cdrom' not in drives[k]]
				cds = [k for k in sorted(drives) if 'media=cdrom' in drives[k]]
				nets = ['net0'] if 'net0' in conf else []
				conf['boot'] = 'order=' + ';'.join(disks[:1] + cds + nets) if \
					(disks or cds or nets) else ' '
				conf['boot'] = conf['boot'].strip() or 'order='
			with self.lock:
				vm['conf'] = conf
				self.save_vm(vm)
			if p.get('start'):
				t.log("trying to start VM %d" % vmid)
				if not conf.get('template'):
					self.hv.start(vm)

		def on_error(t):
			for path in created:
				try:
					os.unlink(path)
				except FileNotFoundError:
					pass
			self.drop_vm(vmid)
			t.log('unable to create VM %d - %s' % (vmid, 'removed'))

		return self.new_task(r.node, 'qmcreate', vmid, r.authid, work, on_error)

	# -- config -------------------------------------------------------------------------------
	def conf_digest(self, vm):
		return hashlib.sha1(json.dumps(vm['conf'], sort_keys=True).encode()).hexdigest()

	def h_get_nodes_node_qemu_vmid_config(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		conf = dict(vm['conf'])
		if 'cipassword' in conf:
			conf['cipassword'] = '**********'
		conf['digest'] = self.conf_digest(vm)
		return conf

	def h_get_nodes_node_qemu_vmid_pending(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		return [{'key': k, 'value': v} for k, v in sorted(vm['conf'].items())
			if k != 'cipassword']

	def update_config(self, r, sync):
		"""qs API2/Qemu.pm $update_vm_api."""
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		keys = [k for k in p if k not in NOT_CONFIG]
		dels = pve_schema.split_list(p.get('delete', '')) if p.get('delete') else []
		if not keys and not dels and not p.get('revert'):
			raise ApiError(400, 'no options specified\n')
		self.check(r.authid, '/vms/%d' % vmid, ALL_VM_CONFIG, any_of=True)
		self.check_opts_perm(r, vmid, {k: 1 for k in keys + dels}, False)
		for k in dels:
			if k in p:
				raise ApiError(400, "unable to delete '%s' - there are pending changes\n" % k)
		release = self.flock(vmid)
		try:
			if p.get('digest') and p['digest'] != self.conf_digest(vm):
				# pgc AbstractConfig.pm / pc Tools.pm assert_if_modified
				raise ApiError(500, 'detected modified configuration - file changed by other '
					'user? Try again.\n')
			self.check_lock(vm)
			if vm['conf'].get('template') and any(DRIVE_RE.match(k) for k in keys):
				pass
			jobs = self.plan_drives(r, vmid, {k: p[k] for k in keys if DRIVE_RE.match(k)},
				None, {k: v for k, v in vm['conf'].items() if k not in p})
		finally:
			release()
		simple = {k: p[k] for k in keys if not DRIVE_RE.match(k)}
		if 'cipassword' in simple and not re.match(r'^\$(1|5|6|2a|2y)\$', simple['cipassword']):
			simple['cipassword'] = self.crypt(simple['cipassword'])
		created = []

		def work(t):
			drives = self.run_drive_jobs(t, vmid, jobs, created) if jobs else {}
			with self.lock:
				conf = vm['conf']
				for k in dels:
					old = conf.pop(k, None)
					if old and DRIVE_RE.match(k) and 'cloudinit' not in old:
						n = 0
						while 'unused%d' % n in conf:
							n += 1
						conf['unused%d' % n] = old.split(',')[0]
				self.apply_simple_opts(conf, simple)
				conf.update(drives)
				self.save_vm(vm)
				t.log('update VM %d: %s' % (vmid, ' '.join('-%s %s' % (k, p[k]) for k in keys)))

		if sync:
			# PUT config runs in the API process; a failure is a plain 500
			t = Task(self, r.node, 'qmconfig', vmid, r.authid)
			try:
				work(t)
			except TaskFailed as e:
				raise ApiError(500, str(e) + '\n')
			return None
		return self.new_task(r.node, 'qmconfig', vmid, r.authid, work)

	def crypt(self, pw):
		try:
			import warnings
			with warnings.catch_warnings():
				warnings.simplefilter('ignore')
				import crypt
			return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA512))
		except ImportError:
			return '$5$sim$' + hashlib.sha256(pw.encode()).hexdigest()

	def h_post_nodes_node_qemu_vmid_config(self, r):
		return self.update_config(r, False)

	def h_put_nodes_node_qemu_vmid_config(self, r):
		return self.update_config(r, True)

	# -- status -------------------------------------------------------------------------------
	def h_get_nodes_node_qemu_vmid_status_current(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		d = self.vm_resource(vm)
		d['qmpstatus'] = vm['status']
		d['ha'] = {'managed': 0}
		d['vmid'] = vm['vmid']
		if re.match(r'^(enabled=)?(1|on|yes|true)', str(vm['conf'].get('agent', ''))):
			d['agent'] = 1
		if vm['status'] == 'running':
			d['running-qemu'] = '9.2.0'
			d['running-machine'] = 'pc-i440fx-9.2+pve0'
		return d

	def power(self, r, action):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.PowerMgmt'])
		if r.params.get('skiplock'):
			raise ApiError(500, 'Only root may use this option.\n')
		ttype = {'start': 'qmstart', 'stop': 'qmstop', 'shutdown': 'qmshutdown',
			'reboot': 'qmreboot'}[action]
		if action == 'start':
			if vm['conf'].get('template'):
				# qs API2/Qemu.pm vm_start -> QemuServer.pm vm_start: check_lock then template
				raise ApiError(500, "you can't start a vm if it's a template\n")
		self.check_lock(vm)

		def work(t):
			release = self.flock(vmid)
			try:
				if action == 'start':
					if vm['status'] == 'running':
						raise TaskFailed('VM %d already running' % vmid)
					self.hv.start(vm)
				elif action == 'reboot':
					if vm['status'] != 'running':
						raise TaskFailed('VM %d not running' % vmid)
					self.hv.reboot(vm)
				elif action == 'shutdown':
					if vm['status'] != 'running':
						raise TaskFailed('VM %d not running' % vmid)
					force = r.params.get('forceStop') in (1, '1', True, 'true')
					self.hv.shutdown(vm, r.params.get('timeout'), force)
				else:
					if vm['status'] != 'running' and action == 'shutdown':
						raise TaskFailed('VM %d not running' % vmid)
					self.hv.stop(vm)
			finally:
				release()

		return self.new_task(r.node, ttype, vmid, r.authid, work)

	def h_post_nodes_node_qemu_vmid_status_start(self, r):
		return self.power(r, 'start')

	def h_post_nodes_node_qemu_vmid_status_stop(self, r):
		return self.power(r, 'stop')

	def h_post_nodes_node_qemu_vmid_status_shutdown(self, r):
		return self.power(r, 'shutdown')

	def h_post_nodes_node_qemu_vmid_status_reboot(self, r):
		return self.power(r, 'reboot')

	# -- destroy --------------------------------------------------------------------------
	def linked_children(self, vmid):
		res = []
		with self.lock:
			for vm in self.vms.values():
				for k, v in vm['conf'].items():
					if re.match(r'^local:%d/base-' % vmid, str(v)) and vm['vmid'] != vmid:
						res.append(vm['vmid'])
		return res

	def h_delete_nodes_node_qemu_vmid(self, r):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		if r.params.get('skiplock'):
			raise ApiError(500, 'Only root may use this option.\n')
		# qs API2/Qemu.pm destroy_vm (checks before the fork)
		self.check_lock(vm)
		if vm['status'] == 'running':
			raise ApiError(500, 'VM %d is running - destroy failed\n' % vmid)
		if vm['conf'].get('protection'):
			raise ApiError(500, "can't remove VM %d - protection mode enabled\n" % vmid)

		def work(t):
			release = self.flock(vmid)
			try:
				children = self.linked_children(vmid)
				if children:
					base = [v for v in vm['conf'].values() if 'base-' in str(v)][0]
					# ps Storage.pm vdisk_free
					raise TaskFailed("base volume '%s' is still in use by linked cloned"
						% str(base).split(',')[0].split(':', 1)[1])
				ddir = os.path.join(self.store, 'images', str(vmid))
				for k, v in list(vm['conf'].items()):
					if DRIVE_RE.match(k) or re.match(r'^unused\d+$', k):
						f = str(v).split(',')[0]
						if f.startswith('local:'):
							path, ctype, owner = self.vol_path(f)
							if owner == vmid and os.path.exists(path):
								os.unlink(path)
								t.log("Removing image: 100% complete...done.")
				if r.params.get('destroy-unreferenced-disks', 1) not in (0, '0', False) and \
						os.path.isdir(ddir):
					for fn in os.listdir(ddir):
						if re.match(r'^(vm|base)-%d-' % vmid, fn):
							os.unlink(os.path.join(ddir, fn))
				if os.path.isdir(ddir) and not os.listdir(ddir):
					os.rmdir(ddir)
				self.drop_vm(vmid)
				if r.params.get('purge'):
					t.log('purging VM %d from related configurations..' % vmid)
			finally:
				release()

		return self.new_task(r.node, 'qmdestroy', vmid, r.authid, work)

	# -- template / clone / resize -----------------------------------------------------------
	def h_post_nodes_node_qemu_vmid_template(self, r):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		release = self.flock(vmid)
		try:
			self.check_lock(vm)
			# qs API2/Qemu.pm template
			if vm['conf'].get('template'):
				raise ApiError(500, 'you can\'t convert a template to a template\n')
			if vm['status'] == 'running':
				raise ApiError(500, "you can't convert a running VM to template\n")
			if vm.get('snapshots'):
				raise ApiError(500, "you can't convert a VM to template if VM has snapshots\n")
		finally:
			release()

		def work(t):
			release2 = self.flock(vmid)
			try:
				with self.lock:
					conf = vm['conf']
				for k, v in sorted(conf.items()):
					if not DRIVE_RE.match(k) or 'media=cdrom' in v:
						continue
					f = v.split(',')[0]
					m = re.match(r'^local:(?:\d+/[^/]+/)?(\d+)/vm-(\d+-disk-\d+\.qcow2)$', f)
					if not m:
						continue
					src = os.path.join(self.store, 'images', m.group(1), 'vm-' + m.group(2))
					dst = os.path.join(self.store, 'images', m.group(1), 'base-' + m.group(2))
					os.rename(src, dst)
					with self.lock:
						conf[k] = v.replace(f, 'local:%s/base-%s' % (m.group(1), m.group(2)))
					t.log("%s: converting to base volume 'local:%s/base-%s'" % (k, m.group(1),
						m.group(2)))
				with self.lock:
					conf['template'] = 1
					self.save_vm(vm)
			finally:
				release2()

		return self.new_task(r.node, 'qmtemplate', vmid, r.authid, work)

	def h_post_nodes_node_qemu_vmid_clone(self, r):
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		newid = int(p['newid'])
		target = p.get('target') or r.node
		is_tpl = bool(vm['conf'].get('template'))
		full = bool(int(p['full'])) if p.get('full') is not None else not is_tpl
		# qs API2/Qemu.pm clone_vm
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Clone'])
		if p.get('pool'):
			self.check(r.authid, '/pool/' + p['pool'], ['VM.Allocate'])
		else:
			self.check(r.authid, '/vms/%d' % newid, ['VM.Allocate'])
		if p.get('storage'):
			self.need_storage(r, p['storage'])
		else:
			self.check(r.authid, '/storage/local', ['Datastore.AllocateSpace'])
		if target not in self.nodes:
			raise param_exc({'target': "no such cluster node '%s'" % target})
		if (p.get('storage') or p.get('format')) and not full:
			raise param_exc({'storage': 'option is only allowed for full clones' if
				p.get('storage') else None, 'format': 'option is only allowed for full clones'
				if p.get('format') else None})
		if not full and not is_tpl:
			raise ApiError(500, 'parameter \'full\' must be set to 1 for VM that is not a '
				'template - linked clones only from templates\n')
		if target != r.node:
			raise ApiError(500, "Can't clone to other node '%s' - storage 'local' is not shared\n"
				% target)
		with self.lock:
			if newid in self.vms:
				raise ApiError(500, "unable to create VM %d: config file already exists\n"
					% newid)
			self.check_lock(vm)
			shared = vm['status'] != 'running'
			release_src = self.flock(vmid, shared=shared, timeout=1)
			newvm = {'vmid': newid, 'node': target, 'status': 'stopped',
				'conf': {'lock': 'clone'}, 'snapshots': {}}
			self.vms[newid] = newvm
			self.save_vm(newvm)
		created = []

		def work(t):
			src = dict(vm['conf'])
			conf = {}
			t.log('create %s clone of drive(s) from VM %d' % ('full' if full else 'linked', vmid))
			ddir = os.path.join(self.store, 'images', str(newid))
			os.makedirs(ddir, exist_ok=True)
			for k, v in sorted(src.items()):
				if k in ('template', 'lock', 'digest', 'meta') or re.match(r'^unused\d+$', k):
					continue
				if DRIVE_RE.match(k) and v.split(',')[0].startswith('local:'):
					f = v.split(',')[0]
					spath, ctype, owner = self.vol_path(f)
					if 'cloudinit' in f:
						name = 'vm-%d-cloudinit.qcow2' % newid
						dst = os.path.join(ddir, name)
						created.append(dst)
						shutil.copyfile(spath, dst)
						conf[k] = v.replace(f, 'local:%d/%s' % (newid, name))
						continue
					if ctype != 'images':
						conf[k] = v
						continue
					name = self.free_disk_name(newid)
					dst = os.path.join(ddir, name)
					created.extend([dst, dst + ".tmp"])
					if full:
						t.log("drive mirror / copy of '%s'" % f)
						run(['qemu-img', 'convert', '-q', '-O', 'qcow2', spath, dst])
						newf = 'local:%d/%s' % (newid, name)
					else:
						base = os.path.basename(spath)
						run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
							'../%d/%s' % (owner, base), dst])
						newf = 'local:%d/%s/%d/%s' % (owner, base, newid, name)
					os.unlink(dst + '.tmp')
					conf[k] = v.replace(f, newf)
					t.log("%s: clone of '%s' done" % (k, f))
				elif re.match(r'^net\d+$', k):
					conf[k] = re.sub(r'=([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}', '=' + self.gen_mac(),
						v, count=1)
				elif k == 'smbios1':
					conf[k] = re.sub(r'uuid=[0-9a-fA-F-]+', 'uuid=%s' % uuid.uuid4(), v)
				elif k == 'vmgenid':
					conf[k] = str(uuid.uuid4())
				else:
					conf[k] = v
			conf['name'] = p.get('name') or 'Copy-of-VM-%s' % src.get('name', vmid)
			if p.get('description') is not None:
				conf['description'] = p['description']
			conf['meta'] = 'creation-qemu=9.2.0,ctime=%d' % int(time.time())
			with self.lock:
				newvm['conf'] = conf
				self.save_vm(newvm)

		def on_error(t):
			for path in created:
				try:
					os.unlink(path)
				except FileNotFoundError:
					pass
			self.drop_vm(newid)

		return self.new_task(r.node, 'qmclone', vmid, r.authid, work, on_error, release_src)

	def h_put_nodes_node_qemu_vmid_resize(self, r):
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		disk = p['disk']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Config.Disk'])
		m = re.match(r'^(\+)?(\d+(\.\d+)?)([KMGT])?$', p['size'])
		if not m:
			raise param_exc({'size': "unable to parse size '%s'" % p['size']})
		release = self.flock(vmid)
		try:
			if p.get('digest') and p['digest'] != self.conf_digest(vm):
				raise ApiError(500, 'detected modified configuration - file changed by other '
					'user? Try again.\n')
			self.check_lock(vm)
			drive = vm['conf'].get(disk)
			if not drive:
				raise ApiError(500, "disk '%s' does not exist\n" % disk)
			# qs API2/Qemu.pm resize_vm
			if 'media=cdrom' in drive:
				raise ApiError(500, "you can't resize a cdrom\n")
			if vm['conf'].get('template'):
				raise ApiError(500, "you can't resize a template\n")
			f = drive.split(',')[0]
			self.check(r.authid, '/storage/' + f.split(':')[0], ['Datastore.AllocateSpace'])
			path, _, _ = self.vol_path(f)
			cur = qemu_img_info(path)['virtual-size']
			val = parse_size(m.group(2) + (m.group(4) or ''))
			new = cur + val if m.group(1) else val
			if new < cur:
				raise ApiError(500, "shrinking disks is not supported\n")
		finally:
			release()

		def work(t):
			release2 = self.flock(vmid)
			try:
				if new == cur:
					t.log('disk size unchanged')
				else:
					run(['qemu-img', 'resize', '-q', '-f', 'qcow2', path, str(new)])
				with self.lock:
					d = vm['conf'][disk]
					sz = format_size(new)
					if re.search(r'size=[^,]+', d):
						d = re.sub(r'size=[^,]+', 'size=' + sz, d)
					else:
						d += ',size=' + sz
					vm['conf'][disk] = d
					self.save_vm(vm)
				t.log("Image resized. (%s -> %s)" % (format_size(cur), format_size(new)))
			finally:
				release2()

		return self.new_task(r.node, 'resize', vmid, r.authid, work)

	# -- snapshots ------------------------------------------------------------------------------
	def h_get_nodes_node_qemu_vmid_snapshot(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		res = [dict(s, name=n) for n, s in sorted(vm.get('snapshots', {}).items())]
		res.append({'name': 'current', 'description': 'You are here!',
			'running': 1 if vm['status'] == 'running' else 0})
		return res

	def h_post_nodes_node_qemu_vmid_snapshot(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Snapshot'])
		name = r.params['snapname']
		self.check_lock(vm)
		if name in vm.get('snapshots', {}):
			raise ApiError(500, "snapshot name '%s' already used\n" % name)

		def work(t):
			with self.lock:
				vm.setdefault('snapshots', {})[name] = {'snaptime': int(time.time()),
					'description': r.params.get('description', ''), 'conf': dict(vm['conf'])}
				self.save_vm(vm)

		return self.new_task(r.node, 'qmsnapshot', vm['vmid'], r.authid, work)

	def h_delete_nodes_node_qemu_vmid_snapshot_snapname(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Snapshot'])
		name = r.snapname
		if name not in vm.get('snapshots', {}):
			raise ApiError(500, "snapshot '%s' does not exist\n" % name)

		def work(t):
			with self.lock:
				vm['snapshots'].pop(name, None)
				self.save_vm(vm)

		return self.new_task(r.node, 'qmdelsnapshot', vm['vmid'], r.authid, work)

	def h_post_nodes_node_qemu_vmid_snapshot_snapname_rollback(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Snapshot.Rollback', 'VM.Snapshot'],
			any_of=True)
		name = r.snapname
		if name not in vm.get('snapshots', {}):
			raise ApiError(500, "snapshot '%s' does not exist\n" % name)

		def work(t):
			with self.lock:
				vm['conf'] = dict(vm['snapshots'][name]['conf'])
				self.save_vm(vm)

		return self.new_task(r.node, 'qmrollback', vm['vmid'], r.authid, work)

	# -- cloud-init ---------------------------------------------------------------------------
	def ci_data(self, vm):
		# qs PVE/QemuServer/Cloudinit.pm cloudinit_userdata / nocloud_network / nocloud_gen_metadata
		conf = vm['conf']
		name = conf.get('name', 'VM%d' % vm['vmid'])
		host = name.split('.')[0]
		fqdn = name if '.' in name else (name + '.' + conf['searchdomain']
			if conf.get('searchdomain') else None)
		u = ['#cloud-config', 'hostname: ' + host, 'manage_etc_hosts: true']
		if fqdn:
			u.append('fqdn: ' + fqdn)
		if conf.get('ciuser'):
			u.append('user: ' + conf['ciuser'])
		if conf.get('cipassword'):
			u.append('password: ' + conf['cipassword'])
		if conf.get('sshkeys'):
			keys = [k for k in urllib.parse.unquote(conf['sshkeys']).split('\n') if k.strip()]
			u.append('ssh_authorized_keys:')
			u += ['  - ' + k for k in keys]
		u += ['chpasswd:', '  expire: False', 'users:', '  - default']
		if str(conf.get('ciupgrade', 1)) != '0':
			u.append('package_upgrade: true')
		user = '\n'.join(u) + '\n'
		n = ['version: 1', 'config:']
		for i in range(32):
			net = conf.get('net%d' % i)
			if not net:
				continue
			mac = re.search(r'=([0-9A-Fa-f:]{17})', net)
			n += ['    - type: physical', '      name: eth%d' % i,
				"      mac_address: '%s'" % (mac.group(1).lower() if mac else ''), '      subnets:']
			ipc = {}
			for part in str(conf.get('ipconfig%d' % i, '')).split(','):
				if '=' in part:
					a, b = part.split('=', 1)
					ipc[a] = b
			ip = ipc.get('ip', 'dhcp' if not ipc.get('ip6') else None)
			if ip == 'dhcp':
				n.append('      - type: dhcp4')
			elif ip:
				n += ['      - type: static', "        address: '%s'" % ip]
				if ipc.get('gw'):
					n.append("        gateway: '%s'" % ipc['gw'])
			if ipc.get('ip6') in ('dhcp', 'auto'):
				n.append('      - type: ' + ('dhcp6' if ipc['ip6'] == 'dhcp' else 'ipv6_slaac'))
			elif ipc.get('ip6'):
				n += ['      - type: static6', "        address: '%s'" % ipc['ip6']]
		if conf.get('nameserver') or conf.get('searchdomain'):
			n.append('    - type: nameserver')
			if conf.get('nameserver'):
				n.append('      address:')
				n += ["      - '%s'" % a for a in pve_schema.split_list(conf['nameserver'])]
			if conf.get('searchdomain'):
				n.append('      search:')
				n += ["      - '%s'" % a for a in pve_schema.split_list(conf['searchdomain'])]
		network = '\n'.join(n) + '\n'
		meta = 'instance-id: %s\n' % hashlib.sha1((user + network).encode()).hexdigest()
		return {'user': user, 'network': network, 'meta': meta}

	def h_get_nodes_node_qemu_vmid_cloudinit_dump(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		return self.ci_data(vm)[r.params['type']]

	def h_get_nodes_node_qemu_vmid_cloudinit(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		res = []
		for k, v in sorted(vm['conf'].items()):
			if re.match(r'^(ci\w+|sshkeys|ipconfig\d+|nameserver|searchdomain)$', k):
				res.append({'key': k, 'value': '**********' if k == 'cipassword' else v})
		return res

	def h_put_nodes_node_qemu_vmid_cloudinit(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Config.Cloudinit'])
		return None

	# -- agent --------------------------------------------------------------------------------
	def agent_call(self, r, command, privs):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, privs, any_of=True)
		# qs PVE/QemuServer/Agent.pm assert_agent_available
		if not re.match(r'^(enabled=)?(1|on|yes|true)(,|$)', str(vm['conf'].get('agent', ''))):
			raise ApiError(500, 'No QEMU guest agent configured\n')
		if vm['status'] != 'running':
			raise ApiError(500, 'VM %d is not running\n' % vmid)
		return {'result': self.hv.agent(vm, command, r.params)}

	def h_post_nodes_node_qemu_vmid_agent_ping(self, r):
		return self.agent_call(r, 'ping', ['VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted'])

	def h_get_nodes_node_qemu_vmid_agent_network_get_interfaces(self, r):
		return self.agent_call(r, 'network-get-interfaces', ['VM.GuestAgent.Audit',
			'VM.GuestAgent.Unrestricted'])

	def h_get_nodes_node_qemu_vmid_agent_get_osinfo(self, r):
		return self.agent_call(r, 'get-osinfo', ['VM.GuestAgent.Audit',
			'VM.GuestAgent.Unrestricted'])

	def h_post_nodes_node_qemu_vmid_agent_exec(self, r):
		res = self.agent_call(r, 'exec', ['VM.GuestAgent.Unrestricted'])
		return res['result']

	def h_get_nodes_node_qemu_vmid_agent_exec_status(self, r):
		return self.agent_call(r, 'exec-status', ['VM.GuestAgent.Unrestricted'])['result']

	# -- tasks --------------------------------------------------------------------------------
	def get_task(self, r):
		t = self.tasks.get(r.upid)
		if t is None or t.node != r.node:
			# pm API2/Tasks.pm: the task log is local to its node
			raise param_exc({'upid': 'no such task'}) if t is None or True else None
		# pm API2/Tasks.pm $check_task_user: a token sees its own tasks
		if t.user != r.authid and not self.has(r.authid, '/nodes/' + r.node, 'Sys.Audit'):
			raise perm_exc('/nodes/%s, Sys.Audit' % r.node)
		return t

	def h_get_nodes_node_tasks_upid_status(self, r):
		t = self.get_task(r)
		with self.lock:
			return t.status_dict()

	def h_get_nodes_node_tasks_upid_log(self, r):
		t = self.get_task(r)
		start = int(r.params.get('start', 0))
		limit = int(r.params.get('limit', 50))
		with self.lock:
			lines = list(t.lines) or ['no content']
		sel = lines[start:] if limit == 0 else lines[start:start + limit]
		r.extra['total'] = len(lines)
		return [{'n': start + i + 1, 't': s} for i, s in enumerate(sel)]

	def h_delete_nodes_node_tasks_upid(self, r):
		t = self.get_task(r)
		t.stop_requested = True
		return None

	def h_get_nodes_node_tasks(self, r):
		res = []
		with self.lock:
			tasks = sorted(self.tasks.values(), key=lambda x: -x.starttime)
		for t in tasks:
			if t.node != r.node:
				continue
			if r.params.get('vmid') is not None and t.id != str(r.params['vmid']):
				continue
			d = t.status_dict()
			if t.status == 'stopped':
				d['status'] = t.exitstatus
				d['endtime'] = t.endtime
			else:
				d.pop('status')
			if r.params.get('errors') and d.get('status') in (None, 'OK'):
				continue
			res.append(d)
		start = int(r.params.get('start', 0))
		limit = int(r.params.get('limit', 50))
		r.extra['total'] = len(res)
		return res[start:start + limit]

	# -- storage --------------------------------------------------------------------------------
	def h_get_nodes_node_storage(self, r):
		if not (self.has(r.authid, '/storage/local', 'Datastore.Audit') or
				self.has(r.authid, '/storage/local', 'Datastore.AllocateSpace')):
			return []
		si = self.storage_info()
		if r.params.get('content') and r.params['content'] not in STORAGE_CONTENT.split(','):
			return []
		if r.params.get('storage') and r.params['storage'] != 'local':
			return []
		return [si]

	def h_get_storage(self, r):
		return [{'storage': 'local', 'type': 'dir', 'path': os.path.join(self.store),
			'content': STORAGE_CONTENT, 'digest': hashlib.sha1(b'storage').hexdigest()}]

	def h_get_storage_storage(self, r):
		if r.storage != 'local':
			raise ApiError(500, "storage '%s' does not exist\n" % r.storage)
		return self.h_get_storage(r)[0]

	def storage_check(self, r):
		if r.storage != 'local':
			raise ApiError(500, "storage '%s' does not exist\n" % r.storage)

	def h_get_nodes_node_storage_storage_content(self, r):
		self.storage_check(r)
		self.check(r.authid, '/storage/local', ['Datastore.Audit', 'Datastore.AllocateSpace'],
			any_of=True)
		return self.list_volumes(r.params.get('content'), r.params.get('vmid'))

	def h_get_nodes_node_storage_storage_content_volume(self, r):
		self.storage_check(r)
		self.check(r.authid, '/storage/local', ['Datastore.Audit', 'Datastore.AllocateSpace'],
			any_of=True)
		volid = r.volume if ':' in r.volume else 'local:' + r.volume
		path, ctype, owner = self.vol_path(volid)
		if not os.path.exists(path):
			raise ApiError(500, "volume '%s' does not exist\n" % volid)
		info = qemu_img_info(path) if ctype == 'images' or ctype == 'import' else {}
		return {'path': path, 'size': info.get('virtual-size', os.path.getsize(path)),
			'used': info.get('actual-size', os.path.getsize(path)),
			'format': info.get('format', 'iso' if ctype == 'iso' else 'raw')}

	def h_delete_nodes_node_storage_storage_content_volume(self, r):
		self.storage_check(r)
		volid = r.volume if ':' in r.volume else 'local:' + r.volume
		path, ctype, owner = self.vol_path(volid)
		# ps API2/Storage/Content.pm delete
		self.check(r.authid, '/storage/local', ['Datastore.Allocate'])
		if not os.path.exists(path):
			raise ApiError(500, "volume '%s' does not exist\n" % volid)

		def work(t):
			if ctype == 'images' and os.path.basename(path).startswith('base-'):
				if self.linked_children(owner):
					raise TaskFailed("base volume '%s' is still in use by linked cloned" %
						volid.split(':', 1)[1])
			os.unlink(path)
			t.log("Removed volume '%s'" % volid)

		upid = self.new_task(r.node, 'imgdel', volid.split(':', 1)[1].replace('/', '_'),
			r.authid, work)
		if r.params.get('delay'):
			t = self.tasks[upid]
			if t.done.wait(int(r.params['delay'])) and t.exitstatus == 'OK':
				return None
		return upid

	def import_ext_ok(self, content, fn):
		# ps PVE/API2/Storage/Status.pm upload, regexes in ps Storage.pm
		if content == 'iso':
			return re.search(r'\.(iso|img)$', fn, re.I)
		if content == 'vztmpl':
			return re.search(r'\.tar(\.(gz|xz|zst|bz2))?$', fn)
		if content == 'import':
			return re.match(r'^[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$', fn)
		return False

	def normalize_filename(self, fn):
		# ps Storage.pm normalize_content_filename
		fn = fn.rsplit('/', 1)[-1].rsplit('\\', 1)[-1]
		return re.sub(r'[^a-zA-Z0-9_.\-]', '_', fn)

	def h_post_nodes_node_storage_storage_upload(self, r):
		p = r.params
		self.storage_check(r)
		if p.get('tmpfilename') and not r.upload:
			raise ApiError(500, "Please use the 'tmpfilename' parameter only internally\n")
		if not r.upload:
			raise ApiError(501, 'upload without content length header not supported')
		content = p['content']
		fn = self.normalize_filename(p['filename'])
		if content not in ('iso', 'vztmpl', 'import'):
			raise param_exc({'content': "upload content type '%s' not allowed" % content})
		if not self.import_ext_ok(content, fn):
			raise param_exc({'filename': 'wrong file extension'})
		if bool(p.get('checksum')) != bool(p.get('checksum-algorithm')):
			raise param_exc({'checksum-algorithm' if p.get('checksum') else 'checksum':
				"'checksum' and 'checksum-algorithm' must be given together"})
		tmp, start, end = r.upload
		dest = os.path.join(self.store, content, fn)

		def work(t):
			try:
				t.log("starting file import from: %s" % tmp)
				h = hashlib.new(p['checksum-algorithm']) if p.get('checksum') else None
				partial = dest + '.part'
				with open(tmp, 'rb') as src, open(partial, 'wb') as out:
					src.seek(start)
					left = end - start
					while left > 0:
						buf = src.read(min(left, 1 << 20))
						if not buf:
							break
						left -= len(buf)
						out.write(buf)
						if h:
							h.update(buf)
				if h:
					got = h.hexdigest()
					if got.lower() != p['checksum'].lower():
						os.unlink(partial)
						raise TaskFailed("checksum mismatch: got '%s' != expect '%s'"
							% (got, p['checksum']))
					t.log("calculating checksum...OK, checksum verified")
				if content == 'import' and fn.endswith(('.qcow2', '.raw', '.vmdk')):
					fmt = fn.rsplit('.', 1)[1]
					try:
						info = json.loads(run(['qemu-img', 'info', '--output=json', '-f', fmt,
							partial]))
					except TaskFailed as e:
						os.unlink(partial)
						raise TaskFailed('could not parse qemu-img info command output for '
							"'%s' - %s" % (partial, e))
					# ps Plugin.pm file_size_info (untrusted)
					if info.get('backing-filename'):
						os.unlink(partial)
						raise TaskFailed("image '%s' has a backing file - refusing" % fn)
				os.replace(partial, dest)
				t.log("target node: %s" % r.node)
				t.log("target file: %s" % dest)
				t.log("file size is: %d" % os.path.getsize(dest))
				t.log("command: cp -- %s %s" % (tmp, dest))
				t.log("finished file import successfully")
			finally:
				try:
					os.unlink(tmp)
				except FileNotFoundError:
					pass

		return self.new_task(r.node, 'imgcopy', '', r.authid, work)

	def h_post_nodes_node_storage_storage_download_url(self, r):
		p = r.params
		self.storage_check(r)
		self.check(r.authid, '/storage/local', ['Datastore.AllocateTemplate'])
		if not (self.has(r.authid, '/', 'Sys.Audit') and self.has(r.authid, '/', 'Sys.Modify')):
			self.check(r.authid, '/nodes/' + r.node, ['Sys.AccessNetwork'])
		content = p['content']
		fn = self.normalize_filename(p['filename'])
		if content not in ('iso', 'vztmpl', 'import'):
			raise param_exc({'content': "upload content-type '%s' is not allowed" % content})
		if not self.import_ext_ok(content, fn):
			raise param_exc({'filename': 'wrong file extension'})
		dest = os.path.join(self.store, content, fn)
		verify = str(p.get('verify-certificates', 1)) != '0'

		def work(t):
			algo = p.get('checksum-algorithm')
			if os.path.exists(dest):
				if p.get('checksum'):
					h = hashlib.new(algo)
					with open(dest, 'rb') as f:
						for buf in iter(lambda: f.read(1 << 20), b''):
							h.update(buf)
					if h.hexdigest().lower() == p['checksum'].lower():
						t.log('file already exists %s, checksum matches - skipping' % dest)
						return
					raise TaskFailed("checksum mismatch: got '%s' != expect '%s'"
						% (h.hexdigest(), p['checksum']))
				raise TaskFailed("refusing to override existing file '%s'" % dest)
			tmp = os.path.join(os.path.dirname(dest), '.tmp_dwnl.%d' % t.pid)
			ctx = ssl.create_default_context()
			if not verify:
				ctx.check_hostname = False
				ctx.verify_mode = ssl.CERT_NONE
			t.log('downloading %s to %s' % (p['url'], dest))
			h = hashlib.new(algo) if algo else None
			try:
				with urllib.request.urlopen(p['url'], context=ctx, timeout=30) as resp, \
						open(tmp, 'wb') as out:
					for buf in iter(lambda: resp.read(1 << 20), b''):
						out.write(buf)
						if h:
							h.update(buf)
			except Exception as e:
				if os.path.exists(tmp):
					os.unlink(tmp)
				raise TaskFailed('download failed: %s' % e)
			if h and h.hexdigest().lower() != p['checksum'].lower():
				os.unlink(tmp)
				raise TaskFailed("checksum mismatch: got '%s' != expect '%s'"
					% (h.hexdigest(), p['checksum']))
			os.replace(tmp, dest)
			t.log('download of \'%s\' to \'%s\' finished' % (p['url'], dest))

		tid = urllib.parse.quote(fn, safe='')
		return self.new_task(r.node, 'download', tid, r.authid, work)

	def h_get_nodes_node_storage_storage_import_metadata(self, r):
		self.storage_check(r)
		path, ctype, _ = self.vol_path(r.params['volume'])
		if not os.path.exists(path):
			raise ApiError(500, "volume '%s' does not exist\n" % r.params['volume'])
		info = qemu_img_info(path)
		return {'type': 'vm', 'source': r.params['volume'], 'create-args': {},
			'disks': {'scsi0': r.params['volume']}, 'net': {}, 'warnings': [],
			'size': info['virtual-size']}

	def h_post_access_ticket(self, r):
		raise ApiError(401, 'authentication failure\n')


class SimServer(Handlers, Sim):
	fingerprint = ''


# ----------------------------------------------------------------------------------------------
class Req:
	pass


def write_log(sim, rec):
	if not sim.opts.log:
		return
	line = json.dumps(rec, sort_keys=True)
	with sim.log_lock:
		with open(sim.opts.log, 'a') as f:
			f.write(line + '\n')


def decode_form(text):
	# phs decode_urlencoded: repeated keys are joined with \0
	res = {}
	for part in text.split('&'):
		if not part:
			continue
		k, _, v = part.partition('=')
		k = urllib.parse.unquote_plus(k)
		v = urllib.parse.unquote_plus(v)
		res[k] = res[k] + '\0' + v if k in res else v
	return res


class Handler(http.server.BaseHTTPRequestHandler):
	protocol_version = 'HTTP/1.1'
	server_version = 'pve-api-daemon/3.0'
	sys_version = ''

	def log_message(self, fmt, *args):
		pass

	def do_GET(self):
		self.handle_any()

	do_POST = do_PUT = do_DELETE = do_GET

	def send(self, code, reason, body=None, close=False, extra_headers=None):
		reason = reason.split('\n')[0]
		if '\r' in reason:
			code, reason, body = 400, 'Bad Request', None
		data = b''
		if body is not None:
			data = json.dumps(body).encode()
		self.send_response(code, reason)
		if data:
			self.send_header('Content-Type', 'application/json;charset=UTF-8')
		self.send_header('Content-Length', str(len(data)))
		self.send_header('Cache-Control', 'max-age=0')
		self.send_header('Pragma', 'no-cache')
		for k, v in (extra_headers or {}).items():
			self.send_header(k, v)
		if code >= 400 or close:
			self.send_header('Connection', 'close')
			self.close_connection = True
		self.status = code
		# log before the answer leaves, so a client that reads the log right after its
		# request sees it (the log is how tests count requests)
		self.log_now()
		self.end_headers()
		self.wfile.write(data)

	def log_now(self):
		rec = getattr(self, 'logrec', None)
		if rec is None or rec.get('_logged'):
			return
		rec['_logged'] = True
		rec['status'] = self.status
		rec['duration_ms'] = round((time.monotonic() - self.t0) * 1000, 3)
		rec['time'] = time.strftime('%Y-%m-%dT%H:%M:%S')
		write_log(self.server.sim, {k: v for k, v in rec.items() if k != '_logged'})

	def handle_any(self):
		self.t0 = time.monotonic()
		self.status = None
		rec = {'method': self.command, 'path': self.path.split('?', 1)[0], 'params': {}}
		self.logrec = rec
		try:
			if self.path.startswith('/_sim/'):
				rec['control'] = True
				self.control()
				return
			self.api(rec)
		except ApiError as e:
			body = None
			if e.body:
				body = {'data': None, 'message': e.msg}
				if e.errors is not None:
					body['errors'] = e.errors
			rec['error'] = e.msg
			try:
				self.send(e.code, e.msg, body)
			except OSError:
				pass
		except (ConnectionError, BrokenPipeError):
			self.close_connection = True
		finally:
			self.log_now()

	def drain(self):
		# Take what the client already sent so closing does not reset the connection before
		# it reads our error answer (Proxmox itself does not read it; clients then see RST).
		try:
			self.connection.settimeout(0.2)
			while self.connection.recv(1 << 16):
				pass
		except (OSError, ssl.SSLError):
			pass
		finally:
			self.connection.settimeout(None)

	def read_body(self, n):
		chunks = []
		while n > 0:
			c = self.rfile.read(min(n, 1 << 20))
			if not c:
				break
			chunks.append(c)
			n -= len(c)
		return b''.join(chunks)

	def api(self, rec):
		sim = self.server.sim
		raw_path, _, query = self.path.partition('?')
		path = urllib.parse.unquote(raw_path)
		te = self.headers.get('Transfer-Encoding')
		if te:
			# phs AnyEvent.pm process_header
			msg = 'chunked transfer encoding not supported' if te.lower() == 'chunked' else \
				"Unknown transfer encoding '%s'" % te
			self.drain()
			raise ApiError(501, msg, body=False)
		if not path.startswith(BASE + '/') and path != BASE:
			raise ApiError(501, "no such file '%s'" % path, body=False)
		rel = path[len(BASE):] or '/'
		# -- auth (phs authenticate_and_handle_request, pac AccessControl.pm verify_token)
		auth = self.headers.get('Authorization') or ''
		m = re.search(r'PVEAPIToken[= ]([^;]*)', auth)
		authid = None
		if m:
			val = urllib.parse.unquote(m.group(1).strip())
			tid, _, secret = val.rpartition('=')
			tok = sim.tokens.get(tid)
			if tok and tok['secret'] == secret and re.match(
					r'^[^\s:/!@]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$', tid):
				authid = tid
		if authid is None:
			length = int(self.headers.get('Content-Length') or 0)
			if length and length <= MAX_POST:
				self.read_body(length)
			if sim.opts.auth_delay:
				time.sleep(sim.opts.auth_delay)
			raise ApiError(401, 'Authentication failed!', body=False)
		rec['authid'] = authid
		method = self.command
		ms, handler, uparams, tpl = sim.route(method, rel)
		length_hdr = self.headers.get('Content-Length')
		length = int(length_hdr or 0)
		is_upload = tpl == '/nodes/{node}/storage/{storage}/upload'
		if length and method not in ('POST', 'PUT'):
			raise ApiError(501, "Unexpected content for method '%s'" % method, body=False)
		# -- fault injection happens after auth, before the body is looked at
		f = sim.take_fault('http', method=method, path=path)
		if f:
			rec['fault'] = f.get('action', 'error')
			self.apply_fault(f, length)
			return
		params = decode_form(query)
		upload = None
		if is_upload and length:
			# pm HTTPServer.pm auth_handler checks the upload privilege before the body is read
			if uparams:
				sim.check(authid, '/storage/' + uparams['storage'], ['Datastore.AllocateTemplate'])
			ctype = self.headers.get('Content-Type') or ''
			mb = re.search(r'boundary\s*=\s*"?([^";,\s]+)"?', ctype)
			if not (ctype.split(';')[0].strip() == 'multipart/form-data' and mb):
				self.read_body(length)
				raise ApiError(501, "upload 'Content-Type '%s' not implemented" % ctype,
					body=False)
			upload = self.receive_multipart(sim, mb.group(1), length, params)
		elif length:
			if length > MAX_POST:
				raise ApiError(501, 'for data too large', body=False)
			body = self.read_body(length)
			ctype = (self.headers.get('Content-Type') or '').split(';')[0].strip()
			if ctype == 'application/json':
				try:
					bparams = json.loads(body.decode() or '{}')
				except ValueError as e:
					raise ApiError(400, 'JSON decode error: %s\n' % e)
				if not isinstance(bparams, dict):
					raise ApiError(400, 'JSON body must be an object\n')
			elif ctype in ('', 'application/x-www-form-urlencoded'):
				bparams = decode_form(body.decode('utf-8', 'replace'))
			else:
				raise ApiError(506, "upload 'Content-Type '%s' not implemented" % ctype,
					body=False)
			bparams.update(params)  # query parameters win (phs extract_params)
			params = bparams
		if ms is None:
			# pm HTTPServer.pm rest_handler
			raise ApiError(501, "Method '%s %s' not implemented\n" % (method, rel))
		if not ms.get('allowtoken', 1):
			raise ApiError(403, "URI '%s' not available with API token, need proper ticket.\n"
				% rel)
		for k, v in uparams.items():
			if k in params and str(params[k]) != v:
				raise param_exc({k: 'duplicate parameter (URI and body)'})
			params[k] = v
		rec['params'] = {k: v for k, v in params.items() if k != 'password'}
		errors = sim.validator.validate_params(ms, params)
		if errors:
			rec['violations'] = [{'param': k, 'message': v} for k, v in sorted(errors.items())]
			if upload:
				os.unlink(upload[0])
			raise param_exc(errors)
		if handler is None:
			raise ApiError(501, "Method '%s %s' not implemented in the simulator\n" % (method, rel))
		req = Req()
		req.params = params
		req.authid = authid
		req.upload = upload
		req.extra = {}
		for k, v in uparams.items():
			setattr(req, k, v)
		if 'node' in uparams and uparams['node'] not in sim.nodes:
			raise ApiError(595, "no such cluster node '%s'" % uparams['node'], body=False) \
				if False else ApiError(500, "hostname lookup '%s' failed - failed to get address "
					"info for: %s: Name or service not known\n" % (uparams['node'],
					uparams['node']))
		try:
			data = handler(req)
		except ApiError:
			if upload and os.path.exists(upload[0]):
				os.unlink(upload[0])
			raise
		body = {'data': data}
		body.update(req.extra)
		self.send(200, 'OK', body)

	def receive_multipart(self, sim, boundary, length, params):
		"""Streams the body to a temp file, then parses it like phs file_upload_multipart."""
		tmp = os.path.join(sim.tmpdir, 'pveupload-' + uuid.uuid4().hex)
		with open(tmp, 'wb') as out:
			left = length
			while left > 0:
				c = self.rfile.read(min(left, 1 << 20))
				if not c:
					break
				out.write(c)
				left -= len(c)
		try:
			if left > 0:
				raise ApiError(501, 'upload failed', body=False)
			with open(tmp, 'rb') as f:
				head = f.read(64 * 1024)
			nl = rb'\r?\n'
			b = re.escape(boundary.encode())
			delim = b'--' + b + nl
			m = re.search(b'^.*?(' + delim + b')', head, re.S)
			if not m:
				raise ApiError(501, 'upload failed', body=False)
			pos = m.start(1)
			buf = head[pos:]
			consumed = pos

			def take(name, buf):
				mm = re.match(b'^' + delim + b'.*?Content-Disposition: (.*?); name="' +
					re.escape(name.encode()) + b'"(.*?' + delim + b')', buf, re.S)
				if mm:
					if mm.group(1) != b'form-data':
						raise ApiError(501, "wrong Content-Disposition '%s' in multipart, "
							"expected 'form-data'" % mm.group(1).decode('utf-8', 'replace'),
							body=False)
					rest = buf[mm.start(2):]
					rest = re.sub(b'^.*?(' + nl + b'){2}', b'', rest, count=1, flags=re.S)
					mv = re.match(b'^(.*?)(' + delim + b')', rest, re.S)
					params[name] = mv.group(1).decode('utf-8', 'replace').strip()
					return rest[mv.start(2):]
				return buf

			before = len(buf)
			for name in ('content', 'checksum-algorithm', 'checksum'):
				buf = take(name, buf)
			mm = re.match(b'^' + delim + b'Content-Disposition: (.*?); name="(.*?)"; filename="'
				b'([^"]+)"' + nl, buf, re.S)
			if not mm:
				raise ApiError(501, 'upload failed', body=False)
			if mm.group(1) != b'form-data':
				raise ApiError(501, "wrong Content-Disposition '%s' in multipart, expected "
					"'form-data'" % mm.group(1).decode('utf-8', 'replace'), body=False)
			if mm.group(2) != b'filename':
				raise ApiError(501, "wrong field name '%s' for file upload, expected 'filename'"
					% mm.group(2).decode() + PERL_AT.rstrip('\n') % ('PVE/APIServer/AnyEvent.pm',
					1187), body=False)
			params['filename'] = mm.group(3).decode('utf-8', 'replace').strip()
			buf = buf[mm.end():]
			hdr_end = re.match(b'^.*?(' + nl + b'){2}', buf, re.S)
			buf_off = hdr_end.end() if hdr_end else 0
			data_start = consumed + (before - len(buf)) + buf_off
			close = b'--' + boundary.encode() + b'--'
			with open(tmp, 'rb') as f:
				mmp = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
				try:
					idx = mmp.find(close, data_start)
					if idx < 0:
						raise ApiError(501, 'upload failed', body=False)
					end = idx
					if end - 1 >= data_start and mmp[end - 1:end] == b'\n':
						end -= 1
						if end - 1 >= data_start and mmp[end - 1:end] == b'\r':
							end -= 1
				finally:
					mmp.close()
			return (tmp, data_start, end)
		except BaseException:
			os.unlink(tmp)
			raise

	def apply_fault(self, f, length):
		if length:
			self.read_body(length)
		action = f.get('action', 'error')
		if action == 'drop':
			# answer 200 with a Content-Length, then cut the body halfway
			body = json.dumps({'data': 'x' * 64}).encode()
			self.send_response(200, 'OK')
			self.send_header('Content-Type', 'application/json;charset=UTF-8')
			self.send_header('Content-Length', str(len(body)))
			self.end_headers()
			self.wfile.write(body[:len(body) // 2])
			self.wfile.flush()
			self.status = 200
			self.close_connection = True
			try:
				self.connection.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass
			return
		if action == 'close':
			self.status = 0
			self.close_connection = True
			try:
				self.connection.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass
			return
		if f.get('delay'):
			time.sleep(float(f['delay']))
		code = int(f.get('status', 500))
		msg = f.get('message') or {500: 'Internal Server Error', 503: 'Service Unavailable'}.get(
			code, 'simulated failure')
		raise ApiError(code, msg + ('' if msg.endswith('\n') else '\n'),
			body=f.get('body', True))

	# -- control API ----------------------------------------------------------------------------
	def control(self):
		sim = self.server.sim
		raw_path, _, query = self.path.partition('?')
		length = int(self.headers.get('Content-Length') or 0)
		body = {}
		if length:
			raw = self.read_body(length)
			try:
				body = json.loads(raw.decode() or '{}')
			except ValueError:
				self.send(400, 'bad json', {'error': 'body must be JSON'})
				return
		self.logrec['params'] = body
		m = self.command
		p = raw_path[len('/_sim'):]
		if m == 'GET' and p == '/state':
			self.send(200, 'OK', {'data': sim.dump_state()})
		elif m == 'POST' and p == '/reset':
			sim.reset()
			self.send(200, 'OK', {'data': None})
		elif m == 'POST' and p == '/fault':
			kind = body.get('kind', 'http')
			if kind not in ('http', 'task', 'lock-timeout'):
				self.send(400, 'bad fault kind', {'error': 'kind must be http|task|lock-timeout'})
				return
			f = dict(body, kind=kind)
			f.setdefault('count', 1)
			with sim.lock:
				sim.faults.append(f)
			self.send(200, 'OK', {'data': f})
		elif m == 'GET' and p == '/faults':
			self.send(200, 'OK', {'data': sim.faults})
		elif m == 'DELETE' and p == '/faults':
			with sim.lock:
				sim.faults.clear()
			self.send(200, 'OK', {'data': None})
		elif m == 'POST' and p == '/task-duration':
			if body.get('type'):
				sim.task_durations[body['type']] = float(body['seconds'])
			else:
				sim.default_duration = float(body['seconds'])
			self.send(200, 'OK', {'data': None})
		elif m == 'POST' and p == '/lock-timeout':
			sim.lock_timeout = float(body['seconds'])
			self.send(200, 'OK', {'data': None})
		elif re.match(r'^/agent/\d+$', p) and m == 'POST':
			vm = sim.vms.get(int(p.rsplit('/', 1)[1]))
			if vm is None:
				self.send(404, 'no such vm', {'error': 'no such vm'})
				return
			with sim.lock:
				vm['agent_up'] = bool(body.get('up', True))
				if 'interfaces' in body:
					vm['agent_ifaces'] = body['interfaces']
				if 'exec_out' in body:
					vm['exec_out'] = body['exec_out']
			self.send(200, 'OK', {'data': None})
		elif re.match(r'^/console/\d+$', p) and m == 'GET':
			# the serial console of a qemu-mode guest (empty for the fake hypervisor)
			self.send(200, 'OK', {'data': sim.hv.console_tail(int(p.rsplit('/', 1)[1]),
				int(urllib.parse.parse_qs(query).get('bytes', ['8192'])[0]))})
		elif re.match(r'^/vm/\d+$', p) and m == 'POST':
			# force a state (e.g. a stale lock) for tests of recovery paths
			vm = sim.vms.get(int(p.rsplit('/', 1)[1]))
			if vm is None:
				self.send(404, 'no such vm', {'error': 'no such vm'})
				return
			with sim.lock:
				for k, v in body.get('conf', {}).items():
					if v is None:
						vm['conf'].pop(k, None)
					else:
						vm['conf'][k] = v
				if body.get('status') in ('running', 'stopped'):
					(sim.hv.start if body['status'] == 'running' else sim.hv.stop)(vm)
				sim.save_vm(vm)
			self.send(200, 'OK', {'data': None})
		else:
			self.send(404, 'no such control endpoint', {'error': 'unknown %s %s' % (m, p)})


class Server(http.server.ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True

	def __init__(self, addr, sim, ctx):
		self.sim = sim
		self.ctx = ctx
		super().__init__(addr, Handler)

	def finish_request(self, request, client_address):
		# headers and body go out in separate writes: without NODELAY each answer waits for
		# the peer's delayed ACK (~40 ms on loopback), which real pveproxy does not do
		try:
			request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		except OSError:
			pass
		# TLS handshake in the connection's own thread, not in the accept loop
		if self.ctx:
			try:
				request.settimeout(30)
				request = self.ctx.wrap_socket(request, server_side=True)
				request.settimeout(None)
			except (ssl.SSLError, OSError):
				return
		try:
			Handler(request, client_address, self)
		except (ConnectionError, ssl.SSLError, OSError):
			pass
		finally:
			# wrapped socket: make sure it closes (shutdown_request only sees the raw one)
			try:
				request.close()
			except OSError:
				pass


def ensure_cert(state_dir, cert=None, key=None):
	if cert and key:
		return cert, key
	cert = os.path.join(state_dir, 'pve-ssl.pem')
	key = os.path.join(state_dir, 'pve-ssl.key')
	if not (os.path.exists(cert) and os.path.exists(key)):
		subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
			'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days',
			'3650', '-subj', '/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=pve1',
			'-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pve1'],
			check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
	return cert, key


def cert_fingerprint(cert):
	with open(cert) as f:
		der = ssl.PEM_cert_to_DER_cert(f.read())
	h = hashlib.sha256(der).hexdigest().upper()
	return ':'.join(h[i:i + 2] for i in range(0, len(h), 2))


def parse_args(argv):
	ap = argparse.ArgumentParser(description='Proxmox VE API simulator')
	ap.add_argument('--state-dir', required=True)
	ap.add_argument('--port', type=int, default=0)
	ap.add_argument('--host', default='127.0.0.1')
	ap.add_argument('--tls', action='store_true', help='serve HTTPS (self-signed certificate)')
	ap.add_argument('--cert')
	ap.add_argument('--key')
	ap.add_argument('--log', help='request log (JSON lines)')
	ap.add_argument('--token', action='append', help="'USER@REALM!NAME=SECRET' (repeatable)")
	ap.add_argument('--token-privs', action='append',
		help="'USER@REALM!NAME=/path:Priv1,Priv2;/path2:Priv3' (repeatable)")
	ap.add_argument('--nodes', default='pve1')
	ap.add_argument('--task-duration', type=float, default=0.2)
	ap.add_argument('--lock-timeout', type=float, default=10.0)
	ap.add_argument('--auth-delay', type=float, default=0.0,
		help='delay of 401 answers (real servers: 3 s)')
	ap.add_argument('--pve-version', default='9.1.9')
	q = ap.add_argument_group('qemu mode (real guests, see qemu_hv.py)')
	q.add_argument('--qemu', action='store_true',
		help='status/start boots the VM with qemu-system-x86_64; agent/* asks the real agent')
	q.add_argument('--qemu-kernel', help='kernel to boot (for images without a boot loader)')
	q.add_argument('--qemu-initrd', help='initrd for --qemu-kernel')
	q.add_argument('--qemu-append', default='root=LABEL=cloudimg-rootfs console=ttyS0',
		help='kernel command line for --qemu-kernel')
	q.add_argument('--qemu-accel', default='auto', choices=('auto', 'kvm', 'tcg'),
		help="'auto' (default): KVM when a probe boot shows it works, else TCG")
	q.add_argument('--qemu-binary', default='qemu-system-x86_64')
	q.add_argument('--qemu-max-memory', type=int, default=1024, help='MiB cap per guest')
	q.add_argument('--qemu-max-cpus', type=int, default=2, help='vCPU cap per guest')
	return ap.parse_args(argv)


def main(argv=None):
	opts = parse_args(argv if argv is not None else sys.argv[1:])
	os.makedirs(opts.state_dir, exist_ok=True)
	sim = SimServer(opts)
	ctx = None
	fp = ''
	if opts.tls:
		cert, key = ensure_cert(opts.state_dir, opts.cert, opts.key)
		ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		ctx.load_cert_chain(cert, key)
		fp = cert_fingerprint(cert)
	sim.fingerprint = fp
	srv = Server((opts.host, opts.port), sim, ctx)
	stop = threading.Event()

	def on_signal(signum, frame):
		if not stop.is_set():
			stop.set()
			threading.Thread(target=srv.shutdown, daemon=True).start()

	signal.signal(signal.SIGTERM, on_signal)
	signal.signal(signal.SIGINT, on_signal)
	port = srv.server_address[1]
	print('URL %s://%s:%d' % ('https' if ctx else 'http', opts.host, port), flush=True)
	print('FINGERPRINT %s' % fp, flush=True)
	try:
		srv.serve_forever(poll_interval=0.1)
	finally:
		sim.hv.close()
	srv.server_close()
	# let running tasks finish their qemu-img call so no child outlives us
	deadline = time.monotonic() + 5
	for t in list(sim.tasks.values()):
		t.stop_requested = True
		t.done.wait(max(0, deadline - time.monotonic()))
	return 0


if __name__ == '__main__':
	sys.exit(main())
