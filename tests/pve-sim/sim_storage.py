"""Storages (configurable per simulated cluster with --storage-config): file storages (dir, nfs,
cifs) and block storages (lvm, lvmthin, zfspool, rbd) with the volume names, formats, sizes,
base volumes and linked clones of their pve-storage plugins; every volume is a real file under
STATE/storage/<storage>/ (qcow2 or raw) so that qemu mode can boot it. Plus the storage
endpoints (list, content, upload, download-url, import-metadata).

Block storages keep their volumes as flat files STATE/storage/<sid>/<name>. A zfspool subvolume
(a container's rootfs, subvol-<vmid>-disk-N) is a directory there; its refquota and, for a linked
clone, the base it was cloned from are in its SUBVOL_META file. A thin snapshot
(lvmthin, zfspool and rbd linked clones) is a qcow2 overlay on the base file; the API reports it
as the raw volume Proxmox would show."""

import hashlib
import json
import os
import re
import shutil
import ssl
import urllib.parse
import urllib.request

from sim_common import (ApiError, TaskFailed, no_storage_exc, no_volume_exc, param_exc,
	qemu_img_info, root_path_exc, run)

MiB = 1 << 20
FILE_CONTENT = ('backup', 'images', 'import', 'iso', 'rootdir', 'snippets', 'vztmpl')
FILE_DIRS = ('import', 'iso', 'vztmpl', 'snippets', 'images')
STORAGE_CONTENT = 'images,import,iso,snippets,vztmpl'  # the default storage 'local'
SUBVOL_META = '.pve-sim-subvol.json'  # {"refquota": bytes, "origin": base name or null}

# ps PVE/Storage/<X>Plugin.pm plugindata (content: allowed, default; format: allowed, default),
# Plugin.pm @SHARED_STORAGE (inherently shared types), the unit each plugin's alloc_image
# rounds a size up to (LVM: 4 MiB extents, ZFSPoolPlugin zfs_create_zvol: 1 MiB, RBDPlugin
# alloc_image: MiB), and the config keys each type needs (options, 'fixed').
TYPES = {
	'dir': {'content': FILE_CONTENT, 'dcontent': ('images', 'rootdir'),
		'formats': ('raw', 'qcow2', 'vmdk'), 'dformat': 'qcow2', 'shared': False, 'round': 1,
		'keys': ('path',)},
	'nfs': {'content': FILE_CONTENT, 'dcontent': ('images',),
		'formats': ('raw', 'qcow2', 'vmdk'), 'dformat': 'qcow2', 'shared': True, 'round': 1,
		'keys': ('path', 'server', 'export')},
	'cifs': {'content': FILE_CONTENT, 'dcontent': ('images',),
		'formats': ('raw', 'qcow2', 'vmdk'), 'dformat': 'qcow2', 'shared': True, 'round': 1,
		'keys': ('path', 'server', 'share')},
	'lvm': {'content': ('images', 'rootdir'), 'dcontent': ('images',), 'formats': ('raw',),
		'dformat': 'raw', 'shared': False, 'round': 4 * MiB, 'keys': ('vgname',)},
	'lvmthin': {'content': ('images', 'rootdir'), 'dcontent': ('images', 'rootdir'),
		'formats': ('raw',), 'dformat': 'raw', 'shared': False, 'round': 4 * MiB,
		'keys': ('vgname', 'thinpool')},
	'zfspool': {'content': ('images', 'rootdir'), 'dcontent': ('images', 'rootdir'),
		'formats': ('raw', 'subvol'), 'dformat': 'raw', 'shared': False, 'round': MiB,
		'keys': ('pool',)},
	'rbd': {'content': ('images', 'rootdir'), 'dcontent': ('images',), 'formats': ('raw',),
		'dformat': 'raw', 'shared': True, 'round': MiB, 'keys': ('pool',)},
}
FILE_TYPES = ('dir', 'nfs', 'cifs')

# The storage of a simulator started without --storage-config (as before storage types).
DEFAULT_STORAGE = [{'storage': 'local', 'type': 'dir',
	'content': 'images,import,iso,snippets,vztmpl'}]

# ps volume_has_feature of each plugin: the keys (current, base) a feature has per type
# (Plugin.pm for file storages: by format; LVMPlugin: no template, no clone).
FEATURES = {
	'file': {'template': {'current'}, 'clone': {'base'}, 'copy': {'base', 'current'}},
	'lvm': {'copy': {'base', 'current'}},
	'lvmthin': {'template': {'current'}, 'clone': {'base'}, 'copy': {'base', 'current'}},
	'zfspool': {'template': {'current'}, 'clone': {'base'}, 'copy': {'base', 'current'}},
	'rbd': {'template': {'current'}, 'clone': {'base'}, 'copy': {'base', 'current'}},
}


def checksum_exc(got, want):
	return TaskFailed("checksum mismatch: got '%s' != expect '%s'" % (got, want))


def dir_bytes(path):
	"""The bytes of the files below path (the 'used' of a subvolume)."""
	total = 0
	for d, _, files in os.walk(path):
		total += sum(os.lstat(os.path.join(d, f)).st_size for f in files if f != SUBVOL_META)
	return total


def split_list(v):
	if v is None:
		return []
	if isinstance(v, (list, tuple)):
		return [str(x) for x in v]
	return [x for x in re.split(r'[,;\s]+', str(v)) if x]


