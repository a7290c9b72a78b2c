"""Real containers (`pve_sim.py --lxc-real`, lxc_hv.py). SetupHooks: lxc_setup.py on small made-up
trees (Debian's interfaces merge, secrets, machine-id, snakeoil, Ubuntu's networkd files).
RealContainers: one container created from the full test rootfs (scripts/build-test-rootfs.sh)
with a root password, an SSH key, a static address on net0 and DHCP on net1, proved from its
root file system (the interfaces, hostname, hosts, password and key Proxmox wrote), a start
that fails early and leaves nothing; a second container and clones prove that create writes new
host keys and clone keeps them and truncates /etc/machine-id (pc-ct Setup.pm
rewrite_ssh_host_keys, Setup/Base.pm clear_machine_id); destroy leaves no rootfs, veth, mount
or lxc directory, and the simulator's exit no bridge. No container boots here: the boot (both
networks, SSH with the key, the host key presented, unprivileged init, shutdown) is proved on
our own template by tests/integration/test_provision_ct.py RealContainerTest.

Needs root, lxc, dnsmasq, an ssh client and the test rootfs; skips with the reason otherwise.
The rootfs gets ifupdown first (cached): pc-ct Setup/Debian.pm configures netN only through
/etc/network/interfaces (docs/lxc-notes.md point 3), which the test image does not read."""

import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from simharness import Simulator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE = '/nodes/pve1'
STORAGES = [{'storage': 'local', 'type': 'dir', 'content': 'images,rootdir,vztmpl,iso'},
	{'storage': 'tank', 'type': 'zfspool', 'pool': 'rpool/data'}]
ARCHIVE = 'debian-12-phoenix-ifupdown_amd64.tar.zst'
PASSWORD = 'phx-Real-ct-1'


def cache_root():
	return os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
		'phoenix', 'test-rootfs-ifupdown')


