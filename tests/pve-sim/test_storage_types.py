"""Storage types, stages, privileges and versions. Each case names the Perl function its
behaviour comes from (pve-storage ps, qemu-server qs, pve-guest-common pgc, pve-access-control
pac)."""

import os
import subprocess
import tempfile
import unittest

from simharness import Simulator

NODE = '/nodes/pve1'
STORAGES = [
	{'storage': 'local', 'type': 'dir', 'content': 'images,import,iso,snippets,vztmpl'},
	{'storage': 'local-lvm', 'type': 'lvmthin', 'vgname': 'pve', 'thinpool': 'data'},
	{'storage': 'thick', 'type': 'lvm', 'vgname': 'vg0', 'content': 'images'},
	{'storage': 'tank', 'type': 'zfspool', 'pool': 'rpool/data'},
	{'storage': 'ceph', 'type': 'rbd', 'pool': 'rbd', 'content': 'images'},
	{'storage': 'nfs', 'type': 'nfs', 'server': '10.0.0.1', 'export': '/x',
		'content': 'images,iso', 'format': 'raw'},
	{'storage': 'only2', 'type': 'dir', 'path': '/srv/only2', 'nodes': 'pve2',
		'content': 'images'},
]
LIMITED = 'limited@pve!tok'
LSECRET = '33333333-0000-0000-0000-000000000000'


class Base(unittest.TestCase):
	opts = {}

	@classmethod
	def setUpClass(cls):
		cls.sim = Simulator(task_duration=0.02, name='pve-sim.' + cls.__name__, **cls.opts)
		cls.sim.start()
		cls.tmp = tempfile.mkdtemp(prefix='pve-sim-st-')

	@classmethod
	def tearDownClass(cls):
		cls.sim.cleanup()
		subprocess.call(['rm', '-rf', cls.tmp])

	def ok(self, method, path, params=None, headers=None):
		st, _, b = self.sim.api(method, path, params, headers=headers)
		self.assertEqual(st, 200, b)
		return b['data']

	def task(self, method, path, params=None, status='OK', headers=None):
		res = self.sim.wait_task(self.ok(method, path, params, headers))
		self.assertEqual(res['exitstatus'], status)
		return res

	def err(self, method, path, params, code, msg, headers=None):
		st, rs, b = self.sim.api(method, path, params, headers=headers)
		self.assertEqual((st, rs), (code, msg), b)

	def conf(self, vmid):
		return self.ok('GET', '%s/qemu/%d/config' % (NODE, vmid))

	def upload_import(self, name, data):
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
		c.request('POST', '/api2/json/nodes/pve1/storage/local/upload', body=body, headers={
			'Authorization': self.sim.auth_header,
			'Content-Type': 'multipart/form-data; boundary=' + b})
		r = c.getresponse()
		raw = json.loads(r.read())
		c.close()
		return r.status, raw


