"""Real containers for the simulator (`pve_sim.py --lxc-real`): what pve-container (pc-ct) does on
a node, with Debian's lxc 5.0 and the root file systems on the simulator's storages.

- Root file systems (pc-ct LXC.pm alloc_disk/format_disk): a raw volume gets ext4 (`mkfs.ext4
  -O mmp -E root_owner=UID:GID`, as LXC.pm mkfs) and is loop-mounted; a subvol (zfspool, a
  directory in the simulator) is bind-mounted; both at STATE/lxc/<vmid>/rootfs, the place of
  /var/lib/lxc/<vmid>/rootfs. Volumes behind a qcow2 overlay (the simulator's lvmthin and
  file-storage linked clones) cannot be mounted without nbd: such a container fails to start.
- The archive is unpacked as Create.pm restore_tar_archive does (through `lxc-usernsexec -m
  u:0:100000:65536 -m g:0:100000:65536` for an unprivileged container); the set-up hooks
  (post_create_hook with the root password and SSH keys, rewrite_ssh_host_keys, pre_start_hook,
  post_clone_hook) run chrooted in lxc_setup.py.
- Start: LXC.pm update_lxc_config's config (minus what needs Proxmox's own lxc hooks and
  AppArmor) at STATE/lxc/<vmid>/config, then `lxc-start -F` as pve-container@.service runs it;
  each netN is a veth pair `veth<vmid>i<N>` on a host bridge that stands for the netN bridge
  (one host bridge per Proxmox bridge name, with dnsmasq answering DHCP on it); stop and
  shutdown are LXC.pm vm_stop's `lxc-stop --kill` / `lxc-stop --nokill --timeout N`.
- GET .../interfaces is LXC.pm get_interfaces: `ip --json a` in the container's network
  namespace (nsenter).

No process outlives the simulator: lxc-start runs with PR_SET_PDEATHSIG=SIGKILL (the container's
init dies with its monitor: measured), dnsmasq under a shell that ends it when the simulator's
pipe closes, and close() stops containers, unmounts and removes the bridges. A simulator killed
with SIGKILL leaves its bridges (`pxs<pid>b<N>`), which the next simulator in real mode removes
(their pid is gone), and its rootfs loop mounts (test_lxc_real's tearDown unmounts them)."""

import atexit
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from qemu_hv import Launcher
from sim_storage import SUBVOL_META

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = os.path.join(HERE, 'lxc_setup.py')
ID_MAP = ['-m', 'u:0:100000:65536', '-m', 'g:0:100000:65536']  # LXC.pm parse_id_maps default
COMMON_TAR_FLAGS = ['--one-file-system', '-p', '--sparse', '--numeric-owner', '--acls',
	'--xattrs', '--xattrs-include=user.*', '--xattrs-include=security.capability',
	'--warning=no-file-ignored', '--warning=no-xattr-write']  # ps Plugin.pm @COMMON_TAR_FLAGS
TOOLS = ('lxc-start', 'lxc-stop', 'lxc-wait', 'lxc-info', 'lxc-usernsexec', 'dnsmasq', 'nsenter',
	'mkfs.ext4', 'mount', 'umount', 'ip', 'ssh-keygen', 'tar')