def load_storage_config(path):
	"""The storage definitions (a JSON list of storage.cfg sections, see README.md),
	normalized: content and nodes as sorted lists, shared/disable as 0/1."""
	if path:
		with open(path) as f:
			raw = json.load(f)
		if isinstance(raw, dict):
			raw = raw.get('storages', raw.get('ids', []))
	else:
		raw = DEFAULT_STORAGE
	res = []
	seen = set()
	for e in raw:
		e = dict(e)
		sid = e.get('storage')
		t = e.get('type')
		if not sid or not re.match(r'^[a-z][a-z0-9\-_.]*[a-z0-9]$', sid, re.I):
			raise SystemExit('storage config: bad storage id %r' % sid)
		if sid in seen:
			raise SystemExit("storage config: storage ID '%s' already defined" % sid)
		seen.add(sid)
		if t not in TYPES:
			raise SystemExit("storage config: %s: unsupported type '%s' (one of %s)" % (
				sid, t, ', '.join(sorted(TYPES))))
		ti = TYPES[t]
		content = split_list(e.get('content')) or list(ti['dcontent'])
		for c in content:
			if c not in ti['content']:
				raise SystemExit("storage config: %s: content type '%s' is not allowed for "
					"type '%s'" % (sid, c, t))
		e['content'] = sorted(set(content))
		if e.get('nodes') is not None:
			e['nodes'] = sorted(set(split_list(e['nodes'])))
		fmt = e.get('format') or ti['dformat']
		if fmt not in ti['formats']:
			raise SystemExit("storage config: %s: format '%s' not allowed for type '%s'" % (
				sid, fmt, t))
		e['format'] = fmt
		# ps Plugin.pm parse_config: shared types are always shared
		if ti['shared']:
			e['shared'] = 1
		elif 'shared' in e:
			e['shared'] = 1 if e['shared'] in (1, True, '1') else 0
		if e.get('disable') in (1, True, '1'):
			e['disable'] = 1
		else:
			e.pop('disable', None)
		if t == 'nfs' or t == 'cifs':
			e.setdefault('path', '/mnt/pve/' + sid)
			e.setdefault('server', '127.0.0.1')
			e.setdefault('export' if t == 'nfs' else 'share', '/export/' + sid if t == 'nfs'
				else sid)
		elif t == 'lvm':
			e.setdefault('vgname', sid)
		elif t == 'lvmthin':
			e.setdefault('vgname', 'pve')
			e.setdefault('thinpool', 'data')
		elif t == 'zfspool':
			e.setdefault('pool', 'rpool/data')
		elif t == 'rbd':
			e.setdefault('pool', 'rbd')
		res.append(e)
	return res


