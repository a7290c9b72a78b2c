"""Response shapes against recorded real responses (fixtures/), the schema validator on its
own, fault injection through /_sim/, and clean process shutdown."""

import json
import os
import socket
import ssl
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

import pve_schema
from simharness import Simulator

HERE = os.path.dirname(os.path.abspath(__file__))


def fixture(name):
	with open(os.path.join(HERE, 'fixtures', name)) as f:
		return json.load(f)


def jtype(v):
	return {bool: 'bool', int: 'num', float: 'num', str: 'str', list: 'list', dict: 'dict',
		type(None): 'null'}[type(v)]


class Shapes(unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.sim = Simulator(task_duration=0.02, nodes='pve1,pve2', name='pve-sim.test_shapes')
		cls.sim.start()
		st, _, b = cls.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 103, 'name': 'vm103',
			'scsi0': 'local:1', 'net0': 'virtio,bridge=vmbr0', 'agent': '1,type=virtio',
			'serial0': 'socket', 'memory': 1024, 'cores': 2, 'scsihw': 'virtio-scsi-pci'})
		assert st == 200, b
		cls.upid = b['data']
		cls.sim.wait_task(cls.upid)

	@classmethod
	def tearDownClass(cls):
		cls.sim.cleanup()

	def get(self, path, params=None):
		st, _, b = self.sim.api('GET', path, params)
		self.assertEqual(st, 200, b)
		return b

	def assertSameTypes(self, ours, real, keys):
		for k in keys:
			self.assertIn(k, ours, k)
			self.assertEqual(jtype(ours[k]), jtype(real[k]), '%s: %r vs %r' % (k, ours[k], real[k]))

	def test_version(self):
		real = fixture('version.pve7.2.proxmoxer.json')
		ours = self.get('/version')
		self.assertEqual(set(ours), set(real))
		self.assertSameTypes(ours['data'], real['data'], real['data'])
		self.assertEqual(ours['data']['version'], '9.1.9')
		self.assertRegex(ours['data']['repoid'], r'^[0-9a-f]{16}$')

	def test_nextid_is_string(self):
		real = fixture('cluster-nextid.go-proxmox.json')
		ours = self.get('/cluster/nextid')
		self.assertEqual(jtype(ours['data']), jtype(real['data']))
		self.assertEqual(ours['data'], '100')

	def test_nodes(self):
		real = fixture('nodes.pve8.go-proxmox.json')['data'][0]
		ours = self.get('/nodes')['data']
		self.assertEqual([n['node'] for n in ours], ['pve1', 'pve2'])
		self.assertSameTypes(ours[0], real, [k for k in real if k != 'cpu'])
		self.assertEqual(ours[0]['ssl_fingerprint'], self.sim.fingerprint)

	def test_cluster_resources(self):
		real = fixture('cluster-resources.pve8.go-proxmox.json')['data']
		rq = [x for x in real if x['type'] == 'qemu'][0]
		ours = self.get('/cluster/resources')['data']
		oq = [x for x in ours if x['type'] == 'qemu'][0]
		self.assertSameTypes(oq, rq, [k for k in rq if k not in ('cpu',)])
		self.assertEqual(oq['id'], 'qemu/103')
		self.assertEqual(oq['template'], 0)
		types = {x['type'] for x in self.get('/cluster/resources', {'type': 'vm'})['data']}
		self.assertEqual(types, {'qemu'})

	def test_task_status(self):
		real = fixture('task-status-ok.proxmoxer.json')['data']
		ours = self.get('/nodes/pve1/tasks/%s/status' % urllib.parse.quote(self.upid))['data']
		self.assertSameTypes(ours, real, real)
		self.assertEqual(set(ours) - set(real), {'tokenid'})
		self.assertEqual((ours['user'], ours['tokenid']), ('phoenix@pve', 'ci'))
		# the UPID fields agree with the numeric fields, as pc UPID.pm encodes them
		parts = ours['upid'].split(':')
		self.assertEqual(int(parts[2], 16), ours['pid'])
		self.assertEqual(int(parts[3], 16), ours['pstart'])
		self.assertEqual(int(parts[4], 16), ours['starttime'])
		# another node does not know the task (pm API2/Tasks.pm)
		st, _, b = self.sim.api('GET', '/nodes/pve2/tasks/%s/status' % urllib.parse.quote(
			self.upid))
		self.assertEqual((st, b['errors']), (400, {'upid': 'no such task'}))

	def test_task_running_has_no_exitstatus(self):
		real = fixture('task-status-running.proxmoxer.json')['data']
		self.sim.control('POST', '/_sim/task-duration', {'type': 'qmstart', 'seconds': 0.5})
		self.addCleanup(self.sim.control, 'POST', '/_sim/task-duration',
			{'type': 'qmstart', 'seconds': 0.02})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/103/status/start')
		ours = self.get('/nodes/pve1/tasks/%s/status' % urllib.parse.quote(b['data']))['data']
		self.assertEqual(set(ours) - {'tokenid'}, set(real))
		self.assertEqual(ours['status'], 'running')
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'OK')
		log = self.get('/nodes/pve1/tasks/%s/log' % urllib.parse.quote(b['data']),
			{'start': 0, 'limit': 0})
		self.assertEqual(log['data'][-1], {'n': log['total'], 't': 'TASK OK'})
		# second start fails inside the task, as qmstart does
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/103/status/start')
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'VM 103 already running')
		cur = self.get('/nodes/pve1/qemu/103/status/current')['data']
		realcur = fixture('qemu-status-current.pve6.2.community-proxmox.json')['data']
		self.assertSameTypes(cur, realcur, [k for k in realcur if k not in ('cpu',)])
		self.assertEqual((cur['status'], cur['agent']), ('running', 1))
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu/103/status/stop')[2]['data'])

	def test_config(self):
		real = fixture('qemu-config.pve6.2.community-proxmox.json')['data']
		ours = self.get('/nodes/pve1/qemu/103/config')['data']
		common = [k for k in real if k in ours and k != 'memory']
		self.assertGreaterEqual(len(common), 9, common)
		self.assertSameTypes(ours, real, common)
		self.assertEqual(ours['agent'], '1,type=virtio')
		self.assertRegex(ours['digest'], r'^[0-9a-f]{40}$')

	def test_agent_interfaces_shape(self):
		real = fixture('qemu-agent-network-get-interfaces.pve6.2.community-proxmox.json')['data']
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu/103/status/start')[2]['data'])
		self.addCleanup(lambda: self.sim.wait_task(self.sim.api(
			'POST', '/nodes/pve1/qemu/103/status/stop')[2]['data']))
		self.sim.control('POST', '/_sim/agent/103', {'up': True})
		ours = self.get('/nodes/pve1/qemu/103/agent/network-get-interfaces')['data']
		self.assertEqual(set(ours), set(real))
		r0, o1 = real['result'][1], ours['result'][1]
		self.assertTrue({'name', 'hardware-address', 'ip-addresses'} <= set(o1))
		self.assertEqual(set(o1['ip-addresses'][0]), set(r0['ip-addresses'][0]))
		# the fake agent reports the MAC of net0
		conf = self.get('/nodes/pve1/qemu/103/config')['data']
		self.assertIn(o1['hardware-address'].upper(), conf['net0'])

	def test_error_body_shape(self):
		real = fixture('error-400-param-verification.proxmoxer.json')
		st, _, ours = self.sim.api('POST', '/nodes/pve1/qemu/103/config', {'bogus': 1})
		self.assertEqual(st, 400)
		self.assertTrue(set(real) <= set(ours))
		self.assertEqual(set(ours) - set(real), {'message'})

	def test_tasks_list(self):
		real = fixture('node-tasks-list-ok-and-failed.pve6.4.community-proxmox.json')['data'][0]
		ours = self.get('/nodes/pve1/tasks')['data']
		self.assertTrue(ours)
		done = [t for t in ours if 'endtime' in t][0]
		self.assertSameTypes(done, real, [k for k in real if k in done])

	def test_cloudinit_dump(self):
		st, _, b = self.sim.api('PUT', '/nodes/pve1/qemu/103/config', {'ciuser': 'ops',
			'sshkeys': urllib.parse.quote('ssh-ed25519 AAAAC3Nz me@host', safe=''),
			'ipconfig0': 'ip=192.0.2.10/24,gw=192.0.2.1', 'searchdomain': 'example.org'})
		self.assertEqual((st, b), (200, {'data': None}))
		user = self.get('/nodes/pve1/qemu/103/cloudinit/dump', {'type': 'user'})['data']
		self.assertIn('user: ops\n', user)
		self.assertIn('  - ssh-ed25519 AAAAC3Nz me@host\n', user)
		self.assertIn('fqdn: vm103.example.org\n', user)
		net = self.get('/nodes/pve1/qemu/103/cloudinit/dump', {'type': 'network'})['data']
		self.assertIn("address: '192.0.2.10/24'", net)
		conf = self.get('/nodes/pve1/qemu/103/config')['data']
		self.assertEqual(conf['sshkeys'], 'ssh-ed25519%20AAAAC3Nz%20me%40host')


