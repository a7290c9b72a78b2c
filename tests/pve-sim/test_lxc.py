"""LXC containers in the simulator: create from an uploaded vztmpl archive on each storage type,
config, template, linked and full clones, power, interfaces, resize, destroy, privileges and
schema violations. Each case names the Perl it follows (pve-container pc-ct, pve-storage ps,
pve-guest-common pgc, pve-cluster)."""

import http.client
import io
import json
import re
import ssl
import subprocess
import tarfile
import unittest

from simharness import Simulator

NODE = '/nodes/pve1'
STORAGES = [
	{'storage': 'local', 'type': 'dir', 'content': 'images,rootdir,vztmpl,iso,import'},
	{'storage': 'local-lvm', 'type': 'lvmthin', 'vgname': 'pve', 'thinpool': 'data'},
	{'storage': 'thick', 'type': 'lvm', 'vgname': 'vg0', 'content': 'images,rootdir'},
	{'storage': 'tank', 'type': 'zfspool', 'pool': 'rpool/data'},
	{'storage': 'isos', 'type': 'dir', 'path': '/srv/isos', 'content': 'iso,vztmpl'},
]
LIMITED = 'limited@pve!tok'
LSECRET = '44444444-0000-0000-0000-000000000000'
DISKONLY = 'diskonly@pve!tok'
KEY = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRaeJ3bVdPTJ9z8B6ZGyzYNPZ4jyvtLpW2ZHkr0cBm1 '
	'ops@example')
TEMPLATE = 'local:vztmpl/debian-12-phoenix_amd64.tar.gz'


def rootfs_tarball(compress='gz', os_release='ID=debian\nVERSION_ID="12"\n', systemd=False):
	"""A small container root file system as Proxmox's check_tar_archive wants it: './'
	members, a sbin link, more than 10 members, an /etc/os-release."""
	buf = io.BytesIO()
	with tarfile.open(fileobj=buf, mode='w') as tf:
		def add(name, data=None, kind='file', target=None):
			ti = tarfile.TarInfo('./' + name)
			ti.mtime = 1700000000
			if kind == 'dir':
				ti.type = tarfile.DIRTYPE
				ti.mode = 0o755
				tf.addfile(ti)
			elif kind == 'link':
				ti.type = tarfile.SYMTYPE
				ti.linkname = target
				tf.addfile(ti)
			else:
				ti.size = len(data)
				ti.mode = 0o644
				tf.addfile(ti, io.BytesIO(data))
		for d in ('', 'etc', 'usr', 'usr/bin', 'usr/sbin', 'root', 'var', 'tmp', 'home'):
			add(d, kind='dir')
		add('sbin', kind='link', target='usr/sbin')
		add('bin', kind='link', target='usr/bin')
		if os_release is not None:
			add('etc/os-release', os_release.encode())
		add('etc/debian_version', b'12.7\n')
		add('etc/hostname', b'localhost\n')
		add('etc/machine-id', b'')
		if systemd:
			for d in ('etc/ssh', 'usr/lib', 'usr/lib/systemd', 'usr/lib/x86_64-linux-gnu',
					'usr/lib/x86_64-linux-gnu/systemd'):
				add(d, kind='dir')
			add('usr/lib/systemd/systemd', b'\x7fELF')
			add('usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so', b'\x7fELF')
	raw = buf.getvalue()
	if compress == 'gz':
		import gzip
		return gzip.compress(raw)
	if compress == 'zst':
		return subprocess.run(['zstd', '-q', '-c'], input=raw, stdout=subprocess.PIPE,
			check=True).stdout
	return raw


