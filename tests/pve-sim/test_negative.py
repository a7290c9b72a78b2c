"""Negative cases: each asserts the status code, reason and error body Proxmox VE gives.
The comment on each case names the Perl function the behaviour comes from."""

import http.client
import json
import os
import ssl
import subprocess
import tempfile
import time
import unittest

from simharness import Simulator

PV = 'Parameter verification failed.'
LIMITED = 'limited@pve!tok'


class Negative(unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.sim = Simulator(task_duration=0.02, name='pve-sim.test_negative', extra_tokens=[
			LIMITED + '=22222222-0000-0000-0000-000000000000'],
			token_privs=LIMITED + '=/vms:VM.Audit;/storage:Datastore.Audit')
		cls.sim.start()
		cls.tmp = tempfile.mkdtemp(prefix='pve-sim-neg-')
		img = os.path.join(cls.tmp, 'disk.qcow2')
		subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '16M'])
		with open(img, 'rb') as f:
			cls.img = f.read()
		st, _, b = cls.upload(cls, [('content', 'import')], 'filename', 'disk.qcow2', cls.img)
		assert st == 200, b
		cls.sim.wait_task(b['data'])
		st, _, b = cls.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 9000,
			'scsi0': 'local:0,import-from=local:import/disk.qcow2', 'agent': '1'})
		assert st == 200, b
		cls.sim.wait_task(b['data'])
		cls.sim.wait_task(cls.sim.api('POST', '/nodes/pve1/qemu/9000/template')[2]['data'])

	@classmethod
	def tearDownClass(cls):
		cls.sim.cleanup()
		subprocess.call(['rm', '-rf', cls.tmp])

	def conn(self):
		host, port = self.sim.url.split('//')[1].split(':')
		ctx = ssl.create_default_context(cafile=self.sim.cert_path)
		ctx.check_hostname = False
		return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)

	def upload(self, fields, file_field, filename, data, query='', headers=None):
		b = 'sim-boundary-1234'
		parts = []
		for k, v in fields:
			parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
				% (b, k, v)).encode())
		parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
			'Content-Type: application/octet-stream\r\n\r\n' % (b, file_field, filename)).encode())
		parts.append(data + ('\r\n--%s--\r\n' % b).encode())
		body = b''.join(parts)
		host, port = self.sim.url.split('//')[1].split(':')
		ctx = ssl.create_default_context(cafile=self.sim.cert_path)
		ctx.check_hostname = False
		c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
		h = {'Authorization': self.sim.auth_header,
			'Content-Type': 'multipart/form-data; boundary=' + b}
		h.update(headers or {})
		if h.get('Transfer-Encoding') == 'chunked':
			body = b'%x\r\n%s\r\n0\r\n\r\n' % (len(body), body)
		c.request('POST', '/api2/json/nodes/pve1/storage/local/upload' + query, body=body,
			headers=h)
		r = c.getresponse()
		raw = r.read()
		c.close()
		return r.status, r.reason, json.loads(raw) if raw else None

	def expect(self, res, status, reason, errors=None, message=None, empty=False):
		st, rs, body = res
		self.assertEqual((st, rs), (status, reason), body)
		if empty:
			self.assertIsNone(body)
			return
		self.assertIsNone(body['data'])
		if errors is not None:
			self.assertEqual(body['errors'], errors)
		self.assertEqual(body['message'], message if message is not None else reason + '\n')

	def create(self, params, **kw):
		p = {'vmid': 200}
		p.update(params)
		return self.sim.api('POST', '/nodes/pve1/qemu', p, **kw)

	# 1. pve-common JSONSchema.pm check_object: unknown parameter
	def test_01_unknown_param(self):
		self.expect(self.create({'cores': 2, 'coress': 2}), 400, PV, {'coress': 'property is not '
			'defined in schema and the schema does not allow additional properties'})

	# 2. JSONSchema.pm check_prop: required parameter missing
	def test_02_missing_required(self):
		self.expect(self.sim.api('POST', '/nodes/pve1/qemu/9000/clone', {'name': 'x'}), 400, PV,
			{'newid': 'property is missing and it is not optional'})

	# 3. JSONSchema.pm check_type: integer
	def test_03_wrong_type(self):
		self.expect(self.create({'cores': 'two'}), 400, PV,
			{'cores': "type check ('integer') failed - got 'two'"})

	# 4. JSONSchema.pm check_type: top-level booleans are only 1/0 (or JSON true/false)
	def test_04_boolean_string(self):
		self.expect(self.create({'onboot': 'true'}), 400, PV,
			{'onboot': "type check ('boolean') failed - got 'true'"})
		self.expect(self.create({'onboot': 'yes', 'vmid': 201}, json_body=True), 400, PV,
			{'onboot': "type check ('boolean') failed - got 'yes'"})

	# 5. JSONSchema.pm check_prop: enum
	def test_05_enum(self):
		st, rs, body = self.create({'scsihw': 'virtio-scsi'})
		self.assertEqual((st, rs), (400, PV))
		self.assertRegex(body['errors']['scsihw'], r"^value 'virtio-scsi' does not have a value "
			r"in the enumeration 'lsi, lsi53c810, virtio-scsi-pci, virtio-scsi-single, ")

	# 6. JSONSchema.pm parse_property_string: unknown key in a drive string
	def test_06_drive_unknown_key(self):
		self.expect(self.create({'scsi0': 'local:1,sdd=1'}), 400, PV, {'scsi0': 'invalid format '
			'- invalid key in comma-separated list property: sdd\n'})

	# 7. qemu-server API2/Qemu.pm $check_drive_param: import-from needs size 0
	def test_07_import_from_size(self):
		self.expect(self.create({'scsi0': 'local:8,import-from=local:import/disk.qcow2'}), 400, PV,
			{'scsi0': "'import-from' requires special syntax - use <storage ID>:0,"
				"import-from=<source>"})

	# 8. JSONSchema.pm parse_property_string + parse_bridge_id: nested format error in net0
	def test_08_net_bad_bridge(self):
		self.expect(self.create({'net0': 'virtio,bridge=vm br0'}), 400, PV, {'net0': 'invalid '
			"format - format error\nnet0.bridge: invalid format - invalid bridge ID 'vm br0'\n\n"})

	# 9. JSONSchema.pm check_object 'requires': ipconfig gw needs ip
	def test_09_ipconfig_gw_without_ip(self):
		self.expect(self.create({'ipconfig0': 'gw=192.0.2.1'}), 400, PV, {'ipconfig0': 'invalid '
			"format - format error\nipconfig0.ip: missing property - 'ipconfig0.gw' requires this "
			'property\n'})

	# 10. JSONSchema.pm pve_verify_urlencoded: sshkeys must be percent-encoded
	def test_10_sshkeys_not_encoded(self):
		self.expect(self.create({'sshkeys': 'ssh-ed25519 AAAAC3 me@host'}), 400, PV, {'sshkeys':
			'invalid format - invalid urlencoded string: ssh-ed25519 AAAAC3 me@host\n'})

	# 11. JSONSchema.pm pve_verify_tag (pve-tag-list)
	def test_11_bad_tag(self):
		self.expect(self.create({'tags': 'ok;not$ok'}), 400, PV,
			{'tags': 'invalid format - invalid characters in tag\n'})

	# 12. qemu-server QemuServer.pm verify_bootdev inside the pve-qm-boot property string
	def test_12_bad_boot_order(self):
		self.expect(self.create({'boot': 'order=scsi0;floppy0'}), 400, PV, {'boot': 'invalid '
			"format - format error\nboot.order: invalid format - invalid boot device 'floppy0'\n\n"})

	# 13. qemu-server API2/Qemu.pm create_vm: no VM.Allocate on /vms/N or the pool ->
	#     pve-common Exception.pm raise_perm_exc() without a path
	def test_13_missing_privilege(self):
		st, rs, body = self.sim.api('POST', '/nodes/pve1/qemu', {'vmid': 300}, headers={
			'Authorization': 'PVEAPIToken=%s=22222222-0000-0000-0000-000000000000' % LIMITED})
		self.expect((st, rs, body), 403, 'Permission check failed')
		# reads that need only VM.Audit work for the same token
		st, _, _ = self.sim.api('GET', '/nodes/pve1/qemu/9000/config', headers={
			'Authorization': 'PVEAPIToken=%s=22222222-0000-0000-0000-000000000000' % LIMITED})
		self.assertEqual(st, 200)

	# 14. pve-storage Storage.pm check_volume_access: absolute paths are root@pam only
	def test_14_absolute_import_path(self):
		msg = ('Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm '
			'line 651.\n')
		self.expect(self.create({'scsi0': 'local:0,import-from=/var/lib/vz/x.qcow2'}), 500,
			msg.rstrip('\n'), message=msg)

	# 15. pve-cluster Cluster.pm check_vmid_unused via pgc create_and_lock_config, prefixed
	#     with qemu-server create_vm's $emsg
	def test_15_duplicate_vmid(self):
		self.expect(self.create({'vmid': 9000}), 500, "unable to create VM 9000 - VM 9000 "
			"already exists on node 'pve1'")
		# pve-manager API2/Cluster.pm nextid: same fixture shape as a real server
		self.expect(self.sim.api('GET', '/cluster/nextid', {'vmid': 9000}), 400, PV,
			{'vmid': 'VM 9000 already exists'})

	# 16. pve-guest-common AbstractConfig.pm check_lock on a VM left with 'lock: clone':
	#     qemu-server QemuServer.pm vm_start checks it in the worker (failed task),
	#     $update_vm_api before the fork (500)
	def test_16_locked_vm(self):
		st, _, b = self.create({'vmid': 105})
		self.sim.wait_task(b['data'])
		self.sim.control('POST', '/_sim/vm/105', {'conf': {'lock': 'clone'}})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/105/status/start')
		self.assertEqual(st, 200, b)
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'VM 105 is locked (clone)')
		self.expect(self.sim.api('POST', '/nodes/pve1/qemu/105/config', {'cores': 2}), 500,
			'VM 105 is locked (clone)')
		self.sim.control('POST', '/_sim/vm/105', {'conf': {'lock': None}})
		self.sim.wait_task(self.sim.api('DELETE', '/nodes/pve1/qemu/105')[2]['data'])

	# 17. qemu-server QemuServer.pm vm_start (in the worker; API2/Qemu.pm vm_start has no
	#     template check before the fork): templates cannot be started
	def test_17_start_template(self):
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/9000/status/start')
		self.assertEqual(st, 200, b)
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'],
			"you can't start a vm if it's a template")

	# 18. pve-http-server AnyEvent.pm process_header: chunked bodies are refused, empty body
	def test_18_chunked_upload(self):
		self.expect(self.upload([('content', 'import')], 'filename', 'a.qcow2', self.img,
			headers={'Transfer-Encoding': 'chunked'}), 501,
			'chunked transfer encoding not supported', empty=True)

	# 19. AnyEvent.pm file_upload_multipart: text fields must come in order content,
	#     checksum-algorithm, checksum. Out of order, the non-greedy regex swallows the earlier
	#     part into the disposition, assert_form_disposition dies with a message holding CR/LF,
	#     and AnyEvent.pm response() turns that into a bare '400 Bad Request' with no body.
	def test_19_multipart_order(self):
		self.expect(self.upload([('checksum-algorithm', 'sha256'), ('content', 'import')],
			'filename', 'a.qcow2', self.img), 400, 'Bad Request', empty=True)
		err = self.sim.requests()[-1]['error']
		self.assertTrue(err.startswith("wrong Content-Disposition 'form-data; name="
			'"checksum-algorithm"'), err)

	# 20. AnyEvent.pm file_upload_multipart: the file part must be named 'filename'
	def test_20_multipart_field_name(self):
		st, rs, body = self.upload([('content', 'import')], 'file', 'a.qcow2', self.img)
		self.assertEqual(st, 501)
		self.assertEqual(rs, "wrong field name 'file' for file upload, expected 'filename' at "
			'/usr/share/perl5/PVE/APIServer/AnyEvent.pm line 1187.')
		self.assertIsNone(body)

	# 21. pve-storage API2/Storage/Status.pm upload: import needs .qcow2/.raw/.vmdk/.ova
	#     ('invalid filename or wrong extension'; iso/vztmpl say 'wrong file extension')
	def test_21_wrong_extension(self):
		self.expect(self.upload([('content', 'import')], 'filename', 'noble.img', self.img), 400,
			PV, {'filename': 'invalid filename or wrong extension'})
		self.expect(self.upload([('content', 'iso')], 'filename', 'noble.qcow2', self.img), 400,
			PV, {'filename': 'wrong file extension'})

	# 22. pve-http-server authenticate_and_handle_request: bad token -> 401, empty body
	def test_22_bad_token(self):
		self.expect(self.sim.api('GET', '/version', headers={'Authorization':
			'PVEAPIToken=phoenix@pve!ci=wrong'}), 401, 'Authentication failed!', empty=True)

	# 23. qemu-server API2/Qemu.pm resize_vm: every check is in the worker ($updatefn under
	#     lock_config): shrinking, a missing disk (there is no template check at all)
	def test_23_resize(self):
		for size, disk, msg in (('1M', 'scsi0', 'shrinking disks is not supported'),
				('1G', 'scsi5', "disk 'scsi5' does not exist")):
			st, _, b = self.sim.api('PUT', '/nodes/pve1/qemu/9000/resize', {'disk': disk,
				'size': size})
			self.assertEqual(st, 200, b)
			self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], msg)

	# 24. pve-manager HTTPServer.pm rest_handler: unknown method/path
	def test_24_not_implemented(self):
		self.expect(self.sim.api('GET', '/nodes/pve1/foo'), 501,
			"Method 'GET /nodes/pve1/foo' not implemented")

	# 25. pve-storage Status.pm upload task: checksum checked inside the task
	def test_25_checksum_mismatch(self):
		st, _, body = self.upload([('content', 'import'), ('checksum-algorithm', 'sha256'),
			('checksum', '00' * 32)], 'filename', 'c.qcow2', self.img)
		self.assertEqual(st, 200)
		res = self.sim.wait_task(body['data'])
		self.assertRegex(res['exitstatus'], r"^checksum mismatch: got '[0-9a-f]{64}' != expect "
			r"'0{64}'$")
		self.assertFalse(os.path.exists(os.path.join(self.sim.state_dir,
			'storage/local/import/c.qcow2')))

	# 26. qemu-server QemuServer/Agent.pm assert_agent_available
	def test_26_agent_not_running(self):
		st, _, b = self.create({'vmid': 400, 'agent': 'enabled=1'})
		self.sim.wait_task(b['data'])
		self.expect(self.sim.api('POST', '/nodes/pve1/qemu/400/agent/ping'), 500,
			'VM 400 is not running')
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu/400/status/start')[2]['data'])
		self.expect(self.sim.api('POST', '/nodes/pve1/qemu/400/agent/ping'), 500,
			'QEMU guest agent is not running')
		self.sim.control('POST', '/_sim/agent/400', {'up': True})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/400/agent/ping')
		self.assertEqual((st, b), (200, {'data': {'result': {}}}))
		st, _, b = self.sim.api('GET', '/nodes/pve1/qemu/400/agent/network-get-interfaces')
		self.assertEqual(st, 200)
		self.assertEqual(b['data']['result'][0]['name'], 'lo')
		self.sim.wait_task(self.sim.api('POST', '/nodes/pve1/qemu/400/status/stop')[2]['data'])
		self.sim.wait_task(self.sim.api('DELETE', '/nodes/pve1/qemu/400')[2]['data'])

	# 27. qemu-server API2/Qemu.pm update_vm_api delete: a drive is detached as the lowest free
	#     unusedN (QemuServer.pm vmconfig_register_unused_drive, QemuConfig.pm
	#     add_unused_volume; a CD-ROM is not kept), deleting an unusedN frees its volume
	#     (try_deallocate_drive); check_protection refuses both on a protected VM
	def test_27_detach_then_remove_unused(self):
		st, _, b = self.create({'vmid': 410, 'scsi1': 'local:1', 'virtio2': 'local:1',
			'ide2': 'none,media=cdrom'})
		self.assertEqual(st, 200, b)
		self.sim.wait_task(b['data'])
		conf = self.sim.api('GET', '/nodes/pve1/qemu/410/config')[2]['data']
		vols = {k: conf[k].split(',')[0] for k in ('scsi1', 'virtio2')}
		path = lambda v: os.path.join(self.sim.state_dir, 'storage/local/images', '410',
			v.split('/')[-1])
		self.assertTrue(os.path.exists(path(vols['virtio2'])))
		self.sim.control('POST', '/_sim/vm/410', {'conf': {'protection': 1}})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/410/config', {'delete': 'scsi1'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'],
			"can't remove drive 'scsi1' - protection mode enabled")
		self.sim.control('POST', '/_sim/vm/410', {'conf': {'protection': None}})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/410/config',
			{'delete': 'scsi1,virtio2,ide2'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'OK')
		conf = self.sim.api('GET', '/nodes/pve1/qemu/410/config')[2]['data']
		self.assertEqual((conf['unused0'], conf['unused1']), (vols['scsi1'], vols['virtio2']))
		self.assertNotIn('unused2', conf)
		self.assertTrue(os.path.exists(path(vols['virtio2'])), 'detached, not freed')
		self.sim.control('POST', '/_sim/vm/410', {'conf': {'protection': 1}})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/410/config', {'delete': 'unused1'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'],
			"can't remove unused disk '%s' - protection mode enabled" % vols['virtio2'])
		self.sim.control('POST', '/_sim/vm/410', {'conf': {'protection': None}})
		st, _, b = self.sim.api('POST', '/nodes/pve1/qemu/410/config', {'delete': 'unused1'})
		self.assertEqual(self.sim.wait_task(b['data'])['exitstatus'], 'OK')
		conf = self.sim.api('GET', '/nodes/pve1/qemu/410/config')[2]['data']
		self.assertNotIn('unused1', conf)
		self.assertEqual(conf['unused0'], vols['scsi1'])
		self.assertFalse(os.path.exists(path(vols['virtio2'])), 'freed')
		self.sim.wait_task(self.sim.api('DELETE', '/nodes/pve1/qemu/410')[2]['data'])

	def test_99_all_invalid_requests_logged(self):
		# every 400 from schema validation above is in the log with its violations
		time.sleep(0.05)
		v = self.sim.schema_violations()
		self.assertTrue(any(x['violations'][0]['param'] == 'coress' for x in v))
		for r in self.sim.requests():
			self.assertNotIn('PVEAPIToken', json.dumps(r))


if __name__ == '__main__':
	unittest.main()