class StorageTypes(Base):
	opts = {'storage_config': STORAGES, 'nodes': 'pve1,pve2'}

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		img = os.path.join(cls.tmp, 'src.qcow2')
		subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '64M'])
		with open(img, 'rb') as f:
			cls.img = f.read()
		st, b = Base.upload_import(cls, 'src.qcow2', cls.img)
		assert st == 200, b
		cls.sim.wait_task(b['data'])

	def build_template(self, vmid, sid):
		self.task('POST', NODE + '/qemu', {'vmid': vmid, 'scsi0': '%s:0,import-from='
			'local:import/src.qcow2' % sid, 'ide2': '%s:cloudinit' % sid,
			'net0': 'virtio,bridge=vmbr0'})
		self.task('POST', '%s/qemu/%d/template' % (NODE, vmid))
		return self.conf(vmid)

	def vols(self, sid, vmid=None):
		p = {'vmid': vmid} if vmid else None
		return {v['volid']: v for v in self.ok('GET', '%s/storage/%s/content' % (NODE, sid), p)}

	# ps API2/Storage/Config.pm index, Plugin.pm parse_config (nfs/rbd always shared),
	# API2/Storage/Status.pm index (only storages enabled on the node)
	def test_01_storage_lists(self):
		cfg = {s['storage']: s for s in self.ok('GET', '/storage')}
		self.assertEqual(cfg['local-lvm']['type'], 'lvmthin')
		self.assertEqual(cfg['local-lvm']['content'], 'images,rootdir')
		self.assertEqual((cfg['local-lvm']['vgname'], cfg['local-lvm']['thinpool']),
			('pve', 'data'))
		self.assertEqual(cfg['ceph'].get('shared'), 1)
		self.assertEqual(cfg['nfs'].get('shared'), 1)
		self.assertNotIn('shared', cfg['local-lvm'])
		self.assertEqual(cfg['only2']['nodes'], 'pve2')
		self.assertEqual(self.ok('GET', '/storage/tank')['pool'], 'rpool/data')
		on1 = {s['storage']: s for s in self.ok('GET', NODE + '/storage')}
		self.assertNotIn('only2', on1)
		self.assertEqual(on1['ceph']['shared'], 1)
		self.assertEqual(on1['local-lvm']['shared'], 0)
		on2 = {s['storage'] for s in self.ok('GET', '/nodes/pve2/storage')}
		self.assertIn('only2', on2)
		self.assertEqual({s['storage'] for s in self.ok('GET', NODE + '/storage',
			{'content': 'iso'})}, {'local', 'nfs'})
		res = [r for r in self.ok('GET', '/cluster/resources', {'type': 'storage'})
			if r['storage'] == 'tank']
		self.assertEqual({r['plugintype'] for r in res}, {'zfspool'})

	# ps LvmThinPlugin.pm alloc_image/create_base/clone_image: raw, vm-N-disk-M, base-N-disk-M,
	# thin clones whose volume id does not name the base (the NOTE atop LvmThinPlugin.pm)
	def test_02_lvmthin(self):
		conf = self.build_template(9100, 'local-lvm')
		self.assertTrue(conf['scsi0'].startswith('local-lvm:base-9100-disk-0,'), conf)
		self.assertIn('size=64M', conf['scsi0'])
		self.assertTrue(conf['ide2'].startswith('local-lvm:vm-9100-cloudinit,media=cdrom'), conf)
		self.task('POST', NODE + '/qemu/9100/clone', {'newid': 8100})
		c = self.conf(8100)
		self.assertTrue(c['scsi0'].startswith('local-lvm:vm-8100-disk-0,'), c)
		self.assertTrue(c['ide2'].startswith('local-lvm:vm-8100-cloudinit,'), c)
		v = self.vols('local-lvm')
		self.assertEqual(v['local-lvm:vm-8100-disk-0']['format'], 'raw')
		self.assertEqual(v['local-lvm:vm-8100-disk-0']['size'], 64 << 20)
		self.assertEqual(v['local-lvm:base-9100-disk-0']['vmid'], 9100)
		# LVM-thin lets a base with clones go (ps Storage.pm vdisk_free comment); the clone
		# keeps its data
		self.task('DELETE', NODE + '/qemu/9100')
		self.assertNotIn('local-lvm:base-9100-disk-0', self.vols('local-lvm'))
		st, _, b = self.sim.api('PUT', NODE + '/qemu/8100/resize', {'disk': 'scsi0',
			'size': '+1M'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'OK')
		# LVM rounds to 4 MiB extents
		self.assertIn('size=68M', self.conf(8100)['scsi0'])
		self.task('DELETE', NODE + '/qemu/8100')

	# ps LVMPlugin.pm volume_has_feature (no 'template', no 'clone'), qs QemuServer.pm
	# template_create (skips volumes without the template feature), qs API2/Qemu.pm
	# clone_vm $load_and_check (before the fork: 500)
	def test_03_lvm_thick(self):
		conf = self.build_template(9200, 'thick')
		self.assertTrue(conf['scsi0'].startswith('thick:vm-9200-disk-0,'), conf)
		self.assertEqual(conf['template'], 1)
		self.err('POST', NODE + '/qemu/9200/clone', {'newid': 8200}, 500,
			"Linked clone feature is not supported for 'thick:vm-9200-disk-0' (scsi0)")
		self.task('POST', NODE + '/qemu/9200/clone', {'newid': 8201, 'full': 1})
		self.assertTrue(self.conf(8201)['scsi0'].startswith('thick:vm-8201-disk-0,'))
		self.task('DELETE', NODE + '/qemu/8201')
		self.task('DELETE', NODE + '/qemu/9200')

	# ps ZFSPoolPlugin.pm / RBDPlugin.pm create_base, clone_image ('base-../vm-..'),
	# volume_is_base_and_used (the base stays while a clone uses it)
	def test_04_zfs_rbd(self):
		for sid, vmid, newid in (('tank', 9300, 8300), ('ceph', 9400, 8400)):
			conf = self.build_template(vmid, sid)
			self.assertTrue(conf['scsi0'].startswith('%s:base-%d-disk-0,' % (sid, vmid)), conf)
			self.task('POST', '%s/qemu/%d/clone' % (NODE, vmid), {'newid': newid})
			c = self.conf(newid)
			self.assertTrue(c['scsi0'].startswith('%s:base-%d-disk-0/vm-%d-disk-0,' % (sid,
				vmid, newid)), c)
			v = self.vols(sid, newid)
			self.assertEqual(v['%s:base-%d-disk-0/vm-%d-disk-0' % (sid, vmid, newid)]['format'],
				'raw')
			self.task('DELETE', '%s/qemu/%d' % (NODE, vmid), None, "base volume '%s:base-%d-"
				"disk-0' is still in use by linked cloned" % (sid, vmid))
			self.task('DELETE', '%s/qemu/%d' % (NODE, newid))
			self.task('DELETE', '%s/qemu/%d' % (NODE, vmid))

	# ps Plugin.pm (file storages): a storage 'format' of raw -> .raw files; clone_image makes
	# a qcow2 overlay of the raw base
	def test_05_nfs_raw(self):
		conf = self.build_template(9500, 'nfs')
		self.assertTrue(conf['scsi0'].startswith('nfs:9500/base-9500-disk-0.raw,'), conf)
		self.assertTrue(conf['ide2'].startswith('nfs:9500/vm-9500-cloudinit.qcow2,'), conf)
		self.task('POST', NODE + '/qemu/9500/clone', {'newid': 8500})
		self.assertTrue(self.conf(8500)['scsi0'].startswith(
			'nfs:9500/base-9500-disk-0.raw/8500/vm-8500-disk-0.qcow2,'))
		self.task('DELETE', NODE + '/qemu/8500')
		self.task('DELETE', NODE + '/qemu/9500')

	# qs API2/Qemu.pm clone_vm $load_and_check: 'storage'/'format' with a linked clone -> 500
	def test_06_linked_clone_storage(self):
		self.build_template(9600, 'local')
		self.err('POST', NODE + '/qemu/9600/clone', {'newid': 8600, 'storage': 'local-lvm'},
			500, "parameter 'storage' not allowed for linked clones")
		self.err('POST', NODE + '/qemu/9600/clone', {'newid': 8600, 'format': 'raw'},
			500, "parameter 'format' not allowed for linked clones")
		# a full clone to lvmthin converts to raw
		self.task('POST', NODE + '/qemu/9600/clone', {'newid': 8601, 'full': 1,
			'storage': 'local-lvm'})
		c = self.conf(8601)
		self.assertTrue(c['scsi0'].startswith('local-lvm:vm-8601-disk-0,'), c)
		# clone to another node: only with shared storage
		self.err('POST', NODE + '/qemu/9600/clone', {'newid': 8602, 'target': 'pve2'}, 500,
			"can't clone VM to node 'pve2' (VM uses local storage)")
		self.task('DELETE', NODE + '/qemu/8601')
		self.task('DELETE', NODE + '/qemu/9600')

	# qs $check_storage_access: content 'images' needed; ps storage_check_enabled in the
	# create worker (storage on other nodes only)
	def test_07_storage_content_and_nodes(self):
		st, _, b = self.sim.api('POST', NODE + '/qemu', {'vmid': 700, 'scsi0': 'only2:1'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'],
			"storage 'only2' is not available on node 'pve1'")
		st, _, b = self.sim.api('POST', NODE + '/storage/local-lvm/upload', {'content':
			'import', 'filename': 'x.qcow2'})
		self.assertEqual(st, 501)

	# ps API2/Storage/Status.pm upload: the import file is probed by qemu-img as the format
	# its extension names (Plugin.pm file_size_info untrusted, Common.pm qemu_img_info: the
	# stderr is the error)
	def test_08_import_probe(self):
		st, b = self.upload_import('fake.qcow2', b'\0' * 65536)
		self.assertEqual(st, 200, b)
		res = self.sim.wait_task(b['data'])
		self.assertRegex(res['exitstatus'], r"^qemu-img: Could not open '.*/pveupload-[0-9a-f]+"
			r"': Image is not in qcow2 format$")
		st, b = self.upload_import('real.raw', b'\0' * 65536)
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'OK')
		self.assertIn('local:import/real.raw', self.vols('local'))
		self.assertNotIn('local:import/fake.qcow2', self.vols('local'))

	# ps API2/Storage/Content.pm delete + Plugin.pm free_image: a missing volume -> UPID,
	# task with a warning; the task id is <owner>@<storage>
	def test_09_delete_missing_volume(self):
		upid = self.ok('DELETE', NODE + '/storage/local/content/local:999/vm-999-disk-0.qcow2')
		self.assertIn(':imgdel:999@local:', upid)
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'WARNINGS: 1')
		log = [x['t'] for x in self.ok('GET', NODE + '/tasks/%s/log' % upid)]
		self.assertTrue(any(x.startswith("WARN: disk image '") and x.endswith("' does not exist")
			for x in log), log)
		# lvmthin free_image removes only what exists
		upid = self.ok('DELETE', NODE + '/storage/local-lvm/content/local-lvm:vm-999-disk-0')
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')