class Base(unittest.TestCase):
	opts = {}

	@classmethod
	def setUpClass(cls):
		cls.sim = Simulator(task_duration=0.02, name='pve-sim.' + cls.__name__,
			storage_config=STORAGES,
			extra_tokens=['%s=%s' % (LIMITED, LSECRET), '%s=%s' % (DISKONLY, LSECRET)],
			token_privs=[cls.limited_privs(), '%s=/vms/300:VM.Config.Disk;/storage/local-lvm:'
			'Datastore.AllocateSpace' % DISKONLY], **cls.opts)
		cls.sim.start()
		st, body = cls.upload('local', 'debian-12-phoenix_amd64.tar.gz', rootfs_tarball())
		assert st == 200, body
		cls.sim.wait_task(body['data'])

	@classmethod
	def limited_privs(cls):
		return '%s=/vms/300:VM.Allocate,VM.Config.Disk,VM.Config.Memory,VM.Config.Network,' \
			'VM.Config.Options,VM.Config.CPU;/storage/local:Datastore.Audit;' \
			'/sdn/zones/localnetwork:SDN.Use' % LIMITED

	@classmethod
	def tearDownClass(cls):
		cls.sim.cleanup()

	@classmethod
	def upload(cls, storage, name, data, auth=None):
		b = 'bnd-lxc'
		body = ('--%s\r\nContent-Disposition: form-data; name="content"\r\n\r\nvztmpl\r\n'
			'--%s\r\nContent-Disposition: form-data; name="filename"; filename="%s"\r\n'
			'Content-Type: application/octet-stream\r\n\r\n' % (b, b, name)).encode() + data + \
			('\r\n--%s--\r\n' % b).encode()
		host, port = cls.sim.url.split('//')[1].split(':')
		ctx = ssl.create_default_context(cafile=cls.sim.cert_path)
		ctx.check_hostname = False
		c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
		c.request('POST', '/api2/json/nodes/pve1/storage/%s/upload' % storage, body=body,
			headers={'Authorization': auth or cls.sim.auth_header,
				'Content-Type': 'multipart/form-data; boundary=' + b})
		r = c.getresponse()
		raw = r.read()
		c.close()
		return r.status, json.loads(raw) if raw else None

	def ok(self, method, path, params=None, headers=None):
		st, _, b = self.sim.api(method, path, params, headers=headers)
		self.assertEqual(st, 200, b)
		return b['data']

	def task(self, method, path, params=None, status='OK', headers=None):
		"""Runs a task; status None: any end (the caller looks at it)."""
		res = self.sim.wait_task(self.ok(method, path, params, headers))
		if status is not None:
			self.assertEqual(res['exitstatus'], status)
		return res

	def template(self, vmid, status='OK'):
		"""POST .../template answers null, not the UPID (pc-ct API2/LXC.pm template returns
		undef after forking): the task is found in the node's task list."""
		self.assertIsNone(self.ok('POST', '%s/lxc/%d/template' % (NODE, vmid)))
		tasks = self.ok('GET', NODE + '/tasks', {'source': 'all', 'vmid': vmid,
			'typefilter': 'vztemplate'})
		self.assertTrue(tasks)
		res = self.sim.wait_task(tasks[0]['upid'])
		if status is not None:
			self.assertEqual(res['exitstatus'], status)
		return res

	def err(self, method, path, params, code, msg, headers=None):
		st, rs, b = self.sim.api(method, path, params, headers=headers)
		self.assertEqual((st, rs), (code, msg), b)
		return b

	def log(self, upid):
		return [e['t'] for e in self.ok('GET', '%s/tasks/%s/log' % (NODE, upid),
			{'limit': 0})]

	def conf(self, vmid, **params):
		return self.ok('GET', '%s/lxc/%d/config' % (NODE, vmid), params or None)

	def create(self, vmid, status='OK', headers=None, **params):
		p = {'vmid': vmid, 'ostemplate': TEMPLATE, 'hostname': 'ct%d' % vmid,
			'rootfs': 'local-lvm:8', 'memory': 1024, 'swap': 256, 'cores': 2,
			'net0': 'name=eth0,bridge=vmbr0,ip=dhcp'}
		p.update(params)
		p = {k: v for k, v in p.items() if v is not None}
		return self.task('POST', NODE + '/lxc', p, status, headers)

	def volumes(self, storage):
		return {e['volid']: e for e in self.ok('GET', '%s/storage/%s/content' % (NODE, storage))
			if e['content'] in ('images', 'rootdir')}

	def destroy(self, vmid):
		self.task('DELETE', '%s/lxc/%d' % (NODE, vmid))

	@property
	def lim(self):
		return {'Authorization': 'PVEAPIToken=%s=%s' % (LIMITED, LSECRET)}