class StorageHandlers:
	# -- the storages ---------------------------------------------------------------------
	def init_storage(self):
		self.storages = {}
		for e in load_storage_config(getattr(self.opts, 'storage_config', None)):
			e['_root'] = os.path.join(self.state_dir, 'storage', e['storage'])
			self.storages[e['storage']] = e
			for root in self.storage_roots(e):
				self.make_storage_dirs(e, root)
		# the first file storage (the one 'local' was before storage types)
		first = next((s for s in self.storages.values() if s['type'] in FILE_TYPES), None)
		self.store = first['_root'] if first else None

	def make_storage_dirs(self, st, root):
		os.makedirs(root, exist_ok=True)
		if st['type'] in FILE_TYPES:
			for sub in FILE_DIRS:
				os.makedirs(os.path.join(root, sub), exist_ok=True)

	def reset_storage(self):
		for st in self.storages.values():
			for root in self.storage_roots(st):
				shutil.rmtree(root, ignore_errors=True)
				self.make_storage_dirs(st, root)

	# -- one storage per node (ps Storage.pm storage_check_node; Plugin.pm @SHARED_STORAGE) ---
	# A shared storage is one store that every node of its 'nodes' list (all without one)
	# sees. A local storage is a separate store on each node it is configured for: 'local-lvm'
	# of pve1 and 'local-lvm' of pve2 are different volume groups whose volumes share names.
	# Files: the first node of a storage keeps STATE/storage/<S>/, any other node's copy of a
	# local storage is STATE/nodes/<node>/storage/<S>/.
	def storage_nodes(self, st):
		return [n for n in self.nodes if not st.get('nodes') or n in st['nodes']]

	def st_root(self, st, node=None):
		"""The directory of storage st as node sees it (None: its first node)."""
		if st.get('shared') or node is None:
			return st['_root']
		ns = self.storage_nodes(st)
		if not ns or node == ns[0]:
			return st['_root']
		return os.path.join(self.state_dir, 'nodes', node, 'storage', st['storage'])

	def storage_roots(self, st):
		"""The directory of every separate store of st."""
		if st.get('shared'):
			return [st['_root']]
		return sorted(set([st['_root']] + [self.st_root(st, n) for n in self.storage_nodes(st)]))

	def storage_instances(self, st):
		"""[(node, directory)]: shared storages once (node None), local ones per node."""
		if st.get('shared'):
			return [(None, st['_root'])]
		ns = self.storage_nodes(st)
		return [(n, self.st_root(st, n)) for n in ns] or [(None, st['_root'])]

	def same_store(self, st, node_a, node_b):
		return self.st_root(st, node_a) == self.st_root(st, node_b)

	def storage(self, sid):
		st = self.storages.get(sid)
		if st is None:
			raise no_storage_exc(sid)
		return st

	def is_file(self, st):
		return st['type'] in FILE_TYPES

	def check_enabled(self, st, node):
		"""ps Storage.pm storage_check_enabled / storage_check_node."""
		if st.get('disable'):
			raise ApiError(500, "storage '%s' is disabled\n" % st['storage'])
		if st.get('nodes') and node not in st['nodes']:
			raise ApiError(500, "storage '%s' is not available on node '%s'\n" % (
				st['storage'], node))

	def on_node(self, st, node):
		return not st.get('disable') and (not st.get('nodes') or node in st['nodes'])

	def features(self, st):
		return FEATURES['file' if self.is_file(st) else st['type']]

	def has_feature(self, volid, feature, target_formats=None):
		"""ps Storage.pm volume_has_feature (the plugins' tables above). target_formats: the
		formats the caller can use (pve-container clone_vm passes raw and subvol)."""
		v = self.vol(volid)
		st = v['st']
		if self.is_file(st):
			# Plugin.pm volume_has_feature: clone_image makes a qcow2 overlay, so a caller
			# that cannot use qcow2 gets no linked clone; a directory subvol can only become
			# a template
			if feature == 'clone' and target_formats is not None and \
					'qcow2' not in target_formats:
				return False
			if v['format'] == 'subvol' and feature != 'template':
				return False
		keys = self.features(st).get(feature, set())
		return ('base' if v['isbase'] else 'current') in keys

	# -- volume names -----------------------------------------------------------------------
	def vol(self, volid, node=None):
		"""Parses a volume id like the storage's plugin parse_volname: storage, name, content
		type, owner, base flag, format, base name and vmid, and the file that holds it on
		node (None: the storage's first node; see st_root)."""
		sid, _, name = volid.partition(':')
		st = self.storage(sid)
		t = st['type']
		root = self.st_root(st, node)
		d = {'volid': volid, 'st': st, 'sid': sid, 'volname': name, 'basename': None,
			'basevmid': None, 'isbase': False, 'node': node, 'root': root}
		if self.is_file(st):
			m = re.match(r'^(import|iso|vztmpl|snippets)/([^/]+)$', name)
			if m:
				fmt = {'iso': 'iso', 'snippets': 'snippet'}.get(m.group(1))
				if fmt is None:
					fmt = m.group(2).rsplit('.', 1)[-1] if '.' in m.group(2) else 'raw'
					if m.group(1) == 'vztmpl':
						# ps Plugin.pm get_subdir_files: 'tar', else 't' + the compression
						mt = re.search(r'\.tar(?:\.(\w+))?$', m.group(2))
						fmt = 't' + mt.group(1) if mt and mt.group(1) else 'tar'
				d.update(path=os.path.join(root, m.group(1), m.group(2)),
					ctype=m.group(1), owner=None, format=fmt, name=m.group(2))
				return d
			# ps Plugin.pm parse_name_dir / parse_volname
			m = re.match(r'^(?:(\d+)/([^/]+)/)?(\d+)/(((?:vm|base)-\d+-[^/]+?)(?:\.(raw|qcow2|'
				r'vmdk|subvol))?)$', name)
			if m:
				d.update(path=os.path.join(root, 'images', m.group(3), m.group(4)),
					ctype='images', owner=int(m.group(3)), name=m.group(4),
					format=m.group(6) or 'raw', isbase=m.group(4).startswith('base-'))
				if m.group(1):
					d.update(basevmid=int(m.group(1)), basename=m.group(2))
				return d
			raise ApiError(500, "unable to parse directory volume name '%s'\n" % name)
		if t in ('lvm', 'lvmthin'):
			# ps LVMPlugin.pm / LvmThinPlugin.pm parse_volname (no base name for thin clones)
			m = re.match(r'^((vm|base)-(\d+)-\S+)$', name)
			if not m:
				raise ApiError(500, "unable to parse lvm volume name '%s'\n" % name)
			d.update(name=m.group(1), owner=int(m.group(3)), isbase=m.group(2) == 'base')
		elif t == 'zfspool':
			# ps ZFSPoolPlugin.pm parse_volname: subvol/basevol are container subvolumes
			m = re.match(r'^(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)$',
				name)
			if not m:
				raise ApiError(500, "unable to parse zfs volume name '%s'\n" % name)
			d.update(name=m.group(5), owner=int(m.group(7)), isbase=m.group(6) in ('base',
				'basevol'), basename=m.group(2), basevmid=int(m.group(4)) if m.group(4) else None)
			if m.group(6) in ('subvol', 'basevol'):
				d.update(path=os.path.join(root, d['name']), ctype='images', format='subvol')
				return d
		else:
			# ps RBDPlugin.pm parse_volname
			m = re.match(r'^((base-(\d+)-\S+)/)?((base)?(vm)?-(\d+)-\S+)$', name)
			if not m:
				raise ApiError(500, "unable to parse rbd volume name '%s'\n" % name)
			d.update(name=m.group(4), owner=int(m.group(7)), isbase=bool(m.group(5)),
				basename=m.group(2), basevmid=int(m.group(3)) if m.group(3) else None)
		d.update(path=os.path.join(root, d['name']), ctype='images', format='raw')
		return d

	def vol_path(self, volid, node=None):
		"""(file, content type, owner vmid) of a volume id on node."""
		v = self.vol(volid, node)
		return v['path'], v['ctype'], v['owner']

	def phys_format(self, path):
		"""The format of the file behind a volume (thin clones are qcow2 overlays)."""
		try:
			return qemu_img_info(path).get('format', 'raw')
		except TaskFailed:
			return 'raw'

	def is_cloudinit(self, volid):
		# qs Drive.pm drive_is_cloudinit: vm-<vmid>-cloudinit volumes
		return bool(re.search(r'vm-\d+-cloudinit', volid))

	def image_files(self, st, node=None):
		"""(owner, file name, path) of every image file of a storage (on node)."""
		res = []
		root = self.st_root(st, node)
		if self.is_file(st):
			idir = os.path.join(root, 'images')
			for vd in sorted(os.listdir(idir), key=lambda x: int(x) if x.isdigit() else 0):
				if not vd.isdigit():
					continue
				try:
					names = sorted(os.listdir(os.path.join(idir, vd)))
				except FileNotFoundError:
					continue  # the VM's directory went away while listed
				for fn in names:
					if fn.startswith('.') or fn.endswith('.tmp'):
						continue
					res.append((int(vd), fn, os.path.join(idir, vd, fn)))
		else:
			for fn in sorted(os.listdir(root)):
				m = re.match(r'^(?:vm|base|subvol|basevol)-(\d+)-', fn)
				if m and not fn.endswith('.tmp'):
					res.append((int(m.group(1)), fn, os.path.join(root, fn)))
		return res

	def image_volid(self, st, owner, fn, path):
		"""The volume id a plugin's list_images gives a file."""
		sid = st['storage']
		if self.is_file(st):
			try:
				back = qemu_img_info(path).get('backing-filename')
			except TaskFailed:
				back = None
			m = re.match(r'^\.\./(\d+)/(base-[^/]+)$', back or '')
			if m:
				return '%s:%s/%s/%d/%s' % (sid, m.group(1), m.group(2), owner, fn)
			return '%s:%d/%s' % (sid, owner, fn)
		if os.path.isdir(path):
			base = self.subvol_meta(path).get('origin')
			return '%s:%s' % (sid, base + '/' + fn if base else fn)
		if st['type'] in ('zfspool', 'rbd'):
			base = self.thin_parent(path)
			if base:
				return '%s:%s/%s' % (sid, base, fn)
		return '%s:%s' % (sid, fn)

	def thin_parent(self, path):
		"""The base volume a block-storage thin clone was made from (its backing file)."""
		try:
			back = qemu_img_info(path).get('backing-filename')
		except TaskFailed:
			return None
		return os.path.basename(back) if back else None

	def list_volumes(self, content=None, vmid=None, sid=None, node=None):
		"""The volumes node sees; without node, those of every store (a local storage's
		volumes carry the 'node' they are on)."""
		res = []
		for st in self.storages.values():
			if sid is not None and st['storage'] != sid:
				continue
			if node is not None:
				if self.on_node(st, node):
					res.extend(self.storage_volumes(st, content, vmid, node))
				continue
			for n, _ in self.storage_instances(st):
				vols = self.storage_volumes(st, content, vmid, n)
				if n is not None:
					for e in vols:
						e['node'] = n
				res.extend(vols)
		return res

	def storage_volumes(self, st, content=None, vmid=None, node=None):
		res = []
		sid = st['storage']
		root = self.st_root(st, node)
		if self.is_file(st):
			for sub in ('import', 'iso', 'vztmpl', 'snippets'):
				if (content and content != sub) or sub not in st['content']:
					continue
				d = os.path.join(root, sub)
				for fn in sorted(os.listdir(d)):
					p = os.path.join(d, fn)
					if not os.path.isfile(p) or fn.startswith('.') or fn.endswith('.part'):
						continue
					v = self.vol('%s:%s/%s' % (sid, sub, fn), node)
					try:
						size, ctime = os.path.getsize(p), int(os.path.getmtime(p))
					except FileNotFoundError:
						continue  # removed while listed (a delete task): not listed, as in Perl
					res.append({'volid': v['volid'], 'content': sub, 'format': v['format'],
						'size': size, 'ctime': ctime})
		if content not in (None, 'images') or 'images' not in st['content']:
			return res
		for owner, fn, p in self.image_files(st, node):
			if vmid is not None and owner != int(vmid):
				continue
			try:
				if os.path.isdir(p):
					# ZFSPoolPlugin.pm list_images: a subvol's size is its refquota
					res.append({'volid': self.image_volid(st, owner, fn, p),
						'content': 'rootdir', 'format': 'subvol',
						'size': self.subvol_meta(p)['refquota'], 'vmid': owner,
						'used': dir_bytes(p), 'ctime': int(os.path.getmtime(p))})
					continue
				info = qemu_img_info(p)
				ctime = int(os.path.getmtime(p))
			except (TaskFailed, FileNotFoundError):
				# unreadable, or removed while listed: ps Plugin.pm list_images skips an
				# image file_size_info cannot read
				continue
			volid = self.image_volid(st, owner, fn, p)
			v = self.vol(volid, node)
			e = {'volid': volid, 'content': 'images', 'format': v['format'],
				'size': info['virtual-size'], 'vmid': owner, 'ctime': ctime}
			if self.is_file(st):
				# ps Plugin.pm list_images: used, parent (the backing file as qemu-img says)
				e['used'] = info.get('actual-size', 0)
				if info.get('backing-filename'):
					e['parent'] = info['backing-filename']
			elif st['type'] == 'zfspool':
				e['used'] = info.get('actual-size', 0)
			res.append(e)
		return res

	def storage_status(self, st):
		du = shutil.disk_usage(self.state_dir)
		return {'storage': st['storage'], 'type': st['type'], 'content': ','.join(st['content']),
			'active': 1, 'enabled': 1, 'shared': 1 if st.get('shared') else 0,
			'total': du.total, 'used': du.used, 'avail': du.free,
			'used_fraction': du.used / du.total if du.total else 0}

	def storage_info(self):
		return self.storage_status(next(iter(self.storages.values())))

	def storage_cfg(self, st):
		"""A storage.cfg section as GET /storage shows it (ps API2/Storage/Config.pm)."""
		d = {k: v for k, v in st.items() if not k.startswith('_') and k != 'format'}
		d['content'] = ','.join(st['content'])
		if st.get('nodes'):
			d['nodes'] = ','.join(st['nodes'])
		if self.is_file(st) and st['type'] == 'dir':
			d.setdefault('path', st['_root'])
		if st['format'] != TYPES[st['type']]['dformat']:
			d['format'] = st['format']
		d['digest'] = self.storage_digest()
		return d

	def storage_digest(self):
		return hashlib.sha1(json.dumps([{k: v for k, v in s.items() if not k.startswith('_')}
			for s in self.storages.values()], sort_keys=True).encode()).hexdigest()

	# -- allocation -------------------------------------------------------------------------------
	def alloc_size(self, st, size):
		r = TYPES[st['type']]['round']
		return (size + r - 1) // r * r

	def target_format(self, st, d):
		"""qs create_disks: the drive's format option, else the storage's default format."""
		fmt = d.get('format') or st['format']
		if fmt not in TYPES[st['type']]['formats'] or fmt == 'subvol':
			raise TaskFailed("unsupported format '%s'" % fmt)
		return fmt

	def free_disk_name(self, st, vmid, fmt, node=None):
		"""ps Plugin.pm get_next_vm_diskname: the lowest free vm-<vmid>-disk-N (subvol-.. for
		the subvol format) on the storage (of node; file storages add the format suffix);
		reserved with a .tmp marker. N counts the disks of every prefix."""
		root = self.st_root(st, node)
		if self.is_file(st):
			d = os.path.join(root, 'images', str(vmid))
		else:
			d = root
		os.makedirs(d, exist_ok=True)
		with self.lock:
			used = set(os.listdir(d))
			for vm in self.vms.values():
				if not self.same_store(st, vm['node'], node):
					continue
				for v in vm['conf'].values():
					if str(v).startswith(st['storage'] + ':'):
						used.update(re.findall(r'((?:vm|base|subvol|basevol)-\d+-disk-\d+)',
							str(v)))
			prefix = 'subvol' if fmt == 'subvol' else 'vm'
			for n in range(1000):
				if not any(re.match(r'^(vm|base|subvol|basevol)-%d-disk-%d(\.|$)' % (vmid, n), u)
						for u in used):
					name = '%s-%d-disk-%d' % (prefix, vmid, n)
					if self.is_file(st):
						name += '.' + fmt
					open(os.path.join(d, name + '.tmp'), 'w').close()  # reserve
					return name, os.path.join(d, name)
		raise TaskFailed('unable to allocate an image name for VM %d' % vmid)

	def new_volid(self, st, vmid, name):
		if self.is_file(st):
			return '%s:%d/%s' % (st['storage'], vmid, name)
		return '%s:%s' % (st['storage'], name)

	def alloc_disk(self, st, vmid, d, size, node):
		"""ps Storage.pm vdisk_alloc: a new empty disk; returns (volid, path)."""
		self.check_enabled(st, node)
		fmt = self.target_format(st, d)
		name, path = self.free_disk_name(st, vmid, fmt, node)
		try:
			size = self.alloc_size(st, size)
			run(['qemu-img', 'create', '-q', '-f', fmt, path, str(size)])
		finally:
			os.unlink(path + '.tmp')
		return self.new_volid(st, vmid, name), path

	def import_disk(self, st, vmid, d, spath, node):
		"""qs create_disks with import-from: converts into the target storage's format."""
		self.check_enabled(st, node)
		fmt = self.target_format(st, d)
		name, path = self.free_disk_name(st, vmid, fmt, node)
		self.convert_into(st, spath, fmt, path)
		return self.new_volid(st, vmid, name), path

	def convert_into(self, st, src, fmt, path):
		"""Writes src as a new volume file of format fmt at path (reserved by free_disk_name
		with a .tmp marker, removed here); a block storage rounds the size up to its
		allocation unit (ps LVMPlugin/ZFSPoolPlugin/RBDPlugin alloc_image)."""
		try:
			run(['qemu-img', 'convert', '-q', '-f', self.phys_format(src), '-O', fmt, src,
				path])
			if not self.is_file(st):
				size = qemu_img_info(path)['virtual-size']
				if self.alloc_size(st, size) != size:
					run(['qemu-img', 'resize', '-q', '-f', 'raw', path,
						str(self.alloc_size(st, size))])
		finally:
			os.unlink(path + '.tmp')

	def alloc_cloudinit(self, st, vmid, node):
		"""qs API2/Qemu.pm create_disks: vm-<vmid>-cloudinit, 4 MiB; qcow2 with the suffix on
		file storages, raw elsewhere."""
		self.check_enabled(st, node)
		fmt = 'qcow2' if self.is_file(st) else 'raw'
		name = 'vm-%d-cloudinit' % vmid + ('.' + fmt if self.is_file(st) else '')
		root = self.st_root(st, node)
		d = os.path.join(root, 'images', str(vmid)) if self.is_file(st) else root
		os.makedirs(d, exist_ok=True)
		path = os.path.join(d, name)
		run(['qemu-img', 'create', '-q', '-f', fmt, path, str(4 * MiB)])
		return self.new_volid(st, vmid, name), path

	def copy_disk(self, src_volid, st, vmid, fmt=None, node=None):
		"""A full copy of a volume (qs clone_disk without a linked clone) into storage st,
		both as node sees them."""
		v = self.vol(src_volid, node)
		root = self.st_root(st, node)
		if self.is_cloudinit(src_volid):
			name = 'vm-%d-cloudinit' % vmid
			fmt = v['format'] if self.is_file(st) and self.is_file(v['st']) else (
				st['format'] if self.is_file(st) else 'raw')
			if self.is_file(st):
				name += '.' + fmt
			d = os.path.join(root, 'images', str(vmid)) if self.is_file(st) else root
			os.makedirs(d, exist_ok=True)
			path = os.path.join(d, name)
			run(['qemu-img', 'convert', '-q', '-f', self.phys_format(v['path']), '-O', fmt,
				v['path'], path])
			return self.new_volid(st, vmid, name), path
		if fmt is None:
			# qs clone_disk: keep the source format where the target supports it
			fmt = v['format'] if v['format'] in TYPES[st['type']]['formats'] else st['format']
		name, path = self.free_disk_name(st, vmid, fmt, node)
		self.convert_into(st, v['path'], fmt, path)
		return self.new_volid(st, vmid, name), path

	def clone_image(self, base_volid, vmid, node=None):
		"""ps <X>Plugin.pm clone_image: a linked clone of a base volume. File storages: a
		qcow2 overlay 'base vmid/base/vmid/vm-..qcow2' (Plugin.pm); lvmthin: a thin snapshot
		whose volume id does not name its base; zfspool, rbd: 'base-../vm-..'."""
		v = self.vol(base_volid, node)
		st = v['st']
		if not v['isbase']:
			raise TaskFailed('clone_image only works on base images')
		if self.is_file(st):
			name, path = self.free_disk_name(st, vmid, 'qcow2', node)
			try:
				run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', v['format'], '-b',
					'../%d/%s' % (v['owner'], v['name']), path])
			finally:
				os.unlink(path + '.tmp')
			return '%s:%d/%s/%d/%s' % (st['storage'], v['owner'], v['name'], vmid, name), path
		if v['format'] == 'subvol':
			# ZFSPoolPlugin.pm clone_image: zfs clone of base@__base__ keeping its refquota
			name, path = self.free_disk_name(st, vmid, 'subvol', node)
			try:
				# cp -a: owners (an unprivileged CT's 100000+) and xattrs stay as zfs keeps them
				run(['cp', '-a', '--', v['path'], path])
				self.set_subvol_meta(path, origin=v['name'])
			finally:
				os.unlink(path + '.tmp')
			return '%s:%s/%s' % (st['storage'], v['name'], name), path
		name, path = self.free_disk_name(st, vmid, 'raw', node)
		try:
			run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', v['name'], path])
		finally:
			os.unlink(path + '.tmp')
		if st['type'] == 'lvmthin':
			return '%s:%s' % (st['storage'], name), path
		return '%s:%s/%s' % (st['storage'], v['name'], name), path

	def create_base(self, volid, node=None):
		"""ps <X>Plugin.pm create_base: vm- -> base- (file storages keep the base name of a
		linked clone in the volume id); returns the new volume id."""
		v = self.vol(volid, node)
		st = v['st']
		if v['isbase']:
			raise TaskFailed('create_base not possible with base image')
		# ZFSPoolPlugin.pm create_base: a subvol becomes basevol-
		newname = re.sub(r'^subvol-', 'basevol-', v['name']) if v['format'] == 'subvol' else \
			re.sub(r'^vm-', 'base-', v['name'])
		newpath = os.path.join(os.path.dirname(v['path']), newname)
		if os.path.exists(newpath):
			raise TaskFailed("file '%s' already exists" % newpath)
		os.rename(v['path'], newpath)
		if self.is_file(st):
			os.chmod(newpath, 0o444)  # Plugin.pm create_base: nobody should write anything
			if v['basename']:
				return '%s:%d/%s/%d/%s' % (st['storage'], v['basevmid'], v['basename'],
					v['owner'], newname)
			return '%s:%d/%s' % (st['storage'], v['owner'], newname)
		if v['basename'] and st['type'] in ('zfspool', 'rbd'):
			return '%s:%s/%s' % (st['storage'], v['basename'], newname)
		return '%s:%s' % (st['storage'], newname)

	def base_in_use(self, volid, node=None):
		"""ps Storage.pm volume_is_base_and_used: another image names this base (lvmthin
		clones do not, so LVM-thin allows deleting a base that still has clones)."""
		v = self.vol(volid, node)
		if not v['isbase']:
			return False
		for e in self.storage_volumes(v['st'], 'images', node=node):
			o = self.vol(e['volid'], node)
			if o['basename'] == v['name'] and o['basevmid'] == v['owner']:
				return True
		return False

	def free_image(self, t, volid, node=None):
		"""ps Storage.pm vdisk_free and the plugins' free_image (a missing volume: a warning
		on file storages, nothing on lvmthin, the tool's error elsewhere)."""
		v = self.vol(volid, node)
		st = v['st']
		if self.base_in_use(volid, node):
			raise TaskFailed("base volume '%s' is still in use by linked clones" % v['volname'])
		path = v['path']
		if not os.path.exists(path):
			if self.is_file(st):
				t.warn("disk image '%s' does not exist" % path)
				return False
			if st['type'] == 'lvmthin':
				return False
			if st['type'] == 'lvm':
				raise TaskFailed("lvremove '%s/%s' error:   Failed to find logical volume "
					'"%s/%s"' % (st['vgname'], v['name'], st['vgname'], v['name']))
			if st['type'] == 'zfspool':
				raise TaskFailed("zfs error: cannot open '%s/%s': dataset does not exist" % (
					st['pool'], v['name']))
			raise TaskFailed("rbd snap purge '%s' error: rbd: error opening image %s: (2) No "
				"such file or directory" % (v['name'], v['name']))
		if st['type'] == 'lvmthin' and v['isbase']:
			# thin snapshots live on without their origin: make the overlays standalone
			for _, fn, p in self.image_files(st, node):
				if self.thin_parent(p) == v['name']:
					run(['qemu-img', 'rebase', '-q', '-f', 'qcow2', '-b', '', p])
		if os.path.isdir(path):
			shutil.rmtree(path)  # ZFSPoolPlugin.pm free_image: zfs destroy -r of the subvol
		else:
			os.unlink(path)
		if self.is_file(st):
			try:
				os.rmdir(os.path.dirname(path))
			except OSError:
				pass
		return True

	def resize_volume(self, volid, size, node=None):
		"""ps Storage.pm volume_resize (block storages round like their alloc_image)."""
		v = self.vol(volid, node)
		if v['format'] == 'subvol':
			# ZFSPoolPlugin.pm volume_resize: refquota, in KiB, not aligned
			size = size // 1024 * 1024
			self.set_subvol_meta(v['path'], refquota=size)
			return size
		if self.is_file(v['st']) and not re.search(r'\.(raw|qcow2)$', v['volname']):
			raise TaskFailed("can't resize this image format")
		size = (size + 1023) // 1024 * 1024
		if not self.is_file(v['st']):
			size = self.alloc_size(v['st'], size)
		run(['qemu-img', 'resize', '-q', '-f', self.phys_format(v['path']), v['path'],
			str(size)])
		return size

	def volume_size(self, volid, node=None):
		v = self.vol(volid, node)
		if v['format'] == 'subvol':
			return self.subvol_meta(v['path'])['refquota']
		return qemu_img_info(v['path'])['virtual-size']

	# -- zfs subvolumes (container root file systems) --------------------------------------
	def subvol_meta(self, path):
		with open(os.path.join(path, SUBVOL_META)) as f:
			return json.load(f)

	def set_subvol_meta(self, path, **kv):
		meta = self.subvol_meta(path) if os.path.exists(os.path.join(path, SUBVOL_META)) else \
			{'refquota': 0, 'origin': None}
		meta.update(kv)
		with open(os.path.join(path, SUBVOL_META), 'w') as f:
			json.dump(meta, f)

	def alloc_subvol(self, st, vmid, size, node):
		"""ps ZFSPoolPlugin.pm alloc_image with format subvol (zfs_create_subvol: a dataset
		with refquota = size); returns (volid, path)."""
		self.check_enabled(st, node)
		name, path = self.free_disk_name(st, vmid, 'subvol', node)
		try:
			os.mkdir(path)
			self.set_subvol_meta(path, refquota=size)
		finally:
			os.unlink(path + '.tmp')
		return self.new_volid(st, vmid, name), path

	def linked_children(self, vmid):
		"""VMs whose disks are linked clones of a base volume of VM vmid (file, zfs, rbd:
		by volume id; lvmthin by the overlay's backing file)."""
		res = []
		with self.lock:
			vms = list(self.vms.values())
		for vm in vms:
			if vm['vmid'] == vmid:
				continue
			for k, v in vm['conf'].items():
				f = str(v).split(',')[0]
				if ':' not in f or f.split(':')[0] not in self.storages:
					continue
				try:
					o = self.vol(f)
				except ApiError:
					continue
				if o['basevmid'] == vmid:
					res.append(vm['vmid'])
					break
		return res

	# -- access checks -------------------------------------------------------------------------
	def sees_storage(self, authid, sid='local'):
		return self.has(authid, '/storage/' + sid, 'Datastore.Audit') or \
			self.has(authid, '/storage/' + sid, 'Datastore.AllocateSpace')

	def need_storage(self, r, sid):
		self.storage(sid)
		self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])

	def check_volume_access(self, r, volid, vmid=None):
		"""ps Storage.pm check_volume_access."""
		if volid.startswith('/'):
			raise root_path_exc()
		v = self.vol(volid, r.node)
		sid = v['sid']
		if self.has(r.authid, '/storage/' + sid, 'Datastore.Allocate'):
			return v
		if v['ctype'] in ('iso', 'vztmpl', 'import'):
			self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace',
				'Datastore.Audit'], any_of=True)
		elif v['owner'] is not None and vmid is not None and v['owner'] == int(vmid):
			pass
		elif v['ctype'] == 'images' and v['owner'] is not None:
			self.check(r.authid, '/storage/' + sid, ['Datastore.Audit'])
			self.check(r.authid, '/vms/%d' % v['owner'], ['VM.Config.Disk'])
		else:
			raise ApiError(500, 'missing privileges to access %s\n' % volid)
		return v

	def check_import_source(self, r, src, key=None):
		# qs $check_storage_access (import-from), ps Storage.pm check_volume_access
		if src.startswith('/'):
			raise root_path_exc()
		v = self.vol(src, r.node)
		if v['ctype'] not in ('images', 'import'):
			raise param_exc({key or 'import-from': "%s has wrong type '%s' - needs to be "
				"'images' or 'import'" % (src, v['ctype'])})
		if v['ctype'] == 'images':
			self.check(r.authid, '/vms/%d' % v['owner'], ['VM.Clone'])
		else:
			self.check_volume_access(r, src)
		if not os.path.exists(v['path']):
			raise no_volume_exc(src)

	def storage_check(self, r):
		return self.storage(r.storage)

	def audit_storage(self, r):
		st = self.storage_check(r)
		self.check(r.authid, '/storage/' + st['storage'], ['Datastore.Audit',
			'Datastore.AllocateSpace'], any_of=True)
		return st

	def request_volume(self, r):
		"""The URI's volume (its storage prefix may be left out): id, path, content, owner."""
		volid = r.volume if ':' in r.volume else r.storage + ':' + r.volume
		return (volid,) + self.vol_path(volid, r.node)

	# -- endpoints -------------------------------------------------------------------------------
	def h_get_nodes_node_storage(self, r):
		# ps API2/Storage/Status.pm index: storages enabled on the node the caller may see
		p = r.params
		res = []
		for st in self.storages.values():
			if not self.on_node(st, r.node) or not self.sees_storage(r.authid, st['storage']):
				continue
			if p.get('storage') and p['storage'] != st['storage']:
				continue
			if p.get('content') and not set(split_list(p['content'])) & set(st['content']):
				continue
			res.append(self.storage_status(st))
		return res

	def h_get_storage(self, r):
		# ps API2/Storage/Config.pm index: Datastore.Audit/AllocateSpace filter, type filter
		return [self.storage_cfg(st) for st in self.storages.values()
			if self.sees_storage(r.authid, st['storage']) and
			(not r.params.get('type') or r.params['type'] == st['type'])]

	def h_get_storage_storage(self, r):
		st = self.storage_check(r)
		self.check(r.authid, '/storage/' + st['storage'], ['Datastore.Allocate'])
		return self.storage_cfg(st)

	def h_get_nodes_node_storage_storage_content(self, r):
		st = self.audit_storage(r)
		self.check_enabled(st, r.node)
		return self.storage_volumes(st, r.params.get('content'), r.params.get('vmid'), r.node)

	def h_get_nodes_node_storage_storage_content_volume(self, r):
		self.audit_storage(r)
		volid, path, ctype, owner = self.request_volume(r)
		if not os.path.exists(path):
			raise no_volume_exc(volid)
		v = self.vol(volid, r.node)
		if v['format'] == 'subvol':
			# ps ZFSPoolPlugin.pm volume_size_info of a subvol: refquota and the bytes used
			return {'path': path, 'size': self.volume_size(volid, r.node),
				'used': dir_bytes(path), 'format': 'subvol'}
		info = qemu_img_info(path) if ctype in ('images', 'import') else {}
		return {'path': path, 'size': info.get('virtual-size', os.path.getsize(path)),
			'used': info.get('actual-size', os.path.getsize(path)),
			'format': v['format']}

	def h_delete_nodes_node_storage_storage_content_volume(self, r):
		self.storage_check(r)
		volid, path, ctype, owner = self.request_volume(r)
		# ps API2/Storage/Content.pm delete: the path is only computed; vdisk_free in the task
		self.check(r.authid, '/storage/' + r.storage, ['Datastore.Allocate'])

		def work(t):
			if ctype == 'images':
				if self.free_image(t, volid, r.node) is not False:
					pass
			elif os.path.exists(path):
				os.unlink(path)
			else:
				t.warn("disk image '%s' does not exist" % path)
			t.log("Removed volume '%s'" % volid)

		tid = ('%d@' % owner if owner is not None else '') + r.storage
		upid = self.new_task(r.node, 'imgdel', tid, r.authid, work)
		if r.params.get('delay'):
			t = self.tasks[upid]
			if t.done.wait(int(r.params['delay'])):
				if t.exitstatus == 'OK' or t.exitstatus.startswith('WARNINGS'):
					return None
				raise ApiError(500, t.exitstatus + '\n')
		return upid

	def normalize_filename(self, fn):
		# ps Storage.pm normalize_content_filename
		fn = fn.rsplit('/', 1)[-1].rsplit('\\', 1)[-1]
		return re.sub(r'[^a-zA-Z0-9_.\-]', '_', fn)

	def upload_dest(self, r, download):
		"""ps API2/Storage/Status.pm upload / download_url: the checks of storage, content and
		file name, in each call's order and words; returns the normalized file name and its
		path."""
		p = r.params
		st = self.storage(r.storage)
		self.check_enabled(st, r.node)
		content = p['content']
		if not self.is_file(st):
			raise ApiError(500, "can't upload to storage type '%s'%s\n" % (st['type'],
				', not a file based storage!' if download else ''))
		if download and content not in st['content']:
			raise ApiError(500, "storage '%s' is not configured for content-type '%s'\n" % (
				st['storage'], content))
		fn = self.normalize_filename(p['filename'])
		if content == 'iso':
			ok = re.search(r'[^/]+\.(?:iso|img)$', fn, re.I)
		elif content == 'vztmpl':
			ok = re.search(r'[^/]+\.(?:tar(?!\.)|tar\.(gz|xz|zst|bz2))$', fn, re.I)
		elif content == 'import':
			ok = re.search(r'[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$', fn)
		else:
			raise param_exc({'content': ("upload content-type '%s' is not allowed" if download
				else "upload content type '%s' not allowed") % content})
		if not ok:
			raise param_exc({'filename': 'invalid filename or wrong extension' if
				content == 'import' else 'wrong file extension'})
		if not download and content not in st['content']:
			raise ApiError(500, "storage '%s' does not support '%s' content\n" % (
				st['storage'], content))
		return fn, os.path.join(self.st_root(st, r.node), content, fn)

	def h_post_nodes_node_storage_storage_upload(self, r):
		p = r.params
		self.storage_check(r)
		if p.get('tmpfilename') and not r.upload:
			raise ApiError(500, "Please use the 'tmpfilename' parameter only internally\n")
		if not r.upload:
			raise ApiError(501, 'upload without content length header not supported')
		content = p['content']
		fn, dest = self.upload_dest(r, False)
		if bool(p.get('checksum')) != bool(p.get('checksum-algorithm')):
			raise param_exc({'checksum-algorithm' if p.get('checksum') else 'checksum':
				"'checksum' and 'checksum-algorithm' must be given together"})
		tmp, start, end = r.upload

		def work(t):
			# the body part that is the file, as /var/tmp/pveupload-* holds it on a real node
			spool = os.path.join(self.tmpdir, 'pveupload-' + hashlib.md5(tmp.encode())
				.hexdigest())
			try:
				with open(tmp, 'rb') as src, open(spool, 'wb') as out:
					src.seek(start)
					left = end - start
					while left > 0:
						buf = src.read(min(left, 1 << 20))
						if not buf:
							break
						left -= len(buf)
						out.write(buf)
				os.unlink(tmp)
				t.log("starting file import from: %s" % spool)
				if p.get('checksum'):
					h = hashlib.new(p['checksum-algorithm'])
					with open(spool, 'rb') as f:
						for buf in iter(lambda: f.read(1 << 20), b''):
							h.update(buf)
					got = h.hexdigest()
					if got.lower() != p['checksum'].lower():
						raise checksum_exc(got, p['checksum'])
					t.log("calculating checksum...OK, checksum verified")
				if content == 'import' and fn.endswith(('.qcow2', '.raw', '.vmdk')):
					self.probe_untrusted(spool, fn.rsplit('.', 1)[1])
				t.log("target node: %s" % r.node)
				t.log("target file: %s" % dest)
				t.log("file size is: %d" % os.path.getsize(spool))
				t.log("command: cp -- %s %s" % (spool, dest))
				# the copy is what takes the task's time; the volume is listed once it ends
				t.hold()
				shutil.copyfile(spool, dest + '.part')
				os.replace(dest + '.part', dest)
				t.log("finished file import successfully")
			finally:
				for f in (tmp, spool):
					try:
						os.unlink(f)
					except FileNotFoundError:
						pass

		return self.new_task(r.node, 'imgcopy', '', r.authid, work)

	def probe_untrusted(self, path, fmt):
		"""ps Plugin.pm file_size_info(untrusted) via Common.pm qemu_img_info: qemu-img reads
		the file as the format its extension names; its stderr is the task's error."""
		import subprocess
		pr = subprocess.run(['qemu-img', 'info', '--output=json', path, '-f', fmt],
			stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		if pr.stderr and not pr.stdout:
			raise TaskFailed(pr.stderr.strip())
		if not pr.stdout:
			raise TaskFailed('failed to query file information with qemu-img')
		info = json.loads(pr.stdout)
		fs = info.get('format-specific') or {}
		if fs.get('type') == 'qcow2' and (fs.get('data') or {}).get('data-file'):
			raise TaskFailed("%s: 'data-file' references are not allowed!" % path)
		if fs.get('type') == 'vmdk' and (len(info.get('children') or []) > 1 or
				len((fs.get('data') or {}).get('extents') or []) > 1):
			raise TaskFailed('%s: multiple children or extents are not allowed!' % path)
		if info.get('backing-filename'):
			raise TaskFailed("backing file not allowed for untrusted image '%s'!" % path)

	def h_post_nodes_node_storage_storage_download_url(self, r):
		p = r.params
		self.storage_check(r)
		self.check(r.authid, '/storage/' + r.storage, ['Datastore.AllocateTemplate'])
		if not (self.has(r.authid, '/', 'Sys.Audit') and self.has(r.authid, '/', 'Sys.Modify')):
			self.check(r.authid, '/nodes/' + r.node, ['Sys.AccessNetwork'])
		fn, dest = self.upload_dest(r, True)
		verify = str(p.get('verify-certificates', 1)) != '0'

		def work(t):
			algo = p.get('checksum-algorithm')
			if os.path.exists(dest):
				if p.get('checksum'):
					h = hashlib.new(algo)
					with open(dest, 'rb') as f:
						for buf in iter(lambda: f.read(1 << 20), b''):
							h.update(buf)
					if h.hexdigest().lower() == p['checksum'].lower():
						t.log('file already exists %s, checksum matches - skipping' % dest)
						return
					raise checksum_exc(h.hexdigest(), p['checksum'])
				raise TaskFailed("refusing to override existing file '%s'" % dest)
			tmp = os.path.join(os.path.dirname(dest), '.tmp_dwnl.%d' % t.pid)
			ctx = ssl.create_default_context()
			if not verify:
				ctx.check_hostname = False
				ctx.verify_mode = ssl.CERT_NONE
			t.log('downloading %s to %s' % (p['url'], dest))
			h = hashlib.new(algo) if algo else None
			try:
				with urllib.request.urlopen(p['url'], context=ctx, timeout=30) as resp, \
						open(tmp, 'wb') as out:
					for buf in iter(lambda: resp.read(1 << 20), b''):
						out.write(buf)
						if h:
							h.update(buf)
			except Exception as e:
				if os.path.exists(tmp):
					os.unlink(tmp)
				raise TaskFailed('download failed: %s' % e)
			if h and h.hexdigest().lower() != p['checksum'].lower():
				os.unlink(tmp)
				raise checksum_exc(h.hexdigest(), p['checksum'])
			if p['content'] == 'import' and fn.endswith(('.qcow2', '.raw', '.vmdk')):
				try:
					self.probe_untrusted(tmp, fn.rsplit('.', 1)[1])
				except TaskFailed:
					os.unlink(tmp)
					raise
			os.replace(tmp, dest)
			t.log('download of \'%s\' to \'%s\' finished' % (p['url'], dest))

		tid = urllib.parse.quote(fn, safe='')
		return self.new_task(r.node, 'download', tid, r.authid, work)

	def h_get_nodes_node_storage_storage_import_metadata(self, r):
		self.storage_check(r)
		path, ctype, _ = self.vol_path(r.params['volume'], r.node)
		if not os.path.exists(path):
			raise no_volume_exc(r.params['volume'])
		info = qemu_img_info(path)
		return {'type': 'vm', 'source': r.params['volume'], 'create-args': {},
			'disks': {'scsi0': r.params['volume']}, 'net': {}, 'warnings': [],
			'size': info['virtual-size']}
