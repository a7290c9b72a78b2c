"""The LXC container endpoints, as pve-container (pc-ct below) answers them: list, create from a
vztmpl archive, config (GET/PUT, pending), status and power, destroy, template, clone (full and
linked), resize, interfaces; and the container entries of /cluster/resources.

Containers share the guest table with VMs (a VMID is unique across both: pve-cluster
check_vmid_unused) and carry 'type': 'lxc'. Rules cite their Perl: pc-ct API2/LXC.pm (create_vm,
destroy_vm, template, clone_vm, resize_vm, ip), API2/LXC/Config.pm (update_vm), API2/LXC/Status.pm,
LXC.pm (check_ct_modify_config_perm, alloc_disk, create_disks, template_create, copy_volume,
destroy_lxc_container, vmstatus, get_interfaces), LXC/Config.pm (update_pct_config,
$LXC_FASTPLUG_OPTIONS), LXC/Create.pm (tar_compression_option, restore_tar_archive), LXC/Setup.pm
($autodetect_type); storage rules are those of sim_storage (ps = pve-storage).

By default no container runs (start and stop flip the state, like the fake hypervisor does for
VMs, also in --qemu mode), and the root file system volume is allocated but not formatted or
filled: the archive is listed with tar (a broken archive fails the task as the unpacking would)
and its /etc read for the OS type, not unpacked; root password and SSH keys are checked and
dropped. With --lxc-real (lxc_hv.py, lxc_setup.py) all of that is real: mkfs, unpacking,
post_create_hook, lxc-start, interfaces from the container's network namespace."""

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pve_schema
from pve_schema import format_size, parse_size
from sim_common import (ApiError, TaskFailed, param_exc, perm_exc, remove_files,
	root_path_exc, run)
from sim_qemu import NEW_DISK_RE

CT_NEW_DISK_RE = re.compile(r'^([^:\s]+):(\d+(\.\d+)?)$')  # pc-ct LXC.pm $NEW_DISK_RE
MP_RE = re.compile(r'^(rootfs|mp\d+)$')
# pc-ct LXC/Config.pm $LXC_FASTPLUG_OPTIONS, plus what vmconfig_hotplug_pending applies to a
# running container (memory, swap, cpulimit, cpuunits, netN); everything else waits in pending
FASTPLUG = ('description', 'onboot', 'startup', 'protection', 'hostname', 'hookscript', 'cores',
	'tags', 'lock')
HOTPLUG = FASTPLUG + ('memory', 'swap', 'cpulimit', 'cpuunits')
# pc-ct Create.pm tar_compression_option
TAR_COMPRESSION = {'.gz': '-z', '.bz2': '-j', '.xz': '-J', '.lzo': '--lzop', '.zst': '--zstd'}
# pc-ct Setup.pm $plugins and $plugin_alias (os-release ID -> ostype)
OS_TYPES = ('alpine', 'archlinux', 'centos', 'debian', 'devuan', 'fedora', 'gentoo', 'openeuler',
	'opensuse', 'ubuntu', 'nixos', 'unmanaged')
OS_ALIAS = {'opensuse-leap': 'opensuse', 'opensuse-tumbleweed': 'opensuse',
	'opensuse-slowroll': 'opensuse', 'openEuler': 'openeuler', 'arch': 'archlinux',
	'sles': 'opensuse', 'rocky': 'centos', 'almalinux': 'centos'}
# what the API process does before the create/clone config exists (not config options)
NOT_CT_CONFIG = ('node', 'vmid', 'ostemplate', 'password', 'storage', 'force', 'restore',
	'unique', 'pool', 'ignore-unpack-errors', 'ssh-public-keys', 'bwlimit', 'start',
	'ha-managed', 'unprivileged', 'digest', 'delete', 'revert')


def no_ct_exc(node, vmid):
	# pc-ct LXC/Config.pm load_config via pgc AbstractConfig.pm
	return ApiError(500, "Configuration file 'nodes/%s/lxc/%s.conf' does not exist\n" % (
		node, vmid))


def truthy(v):
	return v in (1, True, '1', 'true')