def ifupdown_rootfs():
	"""(path, None) of the full test rootfs with ifupdown installed (dpkg in a chroot),
	cached beside the other test caches; (None, why) when it cannot be had."""
	if os.environ.get('PHX_SKIP_BOOT_TEST'):
		return None, 'PHX_SKIP_BOOT_TEST is set'
	p = subprocess.run([os.path.join(REPO, 'scripts', 'build-test-rootfs.sh')],
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	src = p.stdout.strip()
	if p.returncode or not os.path.isfile(src):
		return None, 'scripts/build-test-rootfs.sh failed: %s' % p.stderr.strip()[-300:]
	with open(__file__, 'rb') as f:
		me = f.read()
	key = hashlib.sha256(src.encode() + str(os.stat(src).st_mtime_ns).encode() +
		hashlib.sha256(me[me.index(b'def ifupdown_rootfs'):me.index(b'class RealContainers')])
		.digest()).hexdigest()[:16]
	out = os.path.join(cache_root(), key, ARCHIVE)
	if os.path.exists(out):
		return out, None
	os.makedirs(cache_root(), exist_ok=True)
	with open(os.path.join(cache_root(), '.lock'), 'w') as lock:
		fcntl.flock(lock, fcntl.LOCK_EX)  # other worktrees' runs may derive it right now
		if os.path.exists(out):
			return out, None
		for old in os.listdir(cache_root()):
			if old != '.lock':
				shutil.rmtree(os.path.join(cache_root(), old), ignore_errors=True)
		os.makedirs(os.path.dirname(out))
		return derive(src, out)


def ifupdown_deb():
	"""(path, None) of ifupdown's .deb from the host's apt sources, downloaded once and kept
	beside the other test caches (the customization appliance has no network: the
	end-to-end test of test_provision_ct installs it with customize.debs); (None, why)."""
	d = os.path.join(os.path.dirname(cache_root()), 'debs')
	os.makedirs(d, exist_ok=True)
	with open(os.path.join(d, '.lock'), 'w') as lock:
		fcntl.flock(lock, fcntl.LOCK_EX)
		have = [f for f in os.listdir(d) if f.startswith('ifupdown_') and f.endswith('.deb')]
		if have:
			return os.path.join(d, sorted(have)[-1]), None
		tmp = tempfile.mkdtemp(prefix='phx-debs-', dir=d)
		try:
			shutil.chown(tmp, '_apt')
			p = subprocess.run(['apt-get', 'download', '-q', 'ifupdown'], cwd=tmp,
				stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
			got = [f for f in os.listdir(tmp) if f.endswith('.deb')]
			if p.returncode or not got:
				return None, 'apt-get download ifupdown failed: %s' % p.stdout.strip()[-300:]
			os.replace(os.path.join(tmp, got[0]), os.path.join(d, got[0]))
			return os.path.join(d, got[0]), None
		finally:
			shutil.rmtree(tmp, ignore_errors=True)


def derive(src, out):
	work = tempfile.mkdtemp(prefix='phx-ifupdown-')
	try:
		path, why = ifupdown_deb()
		if why:
			return None, why
		root = os.path.join(work, 'root')
		os.mkdir(root)
		subprocess.run(['tar', '-xpf', src, '--zstd', '--numeric-owner', '--xattrs', '-C', root],
			check=True)
		deb = os.path.basename(path)
		shutil.copy(path, os.path.join(root, 'tmp', deb))
		p = subprocess.run(['chroot', root, 'dpkg', '-i', '/tmp/' + deb], stdout=subprocess.PIPE,
			stderr=subprocess.STDOUT, text=True)
		if p.returncode:
			return None, 'dpkg -i ifupdown in the rootfs failed: %s' % p.stdout.strip()[-300:]
		os.unlink(os.path.join(root, 'tmp', deb))
		tmp = out + '.tmp%d' % os.getpid()
		subprocess.run(['tar', '-cpf', tmp, '--zstd', '--numeric-owner', '--xattrs', '--acls',
			'-C', root, '.'], check=True)
		os.replace(tmp, out)
	finally:
		shutil.rmtree(work, ignore_errors=True)
	return out, None


def skip_reason():
	if os.geteuid() != 0:
		return 'real containers need root'
	for tool in ('ssh', 'ssh-keygen', 'openssl'):
		if not shutil.which(tool):
			return "'%s' not found" % tool
	import lxc_hv
	return lxc_hv.missing_requirements()


SKIP = skip_reason()


@unittest.skipIf(os.geteuid() != 0, 'lxc_setup.py chroots: needs root')
class SetupHooks(unittest.TestCase):
	"""lxc_setup.py (pve-container's Setup plugins, run chrooted) on small made-up trees: the
	parts the boot test does not reach. Each run takes a fraction of a second."""

	def tree(self, files):
		root = tempfile.mkdtemp(prefix='phx-ctsetup-')
		self.addCleanup(shutil.rmtree, root, True)
		for path, data in files.items():
			full = os.path.join(root, path)
			os.makedirs(os.path.dirname(full), exist_ok=True)
			if isinstance(data, tuple):  # ('link', target)
				os.symlink(data[1], full)
			elif data is None:
				os.makedirs(full, exist_ok=True)
			else:
				with open(full, 'w') as f:
					f.write(data)
		os.chmod(os.path.join(root, 'usr/lib/systemd/systemd'), 0o755)
		return root

	def hook(self, root, hook, conf, **extra):
		p = subprocess.run([sys.executable, os.path.join(HERE, 'lxc_setup.py'), root],
			input=json.dumps(dict(extra, hook=hook, conf=conf, root_uid=100000,
			root_gid=100000, host_dns={'dns': ['192.0.2.53'], 'search': 'host.example'})),
			stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		return p

	def read(self, root, path):
		with open(os.path.join(root, path)) as f:
			return f.read()

	BASE = {'usr/lib/systemd/systemd': '', 'sbin/init': ('link', '../usr/lib/systemd/systemd'),
		'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n',
		'etc/shadow': 'root:*:19000:0:99999:7:::\nops:!:19000:0:99999:7:::\n', 'root': None,
		'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
		'var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n',
		'usr/lib/systemd/system/container-getty@.service': 'ExecStart=-/sbin/agetty pts/%I\n',
		'etc/systemd/system/getty.target.wants': None, 'etc/ssl/private/ssl-cert-snakeoil.key': 'k'}

	def test_debian_create_merges_interfaces_and_writes_the_secrets(self):
		files = dict(self.BASE, **{'etc/debian_version': '12.7\n', 'etc/ssh': None,
			'etc/network/interfaces':
			'# keep me\nauto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n'
			'\tmtu 1400\n\nsource /etc/network/interfaces.d/*\n'})
		root = self.tree(files)
		conf = {'ostype': 'debian', 'hostname': 'web.example.org', 'nameserver': '1.1.1.1 9.9.9.9',
			'searchdomain': 'example.org', 'net0': 'name=eth0,bridge=vmbr0,ip=10.0.0.5/24,'
			'gw=10.9.9.1,hwaddr=BC:24:11:00:00:01,type=veth', 'net1': 'name=eth1,bridge=vmbr1,'
			'ip=dhcp,ip6=auto,type=veth'}
		p = self.hook(root, 'post_create', conf, password_hash='$6$salt$hash',
			ssh_keys='ssh-ed25519 AAAA test@x',
			host_keys=[['/etc/ssh/ssh_host_ed25519_key', 'PRIVATE\n', 0o600]])
		self.assertEqual(p.returncode, 0, p.stderr)
		# Debian.pm setup_network: other stanzas stay, eth0's is rewritten with its own
		# attributes kept, a gateway outside the subnet gets the routing scripts, eth1 is added
		self.assertEqual(self.read(root, 'etc/network/interfaces'),
			'# keep me\nauto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n'
			'\taddress 10.0.0.5/24\n# --- BEGIN PVE ---\n\tpost-up ip route add 10.9.9.1 dev eth0\n'
			'\tpost-up ip route add default via 10.9.9.1 dev eth0\n\tpre-down ip route del '
			'default via 10.9.9.1 dev eth0\n\tpre-down ip route del 10.9.9.1 dev eth0\n'
			'# --- END PVE ---\n\tmtu 1400\n\nsource /etc/network/interfaces.d/*\n\n'
			'auto eth1\niface eth1 inet dhcp\n\niface eth1 inet6 auto\n\n')
		self.assertEqual(self.read(root, 'etc/hostname'), 'web\n')
		self.assertEqual(self.read(root, 'etc/hosts'), '# --- BEGIN PVE ---\n127.0.0.1 '
			'localhost.localnet localhost\n::1 localhost.localnet localhost\n10.0.0.5 '
			'web.example.org web\n# --- END PVE ---\n')
		self.assertEqual(self.read(root, 'etc/resolv.conf'), '# --- BEGIN PVE ---\nsearch '
			'example.org\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n# --- END PVE ---\n')
		shadow = self.read(root, 'etc/shadow').splitlines()
		self.assertEqual(shadow[0], 'root:$6$salt$hash:%d:0:99999:7:::' % int(time.time() / 86400))
		self.assertEqual(shadow[1], 'ops:!:19000:0:99999:7:::')
		self.assertIn('ssh-ed25519 AAAA test@x', self.read(root, 'root/.ssh/authorized_keys'))
		st = os.stat(os.path.join(root, 'root/.ssh/authorized_keys'))
		self.assertEqual((st.st_uid, st.st_mode & 0o777), (100000, 0o700))
		self.assertEqual(os.stat(os.path.join(root, 'etc/ssh/ssh_host_ed25519_key')).st_mode &
			0o777, 0o600)
		self.assertFalse(os.path.exists(os.path.join(root, 'etc/machine-id')))
		self.assertFalse(os.path.exists(os.path.join(root, 'var/lib/dbus/machine-id')))
		self.assertFalse(os.path.exists(os.path.join(root,
			'etc/ssl/private/ssl-cert-snakeoil.key')))
		self.assertTrue(os.path.islink(os.path.join(root, 'etc/systemd/system/'
			'first-boot-complete.target.wants/proxmox-regenerate-snakeoil.service')))
		self.assertEqual(os.readlink(os.path.join(root, 'etc/systemd/system/getty.target.wants/'
			'container-getty@1.service')), '/usr/lib/systemd/system/container-getty@.service')
		self.assertIn('tty%I', self.read(root, 'usr/lib/systemd/system/container-getty@.service'))

		# pre_start_hook on the same tree changes nothing but /fastboot; a clone truncates
		before = self.read(root, 'etc/network/interfaces')
		self.assertEqual(self.hook(root, 'pre_start', conf).returncode, 0)
		self.assertEqual(self.read(root, 'etc/network/interfaces'), before)
		self.assertTrue(os.path.exists(os.path.join(root, 'fastboot')))
		with open(os.path.join(root, 'etc/machine-id'), 'w') as f:
			f.write('0123456789abcdef0123456789abcdef\n')
		self.assertEqual(self.hook(root, 'post_clone', conf).returncode, 0)
		self.assertEqual(self.read(root, 'etc/machine-id'), '\n')

	def test_no_password_locks_root_and_symlinks_stay_inside(self):
		# /etc/resolv.conf pointing at an absolute path resolves inside the rootfs (chroot)
		files = dict(self.BASE, **{'etc/debian_version': 'bookworm/sid\n',
			'etc/resolv.conf': ('link', '/run/systemd/resolve/stub-resolv.conf'),
			'run/systemd/resolve': None})
		root = self.tree(files)
		p = self.hook(root, 'post_create', {'ostype': 'debian', 'net0': 'name=eth0,ip=dhcp'})
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertTrue(self.read(root, 'etc/shadow').startswith('root:*:'))
		self.assertEqual(self.read(root, 'etc/resolv.conf'), '# --- BEGIN PVE ---\nsearch '
			'host.example\nnameserver 192.0.2.53\n# --- END PVE ---\n')
		self.assertEqual(self.read(root, 'etc/hosts').splitlines()[-2], '127.0.1.1 localhost')
		# no loopback stanza in the old file: Debian.pm adds one
		self.assertTrue(self.read(root, 'etc/network/interfaces').startswith(
			'auto lo\niface lo inet loopback\niface lo inet6 loopback\n\nauto eth0\n'))

	def test_ubuntu_gets_networkd_files(self):
		files = dict(self.BASE, **{'etc/lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\n',
			'etc/netplan/10-lxc.yaml': 'x'})
		root = self.tree(files)
		conf = {'ostype': 'ubuntu', 'net0': 'name=eth0,ip=10.1.0.9/16,gw=10.1.0.1,ip6=dhcp',
			'net1': 'name=eth1,ip=dhcp'}
		p = self.hook(root, 'post_create', conf)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.read(root, 'etc/systemd/network/eth0.network'),
			'[Match]\nName = eth0\n\n[Network]\nDescription = Interface eth0 autoconfigured by '
			'PVE\nAddress = 10.1.0.9/16\nGateway = 10.1.0.1\nDHCP = ipv6\nIPv6AcceptRA = true\n')
		self.assertIn('DHCP = ipv4\n', self.read(root, 'etc/systemd/network/eth1.network'))
		self.assertFalse(os.path.exists(os.path.join(root, 'etc/netplan/10-lxc.yaml')))
		self.assertIn('enable systemd-networkd.service',
			self.read(root, 'etc/systemd/system-preset/00-pve.preset'))
		p = self.hook(root, 'post_create', dict(conf, ostype='alpine'))
		self.assertNotEqual(p.returncode, 0)
		self.assertIn("not 'alpine'", p.stderr)


@unittest.skipIf(SKIP, SKIP or '')
class RealContainers(unittest.TestCase):
	"""Three creates (none started), two clones, one failed start and one failed create."""

	@classmethod
	def setUpClass(cls):
		cls.archive, why = ifupdown_rootfs()
		if why:
			raise unittest.SkipTest(why)
		cls.tmp = tempfile.mkdtemp(prefix='phx-ctreal-')
		cls.sim = Simulator(task_duration=0.02, name='pve-sim.' + cls.__name__,
			storage_config=STORAGES, lxc_real=True)
		cls.sim.start(timeout=60)

	@classmethod
	def tearDownClass(cls):
		cls.sim.stop()
		# a simulator that died mid-way may leave rootfs mounts: never rmtree through them
		with open('/proc/self/mounts') as f:
			mounts = [line.split()[1] for line in f]
		for m in reversed(mounts):
			if m.startswith(cls.sim.state_dir + '/'):
				subprocess.run(['umount', '-l', m])
		cls.sim.cleanup()
		shutil.rmtree(cls.tmp, ignore_errors=True)

	# -- helpers -----------------------------------------------------------------------------
	def api(self, method, path, params=None):
		st, _, body = self.sim.api(method, path, params)
		self.assertEqual(st, 200, '%s %s: %s' % (method, path, body))
		return body['data']

	def task(self, upid, timeout=300):
		res = self.sim.wait_task(upid, timeout=timeout)
		log = self.api('GET', '%s/tasks/%s/log' % (NODE, upid.replace(':', '%3A')),
			{'limit': 1000})
		text = '\n'.join(x['t'] for x in log)
		self.assertEqual(res['exitstatus'], 'OK', text)
		return text

	def upload(self, name, data):
		b = 'bnd-lxc-real'
		body = ('--%s\r\nContent-Disposition: form-data; name="content"\r\n\r\nvztmpl\r\n'
			'--%s\r\nContent-Disposition: form-data; name="filename"; filename="%s"\r\n'
			'Content-Type: application/octet-stream\r\n\r\n' % (b, b, name)).encode() + \
			data + ('\r\n--%s--\r\n' % b).encode()
		host, port = self.sim.url.split('//')[1].split(':')
		ctx = ssl.create_default_context(cafile=self.sim.cert_path)
		ctx.check_hostname = False
		c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=120)
		c.request('POST', '/api2/json%s/storage/local/upload' % NODE, body=body,
			headers={'Authorization': self.sim.auth_header,
				'Content-Type': 'multipart/form-data; boundary=' + b})
		r = c.getresponse()
		raw = json.loads(r.read())
		c.close()
		self.assertEqual(r.status, 200, raw)
		self.task(raw['data'])

	def volume_path(self, conf):
		volid = conf['rootfs'].split(',')[0]
		return self.api('GET', '%s/storage/%s/content/%s' % (NODE, volid.split(':')[0],
			volid))['path']

	def read_offline(self, conf, files):
		"""{file: contents or None} from a stopped container's rootfs: a raw volume mounted
		read-only, or a subvol (a directory)."""
		path = self.volume_path(conf)
		mnt = path
		if not os.path.isdir(path):
			mnt = tempfile.mkdtemp(dir=self.tmp)
			subprocess.run(['mount', '-o', 'loop,ro', path, mnt], check=True)
		try:
			st = os.statvfs(mnt)
			res = {'fs_bytes': st.f_blocks * st.f_frsize}
			for f in files:
				try:
					with open(os.path.join(mnt, f.lstrip('/'))) as fh:
						res[f] = fh.read()
				except FileNotFoundError:
					res[f] = None
			return res
		finally:
			if mnt != path:
				subprocess.run(['umount', mnt], check=True)
				os.rmdir(mnt)

	def write_offline(self, conf, path, data):
		"""Writes a file owned by the container's root (host uid 100000) into a stopped
		container's raw rootfs volume."""
		mnt = tempfile.mkdtemp(dir=self.tmp)
		subprocess.run(['mount', '-o', 'loop', self.volume_path(conf), mnt], check=True)
		try:
			f = os.path.join(mnt, path.lstrip('/'))
			with open(f, 'w') as fh:
				fh.write(data)
			os.chown(f, 100000, 100000)
		finally:
			subprocess.run(['umount', mnt], check=True)
			os.rmdir(mnt)

	def create(self, vmid, pubkey, net0, net1=None, rootfs='local:2'):
		params = {'vmid': vmid, 'ostemplate': 'local:vztmpl/' + ARCHIVE, 'rootfs': rootfs,
			'hostname': 'ct%d' % vmid, 'memory': 512, 'swap': 0, 'cores': 1,
			'features': 'nesting=1', 'unprivileged': 1, 'password': PASSWORD,
			'ssh-public-keys': pubkey, 'net0': net0}
		if net1:
			params['net1'] = net1
		return self.task(self.api('POST', NODE + '/lxc', params))

	# -- the test ----------------------------------------------------------------------------
	def test_container_from_the_test_rootfs_runs_for_real(self):
		t_all = time.monotonic()
		# VMIDs name veth pairs host-wide: other worktrees may run this test at the same time
		A = random.randrange(20000, 99000, 10) + 1
		B, C, D, E = A + 1, A + 2, A + 3, A + 4
		with open(self.archive, 'rb') as f:
			self.upload(ARCHIVE, f.read())
		key = os.path.join(self.tmp, 'id_ed25519')
		subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key, '-C',
			'phx-ctreal'], check=True)
		with open(key + '.pub') as f:
			pubkey = f.read().strip()
		br = self.sim.control('GET', '/_sim/state')['lxc_bridges']['vmbr0']
		gw = br['cidr'].split('/')[0]
		static = re.sub(r'\.\d+$', '.50', gw)

		t0 = time.monotonic()
		log = self.create(A, pubkey, 'name=eth0,bridge=vmbr0,ip=%s/24,gw=%s' % (static, gw),
			'name=eth1,bridge=vmbr1,ip=dhcp')
		t_create = time.monotonic() - t0
		self.assertIn("extracting archive '", log)
		self.assertRegex(log, r'Total bytes read: \d+')
		self.assertIn('Creating filesystem with', log)  # mkfs.ext4 on the raw volume
		self.assertRegex(log, r"Creating SSH host key 'ssh_host_ed25519_key'.*\ndone: "
			r"SHA256:\S+ root@ct%d" % A)
		self.assertNotIn(PASSWORD, log)
		conf = self.api('GET', '%s/lxc/%d/config' % (NODE, A))
		self.assertEqual(conf['ostype'], 'debian')

		# a start that fails (update_lxc_config: an MTU above the bridge's) leaves it stopped,
		# with nothing mounted and no veth
		self.api('PUT', '%s/lxc/%d/config' % (NODE, A), {'net0': conf['net0'] + ',mtu=9000'})
		upid = self.api('POST', '%s/lxc/%d/status/start' % (NODE, A), {})
		self.assertEqual(self.sim.wait_task(upid)['exitstatus'],
			"net0: MTU size '9000' is bigger than bridge MTU '1500'")
		self.assertEqual(self.api('GET', '%s/lxc/%d/status/current' % (NODE, A))['status'],
			'stopped')
		with open('/proc/mounts') as f:
			self.assertNotIn('lxc/%d/rootfs' % A, f.read())
		self.assertFalse(os.path.exists('/sys/class/net/veth%di0' % A))

		# what Proxmox wrote into the rootfs, read offline from A's volume
		files = ('/etc/network/interfaces', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf',
			'/etc/ssh/ssh_host_ed25519_key.pub', '/etc/machine-id', '/root/.ssh/authorized_keys',
			'/etc/systemd/system-preset/00-pve.preset')
		a = self.read_offline(conf, files + ('/etc/shadow',))
		# root's password as set_user_password writes it (replacepw: last change today)
		shadow = [l for l in a['/etc/shadow'].splitlines() if l.startswith('root:')][0].split(':')
		salt = shadow[1].split('$')[2]
		self.assertEqual(shadow[1], subprocess.run(['openssl', 'passwd', '-6', '-salt', salt,
			'-stdin'], input=PASSWORD, stdout=subprocess.PIPE, text=True).stdout.strip())
		self.assertEqual(int(shadow[2]), int(time.time() / 86400))
		self.assertIn('auto eth0\niface eth0 inet static\n\taddress %s/24\n\tgateway %s\n' % (
			static, gw), a['/etc/network/interfaces'])
		self.assertIn('auto eth1\niface eth1 inet dhcp\n', a['/etc/network/interfaces'])
		self.assertEqual(a['/etc/hostname'], 'ct%d\n' % A)
		# the image has no /etc/hosts: the PVE section is all of it
		self.assertRegex(a['/etc/hosts'], r'^# --- BEGIN PVE ---\n127\.0\.0\.1 localhost.*\n'
			r'(.*\n)*%s ct%d\n# --- END PVE ---\n$' % (re.escape(static), A))
		self.assertIn(pubkey, a['/root/.ssh/authorized_keys'])
		self.assertIn('disable systemd-networkd.service',
			a['/etc/systemd/system-preset/00-pve.preset'])

		# a second create (on zfspool: a subvol directory owned by the CT's root) writes
		# other host keys; a clone keeps them and truncates machine-id
		self.create(C, pubkey, 'name=eth0,bridge=vmbr0,ip=dhcp', rootfs='tank:2')
		conf3 = self.api('GET', '%s/lxc/%d/config' % (NODE, C))
		self.assertRegex(conf3['rootfs'], r'^tank:subvol-%d-disk-0,' % C)
		self.assertEqual(os.stat(self.volume_path(conf3)).st_uid, 100000)
		b = self.read_offline(conf3, files)
		self.assertTrue(b['/etc/ssh/ssh_host_ed25519_key.pub'].startswith('ssh-ed25519 '))
		self.assertNotEqual(a['/etc/ssh/ssh_host_ed25519_key.pub'].split()[1],
			b['/etc/ssh/ssh_host_ed25519_key.pub'].split()[1])
		self.assertIsNone(b['/etc/machine-id'])  # create removes it: first boot runs presets
		self.assertIsNone(a['/etc/machine-id'])  # create removes it: first boot runs presets
		# A's first boot (RealContainerTest boots one) would have written its own: made here
		self.write_offline(conf, '/etc/machine-id', '0123456789abcdef0123456789abcdef\n')
		self.task(self.api('POST', '%s/lxc/%d/clone' % (NODE, A), {'newid': B, 'full': 1}))
		# a resize grows the file system too (resize_vm: resize2fs on a stopped CT)
		self.task(self.api('PUT', '%s/lxc/%d/resize' % (NODE, B), {'disk': 'rootfs',
			'size': '+1G'}))
		c = self.read_offline(self.api('GET', '%s/lxc/%d/config' % (NODE, B)), files)
		self.assertGreater(c['fs_bytes'], 2.5 * (1 << 30))
		self.assertLess(a['fs_bytes'], 2 * (1 << 30))
		self.assertEqual(c['/etc/ssh/ssh_host_ed25519_key.pub'],
			a['/etc/ssh/ssh_host_ed25519_key.pub'])
		self.assertEqual(c['/etc/machine-id'], '\n')
		# a full clone from a subvol to a raw image: formatted, the files copied
		self.task(self.api('POST', '%s/lxc/%d/clone' % (NODE, C), {'newid': E, 'full': 1,
			'storage': 'local'}))
		conf5 = self.api('GET', '%s/lxc/%d/config' % (NODE, E))
		self.assertRegex(conf5['rootfs'], r'^local:%d/vm-%d-disk-0\.raw,' % (E, E))
		e = self.read_offline(conf5, files + ('/.pve-sim-subvol.json',))
		self.assertEqual(e['/etc/ssh/ssh_host_ed25519_key.pub'],
			b['/etc/ssh/ssh_host_ed25519_key.pub'])
		self.assertEqual(e['/root/.ssh/authorized_keys'], b['/root/.ssh/authorized_keys'])
		self.assertIsNone(e['/etc/machine-id'])  # none to truncate: C never booted
		self.assertIsNone(e['/.pve-sim-subvol.json'])

		# an archive that breaks off mid-way fails the create, which leaves nothing behind
		with open(self.archive, 'rb') as f:
			head = f.read(1 << 20)
		self.upload('broken_amd64.tar.zst', head)
		st, _, body = self.sim.api('POST', NODE + '/lxc', {'vmid': D, 'rootfs': 'local:1',
			'ostemplate': 'local:vztmpl/broken_amd64.tar.zst', 'unprivileged': 1})
		self.assertEqual(st, 200, body)
		res = self.sim.wait_task(body['data'], timeout=120)
		self.assertRegex(res['exitstatus'], r"^unable to create CT %d - command 'lxc-usernsexec "
			r"-m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - --zstd --totals .*' failed: "
			r"exit code 2$" % D)
		self.assertFalse(os.path.exists(os.path.join(self.sim.state_dir, 'lxc', str(D))))

		# destroy leaves nothing: no volume, rootfs mount, veth or lxc directory
		for vmid in (A, B, C, E):
			self.task(self.api('DELETE', '%s/lxc/%d' % (NODE, vmid), {}))
		lxcdir = os.path.join(self.sim.state_dir, 'lxc')
		vids = '(%d|%d|%d|%d)' % (A, B, C, E)
		self.assertEqual(sorted(x for x in os.listdir(lxcdir) if x.isdigit()), [])
		self.assertEqual([v for v in self.sim.control('GET', '/_sim/state')['volumes']
			if v.get('content') == 'rootdir' or re.search('-%s-disk' % vids, v['volid'])], [])
		with open('/proc/mounts') as f:
			self.assertNotIn(self.sim.state_dir, f.read())
		self.assertEqual([x for x in os.listdir('/sys/class/net') if re.match('veth' + vids, x)],
			[])
		hosts = [v['host'] for v in self.sim.control('GET', '/_sim/state')['lxc_bridges'].values()]
		self.assertEqual(self.sim.schema_violations(), [])
		self.sim.stop()
		for h in hosts:
			self.assertFalse(os.path.exists('/sys/class/net/' + h), h)
		print('\nreal containers: create %.1f s; whole test %.1f s' % (
			t_create, time.monotonic() - t_all))


if __name__ == '__main__':
	unittest.main()