class Create(Base):
	def test_rootfs_volume_per_storage_type(self):
		# pc-ct LXC.pm alloc_disk: raw on dir (the storage has a path) and lvmthin, a
		# subvol on zfspool (ps ZFSPoolPlugin.pm alloc_image: subvol-<vmid>-disk-N)
		for vmid, storage, volid, fmt in (
				(200, 'local', 'local:200/vm-200-disk-0.raw', 'raw'),
				(201, 'local-lvm', 'local-lvm:vm-201-disk-0', 'raw'),
				(202, 'tank', 'tank:subvol-202-disk-0', 'subvol')):
			res = self.create(vmid, rootfs='%s:8' % storage)
			self.assertEqual((res['type'], res['id']), ('vzcreate', str(vmid)))
			conf = self.conf(vmid)
			self.assertEqual(conf['rootfs'], volid + ',size=8G')
			vols = self.volumes(storage)
			self.assertIn(volid, vols)
			self.assertEqual((vols[volid]['size'], vols[volid]['format']), (8 << 30, fmt))
		# the defaults create_vm fills in, the OS from the archive's /etc/os-release, the
		# network device as parse_lxc_network prints it (name first, type veth, a hwaddr)
		conf = self.conf(201)
		for k, v in (('hostname', 'ct201'), ('memory', 1024), ('swap', 256), ('cores', 2),
				('ostype', 'debian'), ('arch', 'amd64'), ('unprivileged', 1)):
			self.assertEqual(conf[k], v, k)
		self.assertRegex(conf['net0'], r'^name=eth0,bridge=vmbr0,hwaddr=BC:24:11:'
			r'[0-9A-F:]{8},ip=dhcp,type=veth$')
		self.assertNotIn('lock', conf)
		for vmid in (200, 201, 202):
			self.destroy(vmid)
		self.assertEqual(self.volumes('tank'), {})

	def test_defaults_and_task_log(self):
		# no rootfs: "$storage:4" on the 'storage' parameter; memory 512, swap 512, CT<vmid>
		upid = self.ok('POST', NODE + '/lxc', {'vmid': 203, 'ostemplate': TEMPLATE,
			'storage': 'local-lvm', 'password': 'secret-pw', 'ssh-public-keys': KEY})
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')
		conf = self.conf(203)
		self.assertEqual((conf['rootfs'], conf['hostname'], conf['memory'], conf['swap']),
			('local-lvm:vm-203-disk-0,size=4G', 'CT203', 512, 512))
		self.assertNotIn('password', conf)
		text = '\n'.join(self.log(upid))
		self.assertIn("extracting archive '", text)
		self.assertIn('Detected container architecture: amd64', text)
		# the request log never keeps the password
		with open(self.sim.log_path) as f:
			self.assertNotIn('secret-pw', f.read())
		self.destroy(203)

	def test_zstd_archive(self):
		# pc-ct Create.pm tar_compression_option: .tar.zst is unpacked with --zstd
		st, body = self.upload('local', 'alpine-zst.tar.zst', rootfs_tarball('zst',
			'ID=alpine\n'))
		self.assertEqual(st, 200, body)
		self.sim.wait_task(body['data'])
		self.create(204, ostemplate='local:vztmpl/alpine-zst.tar.zst')
		self.assertEqual(self.conf(204)['ostype'], 'alpine')
		self.destroy(204)

	def test_vztmpl_uploads(self):
		# ps API2/Storage/Status.pm upload: file storages only, names by $VZTMPL_EXT_RE_1
		# (.tar, .tar.gz, .tar.xz, .tar.zst, .tar.bz2), the storage must hold vztmpl content
		st, body = self.upload('local-lvm', 'x.tar.gz', rootfs_tarball())
		self.assertEqual((st, body['message']), (500, "can't upload to storage type "
			"'lvmthin'\n"))
		st, body = self.upload('local', 'x.tar.lzo', rootfs_tarball())
		self.assertEqual((st, body['errors']), (400, {'filename': 'wrong file extension'}))
		st, body = self.upload('isos', 'second.tar.gz', rootfs_tarball())
		self.assertEqual(st, 200, body)
		self.sim.wait_task(body['data'])
		vols = {e['volid']: e for e in self.ok('GET', NODE + '/storage/isos/content',
			{'content': 'vztmpl'})}
		self.assertEqual((vols['isos:vztmpl/second.tar.gz']['format'],
			vols['isos:vztmpl/second.tar.gz']['content']), ('tgz', 'vztmpl'))
		# a template on a storage without rootdir content still creates a container whose
		# rootfs is elsewhere
		self.create(219, ostemplate='isos:vztmpl/second.tar.gz')
		self.destroy(219)

	def test_refusals_before_the_task(self):
		# a storage without 'rootdir' content ($check_and_activate_storage)
		b = self.err('POST', NODE + '/lxc', {'vmid': 210, 'ostemplate': TEMPLATE,
			'rootfs': 'isos:8'}, 400, 'Parameter verification failed.')
		self.assertEqual(b['errors'], {'storage': "storage 'isos' does not support container "
			"directories"})
		# the ostemplate must be vztmpl content (ps Storage.pm check_volume_access)
		self.err('POST', NODE + '/lxc', {'vmid': 210, 'ostemplate': 'local:iso/x.iso'}, 500,
			"unable to use volume local:iso/x.iso - content type needs to be 'vztmpl'")
		# VMIDs are unique across VMs and containers (pve-cluster check_vmid_unused)
		self.task('POST', NODE + '/qemu', {'vmid': 211})
		self.err('POST', NODE + '/lxc', {'vmid': 211, 'ostemplate': TEMPLATE}, 500,
			"VM 211 already exists on node 'pve1'")
		self.create(212)
		self.err('POST', NODE + '/lxc', {'vmid': 212, 'ostemplate': TEMPLATE}, 500,
			"CT 212 already exists on node 'pve1'")
		# ... and the qemu endpoints do not see containers (different config directory)
		self.err('GET', NODE + '/qemu/212/config', None, 500,
			"Configuration file 'nodes/pve1/qemu-server/212.conf' does not exist")
		self.err('GET', NODE + '/lxc/211/config', None, 500,
			"Configuration file 'nodes/pve1/lxc/211.conf' does not exist")
		self.assertNotIn(212, [v['vmid'] for v in self.ok('GET', NODE + '/qemu')])
		self.assertEqual([v['vmid'] for v in self.ok('GET', NODE + '/lxc')], [212])
		# pve-common validate_ssh_public_keys: ssh-keygen -l must read every line
		self.err('POST', NODE + '/lxc', {'vmid': 213, 'ostemplate': TEMPLATE,
			'ssh-public-keys': 'ssh-rsa not-a-key'}, 500, 'SSH public key validation error')
		# a bare size is checked as a volume before create_vm adds the default storage
		# (check_ct_modify_config_perm -> ps check_volume_access): only root@pam may
		self.err('POST', NODE + '/lxc', {'vmid': 213, 'ostemplate': TEMPLATE, 'rootfs': '8'},
			500, 'Only root can pass arbitrary filesystem paths. at '
			'/usr/share/perl5/PVE/Storage.pm line 651.')
		# mount points need a rootfs
		self.err('POST', NODE + '/lxc', {'vmid': 213, 'ostemplate': TEMPLATE,
			'mp0': 'local-lvm:1,mp=/srv'}, 500,
			"mount points configured, but 'rootfs' not set - aborting")
		self.assertNotIn('213', self.sim.control('GET', 'state')['vms'])
		self.destroy(212)
		self.task('DELETE', NODE + '/qemu/211')

	def test_broken_archive_fails_the_task_and_leaves_nothing(self):
		st, body = self.upload('local', 'broken.tar.gz', b'\x1f\x8b not gzip at all')
		self.assertEqual(st, 200, body)
		self.sim.wait_task(body['data'])
		res = self.create(214, status=None, ostemplate='local:vztmpl/broken.tar.gz',
			rootfs='tank:2')
		self.assertRegex(res['exitstatus'], r"^unable to create CT 214 - command 'tar xpf - -z ")
		self.assertNotIn('214', self.sim.control('GET', 'state')['vms'])
		self.assertEqual(self.volumes('tank'), {})

	def test_systemd_nesting_warning_and_ssh_host_keys(self):
		# pc-ct Setup.pm post_create_hook: rewrite_ssh_host_keys, then check_systemd_nesting
		# warns for systemd > 241 without nesting (the task ends WARNINGS: 1); the clone's
		# post_clone_hook warns again but writes no host keys
		st, body = self.upload('local', 'sd.tar.gz', rootfs_tarball(systemd=True))
		self.sim.wait_task(body['data'])
		upid = self.ok('POST', NODE + '/lxc', {'vmid': 216, 'ostemplate':
			'local:vztmpl/sd.tar.gz', 'rootfs': 'local-lvm:1', 'hostname': 'sd.example.com'})
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'WARNINGS: 1')
		log = self.log(upid)
		self.assertIn('WARN: Systemd 252 detected. You may need to enable nesting.', log)
		self.assertIn("Creating SSH host key 'ssh_host_ed25519_key' - this may take some time ...",
			log)
		self.assertTrue(any(re.match(r'^done: SHA256:\S+ root@sd$', x) for x in log))
		self.template(216)
		res = self.task('POST', NODE + '/lxc/216/clone', {'newid': 217}, status='WARNINGS: 1')
		self.assertFalse(any('SSH host key' in x for x in self.log(res['upid'])))
		self.create(218, ostemplate='local:vztmpl/sd.tar.gz', features='nesting=1')
		for vmid in (217, 216, 218):
			self.destroy(vmid)

	def test_os_detection(self):
		# pc-ct Setup.pm $autodetect_type: an os-release ID without a plugin falls back to
		# the other files; an os-release without a known distribution fails
		st, body = self.upload('local', 'unknown.tar.gz', rootfs_tarball('gz', 'ID=plan9\n'))
		self.sim.wait_task(body['data'])
		upid = self.ok('POST', NODE + '/lxc', {'vmid': 215, 'ostemplate':
			'local:vztmpl/unknown.tar.gz', 'rootfs': 'local-lvm:1'})
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')
		self.assertEqual(self.conf(215)['ostype'], 'debian')  # etc/debian_version
		self.assertIn("unknown ID 'plan9' in /etc/os-release file, trying fallback detection",
			self.log(upid))
		self.destroy(215)