class Validator(unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.v = pve_schema.Validator(pve_schema.load_schema())
		cls.create = cls.v.schema['POST /nodes/{node}/qemu']

	def check(self, params):
		p = {'node': 'pve1', 'vmid': '100'}
		p.update(params)
		return self.v.validate_params(self.create, p)

	def test_valid_orchestrator_create(self):
		self.assertEqual(self.check({'scsi0': 'local-lvm:0,import-from=local:import/n.qcow2,'
			'discard=on,ssd=1', 'ide2': 'local-lvm:cloudinit', 'boot': 'order=scsi0',
			'serial0': 'socket', 'vga': 'serial0', 'agent': 'enabled=1', 'scsihw':
			'virtio-scsi-single', 'net0': 'virtio,bridge=vmbr0', 'ipconfig0': 'ip=dhcp',
			'sshkeys': 'ssh-ed25519%20AAAA%20x', 'tags': 'a;b', 'memory': '2048', 'cores': '2',
			'cpu': 'host', 'name': 'web-1', 'ciuser': 'ops'}), {})

	def test_index_ranges(self):
		self.assertEqual(self.check({'scsi30': 'local:1'}), {})
		self.assertIn('scsi31', self.check({'scsi31': 'local:1'}))
		self.assertIn('net01', self.check({'net01': 'virtio'}))

	def test_json_types(self):
		self.assertEqual(self.check({'onboot': True, 'cores': 2}), {})
		self.assertEqual(self.check({'cores': True}), {'cores':
			"type check ('integer') failed - got JSON::PP::Boolean"})

	def test_ranges_and_vmid(self):
		self.assertEqual(self.check({'vmid': '99'}), {'vmid': 'invalid format - value does not '
			'look like a valid VM ID\n'})
		self.assertEqual(self.check({'cores': '0'}), {'cores': 'value must have a minimum value '
			'of 1'})

	def test_sizes(self):
		self.assertEqual(pve_schema.format_size(10 << 30), '10G')
		self.assertEqual(pve_schema.format_size(2252 << 20), '2252M')
		self.assertEqual(pve_schema.parse_size('1.5G'), 1610612736)


class Faults(unittest.TestCase):
	def setUp(self):
		self.sim = Simulator(task_duration=0.02, lock_timeout=0.3)
		self.sim.start()
		self.addCleanup(self.sim.cleanup)

	def test_http_fault_count(self):
		self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'path': '/version$',
			'status': 503, 'count': 2})
		self.assertEqual(self.sim.api('GET', '/version')[0], 503)
		self.assertEqual(self.sim.api('GET', '/version')[0], 503)
		self.assertEqual(self.sim.api('GET', '/version')[0], 200)
		self.assertEqual([r['fault'] for r in self.sim.requests() if r.get('fault')],
			['error', 'error'])

	def test_faulted_requests_are_logged_with_their_params(self):
		# the request log shows a request as sent, parameters and all, also when an injected
		# fault answers it: form body, JSON body, query, multipart text fields, URI parameters
		def fault(method, path, **kw):
			self.sim.control('POST', '/_sim/fault', dict(kind='http', method=method,
				path=path, **kw))

		fault('POST', '/qemu$', status=503)
		self.assertEqual(self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 150, 'name': 'web',
			'cores': 2})[0], 503)
		fault('PUT', '/config$', action='close')
		with self.assertRaises(http_incomplete()):
			self.sim.api('PUT', '/nodes/pve1/qemu/151/config', {'description': 'x',
				'onboot': True}, json_body=True)
		fault('GET', '/cluster/resources$', action='drop')
		with self.assertRaises(http_incomplete()):
			self.sim.api('GET', '/cluster/resources', {'type': 'vm'})
		fault('POST', '/upload$', status=500, message='disk full')
		iso = os.path.join(self.sim.state_dir, 'x.iso')
		with open(iso, 'wb') as f:
			f.write(b'\0' * 4096)
		out = subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert',
			self.sim.cert_path, '-H', 'Authorization: ' + self.sim.auth_header,
			'-F', 'content=iso', '-F', 'filename=@%s;filename=x.iso' % iso,
			self.sim.url + '/api2/json/nodes/pve1/storage/local/upload'],
			stdout=subprocess.PIPE, text=True, check=True).stdout
		self.assertEqual(out, '500')
		logged = [(r['method'], r['path'], r['status'], r['fault'], r['params'])
			for r in self.sim.requests() if r.get('fault')]
		self.assertEqual(logged, [
			('POST', '/api2/json/nodes/pve1/qemu', 503, 'error',
				{'node': 'pve1', 'vmid': '150', 'name': 'web', 'cores': '2'}),
			('PUT', '/api2/json/nodes/pve1/qemu/151/config', 0, 'close',
				{'node': 'pve1', 'vmid': '151', 'description': 'x', 'onboot': True}),
			('GET', '/api2/json/cluster/resources', 200, 'drop', {'type': 'vm'}),
			('POST', '/api2/json/nodes/pve1/storage/local/upload', 500, 'error',
				{'node': 'pve1', 'storage': 'local', 'content': 'iso', 'filename': 'x.iso'})])
		# the faults answered instead of the API: no VM, no upload, nothing left in the spool
		state = self.sim.control('GET', '/_sim/state')
		self.assertEqual((state['vms'], state['volumes']), ({}, []))
		self.assertEqual(os.listdir(os.path.join(self.sim.state_dir, 'tmp')), [])

	def test_close_after_runs_the_request_and_loses_its_answer(self):
		# "close": the request never reaches its handler; "close-after": the handler runs
		# (here a clone's task starts), then the connection closes with no answer
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 160,
			'scsi0': 'local:0.01'})[2]['data'])
		self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'method': 'POST',
			'path': '/clone$', 'action': 'close'})
		with self.assertRaises(http_incomplete()):
			self.sim.api('POST', '/nodes/pve1/qemu/160/clone', {'newid': 161})
		self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'method': 'POST',
			'path': '/clone$', 'action': 'close-after'})
		with self.assertRaises(http_incomplete()):
			self.sim.api('POST', '/nodes/pve1/qemu/160/clone', {'newid': 162})
		logged = [(r['params'].get('newid'), r['status'], r.get('fault'))
			for r in self.sim.requests() if r['path'].endswith('/clone')]
		self.assertEqual(logged, [('161', 0, 'close'), ('162', 200, 'close-after')])
		tasks = self.sim.api('GET', '/nodes/pve1/tasks', {'source': 'all',
			'typefilter': 'qmclone', 'vmid': 160})[2]['data']
		self.assertEqual(len(tasks), 1)
		self.assertEqual(self.sim.wait_task(tasks[0]['upid'])['exitstatus'], 'OK')
		self.assertEqual(sorted(self.sim.control('GET', '/_sim/state')['vms']), ['160', '162'])
		# an error answer is lost the same way; unknown actions are refused
		self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'path': '/clone$',
			'action': 'close-after'})
		with self.assertRaises(http_incomplete()):
			self.sim.api('POST', '/nodes/pve1/qemu/160/clone', {'newid': 162})
		self.assertEqual(self.sim.requests()[-1]['status'], 500)
		with self.assertRaises(urllib.error.HTTPError):
			self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'action': 'explode'})
		st, _, b = self.sim.api('GET', '/version')
		self.assertEqual(st, 200, b)

	def test_task_list_sources_and_filters(self):
		# pm API2/Tasks.pm node_tasks: archive (finished) by default, active = running,
		# all = active first; the filters; user/tokenid split only in archived entries
		self.sim.control('POST', '/_sim/task-duration', {'type': 'qmstart', 'seconds': 30})
		done = self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 170})[2]['data']
		self.sim.wait_task(done)
		running = self.sim.api('POST', '/nodes/pve1/qemu/170/status/start')[2]['data']
		self.addCleanup(self.sim.api, 'DELETE', '/nodes/pve1/tasks/' +
			urllib.parse.quote(running, safe=''))

		def tasks(**q):
			st, _, b = self.sim.api('GET', '/nodes/pve1/tasks', q)
			self.assertEqual(st, 200, b)
			return b

		self.assertEqual([t['upid'] for t in tasks()['data']], [done])
		self.assertEqual([t['upid'] for t in tasks(source='active')['data']], [running])
		self.assertEqual([t['upid'] for t in tasks(source='all')['data']], [running, done])
		act, arch = tasks(source='all')['data']
		self.assertEqual({k: act[k] for k in ('user', 'saved', 'status')},
			{'user': 'phoenix@pve!ci', 'saved': '0', 'status': 'RUNNING'})
		self.assertNotIn('endtime', act)
		self.assertEqual({k: arch[k] for k in ('user', 'tokenid', 'status', 'type', 'id')},
			{'user': 'phoenix@pve', 'tokenid': 'ci', 'status': 'OK', 'type': 'qmcreate',
			'id': '170'})
		self.assertIsInstance(arch['endtime'], int)
		self.assertEqual([t['type'] for t in tasks(source='all', typefilter='qmstart')['data']],
			['qmstart'])
		self.assertEqual(tasks(source='all', vmid=171)['data'], [])
		self.assertEqual(len(tasks(source='all', since=arch['starttime'] + 3600)['data']), 0)
		self.assertEqual(len(tasks(source='all', until=arch['starttime'] - 1)['data']), 0)
		# userfilter is a case-insensitive substring of `user`: the full token id does not
		# match an archived entry, whose user has lost the token name
		self.assertEqual([t['upid'] for t in tasks(source='all',
			userfilter='PHOENIX@pve!ci')['data']], [running])
		self.assertEqual(len(tasks(source='all', userfilter='phoenix@pve')['data']), 2)
		self.assertEqual([t['upid'] for t in tasks(source='all',
			statusfilter='unknown')['data']], [running])
		self.assertEqual([t['upid'] for t in tasks(source='all', errors=1)['data']], [running])
		b = tasks(source='all', start=1, limit=1)
		self.assertEqual(([t['upid'] for t in b['data']], b['total']), ([done], 2))
		self.assertEqual(self.sim.schema_violations(), [])

	def test_drop_mid_body(self):
		self.sim.control('POST', '/_sim/fault', {'kind': 'http', 'path': '/nodes$',
			'action': 'drop'})
		with self.assertRaises(http_incomplete()):
			self.sim.api('GET', '/nodes')
		self.assertEqual(self.sim.api('GET', '/nodes')[0], 200)

	def test_task_fault(self):
		self.sim.control('POST', '/_sim/fault', {'kind': 'task', 'type': 'qmcreate',
			'message': 'storage migration failed'})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 120, 'scsi0': 'local:1'})
		res = self.sim.wait_task(b['data'])
		self.assertEqual(res['exitstatus'], 'storage migration failed')
		# a failed create removes the VM and its disks (pgc create_and_lock_config)
		state = self.sim.control('GET', '/_sim/state')
		self.assertEqual(state['vms'], {})
		self.assertEqual(state['volumes'], [])

	def test_lock_timeout(self):
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 121})
		self.sim.wait_task(b['data'])
		self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'vmid': 121})
		st, rs, b = self.sim.api('PUT', '/nodes/pve1/qemu/121/config', {'cores': 2})
		self.assertEqual((st, rs), (500, "can't lock file '/var/lock/qemu-server/lock-121.conf' "
			'- got timeout'))
		self.assertEqual(self.sim.api('PUT', '/nodes/pve1/qemu/121/config', {'cores': 2})[0], 200)

	def test_clone_holds_template_lock(self):
		# a running clone holds a shared flock on the template; exclusive ops time out
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 130,
			'scsi0': 'local:0.01'})[2]['data'])
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu/130/template')[2]['data'])
		self.sim.control('POST', '/_sim/task-duration', {'type': 'qmclone', 'seconds': 1})
		upid = self.sim.api('POST', '/nodes/pve1/qemu/130/clone', {'newid': 131})[2]['data']
		st, rs, _ = self.sim.api('PUT', '/nodes/pve1/qemu/130/config', {'description': 'x'})
		self.assertEqual((st, rs), (500, "can't lock file '/var/lock/qemu-server/lock-130.conf' "
			'- got timeout'))
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')

	def test_reset_and_state(self):
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 140,
			'scsi0': 'local:0.01'})[2]['data'])
		self.assertEqual(list(self.sim.control('GET', '/_sim/state')['vms']), ['140'])
		self.sim.control('POST', '/_sim/reset')
		state = self.sim.control('GET', '/_sim/state')
		self.assertEqual((state['vms'], state['volumes']), ({}, []))

	def test_sigterm_stops_cleanly(self):
		pid = self.sim.proc.pid
		self.sim.stop()
		self.assertFalse(os.path.exists('/proc/%d' % pid) and
			open('/proc/%d/stat' % pid).read().split()[2] != 'Z')


def http_incomplete():
	import http.client
	return (http.client.IncompleteRead, urllib.error.URLError, ConnectionError)


if __name__ == '__main__':
	unittest.main()
