"""Start/stop the Proxmox VE API simulator from Python tests.

	with Simulator() as sim:          # or sim = Simulator(...); sim.start(); ...; sim.stop()
		sim.url, sim.fingerprint, sim.token_id, sim.secret, sim.state_dir, sim.log_path
		sim.control('POST', '/_sim/fault', {...})
		sim.requests(); sim.schema_violations()

Keyword options map to pve_sim.py flags: token='U@R!N=SECRET', token_privs='U@R!N=/p:Priv,..',
nodes='pve1,pve2', task_duration=0.2, lock_timeout=10, pve_version='9.1' (or '8.4', '9.0', or a
full version), qemu_server_version='9.1.19', storage_config=[{...}] (list, or a file path),
sdn_config={'vnets': [{'vnet': 'v1', 'zone': 'z1'}]} (or a file path),
node_resources={'pve2': {'maxmem': 16 << 30, 'mem': 1 << 30, 'maxcpu': 8, 'cpu': 0.1,
'online': False}} (or a file path), auth_delay=0,
tls=True, name='<log file stem>', qemu=True (real guests) with qemu_kernel, qemu_initrd,
qemu_append, qemu_accel, qemu_max_memory, qemu_max_cpus; lxc_real=True (real containers) with
lxc_bridges={'vmbr0': '10.199.7.1/24'}. Logs go to
$PHX_BUILD/sim-logs/<test-name>.jsonl when PHX_BUILD is set, else into the state dir.
"""

import inspect
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, 'pve_sim.py')
DEFAULT_TOKEN = 'phoenix@pve!ci'
DEFAULT_SECRET = '11111111-2222-3333-4444-555555555555'


def _test_name():
	# The calling unittest.TestCase's id, so each test gets its own log file.
	for fr in inspect.stack():
		obj = fr.frame.f_locals.get('self')
		if isinstance(obj, unittest.TestCase):
			return obj.id()
	return None