class Lifecycle(Base):
	def test_template_and_clones_per_storage(self):
		# pc-ct LXC.pm template_create -> ps create_base; clone_vm: linked by default from a
		# template when the storage can (volume_has_feature clone with valid_target_formats
		# raw/subvol: file storages' qcow2 overlays do not qualify)
		cases = (('local-lvm', 'local-lvm:base-220-disk-0', 'local-lvm:vm-221-disk-0'),
			('tank', 'tank:basevol-230-disk-0', 'tank:basevol-230-disk-0/subvol-231-disk-0'))
		for storage, base, linked in cases:
			tid = int(re.search(r'-(\d+)-disk', base).group(1))
			self.create(tid, rootfs='%s:8' % storage, tags='web;Debian')
			res = self.template(tid)
			self.assertEqual(res['type'], 'vztemplate')
			conf = self.conf(tid)
			self.assertEqual((conf['rootfs'], conf['template'], conf['tags']),
				(base + ',size=8G', 1, 'debian;web'))
			res = self.task('POST', '%s/lxc/%d/clone' % (NODE, tid), {'newid': tid + 1,
				'hostname': 'linked'})
			self.assertEqual((res['type'], res['id']), ('vzclone', str(tid)))
			c = self.conf(tid + 1)
			self.assertEqual((c['rootfs'], c['hostname']), (linked + ',size=8G', 'linked'))
			self.assertNotIn('template', c)
			self.assertNotEqual(c['net0'], conf['net0'])  # a new hwaddr
			self.assertNotIn('lock', self.conf(tid))  # the source's 'disk' lock is gone
			# a full clone onto another storage gets that storage's kind of volume
			self.task('POST', '%s/lxc/%d/clone' % (NODE, tid), {'newid': tid + 2, 'full': 1,
				'storage': 'local'})
			self.assertEqual(self.conf(tid + 2)['rootfs'],
				'local:%d/vm-%d-disk-0.raw,size=8G' % (tid + 2, tid + 2))
			self.assertEqual(self.volumes('local')['local:%d/vm-%d-disk-0.raw' % (tid + 2,
				tid + 2)]['size'], 8 << 30)
			# the linked clone's volume is in the listing with the name of its base
			self.assertIn(linked, self.volumes(storage))
			self.destroy(tid + 2)
		# a zfs base with a linked clone cannot go (ps Storage.pm vdisk_free); the volume and
		# config stay
		res = self.task('DELETE', NODE + '/lxc/230', status=None)
		self.assertEqual(res['exitstatus'], "base volume 'basevol-230-disk-0' is still in use "
			'by linked clones')
		self.assertEqual(self.conf(230)['template'], 1)
		for vmid in (221, 220, 231, 230):
			self.destroy(vmid)
		self.assertEqual((self.volumes('tank'), self.volumes('local-lvm')), ({}, {}))

	def test_linked_clone_refusals(self):
		self.create(240, rootfs='local:4')
		self.template(240)
		self.assertEqual(self.conf(240)['rootfs'], 'local:240/base-240-disk-0.raw,size=4G')
		self.err('POST', NODE + '/lxc/240/clone', {'newid': 241}, 500,
			"Linked clone feature for 'local:240/base-240-disk-0.raw' is not available")
		self.err('POST', NODE + '/lxc/240/clone', {'newid': 241, 'full': 0, 'storage': 'tank'},
			500, "parameter 'storage' not allowed for linked clones")
		# nothing was left behind by the refusals: no config of 241, no lock on 240
		self.assertNotIn('241', self.sim.control('GET', 'state')['vms'])
		self.assertNotIn('lock', self.conf(240))
		self.task('POST', NODE + '/lxc/240/clone', {'newid': 241, 'full': 1})
		self.assertEqual(self.conf(241)['rootfs'], 'local:241/vm-241-disk-0.raw,size=4G')
		# thick LVM has no template feature: the worker fails (LXC.pm template_create)
		self.create(242, rootfs='thick:1')
		res = self.template(242, status=None)
		self.assertEqual(res['exitstatus'], "Template feature is not available for "
			"'thick:vm-242-disk-0'")
		self.assertNotIn('template', self.conf(242))
		self.err('POST', NODE + '/lxc/240/template', None, 500,
			"you can't convert a template to a template")
		for vmid in (241, 240, 242):
			self.destroy(vmid)

	def test_clone_locks_the_source(self):
		# clone_vm: set_lock($vmid, 'disk') until the worker ends, so a second clone of the
		# same template is refused while the first runs (pgc AbstractConfig.pm set_lock)
		self.create(250, rootfs='local-lvm:2')
		self.template(250)
		self.sim.control('POST', 'task-duration', {'type': 'vzclone', 'seconds': 1.5})
		try:
			upid = self.ok('POST', NODE + '/lxc/250/clone', {'newid': 251})
			self.assertEqual(self.conf(250)['lock'], 'disk')
			self.assertEqual(self.conf(251)['lock'], 'create')
			self.err('POST', NODE + '/lxc/250/clone', {'newid': 252}, 500,
				'CT is locked (disk)')
			self.assertEqual(self.sim.wait_task(upid)['exitstatus'], 'OK')
		finally:
			self.sim.control('POST', 'task-duration', {'type': 'vzclone', 'seconds': 0.02})
		self.assertNotIn('lock', self.conf(250))
		self.task('POST', NODE + '/lxc/250/clone', {'newid': 252})
		# an injected failure of the clone task undoes the new CT and unlocks the source
		self.sim.control('POST', 'fault', {'kind': 'task', 'type': 'vzclone',
			'message': 'injected'})
		res = self.task('POST', NODE + '/lxc/250/clone', {'newid': 253}, status=None)
		self.assertEqual(res['exitstatus'], 'injected')
		self.assertNotIn('253', self.sim.control('GET', 'state')['vms'])
		self.assertNotIn('lock', self.conf(250))
		for vmid in (251, 252, 250):
			self.destroy(vmid)

	def test_power_status_interfaces(self):
		self.create(260, net1='name=eth1,bridge=vmbr1,ip=192.0.2.5/24,gw=192.0.2.1,'
			'hwaddr=BC:24:11:00:00:01')
		# API2/LXC/Status.pm: checks before the fork
		self.err('POST', NODE + '/lxc/260/status/stop', None, 500, 'CT 260 not running')
		self.assertIsNone(self.ok('GET', NODE + '/lxc/260/interfaces'))  # no pid: undef
		res = self.task('POST', NODE + '/lxc/260/status/start', None)
		self.assertEqual(res['type'], 'vzstart')
		self.err('POST', NODE + '/lxc/260/status/start', None, 500, 'CT 260 already running')
		st = self.ok('GET', NODE + '/lxc/260/status/current')
		self.assertEqual((st['status'], st['type'], st['name'], st['maxmem'], st['maxswap'],
			st['maxdisk'], st['cpus']), ('running', 'lxc', 'ct260', 1 << 30, 256 << 20, 8 << 30, 2))
		ifaces = {i['name']: i for i in self.ok('GET', NODE + '/lxc/260/interfaces')}
		self.assertEqual(sorted(ifaces), ['eth0', 'eth1', 'lo'])
		# LXC.pm get_interfaces: families as `ip --json a` names them
		self.assertEqual(ifaces['eth1']['ip-addresses'], [{'ip-address-type': 'inet',
			'ip-address': '192.0.2.5', 'prefix': 24}])
		self.assertEqual((ifaces['eth1']['inet'], ifaces['eth1']['hwaddr']),
			('192.0.2.5/24', 'bc:24:11:00:00:01'))
		self.assertRegex(ifaces['eth0']['inet'], r'^10\.\d+\.\d+\.15/24$')
		# /cluster/resources lists containers as type lxc
		res = [e for e in self.ok('GET', '/cluster/resources', {'type': 'vm'})
			if e['vmid'] == 260]
		self.assertEqual(len(res), 1)
		self.assertEqual((res[0]['id'], res[0]['type'], res[0]['status'], res[0]['maxcpu'],
			res[0]['template']), ('lxc/260', 'lxc', 'running', 2, 0))
		self.err('DELETE', NODE + '/lxc/260', None, 500,
			'unable to destroy CT 260 - container is running')
		self.task('POST', NODE + '/lxc/260/status/reboot', None)
		self.task('POST', NODE + '/lxc/260/status/shutdown', None)
		self.assertEqual(self.ok('GET', NODE + '/lxc/260/status/current')['status'], 'stopped')
		self.template(260)
		res = self.task('POST', NODE + '/lxc/260/status/start', None, status=None)
		self.assertEqual(res['exitstatus'], "you can't start a CT if it's a template")
		self.destroy(260)

	def test_config_update(self):
		self.create(270)
		conf = self.conf(270)
		self.assertIsNone(self.ok('PUT', NODE + '/lxc/270/config', {'memory': 2048,
			'onboot': 1, 'tags': 'B;a', 'delete': 'swap', 'digest': conf['digest']}))
		conf = self.conf(270)
		self.assertEqual((conf['memory'], conf['onboot'], conf['tags']), (2048, 1, 'a;b'))
		self.assertNotIn('swap', conf)
		self.err('PUT', NODE + '/lxc/270/config', {'memory': 512, 'digest': 'f' * 40}, 500,
			'detected modified configuration - file changed by other user? Try again.')
		self.err('PUT', NODE + '/lxc/270/config', {'delete': 'memory'}, 500,
			"unable to delete required option 'memory'")
		# pc-ct LXC/Config.pm update_pct_config: read-only
		self.err('PUT', NODE + '/lxc/270/config', {'delete': 'unprivileged'}, 500,
			"unable to delete read-only option: 'unprivileged'")
		b = self.err('PUT', NODE + '/lxc/270/config', {'delete': 'bogus'}, 400,
			'Parameter verification failed.')
		self.assertEqual(b['errors'], {'delete': "unknown option 'bogus'"})
		# running: fast-plug and hot-plug options apply, the rest waits in pending
		self.task('POST', NODE + '/lxc/270/status/start', None)
		self.ok('PUT', NODE + '/lxc/270/config', {'cores': 4, 'nameserver': '192.0.2.53'})
		self.assertEqual(self.conf(270, current=1)['cores'], 4)
		self.assertNotIn('nameserver', self.conf(270, current=1))
		self.assertEqual(self.conf(270)['nameserver'], '192.0.2.53')
		pend = {e['key']: e for e in self.ok('GET', NODE + '/lxc/270/pending')}
		self.assertEqual(pend['nameserver'], {'key': 'nameserver', 'pending': '192.0.2.53'})
		self.task('POST', NODE + '/lxc/270/status/stop', None)
		self.destroy(270)

	def test_resize(self):
		self.create(280, rootfs='tank:4')
		res = self.task('PUT', NODE + '/lxc/280/resize', {'disk': 'rootfs', 'size': '+2G'})
		self.assertEqual(res['type'], 'resize')
		self.assertEqual(self.conf(280)['rootfs'], 'tank:subvol-280-disk-0,size=6G')
		self.assertEqual(self.volumes('tank')['tank:subvol-280-disk-0']['size'], 6 << 30)
		self.err('PUT', NODE + '/lxc/280/resize', {'disk': 'rootfs', 'size': '5G'}, 500,
			'unable to shrink disk size')
		self.err('PUT', NODE + '/lxc/280/resize', {'disk': 'rootfs', 'size': '6G'}, 500,
			'disk is already at specified size')
		self.create(281, rootfs='local-lvm:1')
		self.task('PUT', NODE + '/lxc/281/resize', {'disk': 'rootfs', 'size': '1.5G'})
		self.assertEqual(self.conf(281)['rootfs'], 'local-lvm:vm-281-disk-0,size=1536M')
		self.destroy(280)
		self.destroy(281)


