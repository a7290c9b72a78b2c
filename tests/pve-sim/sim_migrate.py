"""VM migration between the simulated nodes: POST and GET /nodes/{node}/qemu/{vmid}/migrate.

Stages as in qemu-server: qs API2/Qemu.pm migrate_vm (before the fork: HTTP errors), then the
'qmigrate' worker (pgc AbstractMigrate.pm migrate under the config flock; qs QemuMigrate.pm
prepare, phase1 -> scan_local_volumes, sync_offline_local_volumes -> ps Storage.pm
storage_migrate; phase3_cleanup: new volume ids, move_config_to_node, source copies freed).
A failed worker ends 'migration aborted' with the reason in the log ('ERROR: migration aborted
(duration 00:00:00): <reason>')."""

import os
import re
import shutil
import time

from sim_common import ApiError, TaskFailed, param_exc, qemu_img_info, run
from sim_storage import TYPES

LINKED_CLONE_LINE = 586  # qs QemuMigrate.pm scan_local_volumes 'as it's a clone of' die (HEAD)


def parse_idmap(spec):
	"""pc JSONSchema.pm parse_idmap (format pve-storage-id already checked by the schema)."""
	if not spec:
		return None
	m = {'entries': {}}
	for e in [x for x in re.split(r'[,;\s]+', spec) if x]:
		if e == '1':
			m['identity'] = 1
		elif re.match(r'^([^:]+):([^:]+)$', e):
			src, dst = e.split(':')
			if src in m['entries']:
				raise ValueError("duplicate mapping for source '%s'" % src)
			m['entries'][src] = dst
		else:
			if 'default' in m:
				raise ValueError('default target ID can only be provided once')
			m['default'] = e
	if m.get('identity') and (m.get('default') or m['entries']):
		raise ValueError('identity mapping cannot be combined with other mappings')
	return m


def map_id(m, sid):
	"""pc JSONSchema.pm map_id."""
	if not m or m.get('identity'):
		return sid
	return m['entries'].get(sid) or m.get('default') or sid


