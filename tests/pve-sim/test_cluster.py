"""The multi-node cluster: per-node local storages, node status and resources, offline nodes,
migration and clone to another node. Each case names the Perl function its behaviour comes
from (qemu-server qs, pve-storage ps, pve-manager pm, pve-http-server phs, pve-cluster pcl,
pve-guest-common pgc, pve-common pc)."""

import os
import unittest

from simharness import Simulator

STORAGES = [
	{'storage': 'local', 'type': 'dir', 'content': 'images,import,iso,snippets,vztmpl'},
	{'storage': 'local-lvm', 'type': 'lvmthin', 'vgname': 'pve', 'thinpool': 'data'},
	{'storage': 'nfs', 'type': 'nfs', 'server': '10.0.0.1', 'export': '/x',
		'content': 'images,iso'},
	{'storage': 'ceph', 'type': 'rbd', 'pool': 'rbd', 'content': 'images'},
	{'storage': 'only1', 'type': 'dir', 'path': '/srv/only1', 'nodes': 'pve1',
		'content': 'images'},
	{'storage': 'tank', 'type': 'zfspool', 'pool': 'rpool/data'},
]
GiB = 1 << 30


class Base(unittest.TestCase):
	opts = {}

	@classmethod
	def setUpClass(cls):
		cls.sim = Simulator(task_duration=0.02, name='pve-sim.' + cls.__name__,
			nodes='pve1,pve2,pve3', storage_config=STORAGES, **cls.opts)
		cls.sim.start()

	@classmethod
	def tearDownClass(cls):
		cls.sim.cleanup()

	def setUp(self):
		self.sim.control('POST', '/_sim/reset')
		for n in ('pve2', 'pve3'):
			self.sim.control('POST', '/_sim/node/' + n, {'online': True})

	def ok(self, method, path, params=None):
		st, _, b = self.sim.api(method, path, params)
		self.assertEqual(st, 200, b)
		return b['data']

	def task(self, method, path, params=None, status='OK'):
		upid = self.ok(method, path, params)
		res = self.sim.wait_task(upid)
		log = self.tasklog(res['node'], upid)
		self.assertEqual(res['exitstatus'], status, log)
		return log

	def tasklog(self, node, upid):
		return [e['t'] for e in self.ok('GET', '/nodes/%s/tasks/%s/log' % (node, upid),
			{'limit': 1000})]

	def err(self, method, path, params, code, msg):
		st, rs, b = self.sim.api(method, path, params)
		self.assertEqual((st, rs), (code, msg), b)

	def state(self):
		return self.sim.control('GET', '/_sim/state')

	def vm(self, vmid, node='pve1', **conf):
		p = {'vmid': vmid, 'memory': 1024}
		p.update(conf)
		self.task('POST', '/nodes/%s/qemu' % node, p)

	def conf(self, vmid, node='pve1'):
		return self.ok('GET', '/nodes/%s/qemu/%d/config' % (node, vmid))

	def vols(self, node, storage):
		return sorted(v['volid'] for v in self.ok('GET', '/nodes/%s/storage/%s/content' % (
			node, storage)))