class Stages(Base):
	opts = {'lock_timeout': 0.5}

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.sim.wait_task(cls.sim.api('POST', NODE + '/qemu', {'vmid': 9000,
			'scsi0': 'local:0.01'})[2]['data'])
		cls.sim.wait_task(cls.sim.api('POST', NODE + '/qemu/9000/template')[2]['data'])

	# pgc create_and_lock_config + qs create_vm $emsg
	def test_01_duplicate(self):
		self.err('POST', NODE + '/qemu', {'vmid': 9000}, 500,
			"unable to create VM 9000 - VM 9000 already exists on node 'pve1'")

	# qs API2/Qemu.pm clone_vm $lock_source_vm (in the worker): an injected in-task lock
	# timeout for type qmclone fails the task, the next clone works (a client can retry)
	def test_02_clone_lock_timeout_in_task(self):
		self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'type': 'qmclone',
			'vmid': 9000})
		self.task('POST', NODE + '/qemu/9000/clone', {'newid': 8001}, "can't lock file "
			"'/var/lock/qemu-server/lock-9000.conf' - got timeout")
		self.assertNotIn('8001', self.sim.control('GET', '/_sim/state')['vms'])
		self.task('POST', NODE + '/qemu/9000/clone', {'newid': 8001})
		self.task('DELETE', NODE + '/qemu/8001')

	# qs API2/Qemu.pm template / resize_vm: lock_config in the worker
	def test_03_template_resize_lock_timeout_in_task(self):
		self.task('POST', NODE + '/qemu', {'vmid': 150, 'scsi0': 'local:0.01'})
		for ttype, method, path, p in (('resize', 'PUT', '/qemu/150/resize', {'disk': 'scsi0',
				'size': '+1M'}), ('qmtemplate', 'POST', '/qemu/150/template', None)):
			self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'type': ttype})
			self.task(method, NODE + path, p, "can't lock file '/var/lock/qemu-server/"
				"lock-150.conf' - got timeout")
		self.task('DELETE', NODE + '/qemu/150')

	# qs API2/Qemu.pm $update_vm_api up to qemu-server 9.1.18: the lock before the fork (500)
	def test_04_config_lock_before_fork(self):
		self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'vmid': 9000})
		self.err('POST', NODE + '/qemu/9000/config', {'description': 'x'}, 500,
			"can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout")
		# a typed fault does not hit the API process's lock
		self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'type': 'qmconfig'})
		self.task('POST', NODE + '/qemu/9000/config', {'description': 'y'})
		self.sim.control('DELETE', '/_sim/faults')

	# the clone worker holds the new VM's flock for the whole copy: config changes to it
	# wait for the lock (qs clone_vm $lock_target_vm)
	def test_05_clone_holds_new_vm_lock(self):
		self.sim.control('POST', '/_sim/task-duration', {'type': 'qmclone', 'seconds': 2})
		self.addCleanup(self.sim.control, 'POST', '/_sim/task-duration', {'type': 'qmclone',
			'seconds': 0.02})
		upid = self.ok('POST', NODE + '/qemu/9000/clone', {'newid': 8005})
		for _ in range(100):
			if '8005' in self.sim.control('GET', '/_sim/state')['vms']:
				break
			import time
			time.sleep(0.02)
		self.err('PUT', NODE + '/qemu/8005/config', {'cores': 2}, 500,
			"can't lock file '/var/lock/qemu-server/lock-8005.conf' - got timeout")
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')
		self.task('DELETE', NODE + '/qemu/8005')