def missing_requirements():
	"""Why real containers cannot run here (None: they can)."""
	if os.geteuid() != 0:
		return 'real containers need root (lxc-start, mounts, bridges)'
	for tool in TOOLS:
		if shutil.which(tool) is None and not os.path.exists('/usr/sbin/' + tool):
			return "'%s' not found (scripts/install-deps.sh installs lxc and dnsmasq-base)" % tool
	if not os.path.isfile('/usr/share/lxc/config/common.conf'):
		return 'no /usr/share/lxc/config/common.conf (package lxc)'
	p = subprocess.run(['ip', 'link', 'add', 'pxsprobe%d' % (os.getpid() % 10000), 'type',
		'bridge'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
	if p.returncode != 0:
		return 'cannot create a bridge: %s' % p.stderr.strip()
	subprocess.run(['ip', 'link', 'del', 'pxsprobe%d' % (os.getpid() % 10000)],
		stderr=subprocess.DEVNULL)
	return None


def is_mounted(path):
	"""os.path.ismount misses a bind mount from the same file system (a subvol)."""
	with open('/proc/self/mounts') as f:
		for line in f:
			target = line.split()[1].replace('\\040', ' ')
			if target == path:
				return True
	return False


def run(argv, **kw):
	return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def host_dns():
	"""The host's resolv.conf, as pc-ct LXC.pm reads it for lookup_dns_conf."""
	res = {'dns': []}
	try:
		with open('/etc/resolv.conf') as f:
			for line in f:
				w = line.split()
				if len(w) >= 2 and w[0] == 'nameserver':
					res['dns'].append(w[1])
				elif len(w) >= 2 and w[0] in ('search', 'domain'):
					res['search'] = ' '.join(w[1:])
	except OSError:
		pass
	return res


class Container:
	def __init__(self, vmid, proc, log):
		self.vmid = vmid
		self.proc = proc
		self.log = log


class LxcRuntime:
	def __init__(self, sim, opts, api_error, task_failed):
		self.ApiError = api_error
		self.TaskFailed = task_failed
		self.sim = sim
		why = missing_requirements()
		if why:
			raise SystemExit('--lxc-real: %s' % why)
		# lxc-start needs an absolute -P: with a relative one lxc-stop/lxc-info look for
		# another command socket (docs/lxc-notes.md)
		self.path = os.path.join(sim.state_dir, 'lxc')
		os.makedirs(self.path, exist_ok=True)
		# the container's root (uid 100000) must be able to reach its rootfs mount
		for d in (sim.state_dir, self.path):
			os.chmod(d, os.stat(d).st_mode | 0o711)
		self.bridge_spec = {}
		for spec in getattr(opts, 'lxc_bridge', None) or []:
			name, _, cidr = spec.partition('=')
			self.bridge_spec[name] = str(ipaddress.ip_interface(cidr))
		self.bridges = {}  # Proxmox bridge name -> {host, cidr, dnsmasq}
		self.cts = {}
		self.lock = threading.RLock()
		self.closed = False
		self.launcher = Launcher('lxc-launcher')
		self.remove_stale_bridges()
		atexit.register(self.close)
		# Proxmox nodes have vmbr0: made now, so /_sim/state shows its subnet before any
		# start (a static netN address must be in it); other bridges at their first use
		for name in ['vmbr0'] + sorted(set(self.bridge_spec) - {'vmbr0'}):
			try:
				self.bridge(name)
			except self.TaskFailed as e:
				self.close()
				raise SystemExit('--lxc-real: %s' % e)

	# -- host bridges and DHCP ------------------------------------------------------------------
	def remove_stale_bridges(self):
		p = run(['ip', '-j', 'link', 'show', 'type', 'bridge'])
		for link in json.loads(p.stdout or '[]'):
			m = re.match(r'^pxs(\d+)b\d+$', link.get('ifname', ''))
			if m and not os.path.exists('/proc/%s' % m.group(1)):
				run(['ip', 'link', 'del', link['ifname']])

	def used_nets(self):
		p = run(['ip', '-j', '-4', 'addr'])
		nets = []
		for link in json.loads(p.stdout or '[]'):
			for a in link.get('addr_info', []):
				nets.append(ipaddress.ip_interface('%s/%s' % (a['local'], a['prefixlen'])).network)
		return nets

	def pick_cidr(self):
		used = self.used_nets()
		cands = ['10.%d.%d.1/24' % (a, b) for a in (197, 198, 199) for b in range(256)]
		random.shuffle(cands)
		for c in cands:
			net = ipaddress.ip_interface(c).network
			if not any(net.overlaps(u) for u in used):
				return c
		raise self.TaskFailed('no free /24 for a container bridge')

	def bridge(self, name):
		"""The host bridge that stands for Proxmox bridge `name` (made at first use)."""
		with self.lock:
			br = self.bridges.get(name)
			if br:
				return br
			host = 'pxs%db%d' % (os.getpid(), len(self.bridges))
			cidr = self.bridge_spec.get(name) or self.pick_cidr()
			iface = ipaddress.ip_interface(cidr)
			for argv in (['ip', 'link', 'add', host, 'type', 'bridge'],
					['ip', 'addr', 'add', cidr, 'dev', host], ['ip', 'link', 'set', host, 'up']):
				p = run(argv)
				if p.returncode != 0:
					run(['ip', 'link', 'del', host])
					raise self.TaskFailed("bridge '%s': %s" % (name, p.stderr.strip()))
			hosts = list(iface.network.hosts())
			lo, hi = hosts[len(hosts) // 2], hosts[-2]
			base = os.path.join(self.path, 'net-' + host)
			# dnsmasq loses PR_SET_PDEATHSIG when it changes credentials (measured: it outlived
			# a SIGKILLed simulator, also with --user=root), so a shell holds it and ends it
			# when the pipe from the simulator closes, at close() or at any death
			with open(base + '.dnsmasq.log', 'w') as logf:
				proc = subprocess.Popen(['sh', '-c', 'dnsmasq "$@" & read _; kill $!; wait',
					'dnsmasq', '--keep-in-foreground', '--port=0', '--conf-file=/dev/null',
					'--interface=' + host, '--bind-interfaces', '--except-interface=lo',
					'--dhcp-authoritative', '--log-dhcp', '--log-facility=-',
					'--dhcp-leasefile=' + base + '.leases',
					'--dhcp-range=%s,%s,%s,1h' % (lo, hi, iface.netmask)],
					stdin=subprocess.PIPE, stdout=logf, stderr=logf, close_fds=True,
					start_new_session=True)
			br = {'host': host, 'cidr': cidr, 'dhcp': '%s-%s' % (lo, hi), 'dnsmasq': proc}
			self.bridges[name] = br
			return br

	def bridges_state(self):
		with self.lock:
			return {k: {'host': v['host'], 'cidr': v['cidr'], 'dhcp': v['dhcp']}
				for k, v in self.bridges.items()}

	# -- root file systems ----------------------------------------------------------------------
	def ct_dir(self, vmid):
		return os.path.join(self.path, str(vmid))

	def rootdir(self, vmid):
		return os.path.join(self.ct_dir(vmid), 'rootfs')

	def id_map(self, conf):
		return (100000, 100000) if conf.get('unprivileged') else (0, 0)

	def format(self, t, volid, conf):
		"""LXC.pm alloc_disk + format_disk (raw) or the chown of create_disks (subvol)."""
		v = self.sim.vol(volid)
		uid, gid = self.id_map(conf)
		if v['format'] == 'subvol':
			os.chown(v['path'], uid, gid)
			return
		p = run(['mkfs.ext4', '-O', 'mmp', '-E', 'root_owner=%d:%d' % (uid, gid), v['path']])
		if p.returncode != 0:
			raise self.TaskFailed('mkfs.ext4 %s failed: %s' % (volid, p.stderr.strip()))
		for line in p.stdout.splitlines():
			# LXC.pm mkfs passes on only these lines
			if re.match(r'^(Creating filesystem|Filesystem UUID|Superblock backups|\s+\d+, \d)',
					line):
				t.log(line)

	def mount(self, vmid, volid):
		"""Mounts a root file system volume at STATE/lxc/<vmid>/rootfs; returns the path."""
		v = self.sim.vol(volid)
		target = self.rootdir(vmid)
		os.makedirs(target, exist_ok=True)
		if is_mounted(target):
			return target
		if v['format'] == 'subvol':
			argv = ['mount', '--bind', v['path'], target]
		elif self.sim.phys_format(v['path']) == 'raw':
			argv = ['mount', '-o', 'loop', v['path'], target]
		else:
			raise self.TaskFailed("volume '%s' is a qcow2 overlay in the simulator, which real "
				"container mode cannot mount (no nbd)" % volid)
		p = run(argv)
		if p.returncode != 0:
			raise self.TaskFailed("mount of '%s' failed: %s" % (volid, p.stderr.strip()))
		return target

	def umount(self, vmid):
		target = self.rootdir(vmid)
		for _ in range(50):
			if not is_mounted(target):
				return
			if run(['umount', target]).returncode != 0:
				time.sleep(0.1)
		run(['umount', '-l', target])

	def unpack(self, t, archive, rootdir, conf, opt):
		"""Create.pm restore_tar_archive; returns the archive's members (tar -v)."""
		cmd = (['lxc-usernsexec'] + ID_MAP + ['--'] if conf.get('unprivileged') else []) + \
			['tar', 'xpvf', '-'] + ([opt] if opt else []) + ['--totals'] + COMMON_TAR_FLAGS + \
			['-C', rootdir, '--skip-old-files', '--anchored', '--exclude', './dev/*']
		t.log("extracting archive '%s'" % archive)
		with open(archive, 'rb') as f:
			p = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
		# run_command prints tar's stderr (--totals, errors) into the task log
		for line in p.stderr.decode('utf-8', 'replace').strip().splitlines():
			t.log(line)
		if p.returncode != 0:
			shown = ['xpf' if x == 'xpvf' else x for x in cmd]  # -v is the simulator's
			raise self.TaskFailed("command '%s' failed: exit code %d" % (' '.join(shown),
				p.returncode))
		return [x[2:] if x.startswith('./') else x for x in
			p.stdout.decode('utf-8', 'replace').splitlines()]

	def setup(self, hook, vmid, conf, **extra):
		"""Setup.pm protected_call: lxc_setup.py chroots into the mounted rootfs."""
		uid, gid = self.id_map(conf)
		req = dict(extra, hook=hook, conf=conf, root_uid=uid, root_gid=gid,
			host_dns=host_dns())
		p = subprocess.run([sys.executable, SETUP, self.rootdir(vmid)],
			input=json.dumps(req), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		if p.returncode != 0:
			raise self.TaskFailed('error in setup task PVE::LXC::Setup::%s_hook: %s' % (
				hook, p.stderr.strip()[-500:]))
		return p.stderr

	def hash_password(self, password):
		"""Base.pm set_user_password: a crypt() hash is taken as it is, anything else is
		hashed with SHA-512 and a salt; no password locks root ('*')."""
		if password is None:
			return None
		if re.match(r'^\$(?:1|2[axy]?|5|6)\$[a-zA-Z0-9./]{1,16}\$[a-zA-Z0-9./]+$', password):
			return password
		chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./'
		salt = ''.join(random.choice(chars) for _ in range(8))
		p = subprocess.run(['openssl', 'passwd', '-6', '-salt', salt, '-stdin'],
			input=password, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
		if p.returncode != 0:
			raise self.TaskFailed('unable to hash the password')
		return p.stdout.strip()

	def host_keys(self, t, conf):
		"""Setup.pm rewrite_ssh_host_keys: made on the host with ssh-keygen."""
		hostname = (conf.get('hostname') or 'localhost').split('.')[0]
		keys = []
		with tempfile.TemporaryDirectory(dir=self.sim.tmpdir) as d:
			for keytype, name in (('rsa', 'ssh_host_rsa_key'), ('ecdsa', 'ssh_host_ecdsa_key'),
					('ed25519', 'ssh_host_ed25519_key')):
				t.log("Creating SSH host key '%s' - this may take some time ..." % name)
				f = os.path.join(d, keytype)
				p = run(['ssh-keygen', '-f', f, '-t', keytype, '-N', '', '-E', 'sha256', '-C',
					'root@' + hostname])
				if p.returncode != 0:
					raise self.TaskFailed('ssh-keygen: %s' % p.stderr.strip())
				m = re.search(r'^(SHA256:\S+\s+root@\S+)$', p.stdout, re.M)
				t.log('done: %s' % (m.group(1) if m else ''))
				with open(f) as fh:
					priv = fh.read()
				with open(f + '.pub') as fh:
					pub = fh.read()
				keys += [['/etc/ssh/' + name, priv, 0o600], ['/etc/ssh/%s.pub' % name, pub, 0o644]]
		return keys

	# -- create and clone -----------------------------------------------------------------------
	def restore(self, t, vmid, conf, archive, opt):
		"""Mounts the new rootfs and unpacks the archive into it (it stays mounted for
		post_create, which unmounts it); returns the archive's members."""
		rootdir = self.mount(vmid, conf['rootfs'].split(',')[0])
		try:
			return self.unpack(t, archive, rootdir, conf, opt)
		except BaseException:
			self.umount(vmid)
			raise

	def post_create(self, t, vmid, conf, password_hash, ssh_keys):
		try:
			with_ssh = os.path.isdir(os.path.join(self.rootdir(vmid), 'etc', 'ssh'))
			keys = self.host_keys(t, conf) if with_ssh else []
			out = self.setup('post_create', vmid, conf, password_hash=password_hash,
				ssh_keys=ssh_keys, host_keys=keys)
			for line in out.splitlines():
				t.warn(line)
		finally:
			self.umount(vmid)

	def post_clone(self, t, vmid, conf):
		self.mount(vmid, conf['rootfs'].split(',')[0])
		try:
			self.setup('post_clone', vmid, conf)
		finally:
			self.umount(vmid)

	def copy_files(self, src, dst):
		"""LXC.pm copy_volume's rsync between two mounted volumes (cp -a here: the same
		owners, modes, xattrs, hard links and sparse files)."""
		mnts = []
		try:
			for volid in (src, dst):
				mnt = tempfile.mkdtemp(prefix='.copy-', dir=self.path)
				mnts.append(mnt)
				v = self.sim.vol(volid)
				argv = ['mount', '--bind', v['path'], mnt] if v['format'] == 'subvol' else \
					['mount', '-o', 'loop', v['path'], mnt]
				p = run(argv)
				if p.returncode != 0:
					os.rmdir(mnts.pop())
					raise self.TaskFailed("mount of '%s' failed: %s" % (volid, p.stderr.strip()))
			p = run(['cp', '-a', '--', mnts[0] + '/.', mnts[1]])
			if p.returncode != 0:
				raise self.TaskFailed('copying the files failed: %s' % p.stderr.strip()[-300:])
			if self.sim.vol(src)['format'] == 'subvol':
				# the simulator's refquota file is no container file
				os.unlink(os.path.join(mnts[1], SUBVOL_META))
		finally:
			for mnt in mnts:
				run(['umount', mnt])
				os.rmdir(mnt)

	def resize_fs(self, volid):
		"""LXC.pm resize_vm on a stopped CT: e2fsck, resize2fs on the raw image."""
		v = self.sim.vol(volid)
		if v['format'] == 'subvol' or self.sim.phys_format(v['path']) != 'raw':
			return
		for argv in (['e2fsck', '-f', '-y', v['path']], ['resize2fs', v['path']]):
			p = run(argv)
			if p.returncode not in (0, 1):
				raise self.TaskFailed('%s failed: %s' % (argv[0], p.stderr.strip()))

	# -- start and stop -------------------------------------------------------------------------
	def lxc_config(self, vm):
		"""LXC.pm update_lxc_config for Debian's lxc (no Proxmox hooks, seccomp or AppArmor
		profiles: this machine has no AppArmor; common.conf is lxc's own)."""
		conf = vm['conf']
		vmid = vm['vmid']
		unpriv = bool(conf.get('unprivileged'))
		cfg = '/usr/share/lxc/config'
		ostype = conf.get('ostype') or 'unmanaged'
		raw = ['lxc.arch = %s' % conf.get('arch', 'amd64')]
		inc = '%s/%s.common.conf' % (cfg, ostype)
		raw.append('lxc.include = %s' % (inc if os.path.isfile(inc) else cfg + '/common.conf'))
		if unpriv:
			inc = '%s/%s.userns.conf' % (cfg, ostype)
			raw.append('lxc.include = %s' % (inc if os.path.isfile(inc) else cfg + '/userns.conf'))
		raw.append('lxc.apparmor.profile = unconfined')
		feats = dict(x.split('=', 1) for x in str(conf.get('features') or '').split(',')
			if '=' in x)
		if unpriv and feats.get('force_rw_sys') not in ('1', 'on', 'yes', 'true'):
			raw.append('lxc.mount.auto = sys:mixed')
		raw.append('lxc.monitor.unshare = 1')
		if unpriv:
			raw += ['lxc.idmap = u 0 100000 65536', 'lxc.idmap = g 0 100000 65536']
		raw.append('lxc.tty.max = %d' % int(conf.get('tty', 2)))
		raw.append('lxc.environment = TERM=linux')
		raw.append('lxc.uts.name = %s' % (conf.get('hostname') or 'CT%d' % vmid))
		raw.append('lxc.rootfs.path = %s' % self.rootdir(vmid))
		for k in sorted(conf, key=lambda x: (len(x), x)):
			m = re.match(r'^net(\d+)$', k)
			if not m:
				continue
			i = int(m.group(1))
			d = dict(x.split('=', 1) for x in str(conf[k]).split(',') if '=' in x)
			br = self.bridge(d.get('bridge', 'vmbr0'))
			raw += ['lxc.net.%d.type = veth' % i, 'lxc.net.%d.veth.pair = veth%di%d' % (i, vmid, i)]
			if d.get('hwaddr'):
				raw.append('lxc.net.%d.hwaddr = %s' % (i, d['hwaddr']))
			if d.get('name'):
				raw.append('lxc.net.%d.name = %s' % (i, d['name']))
			with open('/sys/class/net/%s/mtu' % br['host']) as f:
				bridge_mtu = int(f.read())  # PVE::Network::read_bridge_mtu
			mtu = int(d.get('mtu') or bridge_mtu)
			if mtu > bridge_mtu:
				raise self.TaskFailed("%s: MTU size '%d' is bigger than bridge MTU '%d'" % (
					k, mtu, bridge_mtu))
			raw.append('lxc.net.%d.mtu = %d' % (i, mtu))
			# lxcnetaddbr puts the host end on the bridge; here lxc's own link does
			raw.append('lxc.net.%d.link = %s' % (i, br['host']))
			if d.get('link_down') not in ('1',):
				raw.append('lxc.net.%d.flags = up' % i)
		return '\n'.join(raw) + '\n'

	def start(self, vm):
		vmid = vm['vmid']
		if self.closed:
			raise self.TaskFailed('simulator is shutting down')
		conf = vm['conf']
		# LXC.pm vm_start: update_lxc_config first (its errors fail the start before anything
		# is mounted), then lxc-start, whose pre-start hook mounts and runs pre_start_hook
		config = self.lxc_config(vm)
		os.makedirs(self.ct_dir(vmid), exist_ok=True)
		with open(os.path.join(self.ct_dir(vmid), 'config'), 'w') as f:
			f.write(config)
		self.mount(vmid, conf['rootfs'].split(',')[0])
		try:
			self.setup('pre_start', vmid, conf)
			log = os.path.join(self.path, '%d.log' % vmid)
			with open(log, 'w') as logf:
				proc = self.launcher.spawn(['lxc-start', '-F', '-n', str(vmid), '-P', self.path,
					'-o', log + '.lxc', '-l', 'INFO'], logf)
			c = Container(vmid, proc, log)
			with self.lock:
				self.cts[vmid] = c
			p = run(['lxc-wait', '-n', str(vmid), '-P', self.path, '-s', 'RUNNING', '-t', '30'])
			if p.returncode != 0 or proc.poll() is not None:
				try:
					proc.wait(5)
				except subprocess.TimeoutExpired:
					proc.kill()
					proc.wait()
				with self.lock:
					self.cts.pop(vmid, None)
				tail = ''
				for fn in (log, log + '.lxc'):
					if os.path.exists(fn):
						with open(fn, errors='replace') as f:
							tail += ' '.join(f.read().strip().splitlines()[-3:])
				raise self.TaskFailed('startup for container \'%d\' failed: %s' % (vmid,
					tail[-600:]))
		except BaseException:
			self.umount(vmid)
			raise
		vm['status'] = 'running'
		vm['started'] = time.time()
		vm['pid'] = self.init_pid(vmid) or proc.pid
		threading.Thread(target=self._reap, args=(vm, c), daemon=True,
			name='lxc-reap-%d' % vmid).start()

	def drop_config(self, vmid):
		try:
			os.unlink(os.path.join(self.ct_dir(vmid), 'config'))
		except FileNotFoundError:
			pass

	def init_pid(self, vmid):
		p = run(['lxc-info', '-n', str(vmid), '-P', self.path, '-pH'])
		return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip().isdigit() else None

	def _reap(self, vm, c):
		c.proc.wait()
		with self.lock:
			mine = self.cts.get(c.vmid) is c
			if mine:
				self.cts.pop(c.vmid, None)
		if not mine:
			return
		# lxc-pve-poststop-hook: the volumes are unmounted when the container is down
		self.umount(c.vmid)
		with self.sim.lock:
			vm['status'] = 'stopped'
			vm.pop('pid', None)

	def stop(self, vm, kill=True, timeout=None, force=False):
		"""LXC.pm vm_stop: --kill, or --nokill --timeout (kill after it with forceStop)."""
		vmid = vm['vmid']
		with self.lock:
			c = self.cts.get(vmid)
		if c is None or c.proc.poll() is not None:
			vm['status'] = 'stopped'
			vm.pop('pid', None)
			return
		argv = ['lxc-stop', '-n', str(vmid), '-P', self.path]
		if kill:
			argv.append('--kill')
		else:
			if not force:
				argv.append('--nokill')
			argv += ['--timeout', str(int(timeout))]
		try:
			run(argv, timeout=(timeout or 30) + 10)
		except subprocess.TimeoutExpired:
			pass  # vm_stop then waits for the monitor to go, below
		try:
			c.proc.wait((timeout or 0) + 10)
		except subprocess.TimeoutExpired:
			raise self.TaskFailed('container did not stop')
		with self.lock:
			if self.cts.get(vmid) is c:
				self.cts.pop(vmid, None)
		self.umount(vmid)
		vm['status'] = 'stopped'
		vm.pop('pid', None)

	def interfaces(self, vm):
		"""LXC.pm get_interfaces: None when the container's pid cannot be found."""
		pid = self.init_pid(vm['vmid'])
		if pid is None:
			return None
		p = run(['nsenter', '-t', str(pid), '--net', '--', 'ip', '--json', 'a'])
		if p.returncode != 0:
			raise self.ApiError(500, "command 'nsenter -t %d --net -- ip --json a' failed: %s\n"
				% (pid, p.stderr.strip()))
		res = []
		for i in json.loads(p.stdout):
			obj = {'name': i['ifname']}
			lst = []
			for a in i.get('addr_info', []):
				obj[a['family']] = '%s/%s' % (a['local'], a['prefixlen'])
				lst.append({'ip-address-type': a['family'], 'ip-address': a['local'],
					'prefix': a['prefixlen']})
			obj['ip-addresses'] = lst
			obj['hardware-address'] = i.get('address')
			obj['hwaddr'] = i.get('address')
			res.append(obj)
		return res

	# -- teardown -------------------------------------------------------------------------------
	def forget(self, vmid):
		"""The container is gone (destroy, failed create, reset): LXC.pm destroy_lxc_container
		removes /var/lib/lxc/<vmid>."""
		with self.lock:
			c = self.cts.pop(vmid, None)
		if c is not None:
			self._kill(c)
		self.umount(vmid)
		shutil.rmtree(self.ct_dir(vmid), ignore_errors=True)
		for fn in ('%d.log' % vmid, '%d.log.lxc' % vmid):
			try:
				os.unlink(os.path.join(self.path, fn))
			except FileNotFoundError:
				pass

	def _kill(self, c):
		if c.proc.poll() is None:
			run(['lxc-stop', '-n', str(c.vmid), '-P', self.path, '--kill'], timeout=30)
			try:
				c.proc.wait(10)
			except subprocess.TimeoutExpired:
				c.proc.kill()
				c.proc.wait()
		self.umount(c.vmid)

	def pids(self):
		with self.lock:
			return {vmid: c.proc.pid for vmid, c in self.cts.items() if c.proc.poll() is None}

	def close(self, final=True):
		"""Stops every container; at exit (final) also the DHCP servers and bridges."""
		if final:
			if self.closed:
				return
			self.closed = True
		with self.lock:
			cts = list(self.cts.values())
			self.cts.clear()
		for c in cts:
			self._kill(c)
		if not final:
			return
		with self.lock:
			brs = list(self.bridges.values())
			self.bridges.clear()
		for br in brs:
			proc = br['dnsmasq']
			proc.stdin.close()
			try:
				proc.wait(5)
			except subprocess.TimeoutExpired:
				os.killpg(proc.pid, signal.SIGKILL)  # its own session: the shell and dnsmasq
				proc.wait()
			run(['ip', 'link', 'del', br['host']])