class LocalStorages(Base):
	def test_local_storage_per_node(self):
		# ps Storage.pm storage_check_node + Plugin.pm @SHARED_STORAGE: a local storage without
		# 'nodes' is a separate store on every node; the same volume name on two nodes is two
		# volumes; a shared one is the same store everywhere
		self.vm(100, scsi0='local-lvm:0.01')
		self.vm(200, 'pve2', scsi0='local-lvm:0.01')
		self.vm(101, 'pve2', scsi0='local-lvm:0.01')
		self.assertEqual(self.vols('pve1', 'local-lvm'), ['local-lvm:vm-100-disk-0'])
		self.assertEqual(self.vols('pve2', 'local-lvm'), ['local-lvm:vm-101-disk-0',
			'local-lvm:vm-200-disk-0'])
		self.assertEqual(self.vols('pve3', 'local-lvm'), [])
		self.vm(300, 'pve2', scsi0='nfs:0.01')
		for n in ('pve1', 'pve2', 'pve3'):
			self.assertEqual(self.vols(n, 'nfs'), ['nfs:300/vm-300-disk-0.qcow2'])
		vols = [(v['volid'], v.get('node')) for v in self.state()['volumes']]
		self.assertIn(('local-lvm:vm-200-disk-0', 'pve2'), vols)
		self.assertIn(('nfs:300/vm-300-disk-0.qcow2', None), vols)
		# the first node keeps STATE/storage/<S>, others STATE/nodes/<node>/storage/<S>
		self.assertTrue(os.path.exists(os.path.join(self.sim.state_dir,
			'nodes/pve2/storage/local-lvm/vm-200-disk-0')))

	def test_same_disk_name_on_two_nodes(self):
		# ps Plugin.pm get_next_vm_diskname looks at the node's own store only
		self.vm(100, scsi0='local-lvm:0.01')
		self.task('POST', '/nodes/pve1/qemu/100/template')
		st, _, b = self.sim.api('GET', '/nodes/pve2/storage/local-lvm/content/'
			'local-lvm:base-100-disk-0')
		self.assertEqual(st, 500)  # not on pve2's local-lvm

	def test_upload_and_import_from_use_the_nodes_store(self):
		# ps API2/Storage/Status.pm upload: the file goes to the node's own 'local';
		# qs create_disks import-from reads the node's own volume
		import subprocess
		import tempfile
		d = tempfile.mkdtemp()
		img = os.path.join(d, 'a.qcow2')
		subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '1M'])
		with open(img, 'rb') as f:
			data = f.read()
		st = self.upload('pve2', 'a.qcow2', data)
		self.assertEqual(st, 200)
		self.assertEqual(self.vols('pve2', 'local'), ['local:import/a.qcow2'])
		self.assertEqual(self.vols('pve1', 'local'), [])
		# on pve1 the volume does not exist
		self.err('POST', '/nodes/pve1/qemu', {'vmid': 110, 'scsi0':
			'local-lvm:0,import-from=local:import/a.qcow2'}, 500,
			"volume 'local:import/a.qcow2' does not exist")
		self.vm(111, 'pve2', scsi0='local-lvm:0,import-from=local:import/a.qcow2')
		self.assertEqual(self.vols('pve2', 'local-lvm'), ['local-lvm:vm-111-disk-0'])

	def upload(self, node, name, data):
		import http.client
		import json
		import ssl
		b = 'bnd-42'
		body = ('--%s\r\nContent-Disposition: form-data; name="content"\r\n\r\nimport\r\n'
			'--%s\r\nContent-Disposition: form-data; name="filename"; filename="%s"\r\n'
			'Content-Type: application/octet-stream\r\n\r\n' % (b, b, name)).encode() + data + \
			('\r\n--%s--\r\n' % b).encode()
		host, port = self.sim.url.split('//')[1].split(':')
		ctx = ssl.create_default_context(cafile=self.sim.cert_path)
		ctx.check_hostname = False
		c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
		c.request('POST', '/api2/json/nodes/%s/storage/local/upload' % node, body=body,
			headers={'Authorization': self.sim.auth_header,
				'Content-Type': 'multipart/form-data; boundary=' + b})
		r = c.getresponse()
		raw = json.loads(r.read())
		c.close()
		self.sim.wait_task(raw['data'])
		return r.status