class Privileges(Base):
	def test_create_privileges(self):
		# create_vm: VM.Allocate (a bare raise_perm_exc), then check_ct_modify_config_perm,
		# then the template's and the rootfs storage's access
		self.err('POST', NODE + '/lxc', {'vmid': 301, 'ostemplate': TEMPLATE}, 403,
			'Permission check failed', headers=self.lim)
		p = {'vmid': 300, 'ostemplate': TEMPLATE, 'rootfs': 'local-lvm:1'}
		self.err('POST', NODE + '/lxc', dict(p, unprivileged=0), 403,
			'Permission check failed (/, Sys.Modify)', headers=self.lim)
		self.err('POST', NODE + '/lxc', dict(p, features='nesting=1,keyctl=1'), 403,
			'Permission check failed (changing feature flags (except nesting) is only allowed '
			'for root@pam)', headers=self.lim)
		self.err('POST', NODE + '/lxc', p, 403,
			'Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)',
			headers=self.lim)
		self.err('POST', NODE + '/lxc', dict(p, net0='name=eth0,bridge=vmbr1',
			rootfs='tank:1'), 403, 'Permission check failed (/sdn/zones/localnetwork/vmbr1, '
			'SDN.Use)', headers=self.lim)
		self.err('POST', NODE + '/lxc', dict(p, ostemplate='isos:vztmpl/x.tar.gz',
			rootfs='tank:1'), 403, 'Permission check failed (/storage/isos, '
			'Datastore.AllocateSpace|Datastore.Audit)', headers=self.lim)
		self.err('POST', NODE + '/lxc', dict(p, rootfs='local:1'), 403,
			'Permission check failed (/storage/local, Datastore.AllocateSpace)',
			headers=self.lim)
		self.assertEqual(self.sim.control('GET', 'state')['vms'], {})

	def test_upload_needs_allocate_template(self):
		# pm HTTPServer.pm: the upload privilege before the body is read
		st, body = self.upload('local', 'x.tar.gz', rootfs_tarball(), auth='PVEAPIToken=%s=%s'
			% (LIMITED, LSECRET))
		self.assertEqual(st, 403)

	def test_resize_needs_config_options(self):
		# resize_vm passes {disk => ...} to check_ct_modify_config_perm: VM.Config.Options
		self.create(300)
		self.assertEqual(self.sim.control('GET', 'state')['vms']['300']['type'], 'lxc')
		self.err('PUT', NODE + '/lxc/300/resize', {'disk': 'rootfs', 'size': '+1G'}, 403,
			'Permission check failed (/vms/300, VM.Config.Options)',
			headers={'Authorization': 'PVEAPIToken=%s=%s' % (DISKONLY, LSECRET)})
		self.err('PUT', NODE + '/lxc/300/resize', {'disk': 'rootfs', 'size': '+1G'}, 403,
			'Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)',
			headers=self.lim)
		self.destroy(300)

	@classmethod
	def limited_privs(cls):
		return '%s=/vms/300:VM.Allocate,VM.Config.Disk,VM.Config.Memory,VM.Config.Network,' \
			'VM.Config.Options,VM.Config.CPU,VM.Audit;/storage/local:Datastore.Audit;' \
			'/storage/tank:Datastore.AllocateSpace;/sdn/zones/localnetwork/vmbr0:SDN.Use' % LIMITED