class Version9119(Base):
	opts = {'qemu_server_version': '9.1.19', 'lock_timeout': 0.5}

	# qs API2/Qemu.pm $update_vm_api from 9.1.19 (commit 797ab238): the lock in the worker
	def test_config_lock_in_worker(self):
		self.task('POST', NODE + '/qemu', {'vmid': 100})
		self.sim.control('POST', '/_sim/fault', {'kind': 'lock-timeout', 'vmid': 100,
			'type': 'qmconfig'})
		self.task('POST', NODE + '/qemu/100/config', {'cores': 2}, "can't lock file "
			"'/var/lock/qemu-server/lock-100.conf' - got timeout")
		self.task('POST', NODE + '/qemu/100/config', {'cores': 2})
		self.assertEqual(self.conf(100)['cores'], 2)


class Versions(unittest.TestCase):
	# pm API2.pm version; qs versions per release (sim_state.RELEASES)
	def test_version_answers(self):
		for rel, mgr in (('8.4', '8.4.21'), ('9.0', '9.0.18'), ('9.1', '9.1.9'),
				('9.1.2', '9.1.2')):
			with Simulator(pve_version=rel, name='pve-sim.versions-' + rel) as sim:
				st, _, b = sim.api('GET', '/version')
				self.assertEqual((b['data']['version'], b['data']['release']),
					(mgr, rel[:3]))
				self.assertRegex(b['data']['repoid'], '^[0-9a-f]{16}$')