class Nodes(Base):
	opts = {'node_resources': {'pve2': {'maxmem': 16 * GiB, 'mem': 2 * GiB, 'maxcpu': 8,
		'cpu': 0.25}}}

	def test_resources_and_running_vm_memory(self):
		# pm API2Tools.pm extract_node_stats (/nodes, /cluster/resources), pm API2/Nodes.pm status
		n2 = [n for n in self.ok('GET', '/nodes') if n['node'] == 'pve2'][0]
		self.assertEqual((n2['status'], n2['maxmem'], n2['mem'], n2['maxcpu'], n2['cpu']),
			('online', 16 * GiB, 2 * GiB, 8, 0.25))
		self.vm(200, 'pve2', memory=2048)
		self.assertEqual(self.ok('GET', '/nodes/pve2/status')['memory']['used'], 2 * GiB)
		self.task('POST', '/nodes/pve2/qemu/200/status/start')
		res = self.ok('GET', '/cluster/resources', {'type': 'node'})
		n2 = [n for n in res if n['node'] == 'pve2'][0]
		self.assertEqual(n2['mem'], 4 * GiB)
		st = self.ok('GET', '/nodes/pve2/status')
		self.assertEqual((st['memory']['total'], st['memory']['used'], st['cpuinfo']['cpus']),
			(16 * GiB, 4 * GiB, 8))
		self.sim.control('POST', '/_sim/node/pve2', {'mem': 3 * GiB})
		self.assertEqual(self.ok('GET', '/nodes/pve2/status')['memory']['used'], 5 * GiB)
		self.sim.control('POST', '/_sim/node/pve2', {'mem': 2 * GiB})

	def test_offline_node(self):
		self.vm(200, 'pve2', scsi0='local-lvm:0.01', tags='x')
		self.sim.control('POST', '/_sim/node/pve2', {'online': False})
		# pm API2Tools.pm extract_node_stats: 'offline' (rrd data expired: pmxcfs status.c
		# rrd_entry_is_old); extract_vm_stats without rrd data: 'unknown'
		res = self.ok('GET', '/cluster/resources')
		node = [e for e in res if e['id'] == 'node/pve2'][0]
		self.assertEqual(node['status'], 'offline')
		self.assertNotIn('maxmem', node)
		vm = [e for e in res if e['id'] == 'qemu/200'][0]
		self.assertEqual(vm, {'id': 'qemu/200', 'vmid': 200, 'type': 'qemu', 'node': 'pve2',
			'status': 'unknown', 'tags': 'x'})
		sto = [e for e in res if e['id'] == 'storage/pve2/local-lvm'][0]
		self.assertEqual(sto['status'], 'unknown')
		self.assertEqual([n['status'] for n in self.ok('GET', '/nodes')],
			['online', 'offline', 'online'])
		# pm API2/Cluster.pm get_status: online 0, quorate with 2 of 3
		cs = self.ok('GET', '/cluster/status')
		self.assertEqual(cs[0]['quorate'], 1)
		self.assertEqual([e['online'] for e in cs[1:]], [1, 0, 1])
		# pm HTTPServer.pm rest_handler -> phs AnyEvent.pm proxy_request: 595, no body
		self.err('GET', '/nodes/pve2/qemu', None, 595, 'No route to host')
		self.err('GET', '/nodes/pve2/status', None, 595, 'No route to host')
		self.err('POST', '/nodes/pve2/qemu/200/status/start', None, 595, 'No route to host')
		# unknown node: pcl remote_node_ip
		st, _, _ = self.sim.api('GET', '/nodes/pve9/qemu')
		self.assertEqual(st, 500)
		# 2 of 3 offline: no quorum (pcl check_cfs_quorum)
		self.sim.control('POST', '/_sim/node/pve3', {'online': False})
		self.assertEqual(self.ok('GET', '/cluster/status')[0]['quorate'], 0)
		self.err('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve3'}, 500,
			'cluster not ready - no quorum?')

	def test_control_errors(self):
		st = self.sim.api  # noqa: F841
		import json
		import urllib.request
		req = urllib.request.Request(self.sim.url + '/_sim/node/pve1', method='POST',
			data=json.dumps({'online': False}).encode(),
			headers={'Content-Type': 'application/json'})
		import ssl
		ctx = ssl.create_default_context(cafile=self.sim.cert_path)
		ctx.check_hostname = False
		with self.assertRaises(urllib.error.HTTPError) as cm:
			urllib.request.urlopen(req, context=ctx)
		self.assertEqual(cm.exception.code, 400)


