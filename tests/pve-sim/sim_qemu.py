"""The qemu VM endpoints: list, create (drives made or imported with qemu-img), config, status
and power, destroy, template, clone (full and linked), resize, snapshots."""

import hashlib
import json
import os
import random
import re
import shutil
import time
import uuid

import pve_schema
from pve_schema import format_size, parse_size
from sim_common import (ApiError, TaskFailed, no_volume_exc, param_exc, qemu_img_info,
	remove_files, root_path_exc, run)
from sim_storage import TYPES
from sim_tasks import Task


def TYPES_FORMATS(st):
	return TYPES[st['type']]['formats']

DRIVE_RE = re.compile(r'^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])'
	r'|efidisk0|tpmstate0)$')
TPMSTATE_DISK_SIZE = 4 * 1024 * 1024  # qs Drive.pm TPMSTATE_DISK_SIZE
NEW_DISK_RE = re.compile(r'^(([^/:\s]+):)?(\d+(\.\d+)?)$')  # qs Drive.pm NEW_DISK_RE

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
IMPORT_FROM_SYNTAX = ("'import-from' requires special syntax - use "
	"<storage ID>:0,import-from=<source>")


def opt_base(k):
	m = re.match(r'^([a-z]+)\d+$', k)
	return m.group(1) if m and k not in ('rng0', 'audio0', 'efidisk0', 'tpmstate0') else k


# qs QemuServer/OVMF.pm $OVMF (x86_64): the firmware pair per EFI disk type. Proxmox's
# pve-edk2-firmware files are in /usr/share/pve-edk2-firmware/; Debian's ovmf package ships
# the same builds under the same names in /usr/share/OVMF/.
OVMF_DIR = '/usr/share/OVMF'
OVMF = {'4m-no-smm': ('OVMF_CODE_4M.fd', 'OVMF_VARS_4M.fd'),
	'4m-no-smm-ms': ('OVMF_CODE_4M.fd', 'OVMF_VARS_4M.ms.fd'),
	'4m': ('OVMF_CODE_4M.secboot.fd', 'OVMF_VARS_4M.fd'),
	'4m-ms': ('OVMF_CODE_4M.secboot.fd', 'OVMF_VARS_4M.ms.fd'),
	'default': ('OVMF_CODE.fd', 'OVMF_VARS.fd')}


def ovmf_files(efidisk, smm):
	"""qs OVMF.pm get_ovmf_files: (code, vars) paths for an efidisk0 (parsed, or None) on a
	machine with SMM (q35) or without. Raises TaskFailed as qemu-server dies."""
	kind = 'default'
	if efidisk and efidisk.get('efitype') == '4m':
		kind = '4m' if smm else '4m-no-smm'
		if str(efidisk.get('pre-enrolled-keys', '0')) in ('1', 'true', 'on', 'yes'):
			kind += '-ms'
	code, vars_ = (os.path.join(OVMF_DIR, f) for f in OVMF[kind])
	if not os.path.exists(code):
		raise TaskFailed("EFI base image '%s' not found" % code)
	if not os.path.exists(vars_):
		raise TaskFailed("EFI vars image '%s' not found" % vars_)
	return code, vars_


def machine_is_q35(conf):
	"""qs Machine.pm machine_type_is_q35 (machine_base_type): the machine option's type
	(its default key) contains 'q35'."""
	t = str(conf.get('machine') or '').split(',')[0]
	return 'q35' in (t[5:] if t.startswith('type=') else t)


def creation_meta():
	return 'creation-qemu=9.2.0,ctime=%d' % int(time.time())