AGENT_TOK = LIMITED + '=' + LSECRET


class AgentPrivs84(Base):
	opts = {'pve_version': '8.4', 'extra_tokens': [AGENT_TOK],
		'token_privs': [LIMITED + '=/vms:VM.Monitor,VM.Audit']}

	# qs API2/Qemu/Agent.pm before 9.0.3: VM.Monitor
	def test_agent_needs_vm_monitor(self):
		self.task('POST', NODE + '/qemu', {'vmid': 100, 'agent': 1})
		self.task('POST', NODE + '/qemu/100/status/start')
		self.sim.control('POST', '/_sim/agent/100', {'up': True})
		h = {'Authorization': 'PVEAPIToken=' + AGENT_TOK}
		self.ok('POST', NODE + '/qemu/100/agent/ping', headers=h)
		perms = self.ok('GET', '/access/permissions', {'path': '/'})['/']
		self.assertIn('VM.Monitor', perms)
		self.assertNotIn('VM.GuestAgent.Audit', perms)


class AgentPrivs91(Base):
	opts = {'extra_tokens': [AGENT_TOK], 'token_privs': [LIMITED + '=/vms:VM.Monitor,VM.Audit']}

	# qs API2/Qemu/Agent.pm from 9.0.3: VM.GuestAgent.Audit|Unrestricted; VM.Monitor is gone
	def test_agent_needs_guest_agent_audit(self):
		self.task('POST', NODE + '/qemu', {'vmid': 100, 'agent': 1})
		self.task('POST', NODE + '/qemu/100/status/start')
		self.sim.control('POST', '/_sim/agent/100', {'up': True})
		self.err('POST', NODE + '/qemu/100/agent/ping', None, 403, 'Permission check failed '
			'(/vms/100, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)',
			headers={'Authorization': 'PVEAPIToken=' + AGENT_TOK})