class Simulator:
	def __init__(self, state_dir=None, log_path=None, **opts):
		self._own_state = state_dir is None
		self.state_dir = state_dir or tempfile.mkdtemp(prefix='pve-sim-')
		self.opts = opts
		tok = opts.get('token') or '%s=%s' % (DEFAULT_TOKEN, DEFAULT_SECRET)
		self.token_id, _, self.secret = tok.rpartition('=')
		if log_path is None:
			name = opts.get('name') or _test_name() or 'sim-%d' % os.getpid()
			if os.environ.get('PHX_BUILD'):
				d = os.path.join(os.environ['PHX_BUILD'], 'sim-logs')
				os.makedirs(d, exist_ok=True)
				log_path = os.path.join(d, name + '.jsonl')
			else:
				log_path = os.path.join(self.state_dir, 'requests.jsonl')
		self.log_path = log_path
		if os.path.exists(log_path):
			os.unlink(log_path)
		self.proc = None
		self.url = None
		self.fingerprint = None
		self._ctx = None

	def argv(self):
		o = self.opts
		a = [sys.executable, SIM, '--state-dir', self.state_dir, '--port', str(o.get('port', 0)),
			'--log', self.log_path]
		if o.get('tls', True):
			a.append('--tls')
		a += ['--token', '%s=%s' % (self.token_id, self.secret)]
		for t in o.get('extra_tokens', []):
			a += ['--token', t]
		privs = o.get('token_privs')
		for p in ([privs] if isinstance(privs, str) else privs or []):
			a += ['--token-privs', p]
		for k, name in (('storage_config', 'storage.json'), ('sdn_config', 'sdn.json'),
				('node_resources', 'node-resources.json')):
			v = o.get(k)
			if v is not None and not isinstance(v, str):
				# a list/dict is written into the state dir and passed as a file
				path = os.path.join(self.state_dir, name)
				os.makedirs(self.state_dir, exist_ok=True)
				with open(path, 'w') as f:
					json.dump(v, f)
				v = path
			if v is not None:
				a += ['--' + k.replace('_', '-'), v]
		for k in ('nodes', 'task_duration', 'lock_timeout', 'pve_version', 'qemu_server_version',
				'auth_delay',
				'qemu_kernel', 'qemu_initrd', 'qemu_append', 'qemu_accel', 'qemu_max_memory',
				'qemu_max_cpus'):
			if o.get(k) is not None:
				a += ['--' + k.replace('_', '-'), str(o[k])]
		if o.get('qemu'):
			a.append('--qemu')
		if o.get('lxc_real'):
			a.append('--lxc-real')
		for name, cidr in sorted((o.get('lxc_bridges') or {}).items()):
			a += ['--lxc-bridge', '%s=%s' % (name, cidr)]
		return a

	def start(self, timeout=20):
		self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			text=True)
		lines = []

		def reader():
			for _ in range(2):
				lines.append(self.proc.stdout.readline())

		th = threading.Thread(target=reader, daemon=True)
		th.start()
		th.join(timeout)
		if len(lines) < 2 or not lines[0].startswith('URL ') or \
				not lines[1].startswith('FINGERPRINT'):
			err = ''
			if self.proc.poll() is not None:
				err = self.proc.stderr.read()
			self.stop()
			raise RuntimeError('simulator did not start: %r %s' % (lines, err))
		self.url = lines[0].split(' ', 1)[1].strip()
		self.fingerprint = lines[1].split(' ', 1)[1].strip()
		self._ctx = ssl.create_default_context(cafile=self.cert_path) if self.url.startswith(
			'https') else None
		if self._ctx:
			self._ctx.check_hostname = False
		return self

	@property
	def cert_path(self):
		return os.path.join(self.state_dir, 'pve-ssl.pem')

	def stop(self):
		if self.proc is not None:
			if self.proc.poll() is None:
				self.proc.send_signal(signal.SIGTERM)
				try:
					self.proc.wait(10)
				except subprocess.TimeoutExpired:
					self.proc.kill()
					self.proc.wait()
			for f in (self.proc.stdout, self.proc.stderr):
				if f:
					f.close()
			self.proc = None

	def cleanup(self):
		"""stop() and remove the state dir if the harness created it."""
		self.stop()
		if self._own_state:
			shutil.rmtree(self.state_dir, ignore_errors=True)

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.cleanup()

	@property
	def auth_header(self):
		return 'PVEAPIToken=%s=%s' % (self.token_id, self.secret)

	def control(self, method, path, body=None):
		if not path.startswith('/_sim/'):
			path = '/_sim/' + path.lstrip('/')
		data = json.dumps(body).encode() if body is not None else None
		req = urllib.request.Request(self.url + path, data=data, method=method)
		if data is not None:
			req.add_header('Content-Type', 'application/json')
		with urllib.request.urlopen(req, context=self._ctx, timeout=30) as resp:
			return json.loads(resp.read().decode() or 'null').get('data')

	def api(self, method, path, params=None, json_body=False, headers=None):
		"""Calls /api2/json<path>; returns (status, reason, parsed body or None)."""
		import urllib.parse
		url = self.url + '/api2/json' + path
		data = None
		hdrs = {'Authorization': self.auth_header}
		hdrs.update(headers or {})
		if params:
			if method in ('GET', 'DELETE'):
				url += '?' + urllib.parse.urlencode(params)
			elif json_body:
				data = json.dumps(params).encode()
				hdrs['Content-Type'] = 'application/json'
			else:
				data = urllib.parse.urlencode(params).encode()
				hdrs['Content-Type'] = 'application/x-www-form-urlencoded'
		req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
		try:
			with urllib.request.urlopen(req, context=self._ctx, timeout=60) as resp:
				raw = resp.read()
				return resp.status, resp.reason, json.loads(raw) if raw else None
		except urllib.error.HTTPError as e:
			raw = e.read()
			return e.code, e.reason, json.loads(raw) if raw else None

	def wait_task(self, upid, node=None, timeout=60):
		import time
		import urllib.parse
		node = node or upid.split(':')[1]
		end = time.monotonic() + timeout
		while time.monotonic() < end:
			st, _, body = self.api('GET', '/nodes/%s/tasks/%s/status' % (node,
				urllib.parse.quote(upid, safe='')))
			if st != 200:
				raise RuntimeError('task status: %s %s' % (st, body))
			if body['data']['status'] == 'stopped':
				return body['data']
			time.sleep(0.05)
		raise TimeoutError(upid)

	def requests(self):
		res = []
		if os.path.exists(self.log_path):
			with open(self.log_path) as f:
				for line in f:
					# the simulator may be writing the last line right now: only whole
					# lines are records
					if line.endswith('\n') and line.strip():
						res.append(json.loads(line))
		return res

	def schema_violations(self):
		return [r for r in self.requests() if r.get('violations')]