class MigrateHandlers:
	def migrate_volumes(self, conf, snapshots):
		"""qs QemuServer.pm foreach_volid: {volid: attrs} of drives, unused disks and the
		snapshots' drives."""
		res = {}

		def add(k, v, snap):
			d = self.parse_drive(k, str(v)) if not k.startswith('unused') else {'file': str(v)}
			f = d.get('file')
			if not f:
				return
			a = res.setdefault(f, {'volid': f, 'cdrom': 1, 'is_cloudinit': 0, 'is_unused': 0,
				'is_attached': 0, 'shared': 0, 'replicate': 1, 'is_vmstate': 0,
				'is_tpmstate': 0})
			if d.get('media') != 'cdrom':
				a['cdrom'] = 0
			if self.is_cloudinit(f):
				a['is_cloudinit'] = 1
			if k.startswith('unused'):
				a['is_unused'] = 1
			if not a['is_unused'] and snap is None:
				a['is_attached'] = 1
			if snap is not None:
				a.setdefault('referenced_in_snapshot', {})[snap] = 1
			if d.get('size') and 'size' not in a:
				from pve_schema import parse_size
				a['size'] = parse_size(str(d['size'])) or 0
			if k == 'tpmstate0':
				a['is_tpmstate'] = 1
			if not k.startswith('unused'):
				a['drivename'] = k

		def scan(c, snap):
			for k, v in sorted(c.items()):
				if self.drive_key(k) or re.match(r'^unused\d+$', k):
					add(k, v, snap)

		scan(conf, None)
		for name, s in sorted((snapshots or {}).items()):
			scan(s.get('conf', {}), name)
		return res

	def drive_key(self, k):
		from sim_qemu import DRIVE_RE
		return bool(DRIVE_RE.match(k))

	def volid_storage(self, volid):
		if ':' not in volid or volid.startswith('/'):
			return None
		sid = volid.split(':')[0]
		return sid if sid in self.storages else None

	def check_storage_availability(self, conf, node, target):
		"""qs QemuServer.pm check_storage_availability: every drive's storage enabled here
		and on the target, with the volume's content type."""
		for k, v in sorted(conf.items()):
			if not self.drive_key(k):
				continue
			f = str(v).split(',')[0]
			sid = self.volid_storage(f)
			if not sid:
				continue
			st = self.storage(sid)
			self.check_enabled(st, node)
			self.check_enabled(st, target)
			ctype = self.vol(f, node)['ctype']
			if ctype not in st['content']:
				raise ApiError(500, "%s: content type '%s' is not available on storage '%s'\n"
					% (f, ctype, sid))

	# -- GET: the precondition check ------------------------------------------------------------
	def h_get_nodes_node_qemu_vmid_migrate(self, r):
		"""qs API2/Qemu.pm migrate_vm_precondition."""
		self.check(r.authid, '/vms/%s' % r.vmid, ['VM.Migrate'])
		if not self.quorate():
			raise ApiError(500, 'cluster not ready - no quorum?\n')  # pcl check_cfs_quorum
		vm = self.get_vm(r.vmid, r.node)
		self.check_lock(vm)
		res = {'running': 1 if vm['status'] == 'running' else 0, 'allowed_nodes': [],
			'not_allowed_nodes': {}}
		# qs QemuServer.pm check_local_storage_availability: a hash for every node, so every
		# other node is a key of not_allowed_nodes ({} when nothing blocks it)
		hashes = {n: {} for n in self.nodes}
		for k, v in sorted(vm['conf'].items()):
			if not self.drive_key(k):
				continue
			sid = self.volid_storage(str(v).split(',')[0])
			if not sid:
				continue
			st = self.storage(sid)
			for n in self.nodes:
				if st.get('disable') or (st.get('nodes') and n not in st['nodes']):
					hashes[n].setdefault('unavailable_storages', set()).add(sid)
		for n in self.nodes:
			if n == r.node:
				continue
			h = hashes[n]
			if 'unavailable_storages' in h:
				h['unavailable_storages'] = sorted(h['unavailable_storages'])
			res['not_allowed_nodes'][n] = h
			if not h:
				res['allowed_nodes'].append(n)
		# $check_vm_disks_local: every volume not on a shared storage (cdrom 'none' left out)
		local = []
		for volid, a in sorted(self.migrate_volumes(vm['conf'], vm.get('snapshots')).items()):
			sid = self.volid_storage(volid)
			if sid and self.storage(sid).get('shared'):
				continue
			if a['shared'] or (a['cdrom'] and volid == 'none'):
				continue
			d = {k: val for k, val in a.items() if k != 'referenced_in_snapshot'}
			if a.get('referenced_in_snapshot'):
				d['referenced_in_snapshot'] = a['referenced_in_snapshot']
			local.append(d)
		res['local_disks'] = local
		res['local_resources'] = self.local_resources(vm['conf'])
		res['mapped-resources'] = []
		res['mapped-resource-info'] = {}
		res['has-dbus-vmstate'] = 1
		return res

	def local_resources(self, conf):
		"""qs QemuMigrate/Helpers.pm check_local_resources (hostpciN, usbN with a host device,
		serialN on a host device, parallelN; no resource mappings)."""
		res = []
		for k, v in sorted(conf.items()):
			v = str(v)
			if re.match(r'^hostpci\d+$', k) or re.match(r'^parallel\d+$', k):
				res.append(k)
			elif re.match(r'^usb\d+$', k) and not re.match(r'^(host=)?spice', v):
				res.append(k)
			elif re.match(r'^serial\d+$', k) and v != 'socket':
				res.append(k)
		return res

	# -- POST: migrate ----------------------------------------------------------------------------
	def h_post_nodes_node_qemu_vmid_migrate(self, r):
		p = r.params
		target = p['target']
		node = r.node
		# qs API2/Qemu.pm migrate_vm, in its order (the VM.Migrate check is the schema's)
		self.check(r.authid, '/vms/%s' % r.vmid, ['VM.Migrate'])
		if target == node:
			raise param_exc({'target': 'target is local node.'})
		if not self.quorate():
			raise ApiError(500, 'cluster not ready - no quorum?\n')  # pcl check_cfs_quorum
		if target not in self.nodes:
			raise ApiError(500, "no such cluster node '%s'\n" % target)  # pcl check_node_exists
		for k in ('force', 'migration_type', 'migration_network'):
			if p.get(k) not in (None, 0, '0', False, ''):
				# only root@pam; an API token never is root@pam
				raise param_exc({k: 'Only root may use this option.'})
		vm = self.get_vm(r.vmid, node)
		vmid = vm['vmid']
		self.check_lock(vm)
		online = p.get('online') in (1, '1', True)
		if vm['status'] == 'running':
			if not online:
				raise ApiError(500, "can't migrate running VM without --online\n")
		else:
			online = False  # 'VM isn't running. Doing offline migration instead.' (stderr)
		smap = None
		if p.get('targetstorage'):
			try:
				smap = parse_idmap(p['targetstorage'])
			except ValueError as e:
				raise param_exc({'targetstorage': 'failed to parse storage map: %s' % e})
			if not smap.get('identity'):
				self.check(r.authid, '/vms/%d' % vmid, ['VM.Config.Disk'])
			for tsid in sorted(set(smap['entries'].values())) + (
					[smap['default']] if smap.get('default') else []):
				# $check_storage_access_migrate
				st = self.storage(tsid)
				self.check_enabled(st, target)
				self.check(r.authid, '/storage/' + tsid, ['Datastore.AllocateSpace'])
				if 'images' not in st['content']:
					raise ApiError(500, "storage '%s' does not support vm images\n" % tsid)
			if smap.get('identity'):
				self.check_storage_availability(vm['conf'], node, target)
		else:
			self.check_storage_availability(vm['conf'], node, target)
		with_local = p.get('with-local-disks') in (1, '1', True)
		ip = '127.0.0.%d' % (self.nodes.index(target) + 1)

		def work(t):
			start = time.monotonic()

			def fail(msg):
				d = int(time.monotonic() - start)
				t.log('ERROR: migration aborted (duration %02d:%02d:%02d): %s' % (
					d // 3600, d // 60 % 60, d % 60, msg.rstrip('\n')))
				raise TaskFailed('migration aborted')

			# pgc AbstractMigrate.pm migrate: lock_vm = the config flock, then prepare
			try:
				release = self.flock(vmid, ttype='qmigrate')
			except ApiError as e:
				fail(e.msg)
			try:
				self.migrate_worker(t, vm, node, target, ip, online, with_local, smap, fail)
			finally:
				release()
			d = int(time.monotonic() - start)
			t.log('migration finished successfully (duration %02d:%02d:%02d)' % (
				d // 3600, d // 60 % 60, d % 60))

		return self.new_task(node, 'qmigrate', vmid, r.authid, work)

	def migrate_worker(self, t, vm, node, target, ip, online, with_local, smap, fail):
		vmid = vm['vmid']
		conf = vm['conf']
		# -- prepare
		if conf.get('lock'):
			fail('VM %d is locked (%s)' % (vmid, conf['lock']))
		if vm['status'] == 'running' and not online:
			fail("can't migrate running VM without --online")
		running = vm['status'] == 'running'
		lres = self.local_resources(conf)
		if lres:
			fail("can't migrate VM which uses local devices: " + ', '.join(lres))
		vols = self.migrate_volumes(conf, vm.get('snapshots'))
		for volid in sorted(vols):
			sid = self.volid_storage(volid)
			if not sid:
				continue
			st = self.storage(sid)
			try:
				self.check_enabled(st, node)
				tsid = sid if st.get('shared') else map_id(smap, sid)
				self.target_storage_check(tsid, volid, node, target)
			except ApiError as e:
				fail(e.msg)
		if not self.node_online(target):
			fail("Can't connect to destination address using public key")
		t.log("starting migration of VM %d to node '%s' (%s)" % (vmid, target, ip))
		# -- phase1
		with self.lock:
			conf['lock'] = 'migrate'
			self.save_vm(vm)
		try:
			local = self.scan_local_volumes(t, vm, vols, node, target, smap, running, with_local)
			vmap = self.sync_offline_local_volumes(t, local, node, target)
		except TaskFailed as e:
			t.log('ERROR: %s' % str(e).rstrip('\n'))
			t.log('aborting phase 1 - cleanup resources')
			with self.lock:
				conf.pop('lock', None)
				self.save_vm(vm)
			fail(str(e))
		# -- phase3_cleanup: new volume ids, the config moves, the source copies go
		with self.lock:
			for k, v in list(conf.items()):
				if not isinstance(v, str):
					continue
				f = v.split(',')[0]
				if f in vmap:
					conf[k] = vmap[f] + v[len(f):]
			vm['node'] = target
			self.save_vm(vm)
		for volid in sorted(local):
			try:
				self.free_image(t, volid, node)
			except (TaskFailed, ApiError) as e:
				t.log("ERROR: removing local copy of '%s' failed - %s" % (volid, str(
					getattr(e, 'msg', e)).strip()))
		with self.lock:
			conf.pop('lock', None)  # 'qm unlock' on the target
			self.save_vm(vm)

	def target_storage_check(self, tsid, volid, node, target):
		"""qs QemuMigrate.pm target_storage_check_available."""
		tst = self.storage(tsid)
		self.check_enabled(tst, target)
		ctype = self.vol(volid, node)['ctype']
		if ctype not in tst['content']:
			raise ApiError(500, "%s: content type '%s' is not available on storage '%s'\n" % (
				volid, ctype, tsid))

	def scan_local_volumes(self, t, vm, vols, node, target, smap, running, with_local):
		"""qs QemuMigrate.pm scan_local_volumes: {volid: info} of the volumes to copy."""
		vmid = vm['vmid']
		local = {}
		errors = {}
		other = []
		for volid, a in sorted(vols.items()):
			sid = self.volid_storage(volid)
			if a['cdrom'] and volid == 'cdrom':
				other.append("can't migrate local cdrom drive")
				continue
			if a['cdrom'] and volid == 'none':
				continue
			if not sid:
				if volid.startswith('/'):
					errors[volid] = 'local file/device'
				continue
			st = self.storage(sid)
			tsid = sid if st.get('shared') else map_id(smap, sid)
			if st.get('shared'):
				continue
			v = self.vol(volid, node)
			ref = 'attached' if a['is_attached'] else 'unused' if a['is_unused'] else \
				'snapshot' if a.get('referenced_in_snapshot') else 'attached'
			if a['is_tpmstate']:
				ref = 'generated'
			info = {'targetsid': tsid, 'ref': ref, 'format': v['format'],
				'snapshots': v['format'] in ('qcow2', 'vmdk'), 'is_cloudinit': a['is_cloudinit'],
				'v': v}
			local[volid] = info
			if a['cdrom']:
				if a['is_cloudinit']:
					info['ref'] = 'generated'
					continue
				errors[volid] = 'local cdrom image'
				continue
			if v['owner'] != vmid:
				errors[volid] = 'owned by other VM (owner = VM %s)' % v['owner']
				continue
			if a.get('referenced_in_snapshot'):
				info['snapshots'] = True
				if running:
					errors[volid] = ('online storage migration not possible if non-replicated '
						'snapshot exists')
					continue
				if not (st['type'] == 'zfspool' or v['format'] == 'qcow2'):
					errors[volid] = 'non-migratable snapshot exists'
					continue
			if self.base_in_use(volid, node):
				errors[volid] = 'referenced by linked clone(s)'
		abort = bool(errors or other)
		for volid in sorted(local):
			i = local[volid]
			if i['ref'] == 'attached':
				if running and not with_local:
					errors[volid] = ("can't live migrate attached local disks without "
						'with-local-disks option')
					abort = True
				t.log("found local disk '%s' (attached)" % volid)
			elif i['ref'] == 'generated':
				t.log("found generated disk '%s' (in current VM config)" % volid)
			elif i['ref'] == 'snapshot':
				t.log("found local disk '%s' (referenced by snapshot(s))" % volid)
			else:
				t.log("found local disk '%s' (unused)" % volid)
		for volid in sorted(errors):
			t.warn("can't migrate local disk '%s': %s" % (volid, errors[volid]))
		for e in other:
			t.warn(e)
		if abort:
			raise TaskFailed('Problem found while scanning volumes - can\'t migrate VM - '
				'check log')
		for volid in sorted(local):
			v = local[volid]['v']
			if v['basename']:
				# no newline in the Perl die: it names the file and line
				raise TaskFailed("Problem found while scanning volumes - can't migrate '%s' as "
					"it's a clone of '%s' at /usr/share/perl5/PVE/QemuMigrate.pm line %d." % (
						volid, v['basename'], LINKED_CLONE_LINE))
		return local

	def sync_offline_local_volumes(self, t, local, node, target):
		"""qs QemuMigrate.pm sync_offline_local_volumes -> ps Storage.pm storage_migrate."""
		vmap = {}
		created = []
		if local:
			t.log('copying local disk images')
		try:
			for volid in sorted(local):
				i = local[volid]
				try:
					new = self.storage_migrate(t, i, node, target, created)
				except (TaskFailed, ApiError) as e:
					raise TaskFailed("storage migration for '%s' to storage '%s' failed - %s" % (
						volid, i['targetsid'], str(getattr(e, 'msg', e)).strip()))
				vmap[volid] = new
				t.log("volume '%s' is '%s' on the target" % (volid, new))
		except TaskFailed:
			# phase1_cleanup -> cleanup_remotedisks: 'pvesm free' of what reached the target
			for path in created:
				try:
					os.unlink(path)
				except OSError:
					pass
			raise
		return vmap

	def transfer_formats(self, st, fmt, with_snapshots, zfs_snapshot):
		"""ps <X>Plugin.pm volume_export_formats / volume_import_formats."""
		t = st['type']
		if t == 'zfspool':
			return ['zfs']
		if t in ('dir', 'nfs', 'cifs'):
			if zfs_snapshot:
				return []
			if with_snapshots:
				return [fmt + '+size'] if fmt in ('qcow2', 'vmdk') else []
			return ['raw+size']
		return [] if with_snapshots else ['raw+size']

	def storage_migrate(self, t, i, node, target, created):
		"""ps Storage.pm storage_migrate (and the target's pvesm import with allow_rename,
		except for cloud-init volumes whose name is kept)."""
		v = i['v']
		src = v['st']
		tst = self.storage(i['targetsid'])
		if src['type'] == tst['type']:
			tname = v['volname']
		else:
			# $volname_for_storage
			if v['format'] not in TYPES[tst['type']]['formats']:
				raise TaskFailed("unsupported format '%s' for storage type %s" % (
					v['format'], tst['type']))
			base = re.sub(r'\.%s$' % re.escape(v['format']), '', v['name'])
			tname = '%d/%s.%s' % (v['owner'], base, v['format']) if self.is_file(tst) else base
		zsnap = src['type'] == 'zfspool'  # storage_migrate_snapshot
		exp = self.transfer_formats(src, v['format'], i['snapshots'], zsnap)
		imp = self.transfer_formats(tst, v['format'], i['snapshots'], False)
		if not [f for f in exp if f in imp]:
			raise TaskFailed("cannot migrate from storage type '%s' to '%s'" % (src['type'],
				tst['type']))
		tvolid = '%s:%s' % (tst['storage'], tname)
		tv = self.vol(tvolid, target)
		name = tv['name']
		dest = tv['path']
		if os.path.exists(dest) or self.name_in_use(tst, target, name):
			if i['is_cloudinit']:
				raise TaskFailed("file '%s' already exists" % dest if self.is_file(tst) else
					'volume %s/%s already exists' % (tst.get('vgname') or tst.get('pool'), name))
			t.log("[%s] file '%s' already exists - importing with a different name" % (
				target, dest))
			fmt = tv['format']
			name, dest = self.free_disk_name(tst, v['owner'], fmt, target)
			os.unlink(dest + '.tmp')
			if tv['isbase']:
				name = re.sub(r'^vm-', 'base-', name)
				dest = os.path.join(os.path.dirname(dest), name)
			tvolid = self.new_volid(tst, v['owner'], name)
		os.makedirs(os.path.dirname(dest), exist_ok=True)
		size = qemu_img_info(v['path'])['virtual-size']
		t.log('%d bytes (%s) copied' % (size, self.human(size)))
		fmt = v['format'] if self.is_file(src) else 'raw'
		if self.is_file(src) and self.is_file(tst) and fmt == 'qcow2' and not v['basename']:
			shutil.copyfile(v['path'], dest + '.part')
		else:
			# the stream is the volume's data: a thin clone arrives as a standalone volume
			run(['qemu-img', 'convert', '-q', '-f', self.phys_format(v['path']), '-O',
				tv['format'] if self.is_file(tst) else 'raw', v['path'], dest + '.part'])
		os.replace(dest + '.part', dest)
		created.append(dest)
		if tv['isbase'] and self.is_file(tst):
			os.chmod(dest, 0o444)
		t.log("[%s] successfully imported '%s'" % (target, tvolid))
		return tvolid

	def name_in_use(self, st, node, name):
		with self.lock:
			for vm in self.vms.values():
				if not self.same_store(st, vm['node'], node):
					continue
				for val in vm['conf'].values():
					if str(val).startswith(st['storage'] + ':') and name in str(val):
						return True
		return False

	def human(self, n):
		for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
			if n < 1024 or unit == 'TiB':
				return ('%.1f %s' % (n, unit)) if unit != 'B' else '%d B' % n
			n /= 1024.0