class QemuHandlers:
	# -- listing --------------------------------------------------------------------------
	def vm_resource(self, vm, full=True):
		if vm.get('type') == 'lxc':
			return self.ct_resource(vm)
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

	def h_get_nodes_node_qemu(self, r):
		with self.lock:
			vms = [vm for vm in self.vms.values() if vm['node'] == r.node and
				vm.get('type') != 'lxc']
		return [self.vm_resource(vm) for vm in sorted(vms, key=lambda v: v['vmid'])
			if self.has(r.authid, '/vms/%d' % vm['vmid'], 'VM.Audit')]

	# -- options and drives ------------------------------------------------------------------
	def check_opts_perm(self, r, vmid, keys):
		"""qs API2/Qemu.pm $check_vm_modify_config_perm: per option kind; drives, cdrom,
		unusedN, serialN, usbN, hostpciN, virtiofsN and tags are checked elsewhere (their
		privilege depends on the value: $check_storage_access, $check_drive_perms)."""
		path = '/vms/%d' % vmid
		for k in sorted(keys):
			if k in NOT_CONFIG:
				continue
			b = opt_base(k)
			if k in ROOT_ONLY or b in ROOT_ONLY:
				raise ApiError(500, "only root can set '%s' config\n" % k)
			if DRIVE_RE.match(k) or k == 'cdrom' or k == 'tags' or \
					re.match(r'^(unused|serial|usb|virtiofs)\d+$', k):
				continue
			privs = OPT_PRIV.get(b) or OPT_PRIV.get(k)
			if privs:
				self.check(r.authid, path, list(privs), any_of=len(privs) > 1)
			if k == 'startup':
				# "special case for startup since it changes host behaviour"
				self.check(r.authid, '/', ['Sys.Modify'])

	def check_drive_perm(self, authid, vmid, key, value):
		"""qs API2/Qemu.pm $update_vm_api $check_drive_perms (runs in the update worker):
		cloud-init drive: VM.Config.Cloudinit and VM.Config.CDROM; CD-ROM (media=cdrom):
		VM.Config.CDROM; any other disk: VM.Config.Disk."""
		d = self.parse_drive(key, str(value))
		f = d['file']
		path = '/vms/%d' % vmid
		if f == 'cloudinit' or f.endswith(':cloudinit') or self.is_cloudinit(f):
			self.check(authid, path, ['VM.Config.Cloudinit', 'VM.Config.CDROM'])
		elif d.get('media') == 'cdrom':
			self.check(authid, path, ['VM.Config.CDROM'])
		else:
			self.check(authid, path, ['VM.Config.Disk'])

	def check_bridge_access(self, r, conf):
		"""qs QemuServer.pm check_bridge_access, pgc GuestHelpers.pm check_vnet_access: SDN.Use
		on /sdn/zones/<zone>/<bridge>[/<tag>]; an SDN VNet is in its zone (from
		/cluster/sdn/vnets), any other bridge in zone 'localnetwork'."""
		for k in sorted(conf):
			if not re.match(r'^net\d+$', k):
				continue
			v = str(conf[k])
			m = re.search(r'(?:^|,)bridge=([^,]+)', v)
			if not m:
				continue
			bridge = m.group(1)
			tag = re.search(r'(?:^|,)tag=(\d+)', v)
			trunks = re.search(r'(?:^|,)trunks=([^,]+)', v)
			zone = (self.sdn_vnets.get(bridge) or {}).get('zone', 'localnetwork')
			base = '/sdn/zones/%s/%s' % (zone, bridge)
			if tag:
				self.check(r.authid, base + '/' + tag.group(1), ['SDN.Use'])
			if trunks:
				tags = set()
				for part in trunks.group(1).split(';'):
					a, _, b = part.partition('-')
					tags.update(range(int(a), int(b or a) + 1))
				for tg in sorted(tags, key=str):
					self.check(r.authid, '%s/%d' % (base, tg), ['SDN.Use'])
			if not (tag or trunks):
				self.check(r.authid, base, ['SDN.Use'])

	def create_props(self):
		"""The option schemas of POST /nodes/{node}/qemu (the VM config's options)."""
		return self.validator.schema['POST /nodes/{node}/qemu']['parameters']['properties']

	def parse_drive(self, key, value):
		fmt = self.validator.lookup_indexed(self.create_props(), key)['format']
		return self.validator.parse_property_string(fmt, value, key)

	def print_drive(self, d):
		# PVE::JSONSchema::print_property_string: default key first, the rest sorted
		parts = [d['file']] + ['%s=%s' % (k, d[k]) for k in sorted(d) if k != 'file']
		return ','.join(parts)

	def plan_drives(self, r, vm_id, params, default_storage, existing_conf):
		"""qs API2/Qemu.pm $check_storage_access and $check_drive_param (before the fork):
		returns the jobs create_disks runs in the task."""
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
			cd = d.get('media') == 'cdrom'
			if f == 'none':
				jobs.append(('keep', k, d, None))
			elif f.endswith(':cloudinit') or f == 'cloudinit':
				sid = f.split(':')[0] if ':' in f else default_storage
				if ci_present:
					# qs API2/Qemu.pm create_disks
					raise ApiError(500, "cloud-init drive is already attached at '%s'\n" % k)
				ci_present = True
				if not sid:
					raise ApiError(500, 'no storage ID specified (and no default storage)\n')
				self.storage(sid)
				jobs.append(('cloudinit', k, d, sid))
			elif cd and f == 'cdrom':
				self.check(r.authid, '/', ['Sys.Console'])
				jobs.append(('keep', k, d, None))
			elif not cd and m:
				sid = m.group(2) or default_storage
				if not sid:
					raise ApiError(500, 'no storage ID specified (and no default storage)\n')
				self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])
				if 'images' not in self.storage(sid)['content']:
					raise param_exc({'storage': "storage '%s' does not support vm images" % sid})
				if imp is not None:
					self.check_import_source(r, imp, k)
					if float(m.group(3)) != 0:
						# qs API2/Qemu.pm $check_drive_param
						raise param_exc({k: IMPORT_FROM_SYNTAX})
					need = {'efidisk0': ('efitype', 'pre-enrolled-keys'),
						'tpmstate0': ('version',)}.get(k, ())
					for opt in need:
						if d.get(opt) is None:
							raise param_exc({k: "need to specify '%s' when using 'import-from'"
								% opt})
				jobs.append(('import' if imp is not None else 'new', k, d, sid))
			else:
				if f.startswith('/'):
					raise root_path_exc()
				v = self.check_volume_access(r, f, vm_id)
				if v['ctype'] not in ('images', 'iso'):
					raise param_exc({k: "content type needs to be 'images' or 'iso'"})
				if imp is not None:
					raise param_exc({k: IMPORT_FROM_SYNTAX})
				if not os.path.exists(v['path']):
					raise no_volume_exc(f)
				if v['ctype'] == 'iso' and not cd:
					raise param_exc({k: "explicit 'media=cdrom' is required for iso images"})
				jobs.append(('keep', k, d, None))
		return jobs

	def run_drive_jobs(self, t, vmid, jobs, created, node):
		"""qs API2/Qemu.pm create_disks inside the task: allocates, imports (converting to
		the target storage's format) or keeps each drive; returns {key: drive string}."""
		out = {}
		for kind, k, d, sid in jobs:
			d = dict(d)
			if kind == 'keep':
				out[k] = self.print_drive(d)
				continue
			st = self.storage(sid)
			if kind == 'cloudinit':
				volid, path = self.alloc_cloudinit(st, vmid, node)
				created.append(path)
				d['file'] = volid
				d['media'] = 'cdrom'
				out[k] = self.print_drive(d)
				t.log("%s: successfully created disk '%s,media=cdrom'" % (k, volid))
				continue
			if kind == 'new' and k == 'efidisk0':
				# qs API2/Qemu.pm create_disks -> OVMF.pm create_efidisk: the requested size
				# is ignored; a volume of the vars template's size (528K for efitype=4m,
				# 128K for the legacy 2m) holding a copy of it (the VM's own NVRAM)
				_, vars_ = ovmf_files(d, False)
				volid, path = self.alloc_disk(st, vmid, d, os.path.getsize(vars_), node)
				created.append(path)
				run(['qemu-img', 'convert', '-q', '-n', '-f', 'raw', '-O', self.phys_format(path),
					vars_, path])
			elif kind == 'new':
				gb = NEW_DISK_RE.match(d['file']).group(3)
				size = int(float(gb) * (1 << 30))
				if k == 'tpmstate0':
					size = TPMSTATE_DISK_SIZE
				volid, path = self.alloc_disk(st, vmid, d, size, node)
				created.append(path)
			else:
				src = d.pop('import-from')
				spath = self.vol(src, node)['path']
				t.log("importing disk '%s' to VM %d ..." % (src, vmid))
				t.log("transferred 0.0 B of %s (0.00%%)" % format_size(
					qemu_img_info(spath)['virtual-size']))
				volid, path = self.import_disk(st, vmid, d, spath, node)
				created.append(path)
				t.log('transferred all data (100.00%)')
			d.pop('format', None)  # create_disks: 'no longer needed'
			d['file'] = volid
			d['size'] = format_size(self.volume_size(volid, node))
			out[k] = self.print_drive(d)
			t.log("%s: successfully created disk '%s'" % (k, out[k]))
		return out

	def to_conf_value(self, k, v):
		sch = self.validator.lookup_indexed(self.create_props(), k) or {}
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
		d = self.validator.parse_property_string(self.create_props()['net[n]']['format'], v, k)
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

	# -- create -----------------------------------------------------------------------------
	def h_post_nodes_node_qemu(self, r):
		p = r.params
		vmid = int(p['vmid'])
		if p.get('archive'):
			raise ApiError(501, 'restore is not supported by the simulator\n')
		# qs API2/Qemu.pm create_vm, in its order: storage, start, VM.Allocate (a bare
		# raise_perm_exc), $check_storage_access, $check_vm_modify_config_perm,
		# check_bridge_access, $check_drive_param; then create_and_lock_config
		if p.get('storage'):
			self.need_storage(r, p['storage'])
		if p.get('start'):
			self.check(r.authid, '/vms/%d' % vmid, ['VM.PowerMgmt'])
		if not (self.has(r.authid, '/vms/%d' % vmid, 'VM.Allocate') or (p.get('pool') and
				self.has(r.authid, '/pool/' + p['pool'], 'VM.Allocate'))):
			raise ApiError(403, 'Permission check failed\n')
		jobs = self.plan_drives(r, vmid, p, p.get('storage'), {})
		self.check_opts_perm(r, vmid, list(p))
		self.check_bridge_access(r, p)
		with self.lock:
			if vmid in self.vms:
				# pgc AbstractConfig.pm create_and_lock_config -> pve-cluster Cluster.pm
				# check_vmid_unused, prefixed with create_vm's $emsg
				raise ApiError(500, "unable to create VM %d - VM %d already exists on node "
					"'%s'\n" % (vmid, vmid, self.vms[vmid]['node']))
			vm = self.add_locked_vm(vmid, r.node, 'create')
		created = []

		def work(t):
			conf = {}
			drives = self.run_drive_jobs(t, vmid, jobs, created, r.node)
			self.apply_simple_opts(conf, p)
			conf.update(drives)
			if 'smbios1' not in conf:
				conf['smbios1'] = 'uuid=%s' % uuid.uuid4()
			conf.setdefault('vmgenid', str(uuid.uuid4()))
			conf['meta'] = creation_meta()
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
			remove_files(created)
			self.drop_vm(vmid)
			t.log('unable to create VM %d - %s' % (vmid, 'removed'))

		return self.new_task(r.node, 'qmcreate', vmid, r.authid, work, on_error)

	# -- config -------------------------------------------------------------------------------
	def h_get_nodes_node_qemu_vmid_config(self, r):
		vm = self.audited_vm(r)
		conf = dict(vm['conf'])
		if 'cipassword' in conf:
			conf['cipassword'] = '**********'
		conf['digest'] = self.conf_digest(vm)
		return conf

	def h_get_nodes_node_qemu_vmid_pending(self, r):
		vm = self.audited_vm(r)
		return [{'key': k, 'value': v} for k, v in sorted(vm['conf'].items())
			if k != 'cipassword']

	def update_config(self, r, sync):
		"""qs API2/Qemu.pm $update_vm_api. Before the fork: option privileges, storage
		access, bridges, the config checks; the config flock is taken before the fork up to
		qemu-server 9.1.18 and inside the worker from 9.1.19 (commit 797ab238 'api: update vm:
		fork before locking'); the drive privileges ($check_drive_perms) are checked in the
		worker."""
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		keys = [k for k in p if k not in NOT_CONFIG]
		dels = pve_schema.split_list(p.get('delete', '')) if p.get('delete') else []
		if not keys and not dels and not p.get('revert'):
			raise ApiError(400, 'no options specified\n')
		self.check(r.authid, '/vms/%d' % vmid, ALL_VM_CONFIG, any_of=True)
		for k in dels:
			if k in p:
				raise ApiError(400, "unable to delete '%s' - there are pending changes\n" % k)
		drive_params = {k: p[k] for k in keys if DRIVE_RE.match(k)}
		self.check_opts_perm(r, vmid, dels)
		self.check_opts_perm(r, vmid, keys)
		jobs = self.plan_drives(r, vmid, drive_params, None,
			{k: v for k, v in vm['conf'].items() if k not in p})
		self.check_bridge_access(r, p)

		def load_and_check():
			if p.get('digest') and p['digest'] != self.conf_digest(vm):
				raise ApiError(500, 'checksum mismatch (file change by other user?)\n')
			self.check_lock(vm)

		simple = {k: p[k] for k in keys if not DRIVE_RE.match(k)}
		if 'cipassword' in simple and not re.match(r'^\$(?:[156]|2[ay])(\$.+){2}',
				simple['cipassword']):
			simple['cipassword'] = self.crypt(simple['cipassword'])
		created = []
		in_worker_lock = self.qs_at_least('9.1.19') and not sync

		def apply(t):
			for k in dels:
				is_unused = re.match(r'^unused\d+$', k)
				if (DRIVE_RE.match(k) or is_unused) and k in vm['conf'] and \
						vm['conf'].get('protection'):
					# qs API2/Qemu.pm update_vm_api: QemuConfig->check_protection
					raise TaskFailed("can't remove %s - protection mode enabled" % (
						"unused disk '%s'" % vm['conf'][k] if is_unused else
						"drive '%s'" % k))
				if is_unused and k in vm['conf']:
					self.check(r.authid, '/vms/%d' % vmid, ['VM.Config.Disk'])
				elif DRIVE_RE.match(k) and k in vm['conf']:
					self.check_drive_perm(r.authid, vmid, k, vm['conf'][k])
			for k in sorted(drive_params):
				if k in vm['conf']:
					self.check_drive_perm(r.authid, vmid, k, vm['conf'][k])
				self.check_drive_perm(r.authid, vmid, k, drive_params[k])
			t.log('update VM %d: %s' % (vmid, ' '.join('-%s %s' % (k, '<hidden>' if
				k == 'cipassword' else p[k]) for k in sorted(keys))))
			drives = self.run_drive_jobs(t, vmid, jobs, created, r.node) if jobs else {}
			with self.lock:
				conf = vm['conf']
				for k in dels:
					old = conf.pop(k, None)
					if old and re.match(r'^unused\d+$', k):
						self.deallocate_unused(t, r, vm, k, old)
					elif old and DRIVE_RE.match(k) and 'cloudinit' not in old and \
							'media=cdrom' not in old:
						# qs QemuServer.pm vmconfig_register_unused_drive (a CD-ROM is
						# not registered); QemuConfig.pm add_unused_volume: the lowest
						# free unusedN
						n = 0
						while 'unused%d' % n in conf:
							n += 1
						conf['unused%d' % n] = old.split(',')[0]
				self.apply_simple_opts(conf, simple)
				conf.update(drives)
				self.save_vm(vm)

		def work(t):
			if in_worker_lock:
				with self.config_lock(vmid, ttype='qmconfig'):
					load_and_check()
					apply(t)
			else:
				apply(t)

		if sync:
			# PUT config runs in the API process under the lock; a failure is a plain 500
			t = Task(self, r.node, 'qmconfig', vmid, r.authid)
			with self.config_lock(vmid):
				load_and_check()
				try:
					apply(t)
				except TaskFailed as e:
					raise ApiError(500, str(e) + '\n')
			return None
		load_and_check()  # early checks before forking/locking
		if in_worker_lock:
			return self.new_task(r.node, 'qmconfig', vmid, r.authid, work)
		# up to qemu-server 9.1.18: lock_config($vmid, $updatefn) forks the worker inside
		release = self.flock(vmid)
		try:
			load_and_check()
		except ApiError:
			release()
			raise
		return self.new_task(r.node, 'qmconfig', vmid, r.authid, work, lock_release=release)

	def deallocate_unused(self, t, r, vm, key, volid):
		"""qs QemuServer.pm try_deallocate_drive for an unusedN: a volume the VM owns needs
		Datastore.AllocateSpace on its storage and must not be in use by a snapshot, then
		vdisk_free; one it does not own only leaves the config."""
		v = self.vol(volid, vm['node'])
		if v['owner'] != vm['vmid']:
			return
		self.check(r.authid, '/storage/' + v['sid'], ['Datastore.AllocateSpace'])
		for snap in (vm.get('snapshots') or {}).values():
			if volid in [str(x).split(',')[0] for x in (snap.get('conf') or snap).values()]:
				raise TaskFailed("unable to delete '%s' - volume is still in use (snapshot?)"
					% volid)
		self.free_image(t, volid, vm['node'])

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
		vm = self.audited_vm(r)
		d = self.vm_resource(vm)
		d['qmpstatus'] = vm['status']
		# qs API2/Qemu.pm vm_status: HA Config.pm get_service_status (managed when the
		# resource exists; the state is the manager's, here the requested one)
		with self.lock:
			ha = self.ha_resources.get('vm:%d' % vm['vmid'])
		d['ha'] = {'managed': 1, 'state': ha.get('state', 'started')} if ha else {'managed': 0}
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
		if action != 'start':
			self.check_lock(vm)

		def work(t):
			with self.config_lock(vmid, ttype=ttype):
				if action == 'start':
					# qs QemuServer.pm vm_start (in the worker, under the config lock): the
					# template check, then check_lock, then 'already running'
					if vm['conf'].get('template'):
						raise TaskFailed("you can't start a vm if it's a template")
					self.check_lock(vm)
					if vm['status'] == 'running':
						raise TaskFailed('VM %d already running' % vmid)
					self.hv.start(vm)
				elif action == 'stop':
					self.hv.stop(vm)
				elif vm['status'] != 'running':
					raise TaskFailed('VM %d not running' % vmid)
				elif action == 'reboot':
					self.hv.reboot(vm)
				else:
					force = r.params.get('forceStop') in (1, '1', True, 'true')
					self.hv.shutdown(vm, r.params.get('timeout'), force)

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
	def drive_volids(self, conf, include_unused=True):
		"""(key, volume id) of each managed, non-cdrom volume of a config."""
		res = []
		for k, v in sorted(conf.items()):
			if not (DRIVE_RE.match(k) or (include_unused and re.match(r'^unused\d+$', k))):
				continue
			if 'media=cdrom' in str(v) and not self.is_cloudinit(str(v)):
				continue
			f = str(v).split(',')[0]
			if ':' in f and f.split(':')[0] in self.storages:
				res.append((k, f))
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
		if 'vm:%d' % vmid in self.ha_resources and not r.params.get('purge'):
			raise ApiError(500, 'unable to remove VM %d - used in HA resources and purge '
				'parameter not set.\n' % vmid)

		def work(t):
			with self.config_lock(vmid, ttype='qmdestroy'):
				conf = vm['conf']
				node = vm['node']
				if conf.get('template'):
					# qs QemuServer.pm destroy_vm: a base still used by a linked clone
					for k, f in self.drive_volids(conf):
						if self.base_in_use(f, node):
							raise TaskFailed("base volume '%s' is still in use by linked cloned"
								% f)
				done = set()
				for k, f in self.drive_volids(conf):
					v = self.vol(f, node)
					if v['owner'] != vmid or f in done:
						continue
					done.add(f)
					try:
						self.free_image(t, f, node)
						t.log("Removing image: 100% complete...done.")
					except (TaskFailed, ApiError) as e:
						t.warn("Could not remove disk '%s', check manually: %s" % (f,
							getattr(e, 'msg', str(e)).strip()))
				if r.params.get('destroy-unreferenced-disks', 1) not in (0, '0', False):
					for e in self.list_volumes('images', vmid, node=node):
						try:
							self.free_image(t, e['volid'], node)
						except (TaskFailed, ApiError) as ex:
							t.warn(getattr(ex, 'msg', str(ex)).strip())
				self.drop_vm(vmid)
				if r.params.get('purge'):
					t.log('purging VM %d from related configurations..' % vmid)
					# qs QemuServer.pm destroy_vm -> HA Config.pm delete_service_from_config
					with self.lock:
						self.ha_resources.pop('vm:%d' % vmid, None)

		return self.new_task(r.node, 'qmdestroy', vmid, r.authid, work)

	# -- template / clone / resize -----------------------------------------------------------
	def h_post_nodes_node_qemu_vmid_template(self, r):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		disk = r.params.get('disk')
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])

		def load_and_check():
			# qs API2/Qemu.pm template $load_and_check (before the fork and in the worker)
			self.check_lock(vm)
			if vm.get('snapshots'):
				raise ApiError(500, 'unable to create template, because VM contains '
					'snapshots\n')
			if vm['conf'].get('template') and not disk:
				raise ApiError(500, "you can't convert a template to a template\n")
			if vm['status'] == 'running':
				raise ApiError(500, "you can't convert a VM to template if VM is running\n")

		load_and_check()

		def work(t):
			with self.config_lock(vmid, ttype='qmtemplate'):
				load_and_check()
				with self.lock:
					conf = vm['conf']
					conf['template'] = 1
					self.save_vm(vm)
				# qs QemuServer.pm template_create: each non-cdrom disk whose storage has
				# the 'template' feature becomes a base volume (ps vdisk_create_base);
				# thick LVM has none, so its volumes stay as they are
				for k, f in self.drive_volids(conf, include_unused=False):
					if disk and k != disk:
						continue
					if self.is_cloudinit(f) or not self.has_feature(f, 'template'):
						continue
					newf = self.create_base(f, vm['node'])
					with self.lock:
						conf[k] = conf[k].replace(f, newf, 1)
						self.save_vm(vm)
					t.log("%s: converted to base volume '%s'" % (k, newf))

		return self.new_task(r.node, 'qmtemplate', vmid, r.authid, work)

	def h_post_nodes_node_qemu_vmid_clone(self, r):
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		newid = int(p['newid'])
		target = p.get('target')
		if target in (r.node, 'localhost'):
			target = None
		storage = p.get('storage')
		fmt = p.get('format')
		# qs API2/Qemu.pm clone_vm: schema permissions
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Clone'])
		if p.get('pool'):
			self.check(r.authid, '/pool/' + p['pool'], ['VM.Allocate'])
		else:
			self.check(r.authid, '/vms/%d' % newid, ['VM.Allocate'])
		running = vm['status'] == 'running'

		def load_and_check():
			"""qs API2/Qemu.pm clone_vm $load_and_check: before the fork and again in the
			worker under the locks."""
			if target and target not in self.nodes:
				raise ApiError(500, "no such cluster node '%s'\n" % target)
			if storage:
				st = self.storage(storage)
				self.check_enabled(st, r.node)
				if 'images' not in st['content']:
					raise param_exc({'storage': "storage '%s' does not support vm images" %
						storage})
				if target:
					self.check_enabled(st, target)
					if not st.get('shared'):
						raise ApiError(500, "can't clone to non-shared storage '%s'\n" % storage)
			self.check_lock(vm)
			if (vm['status'] == 'running') != running:
				raise ApiError(500, 'unexpected state change\n')
			is_tpl = bool(vm['conf'].get('template'))
			full = bool(int(p['full'])) if p.get('full') is not None else not is_tpl
			if storage is not None and not full:
				raise ApiError(500, "parameter 'storage' not allowed for linked clones\n")
			if fmt is not None and not full:
				raise ApiError(500, "parameter 'format' not allowed for linked clones\n")
			# $check_storage_access_clone
			sharedvm = True
			for k, v in sorted(vm['conf'].items()):
				if not DRIVE_RE.match(k):
					continue
				f = str(v).split(',')[0]
				if f == 'none':
					continue
				cd = 'media=cdrom' in str(v) and not self.is_cloudinit(f)
				if cd and f == 'cdrom':
					self.check(r.authid, '/', ['Sys.Console'])
					continue
				sid = f.split(':')[0]
				if not self.storage(sid).get('shared'):
					sharedvm = False
				if not cd:
					self.check(r.authid, '/storage/' + (storage or sid),
						['Datastore.AllocateSpace'])
			self.check_bridge_access(r, vm['conf'])
			if target and not sharedvm:
				raise ApiError(500, "can't clone VM to node '%s' (VM uses local storage)\n" %
					target)
			if newid in self.vms:
				raise ApiError(500, "unable to create VM %d: config file already exists\n"
					% newid)
			drives = {}
			for k, v in sorted(vm['conf'].items()):
				if not DRIVE_RE.match(k):
					continue
				f = str(v).split(',')[0]
				if 'media=cdrom' in str(v) and not self.is_cloudinit(f):
					continue
				if f == 'none' or ':' not in f:
					continue
				if full or self.is_cloudinit(f) or k == 'tpmstate0':
					if not self.has_feature(f, 'copy'):
						raise ApiError(500, "Full clone feature is not supported for '%s' (%s)\n"
							% (f, k))
					drives[k] = ('full', f)
				else:
					if not self.has_feature(f, 'clone'):
						raise ApiError(500, "Linked clone feature is not supported for '%s' (%s)\n"
							% (f, k))
					drives[k] = ('linked', f)
			return full, drives

		load_and_check()  # early checks before forking/locking
		held = []
		created = []
		made = []

		def work(t):
			# lock_source_vm: exclusive if running, else shared; then the new VM; 1 s each
			held.append(self.flock(vmid, shared=not running, timeout=1, ttype='qmclone'))
			held.append(self.flock(newid, timeout=1, ttype='qmclone'))
			full, drives = load_and_check()
			t.log('creating a clone of VM %d with ID %d' % (vmid, newid))
			with self.lock:
				if newid in self.vms:
					raise TaskFailed('unable to create VM %d: config file already exists' % newid)
				newvm = self.add_locked_vm(newid, r.node, 'clone')
				made.append(newvm)
			src = dict(vm['conf'])
			conf = {'lock': 'clone'}
			for k, v in sorted(src.items()):
				if k in ('template', 'lock', 'digest', 'meta', 'parent', 'snaptime', 'vmstate',
						'runningcpu', 'runningmachine') or re.match(r'^unused\d+$', k):
					continue
				if re.match(r'^net\d+$', k):
					conf[k] = re.sub(r'=([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}', '=' + self.gen_mac(),
						v, count=1)
				elif k == 'smbios1':
					conf[k] = re.sub(r'uuid=[0-9a-fA-F-]+', 'uuid=%s' % uuid.uuid4(), v)
				elif k == 'vmgenid':
					conf[k] = str(uuid.uuid4())
				elif k not in drives:
					conf[k] = v
			conf['name'] = p.get('name') or 'Copy-of-VM-%s' % src.get('name', vmid)
			if p.get('description'):
				conf['description'] = p['description']
			conf['meta'] = creation_meta()
			try:
				for k in sorted(drives):
					kind, f = drives[k]
					v = src[k]
					if kind == 'linked':
						t.log("create linked clone of drive %s (%s)" % (k, f))
						newf, path = self.clone_image(f, newid, r.node)
					else:
						t.log("create full clone of drive %s (%s)" % (k, f))
						sv = self.vol(f)
						st = self.storage(storage) if storage else sv['st']
						self.check_enabled(st, r.node)
						newf, path = self.copy_disk(f, st, newid, fmt if fmt in
							TYPES_FORMATS(st) else None, r.node)
					created.append(path)
					conf[k] = v.replace(f, newf, 1)
					with self.lock:
						newvm['conf'] = dict(conf)
						self.save_vm(newvm)
				del conf['lock']
				with self.lock:
					newvm['conf'] = conf
					if target:
						newvm['node'] = target
					self.save_vm(newvm)
			except (TaskFailed, ApiError) as e:
				raise TaskFailed('clone failed: %s' % str(getattr(e, 'msg', e)).strip())

		def on_error(t):
			remove_files(created)
			if made:
				self.drop_vm(newid)

		def release():
			for rel in reversed(held):
				rel()

		return self.new_task(r.node, 'qmclone', vmid, r.authid, work, on_error, release)

	def h_put_nodes_node_qemu_vmid_resize(self, r):
		p = r.params
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		disk = p['disk']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Config.Disk'])
		m = re.match(r'^(\+)?(\d+(\.\d+)?)([KMGT])?$', p['size'])
		if not m:
			raise param_exc({'size': "unable to parse size '%s'" % p['size']})

		def work(t):
			# qs API2/Qemu.pm resize_vm: every check runs in the worker, under the lock
			with self.config_lock(vmid, ttype='resize'):
				if p.get('digest') and p['digest'] != self.conf_digest(vm):
					raise TaskFailed('checksum mismatch (file change by other user?)')
				self.check_lock(vm)
				drive = vm['conf'].get(disk)
				if not drive:
					raise TaskFailed("disk '%s' does not exist" % disk)
				f = drive.split(',')[0]
				if 'media=cdrom' in drive:
					raise TaskFailed("you can't resize a cdrom")
				self.check(r.authid, '/storage/' + f.split(':')[0], ['Datastore.AllocateSpace'])
				cur = self.volume_size(f, vm['node'])
				val = parse_size(m.group(2) + (m.group(4) or ''))
				new = int(cur + val if m.group(1) else val)
				if new < cur:
					raise TaskFailed('shrinking disks is not supported')
				if new == cur:
					return
				new = self.resize_volume(f, new, vm['node'])
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

		return self.new_task(r.node, 'resize', vmid, r.authid, work)

	# -- snapshots ------------------------------------------------------------------------------
	def h_get_nodes_node_qemu_vmid_snapshot(self, r):
		vm = self.audited_vm(r)
		res = [dict(s, name=n) for n, s in sorted(vm.get('snapshots', {}).items())]
		res.append({'name': 'current', 'description': 'You are here!',
			'running': 1 if vm['status'] == 'running' else 0})
		return res

	def snapshot_task(self, r, vm, ttype, change):
		"""A task that runs change() under the simulator lock, then saves the VM."""

		def work(t):
			with self.lock:
				change()
				self.save_vm(vm)

		return self.new_task(r.node, ttype, vm['vmid'], r.authid, work)

	def existing_snapshot(self, r, privs):
		"""The VM and snapshot name of a request on an existing snapshot."""
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], privs, any_of=len(privs) > 1)
		if r.snapname not in vm.get('snapshots', {}):
			raise ApiError(500, "snapshot '%s' does not exist\n" % r.snapname)
		return vm, r.snapname

	def h_post_nodes_node_qemu_vmid_snapshot(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Snapshot'])
		name = r.params['snapname']
		self.check_lock(vm)
		if name in vm.get('snapshots', {}):
			raise ApiError(500, "snapshot name '%s' already used\n" % name)

		def take():
			vm.setdefault('snapshots', {})[name] = {'snaptime': int(time.time()),
				'description': r.params.get('description', ''), 'conf': dict(vm['conf'])}

		return self.snapshot_task(r, vm, 'qmsnapshot', take)

	def h_delete_nodes_node_qemu_vmid_snapshot_snapname(self, r):
		vm, name = self.existing_snapshot(r, ['VM.Snapshot'])
		return self.snapshot_task(r, vm, 'qmdelsnapshot', lambda: vm['snapshots'].pop(name, None))

	def h_post_nodes_node_qemu_vmid_snapshot_snapname_rollback(self, r):
		vm, name = self.existing_snapshot(r, ['VM.Snapshot.Rollback', 'VM.Snapshot'])

		def rollback():
			vm['conf'] = dict(vm['snapshots'][name]['conf'])

		return self.snapshot_task(r, vm, 'qmrollback', rollback)