class SchemaViolations(Base):
	def test_violations_are_refused_and_logged(self):
		for params, key in (({'memory': 8}, 'memory'),
				({'hostname': 'bad_name'}, 'hostname'),
				({'rootfs': 'local-lvm:8,bogus=1'}, 'rootfs'),
				({'net0': 'name=eth0,bridge=vmbr0,ip=10.0.0.5'}, 'net0'),
				({'features': 'nesting=maybe'}, 'features'),
				({'password': 'abc'}, 'password')):
			p = {'vmid': 400, 'ostemplate': TEMPLATE}
			p.update(params)
			b = self.err('POST', NODE + '/lxc', p, 400, 'Parameter verification failed.')
			self.assertIn(key, b['errors'])
		self.err('PUT', NODE + '/lxc/400/resize', {'disk': 'rootfs', 'size': '-1G'}, 400,
			'Parameter verification failed.')
		bad = self.sim.schema_violations()
		self.assertEqual(len(bad), 7)
		self.assertEqual(sorted(v['param'] for r in bad for v in r['violations']),
			['features', 'hostname', 'memory', 'net0', 'password', 'rootfs', 'size'])
		# the password of the refused request is not in the log either
		with open(self.sim.log_path) as f:
			self.assertNotIn('"abc"', f.read())
		self.assertEqual(self.sim.control('GET', 'state')['vms'], {})


if __name__ == '__main__':
	unittest.main()
