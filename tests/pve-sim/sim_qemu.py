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
from sim_tasks import Task

DRIVE_RE = re.compile(r'^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])'
	r'|efidisk0|tpmstate0)$')
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


def creation_meta():
	return 'creation-qemu=9.2.0,ctime=%d' % int(time.time())


class QemuHandlers:
	# -- listing --------------------------------------------------------------------------
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

	def h_get_nodes_node_qemu(self, r):
		with self.lock:
			vms = [vm for vm in self.vms.values() if vm['node'] == r.node]
		return [self.vm_resource(vm) for vm in sorted(vms, key=lambda v: v['vmid'])
			if self.has(r.authid, '/vms/%d' % vm['vmid'], 'VM.Audit')]

	# -- options and drives ------------------------------------------------------------------
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
						raise param_exc({k: IMPORT_FROM_SYNTAX})
					self.check_import_source(r, imp)
				self.need_storage(r, sid)
				jobs.append(('import' if imp is not None else 'new', k, d, sid))
			else:
				if imp is not None:
					raise param_exc({k: IMPORT_FROM_SYNTAX})
				if f not in ('none', 'cdrom') and not f.startswith('/'):
					path, ctype, owner = self.vol_path(f)
					if not os.path.exists(path):
						raise no_volume_exc(f)
					if ctype == 'iso' and d.get('media') != 'cdrom':
						raise param_exc({k: "explicit 'media=cdrom' is required for iso images"})
				elif f.startswith('/'):
					raise root_path_exc()
				jobs.append(('keep', k, d, None))
		return jobs

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
				run(['qemu-img', 'convert', '-p', '-q', '-f', sfmt, '-O', 'qcow2', spath, path])
				t.log('transferred all data (100.00%)')
			os.unlink(path + '.tmp')
			size = qemu_img_info(path)['virtual-size']
			d['file'] = 'local:%d/%s' % (vmid, name)
			d['size'] = format_size(size)
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
			vm = self.add_locked_vm(vmid, r.node, 'create')
		created = []

		def work(t):
			conf = {}
			drives = self.run_drive_jobs(t, vmid, jobs, created)
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
		with self.config_lock(vmid):
			self.assert_if_modified(vm, p.get('digest'))
			self.check_lock(vm)
			jobs = self.plan_drives(r, vmid, {k: p[k] for k in keys if DRIVE_RE.match(k)},
				None, {k: v for k, v in vm['conf'].items() if k not in p})
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
		vm = self.audited_vm(r)
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
			with self.config_lock(vmid):
				if action == 'start':
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
			with self.config_lock(vmid):
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

		return self.new_task(r.node, 'qmdestroy', vmid, r.authid, work)

	# -- template / clone / resize -----------------------------------------------------------
	def h_post_nodes_node_qemu_vmid_template(self, r):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		self.check(r.authid, '/vms/%d' % vmid, ['VM.Allocate'])
		with self.config_lock(vmid):
			self.check_lock(vm)
			# qs API2/Qemu.pm template
			if vm['conf'].get('template'):
				raise ApiError(500, 'you can\'t convert a template to a template\n')
			if vm['status'] == 'running':
				raise ApiError(500, "you can't convert a running VM to template\n")
			if vm.get('snapshots'):
				raise ApiError(500, "you can't convert a VM to template if VM has snapshots\n")

		def work(t):
			with self.config_lock(vmid):
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
			# held until the task ends: new_task releases it
			release_src = self.flock(vmid, shared=shared, timeout=1)
			newvm = self.add_locked_vm(newid, target, 'clone')
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
			conf['meta'] = creation_meta()
			with self.lock:
				newvm['conf'] = conf
				self.save_vm(newvm)

		def on_error(t):
			remove_files(created)
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
		with self.config_lock(vmid):
			self.assert_if_modified(vm, p.get('digest'))
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

		def work(t):
			with self.config_lock(vmid):
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