class Privileges(Base):
	opts = {'extra_tokens': [AGENT_TOK], 'token_privs': [
		LIMITED + '=/vms:VM.Allocate,VM.Audit,VM.Config.Disk,VM.Config.Options,'
		'VM.Config.Network;/storage:Datastore.AllocateSpace,Datastore.Audit;'
		'/sdn/zones/localnetwork/vmbr0:SDN.Use'],
		'sdn_config': {'vnets': [{'vnet': 'vnet1', 'zone': 'zone1', 'tag': 100}]}}

	def h(self):
		return {'Authorization': 'PVEAPIToken=' + AGENT_TOK}

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		iso = os.path.join(cls.sim.state_dir, 'storage/local/iso/seed.iso')
		with open(iso, 'wb') as f:
			f.write(b'\0' * 4096)

	# qs API2/Qemu.pm create_vm: drives need only storage privileges ($check_storage_access);
	# check_bridge_access: SDN.Use on /sdn/zones/<zone>/<bridge>, the zone of a VNet from
	# /cluster/sdn/vnets
	def test_01_create(self):
		self.task('POST', NODE + '/qemu', {'vmid': 100, 'scsi0': 'local:0.01',
			'ide2': 'local:iso/seed.iso,media=cdrom', 'net0': 'virtio,bridge=vmbr0'},
			headers=self.h())
		self.err('POST', NODE + '/qemu', {'vmid': 101, 'net0': 'virtio,bridge=vnet1'}, 403,
			'Permission check failed (/sdn/zones/zone1/vnet1, SDN.Use)', headers=self.h())
		# with a tag: /sdn/zones/<zone>/<bridge>/<tag> (an ACL on the bridge propagates)
		self.err('POST', NODE + '/qemu', {'vmid': 101, 'net0': 'virtio,bridge=vmbr1,tag=5'},
			403, 'Permission check failed (/sdn/zones/localnetwork/vmbr1/5, SDN.Use)',
			headers=self.h())
		self.task('POST', NODE + '/qemu', {'vmid': 102, 'net0': 'virtio,bridge=vmbr0,tag=5'},
			headers=self.h())

	# qs $update_vm_api $check_drive_perms (in the worker): CD-ROM needs VM.Config.CDROM,
	# a cloud-init drive VM.Config.Cloudinit and VM.Config.CDROM
	def test_02_update_drive_perms(self):
		self.task('POST', NODE + '/qemu', {'vmid': 110})
		self.task('POST', NODE + '/qemu/110/config', {'ide2': 'local:iso/seed.iso,media=cdrom'},
			'Permission check failed (/vms/110, VM.Config.CDROM)', headers=self.h())
		self.task('POST', NODE + '/qemu/110/config', {'ide0': 'local:cloudinit'},
			'Permission check failed (/vms/110, VM.Config.Cloudinit)', headers=self.h())
		self.task('POST', NODE + '/qemu/110/config', {'scsi0': 'local:0.01'}, headers=self.h())
		# PUT runs the same checks in the API process: 403
		self.err('PUT', NODE + '/qemu/110/config', {'ide2': 'local:iso/seed.iso,media=cdrom'},
			403, 'Permission check failed (/vms/110, VM.Config.CDROM)', headers=self.h())

	# pve-network Vnets.pm index/read: SDN.Audit or SDN.Allocate on /sdn/zones/<zone>/<vnet>
	def test_03_vnets(self):
		self.assertEqual([v['vnet'] for v in self.ok('GET', '/cluster/sdn/vnets')], ['vnet1'])
		v = self.ok('GET', '/cluster/sdn/vnets/vnet1')
		self.assertEqual((v['zone'], v['tag'], v['type']), ('zone1', 100, 'vnet'))
		self.assertEqual(self.ok('GET', '/cluster/sdn/vnets', headers=self.h()), [])
		self.assertEqual(self.sim.schema_violations(), [])


if __name__ == '__main__':
	unittest.main()