class LxcHandlers:
	# -- the guest table -------------------------------------------------------------------
	def is_ct(self, vm):
		return vm.get('type') == 'lxc'

	def get_ct(self, vmid, node=None):
		vm = self.vms.get(int(vmid))
		if vm is None or not self.is_ct(vm) or (node is not None and vm['node'] != node):
			raise no_ct_exc(node or self.nodes[0], vmid)
		return vm

	def audited_ct(self, r):
		vm = self.get_ct(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Audit'])
		return vm

	def check_ct_lock(self, vm):
		# pgc AbstractConfig.pm check_lock: guest_type ('CT', pc-ct LXC/Config.pm), no VMID
		lk = vm['conf'].get('lock')
		if lk:
			raise ApiError(500, 'CT is locked (%s)\n' % lk)

	def vmid_unused(self, vmid):
		# pve-cluster Cluster.pm check_vmid_unused: names the type of the guest that has it
		with self.lock:
			other = self.vms.get(vmid)
		if other is not None:
			raise ApiError(500, "%s %d already exists on node '%s'\n" % (
				'CT' if self.is_ct(other) else 'VM', vmid, other['node']))

	def make_lxc_runtime(self, opts):
		if getattr(opts, 'lxc_real', False):
			from lxc_hv import LxcRuntime
			return LxcRuntime(self, opts, ApiError, TaskFailed)
		return None

	def ct_start(self, vm):
		if self.lxc_rt:
			self.lxc_rt.start(vm)
			return
		vm['status'] = 'running'
		vm['started'] = time.time()
		vm['pid'] = self.next_pid()

	def ct_stop(self, vm, kill=True, timeout=None, force=False):
		if self.lxc_rt:
			self.lxc_rt.stop(vm, kill, timeout, force)
			return
		vm['status'] = 'stopped'
		vm.pop('pid', None)

	# -- status (pc-ct LXC.pm vmstatus) ------------------------------------------------------
	def ct_resource(self, vm):
		conf = vm['conf']
		maxdisk = 4 << 30
		if conf.get('rootfs'):
			size = self.parse_mp('rootfs', conf['rootfs']).get('size')
			maxdisk = parse_size(size) if size else maxdisk
		d = {'vmid': vm['vmid'], 'type': 'lxc', 'status': vm['status'],
			'name': re.sub(r'\s', '', conf.get('hostname') or 'CT%d' % vm['vmid']),
			'cpus': int(conf.get('cores') or conf.get('cpulimit') or os.cpu_count() or 1),
			'maxmem': int(conf.get('memory') or 512) << 20,
			'maxswap': int(conf.get('swap', 0)) << 20, 'maxdisk': int(maxdisk),
			'disk': 0, 'mem': 0, 'swap': 0, 'cpu': 0, 'netin': 0, 'netout': 0,
			'diskread': 0, 'diskwrite': 0,
			'uptime': int(time.time() - vm['started']) if vm['status'] == 'running' else 0}
		if conf.get('tags'):
			d['tags'] = conf['tags']
		if conf.get('template'):
			d['template'] = 1
		if conf.get('lock'):
			d['lock'] = conf['lock']
		if vm['status'] == 'running':
			d['pid'] = vm.get('pid')
		return d

	def h_get_nodes_node_lxc(self, r):
		with self.lock:
			cts = [vm for vm in self.vms.values() if self.is_ct(vm) and vm['node'] == r.node]
		return [self.ct_resource(vm) for vm in sorted(cts, key=lambda v: v['vmid'])
			if self.has(r.authid, '/vms/%d' % vm['vmid'], 'VM.Audit')]

	def h_get_nodes_node_lxc_vmid_status_current(self, r):
		vm = self.audited_ct(r)
		d = self.ct_resource(vm)
		d['ha'] = {'managed': 0}
		return d

	# -- property strings ----------------------------------------------------------------------
	def ct_props(self):
		return self.validator.schema['POST /nodes/{node}/lxc']['parameters']['properties']

	def parse_mp(self, key, value):
		sch = self.validator.lookup_indexed(self.ct_props(), key)
		return self.validator.parse_property_string(sch['format'], str(value), key)

	def print_mp(self, d):
		# pc-ct LXC/Config.pm print_ct_mountpoint: the volume (default key) first
		return ','.join([d['volume']] + ['%s=%s' % (k, d[k]) for k in sorted(d)
			if k != 'volume'])

	def mp_volumes(self, conf, include_unused=False):
		"""(key, volume id) of the storage volumes of a config (pc-ct foreach_volume)."""
		res = []
		for k in sorted(conf):
			if MP_RE.match(k):
				vol = str(conf[k]).split(',')[0]
			elif include_unused and re.match(r'^unused\d+$', k):
				vol = str(conf[k])
			else:
				continue
			if ':' in vol and vol.split(':')[0] in self.storages:
				res.append((k, vol))
		return res

	def norm_ct_net(self, k, v):
		# pc-ct LXC/Config.pm parse_lxc_network: type veth, a random hwaddr when none is given;
		# print_lxc_network writes the name (default key) first
		sch = self.validator.lookup_indexed(self.ct_props(), 'net[n]')
		d = self.validator.parse_property_string(sch['format'], str(v), k)
		d['type'] = 'veth'
		d.setdefault('hwaddr', self.gen_mac())
		return ','.join(['name=%s' % d.pop('name')] + ['%s=%s' % (x, d[x]) for x in sorted(d)])

	def ct_conf_value(self, k, v):
		sch = self.validator.lookup_indexed(self.ct_props(), k) or {}
		if k == 'tags':
			return self.norm_tags(v)
		if re.match(r'^net\d+$', k):
			return self.norm_ct_net(k, v)
		if sch.get('type') in ('integer', 'boolean'):
			return (1 if v else 0) if isinstance(v, bool) else int(v)
		if sch.get('type') == 'number':
			return float(v)
		return str(v)

	# -- privileges (pc-ct LXC.pm check_ct_modify_config_perm) ----------------------------------
	def check_ct_modify_config_perm(self, r, vmid, oldconf, newconf, delete, unprivileged):
		path = '/vms/%d' % vmid
		for opt, is_del in [(k, False) for k in sorted(newconf)] + [(k, True) for k in delete]:
			if opt in ('cores', 'cpuunits', 'cpulimit'):
				self.check(r.authid, path, ['VM.Config.CPU'])
			elif MP_RE.match(opt):
				self.check(r.authid, path, ['VM.Config.Disk'])
				if is_del:
					continue
				mp = self.parse_mp(opt, newconf[opt])
				vol = mp['volume']
				if vol.startswith('/'):
					raise perm_exc('mount point type bind is only allowed for root@pam')
				m = CT_NEW_DISK_RE.match(vol)
				if m:
					self.check(r.authid, '/storage/' + m.group(1), ['Datastore.AllocateSpace'])
				else:
					self.ct_volume_access(r, vmid, vol, 'rootdir')
			elif opt in ('memory', 'swap'):
				self.check(r.authid, path, ['VM.Config.Memory'])
			elif re.match(r'^net\d+$', opt):
				self.check(r.authid, path, ['VM.Config.Network'])
				for conf in (oldconf or {}, {} if is_del else newconf):
					if conf.get(opt):
						self.check_bridge_access(r, {opt: conf[opt]})
			elif re.match(r'^dev\d+$', opt):
				raise perm_exc('configuring device passthrough is only allowed for root@pam')
			elif opt in ('nameserver', 'searchdomain', 'hostname'):
				self.check(r.authid, path, ['VM.Config.Network'])
			elif opt == 'features':
				self.check_features_perm(r, path, oldconf, newconf, is_del, unprivileged)
			elif opt == 'hookscript':
				raise perm_exc('changing the hookscript is only allowed for root@pam')
			elif opt == 'tags':
				# pgc GuestHelpers.pm assert_tag_permissions: any change needs
				# VM.Config.Options (the simulator has no privileged tags)
				old = (oldconf or {}).get('tags') or ''
				new = '' if is_del else self.norm_tags(newconf[opt])
				if old != new:
					self.check(r.authid, path, ['VM.Config.Options'])
			else:
				self.check(r.authid, path, ['VM.Config.Options'])

	def check_features_perm(self, r, path, oldconf, newconf, is_del, unprivileged):
		if not unprivileged:
			raise perm_exc('changing feature flags for privileged container is only allowed '
				'for root@pam')
		sch = self.validator.lookup_indexed(self.ct_props(), 'features')['format']

		def parse(v):
			return self.validator.parse_property_string(sch, v, 'features') if v else {}

		old = parse((oldconf or {}).get('features'))
		nesting = other = False
		if is_del:
			changed = set(old)
		elif oldconf and oldconf.get('features'):
			new = parse(newconf['features'])
			changed = {f for f in set(old) | set(new) if old.get(f, '') != new.get(f, '')}
		else:
			changed = set(parse(newconf['features']))
		nesting = 'nesting' in changed
		other = bool(changed - {'nesting'})
		if other:
			raise perm_exc('changing feature flags (except nesting) is only allowed for root@pam')
		if nesting:
			self.check(r.authid, path, ['VM.Allocate'])

	def ct_volume_access(self, r, vmid, volid, ctype):
		"""ps Storage.pm check_volume_access with a content type (rootdir accepts images)."""
		if ':' not in volid:
			raise root_path_exc()
		v = self.vol(volid, r.node)
		if ctype and v['ctype'] != ctype and not (ctype == 'rootdir' and v['ctype'] == 'images'):
			raise ApiError(500, "unable to use volume %s - content type needs to be '%s'\n" % (
				volid, ctype))
		return self.check_volume_access(r, volid, vmid)

	def check_rootdir_storage(self, r, sid):
		"""pc-ct API2/LXC.pm create_vm $check_and_activate_storage."""
		st = self.storage(sid)
		self.check_enabled(st, r.node)
		if 'rootdir' not in st['content']:
			raise param_exc({'storage': "storage '%s' does not support container directories" %
				sid})
		self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])
		return st

	# -- volumes -------------------------------------------------------------------------------
	def ct_alloc_disk(self, st, vmid, size, node):
		"""pc-ct LXC.pm alloc_disk: a zfspool gets a subvol (refquota = size), every other
		rootdir storage a raw volume (format_disk would mkfs.ext4 it; here it stays empty).
		Returns (volid, path)."""
		if st['type'] == 'zfspool':
			return self.alloc_subvol(st, vmid, size, node)
		if size <= 0:
			# NEEDSWORK: size 0 on a dir storage is a subvol directory in Proxmox
			raise TaskFailed('rootfs of size 0 (a directory subvol) is not simulated')
		return self.alloc_disk(st, vmid, {'format': 'raw'}, size, node)

	def free_created(self, paths):
		"""Removes the volumes a failed create or clone made (subvols are directories)."""
		for path in paths:
			if os.path.isdir(path):
				shutil.rmtree(path, ignore_errors=True)
			else:
				remove_files([path])

	def tar_option(self, path):
		"""pc-ct Create.pm tar_compression_option."""
		m = re.search(r'\.tar(\.[^.]+)?$', path)
		if not m:
			raise TaskFailed('file does not look like a template archive: %s' % path)
		opt = TAR_COMPRESSION.get(m.group(1)) if m.group(1) else None
		if m.group(1) and opt is None:
			raise TaskFailed('unrecognized compression format: %s' % m.group(1))
		return opt

	def check_archive(self, t, path):
		"""pc-ct Create.pm restore_tar_archive without unpacking (no --lxc-real): tar with
		the option for the file's compression; a damaged archive fails here as the unpacking
		would. Returns the members."""
		opt = self.tar_option(path)
		t.log("extracting archive '%s'" % path)
		cmd = ['tar', '-tf', path] + ([opt] if opt else [])
		p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		if p.returncode != 0:
			t.log(p.stderr.strip())
			raise TaskFailed("command 'tar xpf - %s--totals --one-file-system -p --sparse "
				"--numeric-owner --acls --xattrs --skip-old-files --anchored --exclude "
				"'./dev/*'' failed: exit code %d" % ((opt + ' ') if opt else '', p.returncode))
		t.log('Total bytes read: %d (%s)' % (os.path.getsize(path),
			format_size(os.path.getsize(path))))
		return [x[2:] if x.startswith('./') else x for x in p.stdout.splitlines()]

	def detect_ostype(self, t, path, members):
		"""pc-ct Setup.pm $autodetect_type from the archive's /etc."""
		names = set(x.rstrip('/') for x in members)

		def read(member):
			opt = TAR_COMPRESSION.get('.' + path.rsplit('.', 1)[-1])
			for prefix in ('./', ''):
				p = subprocess.run(['tar', '-xOf', path] + ([opt] if opt else []) +
					[prefix + member], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
				if p.returncode == 0:
					return p.stdout.decode('utf-8', 'replace')
			return ''

		osr = {}
		for cand in ('etc/os-release', 'usr/lib/os-release'):
			if cand in names:
				for line in read(cand).splitlines():
					k, _, v = line.partition('=')
					osr[k.strip()] = v.strip().strip('"\'')
				break
		osid = osr.get('ID')
		if osid:
			if osid in OS_TYPES:
				return osid
			if osid in OS_ALIAS:
				return OS_ALIAS[osid]
			t.log("unknown ID '%s' in /etc/os-release file, trying fallback detection" % osid)
		if 'etc/lsb-release' in names and re.search(r'^DISTRIB_ID=Ubuntu$',
				read('etc/lsb-release'), re.M | re.I):
			return 'ubuntu'
		for fn, os_type in (('etc/debian_version', 'debian'), ('etc/devuan_version', 'devuan'),
				('etc/fedora-release', 'fedora'), ('etc/centos-release', 'centos'),
				('etc/redhat-release', 'centos'), ('etc/arch-release', 'archlinux'),
				('etc/alpine-release', 'alpine'), ('etc/gentoo-release', 'gentoo')):
			if fn in names:
				return os_type
		if 'etc/os-release' in names:
			raise TaskFailed('unable to detect OS distribution')
		t.warn("/etc/os-release file not found and autodetection failed, falling back to "
			"'unmanaged'")
		return 'unmanaged'

	def validate_ssh_keys(self, raw):
		"""pve-common Tools.pm validate_ssh_public_keys: ssh-keygen -l must read each line."""
		for line in raw.split('\n'):
			if not line.strip():
				continue
			with tempfile.NamedTemporaryFile('w', dir=self.tmpdir, suffix='.pub') as f:
				f.write(line + '\n')
				f.flush()
				p = subprocess.run(['ssh-keygen', '-l', '-f', f.name], stdout=subprocess.DEVNULL,
					stderr=subprocess.DEVNULL)
			if p.returncode != 0:
				raise ApiError(500, 'SSH public key validation error\n')

	# -- create (pc-ct API2/LXC.pm create_vm) ---------------------------------------------------
	def h_post_nodes_node_lxc(self, r):
		p = dict(r.params)
		vmid = int(p['vmid'])
		if truthy(p.get('restore')):
			raise ApiError(501, 'restore is not supported by the simulator\n')
		unprivileged = truthy(p.get('unprivileged', 1))
		if not unprivileged:
			self.check(r.authid, '/', ['Sys.Modify'])
		if truthy(p.get('ha-managed')):
			self.check(r.authid, '/', ['Sys.Console'])
		self.vmid_unused(vmid)
		if p.get('ssh-public-keys') is not None:
			self.validate_ssh_keys(p['ssh-public-keys'])
		if not (self.has(r.authid, '/vms/%d' % vmid, 'VM.Allocate') or (p.get('pool') and
				self.has(r.authid, '/pool/' + p['pool'], 'VM.Allocate'))):
			raise ApiError(403, 'Permission check failed\n')
		ostemplate = p['ostemplate']
		storage = p.get('storage') or 'local'
		conf_params = {k: v for k, v in p.items() if k not in NOT_CT_CONFIG}
		self.check_ct_modify_config_perm(r, vmid, None, conf_params, [], unprivileged)
		if ostemplate == '-':
			raise ApiError(500, 'pipe requires cli environment\n')
		tv = self.ct_volume_access(r, vmid, ostemplate, 'vztmpl')
		mp_params = {}
		for k in sorted(conf_params):
			if MP_RE.match(k):
				v = str(conf_params.pop(k))
				# "allow to use simple numbers (add default storage in that case)"
				mp_params[k] = '%s:%s' % (storage, v) if re.match(r'^\d+(\.\d+)?$', v) else v
			elif re.match(r'^unused\d+$', k):
				conf_params.pop(k)
		if mp_params and 'rootfs' not in mp_params:
			raise ApiError(500, "mount points configured, but 'rootfs' not set - aborting\n")
		jobs = []
		for k in sorted(mp_params):
			mp = self.parse_mp(k, mp_params[k])
			if mp['volume'].startswith('/'):
				raise root_path_exc()
			self.check_rootdir_storage(r, mp['volume'].split(':')[0])
			jobs.append((k, mp))
		if not mp_params:
			self.check_rootdir_storage(r, storage)
			jobs.append(('rootfs', {'volume': '%s:4' % storage}))  # "defaults to 4GB"
		conf = {}
		for k, v in conf_params.items():
			conf[k] = self.ct_conf_value(k, v)
		if unprivileged:
			conf['unprivileged'] = 1
		with self.lock:
			if vmid in self.vms:
				# pgc AbstractConfig.pm create_and_lock_config, prefixed with create_vm's $emsg
				other = self.vms[vmid]
				raise ApiError(500, "unable to create CT %d - %s %d already exists on node "
					"'%s'\n" % (vmid, 'CT' if self.is_ct(other) else 'VM', vmid, other['node']))
			vm = self.add_locked_vm(vmid, r.node, 'create')
			vm['type'] = 'lxc'
			self.save_vm(vm)
		created = []
		secrets = {'password': p.pop('password', None), 'ssh_keys': p.get('ssh-public-keys')}

		def work(t):
			with self.config_lock(vmid, ttype='vzcreate'):
				try:
					self.create_ct(t, vm, conf, jobs, tv, created, secrets)
				except (TaskFailed, ApiError) as e:
					raise TaskFailed('unable to create CT %d - %s' % (vmid, str(getattr(e, 'msg',
						e)).strip()))
			if truthy(p.get('start')):
				with self.config_lock(vmid, ttype='vzstart'):
					self.ct_start(vm)

		def on_error(t):
			self.free_created(created)
			self.drop_vm(vmid)

		return self.new_task(r.node, 'vzcreate', vmid, r.authid, work, on_error)

	def create_ct(self, t, vm, conf, jobs, tv, created, secrets):
		vmid = vm['vmid']
		node = vm['node']
		real = self.lxc_rt
		for k, mp in jobs:
			mp = dict(mp)
			m = CT_NEW_DISK_RE.match(mp['volume'])
			if m:
				# pc-ct LXC.pm create_disks: size_kb = int(GB * 1024) * 1024
				size = int(float(m.group(2)) * 1024) * 1024 * 1024
				st = self.storage(m.group(1))
				volid, path = self.ct_alloc_disk(st, vmid, size, node)
				created.append(path)
				mp['volume'] = volid
				mp['size'] = format_size(size)
				if st['type'] in ('lvm', 'lvmthin'):
					t.log('  Logical volume "%s" created.' % volid.split(':', 1)[1])  # lvcreate
				if real:
					real.format(t, volid, conf)
				elif self.vol(volid, node)['format'] == 'raw':
					# LXC.pm mkfs passes on mke2fs's 'Creating filesystem' line
					t.log('Creating filesystem with %d 4k blocks and %d inodes' % (size // 4096,
						size // 16384))
			conf[k] = self.print_mp(mp)
		if not os.path.exists(tv['path']):
			raise TaskFailed("volume '%s' does not exist" % tv['volid'])
		if real:
			members = real.restore(t, vmid, conf, tv['path'], self.tar_option(tv['path']))
		else:
			members = self.check_archive(t, tv['path'])
		ostype = self.detect_ostype(t, tv['path'], members)
		if conf.get('ostype') and conf['ostype'] != ostype:
			t.log('got unexpected ostype (%s != %s)' % (ostype, conf['ostype']))
		conf.setdefault('ostype', ostype)
		if 'arch' not in conf:
			conf['arch'] = 'amd64'
			t.log('Detected container architecture: amd64')
		if not real and 'etc/ssh' in set(x.rstrip('/') for x in members):
			# pc-ct Setup.pm rewrite_ssh_host_keys (post_create_hook): new host keys are
			# written into the root file system at creation, not at clone (--lxc-real:
			# real.post_create makes them)
			for keytype in ('ecdsa', 'ed25519', 'rsa'):
				t.log("Creating SSH host key 'ssh_host_%s_key' - this may take some time ..."
					% keytype)
				t.log('done: SHA256:%s root@%s' % (uuid.uuid4().hex, re.sub(r'\..*$', '',
					conf.get('hostname') or 'localhost')))
		conf['hostname'] = conf.get('hostname') or 'CT%d' % vmid
		conf['memory'] = conf.get('memory') or 512
		conf.setdefault('swap', 512)
		if real:
			# pc-ct Setup.pm post_create_hook (root password, SSH keys, network, hostname,
			# DNS) then rewrite_ssh_host_keys, in the unpacked root file system
			real.post_create(t, vmid, conf, real.hash_password(secrets['password']),
				secrets['ssh_keys'])
		vm['rootfs_info'] = {'systemd': systemd_version(members)}
		self.warn_systemd_nesting(t, vm, conf)
		with self.lock:
			vm['conf'] = conf
			self.save_vm(vm)

	def warn_systemd_nesting(self, t, vm, conf):
		"""pc-ct Setup/Base.pm check_systemd_nesting (after post_create_hook and
		post_clone_hook): a task warning for systemd newer than 241 without nesting."""
		sdver = (vm.get('rootfs_info') or {}).get('systemd')
		features = conf.get('features') or ''
		if sdver and sdver > 241 and not re.search(r'(^|,)nesting=(1|on|yes|true)', features):
			t.warn('Systemd %d detected. You may need to enable nesting.' % sdver)

	# -- config (pc-ct API2/LXC/Config.pm) ------------------------------------------------------
	def h_get_nodes_node_lxc_vmid_config(self, r):
		vm = self.audited_ct(r)
		conf = dict(vm['conf'])
		if r.params.get('snapshot'):
			raise ApiError(500, "snapshot '%s' does not exist\n" % r.params['snapshot'])
		if not truthy(r.params.get('current')):
			# vm_config: the pending values replace the current ones unless 'current'
			pend = vm.get('pending', {})
			for k in pve_schema.split_list(pend.get('delete', '')):
				conf.pop(k, None)
			conf.update({k: v for k, v in pend.items() if k != 'delete'})
		conf['digest'] = self.conf_digest(vm)
		return conf

	def h_get_nodes_node_lxc_vmid_pending(self, r):
		vm = self.audited_ct(r)
		pend = vm.get('pending', {})
		dels = pve_schema.split_list(pend.get('delete', ''))
		res = []
		for k in sorted(set(vm['conf']) | set(pend) - {'delete'}):
			e = {'key': k}
			if k in vm['conf']:
				e['value'] = vm['conf'][k]
			if k in pend:
				e['pending'] = pend[k]
			if k in dels:
				e['delete'] = 1
			res.append(e)
		return res

	def h_put_nodes_node_lxc_vmid_config(self, r):
		p = dict(r.params)
		vm = self.get_ct(r.vmid, r.node)
		vmid = vm['vmid']
		keys = [k for k in p if k not in ('node', 'vmid', 'digest', 'delete', 'revert')]
		dels = pve_schema.split_list(p.get('delete', ''))
		reverts = pve_schema.split_list(p.get('revert', ''))
		if not keys and not dels and not reverts:
			raise ApiError(500, 'no options specified\n')
		with self.config_lock(vmid):
			# update_vm's $code, run in the API process under the config lock
			self.check_ct_lock(vm)
			self.assert_if_modified(vm, p.get('digest'))
			unpriv = vm['conf'].get('unprivileged')
			self.check_ct_modify_config_perm(r, vmid, vm['conf'], {}, dels, unpriv)
			self.check_ct_modify_config_perm(r, vmid, vm['conf'], {}, reverts, unpriv)
			props = self.ct_props()
			for opt in reverts:
				if not self.validator.lookup_indexed(props, opt):
					raise param_exc({'revert': "unknown option '%s'" % opt})
				if opt in p:
					raise param_exc({'revert': "you can't use '-%s' and '-revert %s' at the same "
						"time" % (opt, opt)})
			for opt in dels:
				if not self.validator.lookup_indexed(props, opt):
					raise param_exc({'delete': "unknown option '%s'" % opt})
				if opt in p:
					raise param_exc({'delete': "you can't use '-%s' and -delete %s' at the same "
						"time" % (opt, opt)})
				if opt in reverts:
					raise param_exc({'delete': "you can't use '-delete %s' and '-revert %s' at "
						"the same time" % (opt, opt)})
			newconf = {k: p[k] for k in keys}
			self.check_ct_modify_config_perm(r, vmid, vm['conf'], newconf, [], unpriv)
			self.update_pct_config(vm, newconf, dels, reverts)
		return None

	def update_pct_config(self, vm, params, dels, reverts):
		"""pc-ct LXC/Config.pm update_pct_config, then vmconfig_apply_pending (stopped) or
		vmconfig_hotplug_pending (running: the rest stays pending)."""
		conf = vm['conf']
		pend = dict(vm.get('pending', {}))
		for opt in reverts:
			pend.pop(opt, None)
		for opt in dels:
			if opt not in conf and opt not in pend:
				continue  # "cannot delete '$opt' - not set in current configuration!" (warn)
			if opt in ('memory', 'rootfs', 'ostype'):
				raise ApiError(500, "unable to delete required option '%s'\n" % opt)
			if opt == 'unprivileged':
				raise ApiError(500, "unable to delete read-only option: '%s'\n" % opt)
			if re.match(r'^(unused|mp)\d+$', opt) and conf.get('protection'):
				raise ApiError(500, "can't remove CT %d drive '%s' - protection mode enabled\n" %
					(vm['vmid'], opt))
		values = {}
		for opt in sorted(params):
			v = params[opt]
			if MP_RE.match(opt):
				if conf.get('protection'):
					raise ApiError(500, "can't update CT %d drive '%s' - protection mode "
						"enabled\n" % (vm['vmid'], opt))
				mp = self.parse_mp(opt, v)
				if CT_NEW_DISK_RE.match(mp['volume']) or NEW_DISK_RE.match(mp['volume']):
					raise ApiError(501, 'allocating mount point volumes through the config is not '
						'simulated\n')
				sid = mp['volume'].split(':')[0]
				if 'rootdir' not in self.storage(sid)['content']:
					raise ApiError(500, "storage '%s' does not allow content type 'rootdir' "
						"(Container)\n" % sid)
				v = self.print_mp(mp)
			elif opt == 'unprivileged':
				raise ApiError(500, "unable to modify read-only option: '%s'\n" % opt)
			values[opt] = self.ct_conf_value(opt, v) if not MP_RE.match(opt) else v
		running = vm['status'] == 'running'
		with self.lock:
			for opt in dels:
				if running and opt not in HOTPLUG and not re.match(r'^net\d+$', opt):
					d = pve_schema.split_list(pend.get('delete', ''))
					pend['delete'] = ','.join(sorted(set(d) | {opt}))
				else:
					conf.pop(opt, None)
					pend.pop(opt, None)
			for opt, v in values.items():
				if running and opt not in HOTPLUG and not re.match(r'^net\d+$', opt):
					pend[opt] = v
				else:
					conf[opt] = v
					pend.pop(opt, None)
			if not pend.get('delete'):
				pend.pop('delete', None)
			vm['pending'] = pend
			self.save_vm(vm)

	# -- power (pc-ct API2/LXC/Status.pm) ---------------------------------------------------------
	def ct_power(self, r, action):
		vm = self.get_ct(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.PowerMgmt'])
		if truthy(r.params.get('skiplock')):
			raise param_exc({'skiplock': 'Only root may use this option.'})
		running = vm['status'] == 'running'
		if action == 'start' and running:
			raise ApiError(500, 'CT %d already running\n' % vmid)
		if action in ('stop', 'shutdown') and not running:
			raise ApiError(500, 'CT %d not running\n' % vmid)
		if action == 'reboot' and not running:
			raise ApiError(500, 'VM %d not running\n' % vmid)  # sic, vm_reboot says VM
		ttype = 'vz' + action

		def work(t):
			with self.config_lock(vmid, ttype=ttype):
				if action == 'start':
					if vm['conf'].get('template'):
						raise TaskFailed("you can't start a CT if it's a template")
					self.check_ct_lock(vm)
					if vm['conf'].get('unprivileged'):
						for k, _ in self.mp_volumes(vm['conf']):
							if truthy(self.parse_mp(k, vm['conf'][k]).get('quota')):
								raise TaskFailed('Quotas are not supported by unprivileged '
									'containers.')
					self.ct_start(vm)
				elif action == 'stop':
					self.check_ct_lock(vm)
					self.ct_stop(vm)
				elif action == 'shutdown':
					self.check_ct_lock(vm)
					# Status.pm vm_shutdown: vm_stop($vmid, 0, $timeout, $forceStop)
					self.ct_stop(vm, False, int(r.params.get('timeout', 60)),
						truthy(r.params.get('forceStop')))
				else:
					# LXC.pm vm_reboot: vm_stop($vmid, 0, $timeout, 1), then vm_start
					self.ct_stop(vm, False, int(r.params.get('timeout', 60)), True)
					self.ct_start(vm)

		return self.new_task(r.node, ttype, vmid, r.authid, work)

	def h_post_nodes_node_lxc_vmid_status_start(self, r):
		return self.ct_power(r, 'start')

	def h_post_nodes_node_lxc_vmid_status_stop(self, r):
		return self.ct_power(r, 'stop')

	def h_post_nodes_node_lxc_vmid_status_shutdown(self, r):
		return self.ct_power(r, 'shutdown')

	def h_post_nodes_node_lxc_vmid_status_reboot(self, r):
		return self.ct_power(r, 'reboot')

	# -- interfaces (pc-ct LXC.pm get_interfaces: `ip --json a` in the container) --------------
	def h_get_nodes_node_lxc_vmid_interfaces(self, r):
		vm = self.audited_ct(r)
		if vm['status'] != 'running':
			return None  # find_lxc_pid fails: 'return if $@'
		if vm.get('agent_ifaces') is not None:
			return vm['agent_ifaces']  # set with /_sim/agent/<vmid> {"interfaces": [...]}
		if self.lxc_rt:
			return self.lxc_rt.interfaces(vm)
		res = [iface('lo', '00:00:00:00:00:00', [('inet', '127.0.0.1', 8), ('inet6', '::1',
			128)])]
		for i in range(32):
			net = vm['conf'].get('net%d' % i)
			if not net:
				continue
			d = dict(x.split('=', 1) for x in net.split(',') if '=' in x)
			addrs = []
			ip = d.get('ip')
			if ip == 'dhcp':
				# one /24 per container and interface, the address the DHCP server hands out
				n = vm['vmid'] * 8 + i
				addrs.append(('inet', '10.%d.%d.15' % (n // 256 % 256, n % 256), 24))
			elif ip and ip != 'manual':
				a, _, bits = ip.partition('/')
				addrs.append(('inet', a, int(bits)))
			ip6 = d.get('ip6')
			if ip6 and ip6 not in ('dhcp', 'auto', 'manual'):
				a, _, bits = ip6.partition('/')
				addrs.append(('inet6', a, int(bits)))
			res.append(iface(d.get('name', 'eth%d' % i), d.get('hwaddr', '').lower(), addrs))
		return res

	# -- destroy (pc-ct API2/LXC.pm destroy_vm) ---------------------------------------------------
	def h_delete_nodes_node_lxc_vmid(self, r):
		vm = self.get_ct(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		force = truthy(r.params.get('force'))

		def early_checks():
			if vm['conf'].get('protection'):
				raise ApiError(500, "can't remove CT %d - protection mode enabled\n" % vmid)
			self.check_ct_lock(vm)

		early_checks()
		if not force and vm['status'] == 'running':
			raise ApiError(500, 'unable to destroy CT %d - container is running\n' % vmid)

		def work(t):
			with self.config_lock(vmid, ttype='vzdestroy'):
				early_checks()
				if vm['status'] == 'running':
					if not force:
						raise TaskFailed('unable to destroy CT %d - container is running' % vmid)
					t.warn('forced to stop CT %d before destroying!' % vmid)
					self.ct_stop(vm)
				node = vm['node']
				done = set()
				# destroy_lxc_container -> delete_mountpoint_volume (a failing vdisk_free,
				# e.g. a base still used by linked clones, fails the task)
				for k, vol in self.mp_volumes(vm['conf'], include_unused=True):
					if vol in done:
						continue
					done.add(vol)
					v = self.vol(vol, node)
					if v['owner'] != vmid:
						t.warn("ignore deletion of '%s', CT %d isn't the owner!" % (vol, vmid))
						continue
					self.free_image(t, vol, node)
				if truthy(r.params.get('destroy-unreferenced-disks')):
					for e in self.list_volumes(None, vmid, node=node):
						if e['content'] not in ('images', 'rootdir'):
							continue
						try:
							self.free_image(t, e['volid'], node)
						except (TaskFailed, ApiError) as ex:
							t.warn(str(getattr(ex, 'msg', ex)).strip())
				with self.lock:
					vm['conf'] = {'lock': 'destroyed'}
					self.save_vm(vm)
				if truthy(r.params.get('purge')):
					t.log('purging CT %d from related configurations..' % vmid)
				self.drop_vm(vmid)

		return self.new_task(r.node, 'vzdestroy', vmid, r.authid, work)

	# -- template (pc-ct API2/LXC.pm template, LXC.pm template_create) -------------------------
	def h_post_nodes_node_lxc_vmid_template(self, r):
		vm = self.get_ct(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		with self.config_lock(vmid):
			# the checks run under the lock in the API process, which forks the worker there
			self.check_ct_lock(vm)
			if vm.get('snapshots'):
				raise ApiError(500, 'unable to create template, because CT contains snapshots\n')
			if vm['conf'].get('template'):
				raise ApiError(500, "you can't convert a template to a template\n")
			if vm['status'] == 'running':
				raise ApiError(500, "you can't convert a CT to template if the CT is running\n")

		def work(t):
			conf = vm['conf']
			node = vm['node']
			vols = self.mp_volumes(conf)
			for k, vol in vols:
				if not self.has_feature(vol, 'template'):
					raise TaskFailed("Template feature is not available for '%s'" % vol)
			for k, vol in vols:
				newvol = self.create_base(vol, node)
				mp = self.parse_mp(k, conf[k])
				mp['volume'] = newvol
				with self.lock:
					conf[k] = self.print_mp(mp)
					self.save_vm(vm)
			with self.lock:
				conf['template'] = 1
				self.save_vm(vm)
			if self.lxc_rt:
				self.lxc_rt.drop_config(vmid)  # update_lxc_config: a template has none

		# pc-ct returns undef from template (the worker's UPID is not passed on)
		self.new_task(r.node, 'vztemplate', vmid, r.authid, work)
		return None

	# -- clone (pc-ct API2/LXC.pm clone_vm) -------------------------------------------------------
	def h_post_nodes_node_lxc_vmid_clone(self, r):
		p = r.params
		vmid = int(r.vmid)
		newid = int(p['newid'])
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Clone'])
		if p.get('pool'):
			self.check(r.authid, '/pool/' + p['pool'], ['VM.Allocate'])
		else:
			self.check(r.authid, '/vms/%d' % newid, ['VM.Allocate'])
		target = p.get('target')
		if target in (r.node, 'localhost'):
			target = None
		if target and target not in self.nodes:
			raise ApiError(500, "no such cluster node '%s'\n" % target)
		storage = p.get('storage')
		if storage:
			st = self.storage(storage)
			self.check_enabled(st, r.node)
			if target:
				self.check_enabled(st, target)
				if not st.get('shared'):
					raise ApiError(500, "can't clone to non-shared storage '%s'\n" % storage)
		snapname = p.get('snapname')
		# set_lock($vmid, 'disk'): load_config, check_lock, lock: disk. A second clone of
		# the same template fails here until the first one ends.
		with self.config_lock(vmid):
			vm = self.get_ct(vmid, r.node)
			self.check_ct_lock(vm)
			with self.lock:
				vm['conf']['lock'] = 'disk'
				self.save_vm(vm)

		def unlock_source():
			with self.lock:
				if vm['conf'].get('lock') == 'disk':
					del vm['conf']['lock']
					self.save_vm(vm)

		try:
			with self.config_lock(newid, timeout=5):
				self.vmid_unused(newid)
				with self.lock:
					newvm = self.add_locked_vm(newid, r.node, 'create')
					newvm['type'] = 'lxc'
					self.save_vm(newvm)
		except ApiError:
			unlock_source()
			raise
		try:
			running = vm['status'] == 'running'
			src = vm['conf']
			full = truthy(p['full']) if p.get('full') is not None else not src.get('template')
			if storage is not None and not full:
				raise ApiError(500, "parameter 'storage' not allowed for linked clones\n")
			if snapname:
				raise ApiError(500, "snapshot '%s' does not exist\n" % snapname)
			newconf = {}
			mps = {}
			sharedvm = True
			for opt in sorted(src):
				v = src[opt]
				if re.match(r'^unused\d+$', opt):
					continue
				if MP_RE.match(opt):
					mp = self.parse_mp(opt, v)
					vol = mp['volume']
					if vol.startswith('/') or ':' not in vol:
						raise ApiError(500, "unable to clone mountpoint '%s' (type bind)\n" % opt)
					sid = storage if storage is not None else vol.split(':')[0]
					if not self.storage(sid).get('shared'):
						sharedvm = False
					self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])
					if full:
						if running:
							raise ApiError(500, 'Full clone of a running container is only '
								'possible from a snapshot\n')
					elif not self.has_feature(vol, 'clone', target_formats=('raw', 'subvol')):
						raise ApiError(500, "Linked clone feature for '%s' is not available\n" % vol)
					mps[opt] = mp
				elif re.match(r'^net\d+$', opt):
					d = dict(x.split('=', 1) for x in str(v).split(',') if '=' in x)
					d['hwaddr'] = self.gen_mac()
					newconf[opt] = self.norm_ct_net(opt, ','.join('%s=%s' % kv for kv in
						d.items()))
					self.check_bridge_access(r, {opt: newconf[opt]})
				elif opt not in ('lock', 'template', 'snapshots', 'parent', 'snaptime',
						'snapstate', 'digest'):
					newconf[opt] = v
			if target and not sharedvm:
				raise ApiError(500, "can't clone CT to node '%s' (CT uses local storage)\n" %
					target)
			newconf['lock'] = 'create'
			if p.get('hostname'):
				newconf['hostname'] = p['hostname']
			if p.get('description'):
				newconf['description'] = p['description']
			with self.lock:
				newvm['conf'] = newconf
				self.save_vm(newvm)
		except ApiError:
			unlock_source()
			self.drop_vm(newid)
			raise

		created = []

		def work(t):
			t.log('creating a clone of container %d with ID %d' % (vmid, newid))
			if (vm['status'] == 'running') != running:
				raise TaskFailed('unexpected state change')
			try:
				for opt in sorted(mps):
					mp = dict(mps[opt])
					vol = mp['volume']
					if full:
						t.log('create full clone of mountpoint %s (%s)' % (opt, vol))
						newvol, path = self.ct_copy_volume(t, vol, newid, storage or
							vol.split(':')[0], r.node, src)
					else:
						t.log('create linked clone of mount point %s (%s)' % (opt, vol))
						newvol, path = self.clone_image(vol, newid, r.node)
					created.append(path)
					mp['volume'] = newvol
					with self.lock:
						newvm['conf'][opt] = self.print_mp(mp)
						self.save_vm(newvm)
				if self.lxc_rt:
					# Setup.pm post_clone_hook: the clone's /etc/machine-id is truncated
					self.lxc_rt.post_clone(t, newid, newvm['conf'])
			except (TaskFailed, ApiError) as e:
				raise TaskFailed('clone failed: %s' % str(getattr(e, 'msg', e)).strip())
			newvm['rootfs_info'] = dict(vm.get('rootfs_info') or {})
			self.warn_systemd_nesting(t, newvm, newvm['conf'])
			with self.lock:
				newvm['conf'].pop('lock', None)
				if target:
					newvm['node'] = target
				self.save_vm(newvm)

		def on_error(t):
			self.free_created(created)
			self.drop_vm(newid)

		return self.new_task(r.node, 'vzclone', vmid, r.authid, work, on_error, unlock_source)

	def ct_copy_volume(self, t, volid, newid, sid, node, conf):
		"""pc-ct LXC.pm copy_volume: a new volume of the source's size on the target storage
		(alloc_disk: raw, or a subvol on zfspool), then the contents are copied (rsync)."""
		v = self.vol(volid, node)
		size = self.volume_size(volid, node)
		st = self.storage(sid)
		newvol, path = self.ct_alloc_disk(st, newid, size, node)
		nv = self.vol(newvol, node)
		if self.lxc_rt and (v['format'] == 'subvol') != (nv['format'] == 'subvol'):
			# between a subvol and a raw image: alloc_disk formats the new volume, both are
			# mounted and the files copied
			try:
				self.lxc_rt.format(t, newvol, conf)
				self.lxc_rt.copy_files(volid, newvol)
			except BaseException:
				self.free_created([path])
				raise
		elif v['format'] == 'subvol' and nv['format'] == 'subvol':
			for fn in os.listdir(v['path']):
				if fn.startswith('.pve-sim'):
					continue
				# rsync -aH in copy_volume: owners and xattrs stay
				run(['cp', '-a', '--', os.path.join(v['path'], fn), os.path.join(path, fn)])
		elif v['format'] != 'subvol' and nv['format'] != 'subvol':
			run(['qemu-img', 'convert', '-q', '-f', self.phys_format(v['path']), '-O', 'raw',
				v['path'], path + '.copy'])
			os.replace(path + '.copy', path)
			if self.volume_size(newvol, node) < self.alloc_size(st, size):
				self.resize_volume(newvol, size, node)
				if self.lxc_rt:
					self.lxc_rt.resize_fs(newvol)
		return newvol, path

	# -- resize (pc-ct API2/LXC.pm resize_vm) -------------------------------------------------------
	def h_put_nodes_node_lxc_vmid_resize(self, r):
		p = r.params
		vm = self.get_ct(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Config.Disk'])
		sizestr = p['size']
		ext = sizestr.startswith('+')
		request = parse_size(sizestr.lstrip('+'))
		if request is None:
			raise ApiError(500, 'invalid size string')
		disk = p['disk']

		def load_and_check():
			self.check_ct_lock(vm)
			# check_ct_modify_config_perm gets {disk => ...}: 'disk' is no option it knows,
			# so it needs VM.Config.Options
			self.check_ct_modify_config_perm(r, vmid, vm['conf'], {'disk': disk}, [],
				vm['conf'].get('unprivileged'))
			self.assert_if_modified(vm, p.get('digest'))
			if not vm['conf'].get(disk):
				# NEEDSWORK: the Perl message for a mount point that is not configured
				raise ApiError(500, "unable to parse %s '%s'\n" % (disk, ''))
			mp = self.parse_mp(disk, vm['conf'][disk])
			vol = mp['volume']
			v = self.vol(vol, vm['node'])
			if v['owner'] != vmid:
				raise ApiError(500, "can't resize mount point owned by another container (%d)"
					" at /usr/share/perl5/PVE/API2/LXC.pm line 2390.\n" % v['owner'])
			self.check(r.authid, '/storage/' + v['sid'], ['Datastore.AllocateSpace'])
			size = self.volume_size(vol, vm['node'])
			new = int(size + request if ext else request)
			if new < size:
				raise ApiError(500, 'unable to shrink disk size\n')
			if new == size:
				raise ApiError(500, 'disk is already at specified size\n')
			return mp, vol, v, new

		load_and_check()

		def work(t):
			with self.config_lock(vmid, ttype='resize'):
				mp, vol, v, new = load_and_check()
				new = self.resize_volume(vol, new, vm['node'])
				mp['size'] = format_size(new)
				with self.lock:
					vm['conf'][disk] = self.print_mp(mp)
					self.save_vm(vm)
				if v['format'] == 'raw':
					t.log("Resizing image: 100% complete...done.")
					if self.lxc_rt and vm['status'] != 'running':
						self.lxc_rt.resize_fs(vol)
					if vm['status'] != 'running':
						t.log("e2fsck 1.47.0 (5-Feb-2023)")
						t.log("resize2fs 1.47.0 (5-Feb-2023)")

		return self.new_task(r.node, 'resize', vmid, r.authid, work)


def systemd_version(members):
	"""pc-ct Setup/Base.pm get_systemd_version reads the libsystemd-shared-N.so that objdump
	shows the init binary needs; here the library's name in the archive (None: no systemd)."""
	names = set(x.rstrip('/') for x in members)
	if not names & {'lib/systemd/systemd', 'usr/lib/systemd/systemd'}:
		return None
	for x in members:
		m = re.search(r'/libsystemd-shared-(\d+)(?:[-_.][a-zA-Z0-9]+)*\.so$', x)
		if m:
			return int(m.group(1))
	return None


def iface(name, mac, addrs):
	"""One entry of get_interfaces: families as `ip --json a` names them (inet, inet6)."""
	d = {'name': name, 'hwaddr': mac, 'hardware-address': mac, 'ip-addresses': [
		{'ip-address-type': fam, 'ip-address': a, 'prefix': bits} for fam, a, bits in addrs]}
	for fam, a, bits in addrs:
		d[fam] = '%s/%d' % (a, bits)
	return d