class Migrate(Base):
	def test_api_checks(self):
		# qs API2/Qemu.pm migrate_vm, before the fork, in its order
		self.vm(100, scsi0='local-lvm:0.01')
		path = '/nodes/pve1/qemu/100/migrate'
		self.err('POST', path, {'target': 'pve1'}, 400, 'Parameter verification failed.')
		self.err('POST', path, {'target': 'pve9'}, 500, "no such cluster node 'pve9'")
		self.err('POST', path, {'target': 'pve2', 'force': 1}, 400,
			'Parameter verification failed.')
		self.err('POST', path, {'target': 'pve2', 'migration_type': 'insecure'}, 400,
			'Parameter verification failed.')
		self.err('POST', '/nodes/pve2/qemu/100/migrate', {'target': 'pve3'}, 500,
			"Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist")
		self.sim.control('POST', '/_sim/vm/100', {'conf': {'lock': 'backup'}})
		self.err('POST', path, {'target': 'pve2'}, 500, 'VM 100 is locked (backup)')
		self.sim.control('POST', '/_sim/vm/100', {'conf': {'lock': None}, 'status': 'running'})
		self.err('POST', path, {'target': 'pve2'}, 500,
			"can't migrate running VM without --online")
		self.sim.control('POST', '/_sim/vm/100', {'status': 'stopped'})
		# targetstorage: pc parse_idmap, $check_storage_access_migrate
		self.err('POST', path, {'target': 'pve2', 'targetstorage': 'only1'}, 500,
			"storage 'only1' is not available on node 'pve2'")
		self.err('POST', path, {'target': 'pve2', 'targetstorage': '1,local'}, 400,
			'Parameter verification failed.')
		# qs QemuServer.pm check_storage_availability
		self.vm(101, scsi0='only1:0.01')
		self.err('POST', '/nodes/pve1/qemu/101/migrate', {'target': 'pve2'}, 500,
			"storage 'only1' is not available on node 'pve2'")

	def test_offline_migration_local_disk(self):
		# QemuMigrate.pm phase1/sync_offline_local_volumes -> ps storage_migrate; phase3_cleanup
		self.vm(100, scsi0='local-lvm:0.01', ide2='local-lvm:cloudinit', scsi1='nfs:0.01')
		self.vm(200, 'pve2', scsi0='local-lvm:0.01')
		log = self.task('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve2'})
		self.assertIn("starting migration of VM 100 to node 'pve2' (127.0.0.2)", log)
		self.assertIn("found local disk 'local-lvm:vm-100-disk-0' (attached)", log)
		self.assertIn("found generated disk 'local-lvm:vm-100-cloudinit' (in current VM config)",
			log)
		self.assertIn("volume 'local-lvm:vm-100-disk-0' is 'local-lvm:vm-100-disk-0' on the "
			'target', log)
		self.assertTrue(log[-2].startswith('migration finished successfully'), log)
		c = self.conf(100, 'pve2')
		self.assertTrue(c['scsi0'].startswith('local-lvm:vm-100-disk-0,'))
		self.assertTrue(c['scsi1'].startswith('nfs:100/vm-100-disk-0.qcow2,'))
		self.assertNotIn('lock', c)
		self.assertEqual(self.state()['vms']['100']['node'], 'pve2')
		self.assertEqual(self.vols('pve1', 'local-lvm'), [])
		self.assertEqual(self.vols('pve2', 'local-lvm'), ['local-lvm:vm-100-cloudinit',
			'local-lvm:vm-100-disk-0', 'local-lvm:vm-200-disk-0'])
		st, _, _ = self.sim.api('GET', '/nodes/pve1/qemu/100/config')
		self.assertEqual(st, 500)

	def test_targetstorage_and_rename(self):
		# storage_migrate: another type -> $volname_for_storage; pvesm import -allow-rename 1
		self.vm(100, scsi0='local:0.01,format=raw')
		# the name vm-100-disk-0 is taken on pve2's local-lvm (a stale volume)
		self.vm(100 + 1, 'pve2', scsi0='local-lvm:0.01')
		log = self.task('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve2',
			'targetstorage': 'local:local-lvm'})
		self.assertIn("volume 'local:100/vm-100-disk-0.raw' is 'local-lvm:vm-100-disk-0' on "
			'the target', log)
		# qcow2 cannot go to lvmthin ($volname_for_storage)
		self.vm(102, scsi0='local:0.01')
		log = self.task('POST', '/nodes/pve1/qemu/102/migrate', {'target': 'pve2',
			'targetstorage': 'local-lvm'}, status='migration aborted')
		self.assertTrue(any("storage migration for 'local:102/vm-102-disk-0.qcow2' to storage "
			"'local-lvm' failed - unsupported format 'qcow2' for storage type lvmthin" in line
			for line in log), log)
		self.assertNotIn('lock', self.conf(102))  # phase1_cleanup
		# zfs streams only go to zfs (volume_export_formats)
		self.vm(103, scsi0='tank:0.01')
		log = self.task('POST', '/nodes/pve1/qemu/103/migrate', {'target': 'pve2',
			'targetstorage': 'local-lvm'}, status='migration aborted')
		self.assertTrue(any("cannot migrate from storage type 'zfspool' to 'lvmthin'" in line
			for line in log), log)

	def test_worker_checks(self):
		# QemuMigrate.pm scan_local_volumes: local ISO, linked clone, target offline (prepare)
		import subprocess
		import tempfile
		iso = os.path.join(self.sim.state_dir, 'storage/local/iso/x.iso')
		with open(iso, 'wb') as f:
			f.write(b'\0' * 4096)
		self.vm(100, scsi0='local-lvm:0.01', ide2='local:iso/x.iso,media=cdrom')
		log = self.task('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve2'},
			status='migration aborted')
		self.assertIn("WARN: can't migrate local disk 'local:iso/x.iso': local cdrom image", log)
		self.assertIn('ERROR: migration aborted (duration 00:00:00): Problem found while '
			"scanning volumes - can't migrate VM - check log", log)
		self.assertEqual(self.state()['vms']['100']['node'], 'pve1')
		# linked clone on dir storage: the Perl die without newline
		self.vm(110, scsi0='local:0.01')
		self.task('POST', '/nodes/pve1/qemu/110/template')
		self.task('POST', '/nodes/pve1/qemu/110/clone', {'newid': 111})
		log = self.task('POST', '/nodes/pve1/qemu/111/migrate', {'target': 'pve2'},
			status='migration aborted')
		self.assertIn("ERROR: migration aborted (duration 00:00:00): Problem found while "
			"scanning volumes - can't migrate 'local:110/base-110-disk-0.qcow2/111/"
			"vm-111-disk-0.qcow2' as it's a clone of 'base-110-disk-0.qcow2' at "
			'/usr/share/perl5/PVE/QemuMigrate.pm line 586.', log)
		# the template itself: its base is used by the clone (volume_is_base_and_used)
		log = self.task('POST', '/nodes/pve1/qemu/110/migrate', {'target': 'pve2'},
			status='migration aborted')
		self.assertIn("WARN: can't migrate local disk 'local:110/base-110-disk-0.qcow2': "
			'referenced by linked clone(s)', log)
		# target offline: the ssh test at the end of prepare
		self.vm(120, scsi0='local-lvm:0.01')
		self.sim.control('POST', '/_sim/node/pve2', {'online': False})
		log = self.task('POST', '/nodes/pve1/qemu/120/migrate', {'target': 'pve2'},
			status='migration aborted')
		self.assertIn('ERROR: migration aborted (duration 00:00:00): Can\'t connect to '
			'destination address using public key', log)
		del subprocess, tempfile

	def test_template_and_lvmthin_clone(self):
		# an lvmthin thin clone names no base (LvmThinPlugin parse_volname): it is copied as a
		# standalone volume; the template (base unused by name) migrates with its base volume
		# (LvmThinPlugin volume_import of a base: create_base on the target)
		self.vm(110, scsi0='local-lvm:0.01')
		self.task('POST', '/nodes/pve1/qemu/110/template')
		self.task('POST', '/nodes/pve1/qemu/110/clone', {'newid': 111})
		self.task('POST', '/nodes/pve1/qemu/111/migrate', {'target': 'pve2'})
		self.assertTrue(self.conf(111, 'pve2')['scsi0'].startswith('local-lvm:vm-111-disk-0'))
		self.task('POST', '/nodes/pve1/qemu/110/migrate', {'target': 'pve3'})
		c = self.conf(110, 'pve3')
		self.assertTrue(c['scsi0'].startswith('local-lvm:base-110-disk-0'))
		self.assertEqual(c['template'], 1)
		self.assertEqual(self.vols('pve3', 'local-lvm'), ['local-lvm:base-110-disk-0'])
		# a dir template whose base no clone uses migrates too
		self.vm(120, scsi0='local:0.01')
		self.task('POST', '/nodes/pve1/qemu/120/template')
		self.task('POST', '/nodes/pve1/qemu/120/migrate', {'target': 'pve2'})
		self.assertTrue(self.conf(120, 'pve2')['scsi0'].startswith(
			'local:120/base-120-disk-0.qcow2'))

	def test_online(self):
		# migrate_vm: running + online; scan_local_volumes: attached local disks need
		# with-local-disks
		self.vm(100, scsi0='local-lvm:0.01')
		self.sim.control('POST', '/_sim/vm/100', {'status': 'running'})
		log = self.task('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve2', 'online': 1},
			status='migration aborted')
		self.assertIn("WARN: can't migrate local disk 'local-lvm:vm-100-disk-0': can't live "
			'migrate attached local disks without with-local-disks option', log)
		self.task('POST', '/nodes/pve1/qemu/100/migrate', {'target': 'pve2', 'online': 1,
			'with-local-disks': 1})
		self.assertEqual(self.state()['vms']['100']['status'], 'running')
		self.vm(101, scsi0='ceph:0.01')
		self.sim.control('POST', '/_sim/vm/101', {'status': 'running'})
		self.task('POST', '/nodes/pve1/qemu/101/migrate', {'target': 'pve3', 'online': 1})
		self.assertEqual(self.state()['vms']['101']['node'], 'pve3')

	def test_precondition(self):
		# qs API2/Qemu.pm migrate_vm_precondition, check_local_storage_availability
		self.vm(100, scsi0='only1:0.01', scsi1='nfs:0.01', ide2='local-lvm:cloudinit')
		d = self.ok('GET', '/nodes/pve1/qemu/100/migrate')
		self.assertEqual(d['running'], 0)
		self.assertEqual(d['allowed_nodes'], [])
		self.assertEqual(d['not_allowed_nodes'], {
			'pve2': {'unavailable_storages': ['only1']},
			'pve3': {'unavailable_storages': ['only1']}})
		self.assertEqual(sorted(x['volid'] for x in d['local_disks']),
			['local-lvm:vm-100-cloudinit', 'only1:100/vm-100-disk-0.qcow2'])
		self.assertEqual(d['local_resources'], [])
		self.vm(101, scsi0='nfs:0.01')
		d = self.ok('GET', '/nodes/pve1/qemu/101/migrate')
		# every other node is a key of not_allowed_nodes, {} when nothing blocks it
		self.assertEqual((d['allowed_nodes'], d['not_allowed_nodes'], d['local_disks']),
			(['pve2', 'pve3'], {'pve2': {}, 'pve3': {}}, []))


