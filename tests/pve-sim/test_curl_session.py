"""A hand-written curl session: upload a qcow2, create a VM with import-from, template it,
clone it linked and full, resize the clone, then check the disk files with qemu-img."""

import hashlib
import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from simharness import Simulator

MiB = 1 << 20


def qinfo(path):
	return json.loads(subprocess.check_output(['qemu-img', 'info', '--output=json', '-U', path]))


class CurlSession(unittest.TestCase):
	def setUp(self):
		self.sim = Simulator(task_duration=0.05)
		self.sim.start()
		self.addCleanup(self.sim.cleanup)
		self.tmp = tempfile.mkdtemp(prefix='pve-sim-curl-')
		self.addCleanup(subprocess.call, ['rm', '-rf', self.tmp])

	def curl(self, method, path, *args, expect=200):
		out = subprocess.run(['curl', '-sS', '--cacert', self.sim.cert_path, '-X', method,
			'-H', 'Authorization: ' + self.sim.auth_header, '-w', '\n%{http_code}',
			self.sim.url + '/api2/json' + path] + list(args),
			stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
		body, _, code = out.stdout.rpartition('\n')
		self.assertEqual(int(code), expect, '%s %s -> %s %s' % (method, path, code, body))
		return json.loads(body)['data'] if body else None

	def wait(self, upid):
		q = urllib.parse.quote(upid, safe='')
		for _ in range(600):
			st = self.curl('GET', '/nodes/pve1/tasks/%s/status' % q)
			if st['status'] == 'stopped':
				self.assertEqual(st['exitstatus'], 'OK', st)
				return st
			time.sleep(0.02)
		self.fail('task did not finish: ' + upid)

	def disk(self, volid):
		# local:<vmid>/<file> or local:<base vmid>/<base file>/<vmid>/<file>
		parts = volid.split(':', 1)[1].split('/')
		return os.path.join(self.sim.state_dir, 'storage/local/images', parts[-2], parts[-1])

	def test_import_template_clone_resize(self):
		img = os.path.join(self.tmp, 'noble.qcow2')
		subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '64M'])
		with open(img, 'rb') as f:
			sha = hashlib.sha256(f.read()).hexdigest()

		# upload: text fields in Proxmox's order, then the file part named 'filename'
		upid = self.curl('POST', '/nodes/pve1/storage/local/upload',
			'-F', 'content=import', '-F', 'checksum-algorithm=sha256', '-F', 'checksum=' + sha,
			'-F', 'filename=@%s;filename=noble.qcow2' % img)
		self.assertRegex(upid, r'^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:imgcopy::'
			r'phoenix@pve!ci:$')
		self.wait(upid)
		content = self.curl('GET', '/nodes/pve1/storage/local/content?content=import')
		self.assertEqual([c['volid'] for c in content], ['local:import/noble.qcow2'])

		nextid = self.curl('GET', '/cluster/nextid')
		self.assertEqual(nextid, '100')  # a string, as Proxmox sends it
		upid = self.curl('POST', '/nodes/pve1/qemu', '--data-urlencode', 'vmid=9000',
			'--data-urlencode', 'name=tpl',
			'--data-urlencode', 'scsi0=local:0,import-from=local:import/noble.qcow2,discard=on',
			'--data-urlencode', 'ide2=local:cloudinit', '--data-urlencode', 'net0=virtio,bridge=vmbr0',
			'--data-urlencode', 'agent=enabled=1', '--data-urlencode', 'tags=Phoenix;base')
		self.assertIn(':qmcreate:9000:phoenix@pve!ci:', upid)
		self.wait(upid)
		conf = self.curl('GET', '/nodes/pve1/qemu/9000/config')
		self.assertEqual(conf['scsi0'], 'local:9000/vm-9000-disk-0.qcow2,discard=on,size=64M')
		self.assertEqual(conf['tags'], 'base;phoenix')
		self.assertRegex(conf['net0'], r'^virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},'
			r'bridge=vmbr0$')

		self.wait(self.curl('POST', '/nodes/pve1/qemu/9000/template'))
		conf = self.curl('GET', '/nodes/pve1/qemu/9000/config')
		self.assertEqual(conf['template'], 1)
		self.assertTrue(conf['scsi0'].startswith('local:9000/base-9000-disk-0.qcow2,'))
		base = self.disk(conf['scsi0'].split(',')[0])
		self.assertTrue(os.path.exists(base))

		self.wait(self.curl('POST', '/nodes/pve1/qemu/9000/clone', '-d', 'newid=101',
			'-d', 'name=linked'))
		self.wait(self.curl('POST', '/nodes/pve1/qemu/9000/clone', '-d', 'newid=102',
			'-d', 'name=full', '-d', 'full=1', '-d', 'storage=local'))
		linked = self.curl('GET', '/nodes/pve1/qemu/101/config')
		full = self.curl('GET', '/nodes/pve1/qemu/102/config')
		self.assertTrue(linked['scsi0'].startswith(
			'local:9000/base-9000-disk-0.qcow2/101/vm-101-disk-0.qcow2,'), linked['scsi0'])
		self.assertTrue(full['scsi0'].startswith('local:102/vm-102-disk-0.qcow2,'), full['scsi0'])
		self.assertNotEqual(linked['net0'], conf['net0'])  # new MAC per clone

		self.wait(self.curl('PUT', '/nodes/pve1/qemu/102/resize', '-d', 'disk=scsi0',
			'--data-urlencode', 'size=+64M'))
		self.wait(self.curl('PUT', '/nodes/pve1/qemu/101/resize', '-d', 'disk=scsi0',
			'-d', 'size=96M'))
		full = self.curl('GET', '/nodes/pve1/qemu/102/config')
		linked = self.curl('GET', '/nodes/pve1/qemu/101/config')
		self.assertIn('size=128M', full['scsi0'])
		self.assertIn('size=96M', linked['scsi0'])

		bi = qinfo(base)
		li = qinfo(self.disk(linked['scsi0'].split(',')[0]))
		fi = qinfo(self.disk(full['scsi0'].split(',')[0]))
		self.assertEqual(bi['virtual-size'], 64 * MiB)
		self.assertEqual(li['virtual-size'], 96 * MiB)
		self.assertEqual(li['backing-filename'], '../9000/base-9000-disk-0.qcow2')
		self.assertEqual(fi['virtual-size'], 128 * MiB)
		self.assertNotIn('backing-filename', fi)

		# ('-d size=+64M' would arrive as ' 64M': form decoding turns '+' into a space)
		# a template with a linked clone cannot be destroyed (task error, VM stays)
		upid = self.curl('DELETE', '/nodes/pve1/qemu/9000')
		q = urllib.parse.quote(upid, safe='')
		for _ in range(300):
			st = self.curl('GET', '/nodes/pve1/tasks/%s/status' % q)
			if st['status'] == 'stopped':
				break
			time.sleep(0.02)
		# qs QemuServer.pm destroy_vm names the whole volume id (and says 'cloned')
		self.assertEqual(st['exitstatus'], "base volume 'local:9000/base-9000-disk-0.qcow2' is "
			"still in use by linked cloned")
		self.assertTrue(os.path.exists(base))
		# after the linked clone is gone the template goes too
		self.wait(self.curl('DELETE', '/nodes/pve1/qemu/101?purge=1'))
		self.wait(self.curl('DELETE', '/nodes/pve1/qemu/9000?purge=1&destroy-unreferenced-disks=1'))
		self.assertFalse(os.path.exists(base))
		state = self.sim.control('GET', '/_sim/state')
		self.assertEqual(sorted(state['vms']), ['102'])
		self.assertEqual(self.sim.schema_violations(), [])


if __name__ == '__main__':
	unittest.main()
