"""Storage 'local' (a dir storage under STATE/storage/local): volume ids and files, qcow2 disks
via qemu-img, linked-clone bases, and the storage endpoints (content, upload, download-url,
import-metadata)."""

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

STORAGE_CONTENT = 'images,import,iso,snippets,vztmpl'
STORAGE_DIRS = ('import', 'iso', 'vztmpl', 'snippets', 'images')


def checksum_exc(got, want):
	return TaskFailed("checksum mismatch: got '%s' != expect '%s'" % (got, want))


class StorageHandlers:
	# -- the storage dir -------------------------------------------------------------------
	def init_storage(self):
		self.store = os.path.join(self.state_dir, 'storage', 'local')
		for sub in STORAGE_DIRS:
			os.makedirs(os.path.join(self.store, sub), exist_ok=True)

	def reset_storage(self):
		for sub in STORAGE_DIRS:
			shutil.rmtree(os.path.join(self.store, sub), ignore_errors=True)
			os.makedirs(os.path.join(self.store, sub))

	# -- volumes -------------------------------------------------------------------------------
	def vol_path(self, volid):
		sid, _, name = volid.partition(':')
		if sid != 'local':
			raise no_storage_exc(sid)
		m = re.match(r'^(import|iso|vztmpl|snippets)/([^/]+)$', name)
		if m:
			return os.path.join(self.store, m.group(1), m.group(2)), m.group(1), None
		m = re.match(r'^(?:\d+/[^/]+/)?(\d+)/((?:vm|base)-\d+-[^/]+)$', name)
		if m:
			return os.path.join(self.store, 'images', m.group(1), m.group(2)), 'images', \
				int(m.group(1))
		raise ApiError(500, "unable to parse directory volume name '%s'\n" % name)

	def image_volid(self, vmid, fname):
		path = os.path.join(self.store, 'images', str(vmid), fname)
		try:
			back = qemu_img_info(path).get('backing-filename')
		except TaskFailed:
			back = None
		if back:
			m = re.match(r'^\.\./(\d+)/(base-[^/]+)$', back)
			if m:
				return 'local:%s/%s/%d/%s' % (m.group(1), m.group(2), vmid, fname)
		return 'local:%d/%s' % (vmid, fname)

	def list_volumes(self, content=None, vmid=None):
		res = []
		for sub, ctype in (('import', 'import'), ('iso', 'iso'), ('vztmpl', 'vztmpl'),
				('snippets', 'snippets')):
			if content and content != ctype:
				continue
			d = os.path.join(self.store, sub)
			for fn in sorted(os.listdir(d)):
				p = os.path.join(d, fn)
				if not os.path.isfile(p) or fn.startswith('.'):
					continue
				ext = fn.rsplit('.', 1)[-1] if '.' in fn else 'raw'
				fmt = {'iso': 'iso', 'vztmpl': 'tzst' if ext == 'zst' else ext,
					'snippets': 'snippet'}.get(ctype, ext)
				res.append({'volid': 'local:%s/%s' % (sub, fn), 'content': ctype, 'format': fmt,
					'size': os.path.getsize(p), 'ctime': int(os.path.getmtime(p))})
		if content in (None, 'images'):
			idir = os.path.join(self.store, 'images')
			for vd in sorted(os.listdir(idir), key=lambda x: int(x) if x.isdigit() else 0):
				if not vd.isdigit() or (vmid is not None and int(vd) != int(vmid)):
					continue
				for fn in sorted(os.listdir(os.path.join(idir, vd))):
					p = os.path.join(idir, vd, fn)
					if fn.startswith('.') or fn.endswith('.tmp'):
						continue
					try:
						info = qemu_img_info(p)
					except TaskFailed:
						continue
					volid = self.image_volid(int(vd), fn)
					e = {'volid': volid, 'content': 'images', 'format': info.get('format'),
						'size': info['virtual-size'], 'used': info.get('actual-size', 0),
						'vmid': int(vd), 'ctime': int(os.path.getmtime(p))}
					if volid.count('/') > 1:
						e['parent'] = volid.split(':', 1)[1].split('/')[1]
					res.append(e)
		return res

	def storage_info(self):
		du = shutil.disk_usage(self.state_dir)
		return {'storage': 'local', 'type': 'dir', 'content': STORAGE_CONTENT, 'active': 1,
			'enabled': 1, 'shared': 0, 'total': du.total, 'used': du.used, 'avail': du.free,
			'used_fraction': du.used / du.total if du.total else 0}

	def free_disk_name(self, vmid, suffix='disk'):
		d = os.path.join(self.store, 'images', str(vmid))
		os.makedirs(d, exist_ok=True)
		with self.lock:
			used = set(os.listdir(d))
			for vm in self.vms.values():
				for v in vm['conf'].values():
					used.update(re.findall(r'((?:vm|base)-\d+-disk-\d+)', str(v)))
			for n in range(1000):
				if not any(u.startswith('vm-%d-disk-%d' % (vmid, n)) or
						u.startswith('base-%d-disk-%d' % (vmid, n)) for u in used):
					name = 'vm-%d-disk-%d.qcow2' % (vmid, n)
					open(os.path.join(d, name + '.tmp'), 'w').close()  # reserve
					return name
		raise TaskFailed('unable to allocate an image name for VM %d' % vmid)

	def linked_children(self, vmid):
		res = []
		with self.lock:
			for vm in self.vms.values():
				for k, v in vm['conf'].items():
					if re.match(r'^local:%d/base-' % vmid, str(v)) and vm['vmid'] != vmid:
						res.append(vm['vmid'])
		return res

	# -- access checks -------------------------------------------------------------------------
	def sees_storage(self, authid):
		return self.has(authid, '/storage/local', 'Datastore.Audit') or \
			self.has(authid, '/storage/local', 'Datastore.AllocateSpace')

	def need_storage(self, r, sid):
		if sid != 'local':
			raise no_storage_exc(sid)
		self.check(r.authid, '/storage/' + sid, ['Datastore.AllocateSpace'])

	def check_import_source(self, r, src):
		# qs $check_storage_access, ps Storage.pm check_volume_access
		if src.startswith('/'):
			raise root_path_exc()
		path, ctype, owner = self.vol_path(src)
		if ctype == 'images':
			self.check(r.authid, '/vms/%d' % owner, ['VM.Clone'])
		elif ctype == 'import':
			self.check(r.authid, '/storage/local', ['Datastore.Allocate',
				'Datastore.AllocateSpace', 'Datastore.Audit'], any_of=True)
		else:
			raise ApiError(500, "volume '%s' has wrong type '%s' - needs to be 'images' or "
				"'import'\n" % (src, ctype))
		if not os.path.exists(path):
			raise no_volume_exc(src)

	def storage_check(self, r):
		if r.storage != 'local':
			raise no_storage_exc(r.storage)

	def audit_storage(self, r):
		self.storage_check(r)
		self.check(r.authid, '/storage/local', ['Datastore.Audit', 'Datastore.AllocateSpace'],
			any_of=True)

	def request_volume(self, r):
		"""The URI's volume (its storage prefix may be left out): id, path, content, owner."""
		volid = r.volume if ':' in r.volume else 'local:' + r.volume
		return (volid,) + self.vol_path(volid)

	# -- endpoints -------------------------------------------------------------------------------
	def h_get_nodes_node_storage(self, r):
		if not self.sees_storage(r.authid):
			return []
		si = self.storage_info()
		if r.params.get('content') and r.params['content'] not in STORAGE_CONTENT.split(','):
			return []
		if r.params.get('storage') and r.params['storage'] != 'local':
			return []
		return [si]

	def h_get_storage(self, r):
		return [{'storage': 'local', 'type': 'dir', 'path': os.path.join(self.store),
			'content': STORAGE_CONTENT, 'digest': hashlib.sha1(b'storage').hexdigest()}]

	def h_get_storage_storage(self, r):
		self.storage_check(r)
		return self.h_get_storage(r)[0]

	def h_get_nodes_node_storage_storage_content(self, r):
		self.audit_storage(r)
		return self.list_volumes(r.params.get('content'), r.params.get('vmid'))

	def h_get_nodes_node_storage_storage_content_volume(self, r):
		self.audit_storage(r)
		volid, path, ctype, owner = self.request_volume(r)
		if not os.path.exists(path):
			raise no_volume_exc(volid)
		info = qemu_img_info(path) if ctype == 'images' or ctype == 'import' else {}
		return {'path': path, 'size': info.get('virtual-size', os.path.getsize(path)),
			'used': info.get('actual-size', os.path.getsize(path)),
			'format': info.get('format', 'iso' if ctype == 'iso' else 'raw')}

	def h_delete_nodes_node_storage_storage_content_volume(self, r):
		self.storage_check(r)
		volid, path, ctype, owner = self.request_volume(r)
		# ps API2/Storage/Content.pm delete
		self.check(r.authid, '/storage/local', ['Datastore.Allocate'])
		if not os.path.exists(path):
			raise no_volume_exc(volid)

		def work(t):
			if ctype == 'images' and os.path.basename(path).startswith('base-'):
				if self.linked_children(owner):
					raise TaskFailed("base volume '%s' is still in use by linked cloned" %
						volid.split(':', 1)[1])
			os.unlink(path)
			t.log("Removed volume '%s'" % volid)

		upid = self.new_task(r.node, 'imgdel', volid.split(':', 1)[1].replace('/', '_'),
			r.authid, work)
		if r.params.get('delay'):
			t = self.tasks[upid]
			if t.done.wait(int(r.params['delay'])) and t.exitstatus == 'OK':
				return None
		return upid

	def import_ext_ok(self, content, fn):
		# ps PVE/API2/Storage/Status.pm upload, regexes in ps Storage.pm
		if content == 'iso':
			return re.search(r'\.(iso|img)$', fn, re.I)
		if content == 'vztmpl':
			return re.search(r'\.tar(\.(gz|xz|zst|bz2))?$', fn)
		if content == 'import':
			return re.match(r'^[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$', fn)
		return False

	def normalize_filename(self, fn):
		# ps Storage.pm normalize_content_filename
		fn = fn.rsplit('/', 1)[-1].rsplit('\\', 1)[-1]
		return re.sub(r'[^a-zA-Z0-9_.\-]', '_', fn)

	def upload_dest(self, p, content_msg):
		"""Checks content and file name of an upload or download-url; returns the
		normalized file name and its path (content_msg: the content error, as each call
		words it)."""
		content = p['content']
		fn = self.normalize_filename(p['filename'])
		if content not in ('iso', 'vztmpl', 'import'):
			raise param_exc({'content': content_msg % content})
		if not self.import_ext_ok(content, fn):
			raise param_exc({'filename': 'wrong file extension'})
		return fn, os.path.join(self.store, content, fn)

	def h_post_nodes_node_storage_storage_upload(self, r):
		p = r.params
		self.storage_check(r)
		if p.get('tmpfilename') and not r.upload:
			raise ApiError(500, "Please use the 'tmpfilename' parameter only internally\n")
		if not r.upload:
			raise ApiError(501, 'upload without content length header not supported')
		content = p['content']
		fn, dest = self.upload_dest(p, "upload content type '%s' not allowed")
		if bool(p.get('checksum')) != bool(p.get('checksum-algorithm')):
			raise param_exc({'checksum-algorithm' if p.get('checksum') else 'checksum':
				"'checksum' and 'checksum-algorithm' must be given together"})
		tmp, start, end = r.upload

		def work(t):
			try:
				t.log("starting file import from: %s" % tmp)
				h = hashlib.new(p['checksum-algorithm']) if p.get('checksum') else None
				partial = dest + '.part'
				with open(tmp, 'rb') as src, open(partial, 'wb') as out:
					src.seek(start)
					left = end - start
					while left > 0:
						buf = src.read(min(left, 1 << 20))
						if not buf:
							break
						left -= len(buf)
						out.write(buf)
						if h:
							h.update(buf)
				if h:
					got = h.hexdigest()
					if got.lower() != p['checksum'].lower():
						os.unlink(partial)
						raise checksum_exc(got, p['checksum'])
					t.log("calculating checksum...OK, checksum verified")
				if content == 'import' and fn.endswith(('.qcow2', '.raw', '.vmdk')):
					fmt = fn.rsplit('.', 1)[1]
					try:
						info = json.loads(run(['qemu-img', 'info', '--output=json', '-f', fmt,
							partial]))
					except TaskFailed as e:
						os.unlink(partial)
						raise TaskFailed('could not parse qemu-img info command output for '
							"'%s' - %s" % (partial, e))
					# ps Plugin.pm file_size_info (untrusted)
					if info.get('backing-filename'):
						os.unlink(partial)
						raise TaskFailed("image '%s' has a backing file - refusing" % fn)
				os.replace(partial, dest)
				t.log("target node: %s" % r.node)
				t.log("target file: %s" % dest)
				t.log("file size is: %d" % os.path.getsize(dest))
				t.log("command: cp -- %s %s" % (tmp, dest))
				t.log("finished file import successfully")
			finally:
				try:
					os.unlink(tmp)
				except FileNotFoundError:
					pass

		return self.new_task(r.node, 'imgcopy', '', r.authid, work)

	def h_post_nodes_node_storage_storage_download_url(self, r):
		p = r.params
		self.storage_check(r)
		self.check(r.authid, '/storage/local', ['Datastore.AllocateTemplate'])
		if not (self.has(r.authid, '/', 'Sys.Audit') and self.has(r.authid, '/', 'Sys.Modify')):
			self.check(r.authid, '/nodes/' + r.node, ['Sys.AccessNetwork'])
		fn, dest = self.upload_dest(p, "upload content-type '%s' is not allowed")
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
			os.replace(tmp, dest)
			t.log('download of \'%s\' to \'%s\' finished' % (p['url'], dest))

		tid = urllib.parse.quote(fn, safe='')
		return self.new_task(r.node, 'download', tid, r.authid, work)

	def h_get_nodes_node_storage_storage_import_metadata(self, r):
		self.storage_check(r)
		path, ctype, _ = self.vol_path(r.params['volume'])
		if not os.path.exists(path):
			raise no_volume_exc(r.params['volume'])
		info = qemu_img_info(path)
		return {'type': 'vm', 'source': r.params['volume'], 'create-args': {},
			'disks': {'scsi0': r.params['volume']}, 'net': {}, 'warnings': [],
			'size': info['virtual-size']}