class CloneTarget(Base):
	def test_clone_to_other_node(self):
		# qs API2/Qemu.pm clone_vm: $check_storage_access_clone sharedvm; 'target' moves the new
		# config (move_config_to_node)
		self.vm(100, scsi0='nfs:0.01', ide2='ceph:cloudinit')
		self.task('POST', '/nodes/pve1/qemu/100/template')
		self.task('POST', '/nodes/pve1/qemu/100/clone', {'newid': 101, 'target': 'pve2'})
		self.assertEqual(self.state()['vms']['101']['node'], 'pve2')
		self.assertTrue(self.conf(101, 'pve2')['scsi0'].startswith(
			'nfs:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2'))
		self.task('POST', '/nodes/pve1/qemu/100/clone', {'newid': 102, 'target': 'pve3',
			'full': 1, 'storage': 'ceph'})
		self.assertTrue(self.conf(102, 'pve3')['scsi0'].startswith('ceph:vm-102-disk-0'))
		# local storage: refused before the fork
		self.vm(110, scsi0='local-lvm:0.01')
		self.err('POST', '/nodes/pve1/qemu/110/clone', {'newid': 111, 'target': 'pve2'}, 500,
			"can't clone VM to node 'pve2' (VM uses local storage)")
		self.err('POST', '/nodes/pve1/qemu/100/clone', {'newid': 112, 'target': 'pve2',
			'full': 1, 'storage': 'local-lvm'}, 500,
			"can't clone to non-shared storage 'local-lvm'")


if __name__ == '__main__':
	unittest.main()
