"""The simulator's qemu mode (--qemu): real qemu-system-x86_64 guests behind the API.

QemuLifecycle needs only qemu-system-x86_64 (guests with blank disks sit in the BIOS):
command line from the config, Proxmox's agent errors, stop/shutdown/destroy/reset, and that no
qemu outlives the simulator (SIGTERM and SIGKILL), q35/OVMF/efidisk0 command lines. QemuBoot
boots the full test image ONCE (several minutes under TCG) on q35 with two NICs:
template + linked clone + cidata ISOs, the real guest agent answers ping,
network-get-interfaces and exec, cloud-init read the seed on the bus the guest can see,
configured both NICs by MAC and created the user. It boots SeaBIOS, not OVMF: the one UEFI
boot of `make check` is the demo's VM 8002 (q35 + OVMF + efidisk0, two NICs, deployed by the
orchestrator itself: tests/integration/test_demo.py); the q35 seed-bus evidence here does not
depend on the firmware (q35's IDE and SATA are AHCI either way), and OVMF's SMM code costs
~45 s more under TCG than SeaBIOS.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

from qemu_hv import guest_net
from simharness import Simulator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
QEMU = shutil.which('qemu-system-x86_64')
NODE = '/nodes/pve1'


def proc_alive(pid):
	"""True while the process exists and is not a zombie."""
	try:
		with open('/proc/%d/stat' % pid) as f:
			return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
	except (FileNotFoundError, ProcessLookupError):
		return False


def cmdline(pid):
	with open('/proc/%d/cmdline' % pid, 'rb') as f:
		return [a.decode() for a in f.read().split(b'\0') if a]


def qemu_pids_under(state_dir):
	"""qemu processes whose command line names the state dir (ours, not other tests')."""
	res = []
	for d in os.listdir('/proc'):
		if not d.isdigit():
			continue
		try:
			args = cmdline(int(d))
		except OSError:
			continue
		if args and 'qemu-system' in args[0] and any(state_dir in a for a in args) and \
				proc_alive(int(d)):
			res.append(int(d))
	return res


def wait_gone(pid, timeout=10):
	end = time.monotonic() + timeout
	while time.monotonic() < end:
		if not proc_alive(pid):
			return True
		time.sleep(0.1)
	return False


def make_iso(files, out, label='cidata'):
	d = tempfile.mkdtemp(prefix='pve-sim-iso-')
	try:
		paths = []
		for name, text in files.items():
			p = os.path.join(d, name)
			with open(p, 'w') as f:
				f.write(text)
			paths.append(p)
		subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-o', out, '-V', label, '-J', '-r']
			+ paths, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
	finally:
		shutil.rmtree(d, ignore_errors=True)


def curl_upload(sim, content, path, name):
	with open(path, 'rb') as f:
		sha = hashlib.file_digest(f, 'sha256').hexdigest()
	out = subprocess.run(['curl', '-sS', '--cacert', sim.cert_path, '-X', 'POST', '-H',
		'Authorization: ' + sim.auth_header, sim.url + '/api2/json' + NODE +
		'/storage/local/upload', '-F', 'content=' + content, '-F', 'checksum-algorithm=sha256',
		'-F', 'checksum=' + sha, '-F', 'filename=@%s;filename=%s' % (path, name)],
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
	return sim.wait_task(json.loads(out.stdout)['data'], timeout=300)


class Base(unittest.TestCase):
	def ok(self, method, path, params=None, json_body=False, task_timeout=60):
		st, reason, body = self.sim.api(method, path, params, json_body=json_body)
		self.assertEqual(st, 200, '%s %s -> %s %s %s' % (method, path, st, reason, body))
		data = body['data']
		if isinstance(data, str) and data.startswith('UPID:'):
			t = self.sim.wait_task(data, timeout=task_timeout)
			self.assertEqual(t['exitstatus'], 'OK', '%s %s: %s' % (method, path, t))
		return data

	def pid_of(self, vmid):
		return self.sim.control('GET', '/_sim/state')['vms'][str(vmid)].get('pid')


@unittest.skipUnless(QEMU and shutil.which('xorriso'),
	'qemu mode needs qemu-system-x86_64 and xorriso (apt-get install qemu-system-x86 xorriso)')
class QemuLifecycle(Base):
	def start_sim(self, **kw):
		sim = Simulator(qemu=True, task_duration=0.05, **kw)
		sim.start()
		self.addCleanup(sim.cleanup)
		return sim

	def setUp(self):
		self.sim = self.start_sim()

	def create(self, vmid, **extra):
		p = {'vmid': vmid, 'scsi0': 'local:1', 'memory': 256, 'cores': 1,
			'net0': 'virtio,bridge=vmbr0'}
		p.update(extra)
		self.ok('POST', NODE + '/qemu', p)

	def test_command_line_agent_errors_and_stop(self):
		iso = os.path.join(self.sim.state_dir, 'seed.iso')
		make_iso({'meta-data': 'instance-id: x\n', 'user-data': '#cloud-config\n'}, iso)
		curl_upload(self.sim, 'iso', iso, 'seed.iso')
		self.create(150, agent=1, memory=4096, cores=4, ide2='local:iso/seed.iso,media=cdrom')
		self.create(151)
		self.ok('POST', NODE + '/qemu/150/status/start')
		pid = self.pid_of(150)
		self.assertTrue(proc_alive(pid))
		args = cmdline(pid)
		line = ' '.join(args)
		disk = os.path.join(self.sim.state_dir, 'storage/local/images/150/vm-150-disk-0.qcow2')
		self.assertIn('file=%s,if=none,id=drive-scsi0,format=qcow2' % disk, line)
		# ide2 behind the i440fx PIIX IDE controller (what the Debian cloud kernel can see)
		self.assertIn('-machine pc', line)
		self.assertIn('ide-cd,bus=ide.1,unit=0,drive=drive-ide2', line)
		self.assertIn('media=cdrom,readonly=on', line)
		mac = self.sim.control('GET', '/_sim/state')['vms']['150']['conf']['net0'].split(
			',')[0].split('=')[1]
		self.assertIn('virtio-net-pci,netdev=net0,mac=%s,bus=pci.0,addr=0x12' % mac, line)
		self.assertIn('name=org.qemu.guest_agent.0', line)
		self.assertEqual(args[args.index('-m') + 1], '1024')  # capped
		self.assertEqual(args[args.index('-smp') + 1], '2')  # capped
		# --qemu-accel auto: KVM only where a probe boot works (never on the CI machines)
		self.assertIn(args[args.index('-accel') + 1], ('tcg', 'kvm'))
		# the agent socket is there but nothing answers in the guest: Proxmox's error after
		# qga_check_running's 3 s guest-ping timeout, not a hang
		t0 = time.monotonic()
		st, reason, body = self.sim.api('POST', NODE + '/qemu/150/agent/ping')
		self.assertEqual((st, body['message']), (500, 'QEMU guest agent is not running\n'))
		self.assertLess(time.monotonic() - t0, 8)
		st, _, body = self.sim.api('GET', NODE + '/qemu/150/agent/network-get-interfaces')
		self.assertEqual((st, body['message']), (500, 'QEMU guest agent is not running\n'))
		# no agent in the config: no channel, qemu-server's error
		self.ok('POST', NODE + '/qemu/151/status/start')
		self.assertNotIn('org.qemu.guest_agent.0', ' '.join(cmdline(self.pid_of(151))))
		st, _, body = self.sim.api('POST', NODE + '/qemu/151/agent/ping')
		self.assertEqual((st, body['message']), (500, 'No QEMU guest agent configured\n'))
		cur = self.ok('GET', NODE + '/qemu/150/status/current')
		self.assertEqual(cur['status'], 'running')
		# destroy of a running VM is refused and leaves qemu alone
		st, _, body = self.sim.api('DELETE', NODE + '/qemu/150')
		self.assertEqual((st, body['message']), (500, 'VM 150 is running - destroy failed\n'))
		self.assertTrue(proc_alive(pid))
		self.ok('POST', NODE + '/qemu/150/status/stop')
		self.assertTrue(wait_gone(pid, 2), 'qemu %d survived status/stop' % pid)
		self.assertEqual(self.ok('GET', NODE + '/qemu/150/status/current')['status'], 'stopped')
		st, _, body = self.sim.api('POST', NODE + '/qemu/150/agent/ping')
		self.assertEqual((st, body['message']), (500, 'VM 150 is not running\n'))
		# shutdown: the guest (a BIOS without a boot disk) ignores ACPI and the agent is
		# silent: without forceStop the task fails after the timeout, with it qemu is killed
		self.ok('POST', NODE + '/qemu/150/status/start')
		pid = self.pid_of(150)
		st, _, body = self.sim.api('POST', NODE + '/qemu/150/status/shutdown', {'timeout': 1})
		t = self.sim.wait_task(body['data'], timeout=30)
		self.assertEqual(t['exitstatus'], 'VM quit/powerdown failed - got timeout')
		self.assertTrue(proc_alive(pid))
		self.ok('POST', NODE + '/qemu/150/status/shutdown', {'timeout': 1, 'forceStop': 1})
		self.assertTrue(wait_gone(pid, 2))
		# reset ends the other guest too
		pid151 = self.pid_of(151)
		self.sim.control('POST', '/_sim/reset')
		self.assertTrue(wait_gone(pid151, 2), 'qemu %d survived /_sim/reset' % pid151)
		self.assertEqual(qemu_pids_under(self.sim.state_dir), [])

	def test_q35_ovmf_efidisk_bridges_and_buses(self):
		vars_4m = '/usr/share/OVMF/OVMF_VARS_4M.fd'
		if not os.path.exists(vars_4m):
			self.skipTest('needs the ovmf package (%s)' % vars_4m)
		iso = os.path.join(self.sim.state_dir, 'seed.iso')
		make_iso({'meta-data': 'instance-id: x\n'}, iso)
		curl_upload(self.sim, 'iso', iso, 'seed.iso')
		cd = 'local:iso/seed.iso,media=cdrom'
		self.create(9001, bios='ovmf', machine='q35', efidisk0='local:1,efitype=4m',
			net1='virtio,bridge=vmbr0', ide2=cd, sata1=cd, scsi1=cd)
		# qs OVMF.pm create_efidisk: the vars template's size, not the 1 GiB asked, holding
		# a copy of it; disk-0 as create_disks takes the drives in sorted order
		conf = self.ok('GET', NODE + '/qemu/9001/config')
		self.assertEqual(conf['efidisk0'], 'local:9001/vm-9001-disk-0.qcow2,efitype=4m,size=528K')
		disk = os.path.join(self.sim.state_dir, 'storage/local/images/9001/vm-9001-disk-0.qcow2')
		raw = os.path.join(self.sim.state_dir, 'efi.raw')
		subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', disk, raw], check=True)
		with open(raw, 'rb') as f, open(vars_4m, 'rb') as g:
			self.assertTrue(f.read() == g.read(), 'efidisk0 is not a copy of %s' % vars_4m)
		# a linked clone boots its own overlay of the template's EFI vars
		self.ok('POST', NODE + '/qemu/9001/template')
		self.ok('POST', NODE + '/qemu/9001/clone', {'newid': 170, 'full': 0})
		self.ok('POST', NODE + '/qemu/170/status/start')
		line = ' '.join(cmdline(self.pid_of(170)))
		self.ok('POST', NODE + '/qemu/170/status/stop')
		efi = os.path.join(self.sim.state_dir, 'storage/local/images/170/vm-170-disk-0.qcow2')
		# q35 + efitype=4m: the Secure Boot capable code with SMM (qs OVMF.pm get_ovmf_files)
		self.assertIn('-machine q35 ', line)
		self.assertIn('-drive if=pflash,unit=0,format=raw,readonly=on,'
			'file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd -drive if=pflash,unit=1,'
			'id=drive-efidisk0,format=qcow2,file=%s ' % efi, line)
		self.assertIn('-device pci-bridge,id=pci.0,bus=pcidmi,addr=1.0,chassis_nr=1', line)
		# ide2 on q35 is the ICH9 AHCI's bus ide.1 (qs print_drivedevice_full), sata an
		# AHCI controller, scsi the virtio-scsi controller
		self.assertIn('ide-cd,bus=ide.1,unit=0,drive=drive-ide2', line)
		self.assertIn('ahci,id=ahci0,multifunction=on,bus=pci.0,addr=0x7', line)
		self.assertIn('ide-cd,bus=ahci0.1,drive=drive-sata1', line)
		self.assertIn('virtio-scsi-pci,id=scsihw0,bus=pci.0,addr=0x5', line)
		self.assertIn('scsi-cd,bus=scsihw0.0,channel=0,scsi-id=0,lun=1,drive=drive-scsi1', line)
		conf = self.ok('GET', NODE + '/qemu/170/config')
		for i in (0, 1):
			mac = conf['net%d' % i].split(',')[0].split('=')[1]
			self.assertIn('-netdev user,id=net%d,net=%s -device virtio-net-pci,netdev=net%d,'
				'mac=%s,bus=pci.0,addr=0x%x' % (i, guest_net(170, i), i, mac, 0x12 + i), line)
		# i440fx without an efidisk0: the legacy 2 MiB pair, vars copied for this start only
		self.create(171, bios='ovmf')
		self.ok('POST', NODE + '/qemu/171/status/start')
		line = ' '.join(cmdline(self.pid_of(171)))
		self.ok('POST', NODE + '/qemu/171/status/stop')
		self.assertIn('-machine pc ', line)
		self.assertRegex(line, r'-drive if=pflash,unit=0,format=raw,readonly=on,'
			r'file=/usr/share/OVMF/OVMF_CODE.fd -drive if=pflash,unit=1,id=drive-efidisk0,'
			r'format=raw,file=\S+/171-ovmf.fd,size=131072 ')

	def test_linked_clone_boots_its_overlay_and_guest_exit_is_noticed(self):
		self.create(9000)
		self.ok('POST', NODE + '/qemu/9000/template')
		self.ok('POST', NODE + '/qemu/9000/clone', {'newid': 101, 'full': 0})
		self.ok('POST', NODE + '/qemu/101/status/start')
		pid = self.pid_of(101)
		overlay = os.path.join(self.sim.state_dir, 'storage/local/images/101/vm-101-disk-0.qcow2')
		self.assertIn('file=%s,' % overlay, ' '.join(cmdline(pid)))
		# a guest that powers off (here: killed behind the simulator's back) is stopped
		os.kill(pid, signal.SIGKILL)
		end = time.monotonic() + 5
		while time.monotonic() < end and \
				self.ok('GET', NODE + '/qemu/101/status/current')['status'] != 'stopped':
			time.sleep(0.1)
		self.assertEqual(self.ok('GET', NODE + '/qemu/101/status/current')['status'], 'stopped')
		self.ok('POST', NODE + '/qemu/101/status/start')
		self.ok('POST', NODE + '/qemu/101/status/stop')
		self.ok('DELETE', NODE + '/qemu/101')
		self.assertEqual(qemu_pids_under(self.sim.state_dir), [])

	def test_native_cloudinit_drive_is_a_cidata_iso_at_start(self):
		self.create(153, ide2='local:cloudinit', ciuser='alice', ipconfig0='ip=dhcp')
		self.ok('POST', NODE + '/qemu/153/status/start')
		line = ' '.join(cmdline(self.pid_of(153)))
		self.ok('POST', NODE + '/qemu/153/status/stop')
		path = os.path.join(self.sim.state_dir, 'storage/local/images/153/vm-153-cloudinit.qcow2')
		self.assertIn('file=%s,if=none,id=drive-ide2,format=qcow2,media=cdrom' % path, line)
		raw = os.path.join(self.sim.state_dir, 'ci.raw')
		subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path, raw], check=True)
		with open(raw, 'rb') as f:
			data = f.read()
		# ISO 9660 primary volume descriptor: volume id at byte 40 of sector 16
		self.assertEqual(data[0x8000 + 1:0x8000 + 6], b'CD001')
		self.assertEqual(data[0x8000 + 40:0x8000 + 46], b'cidata')
		self.assertIn(b'user: alice\n', data)
		self.assertIn(b'- type: dhcp4', data)

	def test_bad_qemu_start_fails_the_task_with_qemus_message(self):
		self.create(152)
		disk = os.path.join(self.sim.state_dir, 'storage/local/images/152/vm-152-disk-0.qcow2')
		with open(disk, 'r+b') as f:
			f.write(b'not a qcow2 header')
		st, _, body = self.sim.api('POST', NODE + '/qemu/152/status/start')
		t = self.sim.wait_task(body['data'])
		self.assertRegex(t['exitstatus'], r"^start failed: QEMU exited with code 1: .*"
			+ re.escape(disk) + ".*qcow2")
		self.assertEqual(self.ok('GET', NODE + '/qemu/152/status/current')['status'], 'stopped')
		self.assertEqual(qemu_pids_under(self.sim.state_dir), [])

	def test_no_qemu_outlives_sigterm_or_sigkill(self):
		for sig in (signal.SIGTERM, signal.SIGKILL):
			sim = self.sim = self.start_sim()
			self.create(160)
			self.create(161)
			self.ok('POST', NODE + '/qemu/160/status/start')
			self.ok('POST', NODE + '/qemu/161/status/start')
			pids = [self.pid_of(160), self.pid_of(161)]
			self.assertTrue(all(proc_alive(p) for p in pids))
			sim.proc.send_signal(sig)
			sim.proc.wait(15)
			for p in pids:
				# SIGKILL: PR_SET_PDEATHSIG ends qemu when the simulator dies
				self.assertTrue(wait_gone(p, 10), 'qemu %d survived %s' % (p, sig.name))
			self.assertEqual(qemu_pids_under(sim.state_dir), [])


class QgaProtocol(unittest.TestCase):
	"""QgaClient against a scripted agent on a unix socket (no qemu needed)."""

	def serve(self, answer):
		import socket
		import threading
		d = tempfile.mkdtemp(prefix='pve-sim-qga-')
		self.addCleanup(shutil.rmtree, d, True)
		path = os.path.join(d, 'qga.sock')
		srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		srv.bind(path)
		srv.listen(1)
		self.addCleanup(srv.close)
		self.seen = []

		def run():
			conn, _ = srv.accept()
			buf = b''
			with conn:
				while True:
					c = conn.recv(4096)
					if not c:
						return
					buf += c
					while b'\n' in buf:
						line, _, buf = buf.partition(b'\n')
						msg = json.loads(line.lstrip(b'\xff'))
						self.seen.append(msg)
						out = answer(msg)
						if out:
							conn.sendall(out)
		threading.Thread(target=run, daemon=True).start()
		return path

	def test_sync_skips_stale_output_and_command_returns_the_answer(self):
		from qemu_hv import QgaClient

		def answer(msg):
			if msg['execute'] == 'guest-sync-delimited':
				# a late answer of an earlier command, a stale delimiter with an old id, noise
				return (b'{"return": {"pid": 1}}\n\xff{"return": 7}\ngarbage\n\xff' +
					json.dumps({'return': msg['arguments']['id']}).encode() + b'\n')
			if msg['execute'] == 'guest-exec-status':
				return json.dumps({'return': {'exited': True, 'exitcode': 0,
					'out-data': base64.b64encode(b'hi\n').decode()}}).encode() + b'\n'
			return b'{"error": {"class": "CommandNotFound", "desc": "nope"}}\n'
		q = QgaClient(self.serve(answer))
		self.addCleanup(q.close)
		q.sync(2)
		res = q.command('guest-exec-status', {'pid': 5}, 2)
		self.assertEqual(res['return']['out-data'], base64.b64encode(b'hi\n').decode())
		self.assertEqual(self.seen[1], {'execute': 'guest-exec-status', 'arguments': {'pid': 5}})
		q.sync(2)
		self.assertEqual(q.command('guest-foo', None, 2)['error']['desc'], 'nope')

	def test_silent_agent_times_out(self):
		from qemu_hv import AgentTimeout, QgaClient
		q = QgaClient(self.serve(lambda msg: None))
		self.addCleanup(q.close)
		t0 = time.monotonic()
		with self.assertRaises(AgentTimeout):
			q.sync(0.5)
		self.assertLess(time.monotonic() - t0, 2)
		self.assertEqual(self.seen[0]['execute'], 'guest-sync-delimited')


def full_image():
	"""The full test image (built and cached by scripts/build-test-image.sh), or None."""
	if os.environ.get('PHX_SKIP_BOOT_TEST'):
		return None, 'PHX_SKIP_BOOT_TEST is set'
	p = subprocess.run([os.path.join(REPO, 'scripts', 'build-test-image.sh')],
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	img = p.stdout.strip()
	if p.returncode or not os.path.isfile(img):
		return None, 'scripts/build-test-image.sh failed: %s' % p.stderr.strip()[-300:]
	d = os.path.dirname(img)
	for f in ('vmlinuz', 'initrd.img', 'debs'):
		if not os.path.exists(os.path.join(d, f)):
			return None, 'full test image has no %s beside it' % f
	return img, None


def agent_image(img):
	"""A cached copy of the test image with qemu-guest-agent installed (virt-customize)."""
	d = os.path.dirname(img)
	key = hashlib.sha256((img + str(os.stat(img).st_mtime_ns)).encode()).hexdigest()[:16]
	root = os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
		'phoenix', 'sim-agent-images', key)
	out = os.path.join(root, 'agent.qcow2')
	if os.path.exists(out):
		if not os.path.exists(os.path.join(root, 'source')):
			with open(os.path.join(root, 'source'), 'w') as f:
				f.write(img + '\n')
		return out
	# drop copies made from test images that are gone (the image script's hash changed)
	top = os.path.dirname(root)
	for k in os.listdir(top) if os.path.isdir(top) else []:
		try:
			with open(os.path.join(top, k, 'source')) as f:
				src = f.read().strip()
		except OSError:
			continue
		if not os.path.exists(src):
			shutil.rmtree(os.path.join(top, k), ignore_errors=True)
	os.makedirs(root, exist_ok=True)
	with open(os.path.join(root, 'source'), 'w') as f:
		f.write(img + '\n')
	tmp = out + '.tmp%d' % os.getpid()
	shutil.copyfile(img, tmp)
	env = dict(os.environ, LIBGUESTFS_BACKEND='direct', LIBGUESTFS_BACKEND_SETTINGS='force_tcg')
	try:
		subprocess.run(['virt-customize', '-q', '-a', tmp, '--copy-in',
			os.path.join(d, 'debs') + ':/tmp', '--run-command',
			'dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs',
			# virt-customize writes a machine-id; a cloud image ships an empty one
			'--truncate', '/etc/machine-id'], env=env, check=True,
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
	except BaseException:
		os.unlink(tmp)
		raise
	os.replace(tmp, out)
	return out


BOOT_SKIP = None
if not QEMU:
	BOOT_SKIP = 'qemu-system-x86_64 is not installed'
elif not shutil.which('virt-customize') or not shutil.which('xorriso'):
	BOOT_SKIP = 'needs virt-customize (libguestfs-tools) and xorriso'


@unittest.skipIf(BOOT_SKIP, BOOT_SKIP or '')
class QemuBoot(Base):
	"""One real boot (~3-5 min under TCG)."""

	def log(self, msg):
		sys.stderr.write('  [%6.1fs] %s\n' % (time.monotonic() - self.t0, msg))
		sys.stderr.flush()

	def exec(self, vmid, argv, timeout=240):
		pid = self.ok('POST', NODE + '/qemu/%d/agent/exec' % vmid, {'command': argv},
			json_body=True)['pid']
		end = time.monotonic() + timeout
		while time.monotonic() < end:
			st = self.ok('GET', NODE + '/qemu/%d/agent/exec-status' % vmid, {'pid': pid})
			if st['exited']:
				return st
			time.sleep(1)
		self.fail('%s did not finish in %d s' % (argv, timeout))

	def test_boot_q35_two_nics_cloud_init_and_agent(self):
		"""The simulator's one real boot: q35 (SeaBIOS; UEFI is the demo's 8002, see the
		module's docstring) with two NICs. The firmware starts the image's kernel through
		fw_cfg (-kernel: the image has no boot loader). The seed is offered on three buses at
		once, each ISO with its own instance-id, and the guest shows which one it saw."""
		self.t0 = time.monotonic()
		img, why = full_image()
		if img is None:
			self.skipTest(why)
		d = os.path.dirname(img)
		self.log('test image %s' % img)
		aimg = agent_image(img)
		self.log('agent image ready %s' % aimg)
		self.sim = Simulator(qemu=True, task_duration=0.05,
			qemu_kernel=os.path.join(d, 'vmlinuz'), qemu_initrd=os.path.join(d, 'initrd.img'))
		self.sim.start()
		self.addCleanup(self.sim.cleanup)
		sim = self.sim
		curl_upload(sim, 'import', aimg, 'debian-12-agent.qcow2')
		self.log('uploaded (content=import)')
		self.ok('POST', NODE + '/qemu', {'vmid': 9000, 'name': 'tmpl', 'memory': 1024,
			'cores': 2, 'agent': 1, 'machine': 'q35', 'net0': 'virtio,bridge=vmbr0',
			'net1': 'virtio,bridge=vmbr0', 'scsihw': 'virtio-scsi-pci',
			'scsi0': 'local:0,import-from=local:import/debian-12-agent.qcow2'}, task_timeout=300)
		self.ok('POST', NODE + '/qemu/9000/template')
		self.ok('POST', NODE + '/qemu/9000/clone', {'newid': 100, 'name': 'boot-test',
			'full': 0})
		conf = self.ok('GET', NODE + '/qemu/100/config')
		macs = [conf['net%d' % i].split(',')[0].split('=')[1].lower() for i in (0, 1)]
		key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvb3QtdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs boot'
		user_data = '\n'.join(['#cloud-config', 'users:', '  - name: phx', '    shell: /bin/bash',
			'    ssh_authorized_keys: [%s]' % key,
			'runcmd:', "  - [sh, -c, 'echo booted > /var/lib/phx-boot-test']", ''])
		# net0 by DHCP from its user-mode network, net1 a static address in net1's subnet
		# (qemu_hv.guest_net(100, 1) = 10.3.33.0/24), both matched by MAC
		net_config = '\n'.join(['version: 2', 'ethernets:',
			'  nic0:', '    match: {macaddress: "%s"}' % macs[0], '    dhcp4: true',
			'  nic1:', '    match: {macaddress: "%s"}' % macs[1],
			'    addresses: [10.3.33.50/24]', ''])
		seeds = {}
		for bus, drive in (('ide2', 'ide2'), ('sata', 'sata1'), ('scsi', 'scsi1')):
			iso = os.path.join(sim.state_dir, 'seed-100-%s.iso' % bus)
			make_iso({'meta-data': 'instance-id: iid-%s\nlocal-hostname: boot-test\n' % bus,
				'user-data': user_data, 'network-config': net_config}, iso)
			curl_upload(sim, 'iso', iso, os.path.basename(iso))
			seeds[drive] = 'local:iso/%s,media=cdrom' % os.path.basename(iso)
		self.ok('POST', NODE + '/qemu/100/config', seeds)
		self.log('q35 template 9000, linked clone 100, seed ISOs on ide2, sata1, scsi1')
		t_start = time.monotonic()
		self.ok('POST', NODE + '/qemu/100/status/start')
		pid = self.pid_of(100)
		line = ' '.join(cmdline(pid))
		self.assertIn('images/100/vm-100-disk-0.qcow2', line)
		self.assertIn('-machine q35', line)
		self.assertNotIn('OVMF', line)
		end = time.monotonic() + 600
		while True:
			st, _, body = sim.api('POST', NODE + '/qemu/100/agent/ping')
			if st == 200:
				break
			self.assertEqual((st, body['message']), (500, 'QEMU guest agent is not running\n'))
			if time.monotonic() > end or not proc_alive(pid):
				self.fail('agent did not answer within 600 s; console tail:\n%s' %
					sim.control('GET', '/_sim/console/100'))
			time.sleep(2)
		self.assertEqual(body['data'], {'result': {}})
		self.log('agent answered ping %.1f s after start' % (time.monotonic() - t_start))
		st = self.exec(100, ['cloud-init', 'status', '--wait'])
		self.log('cloud-init status --wait: %r (exit %s), %.1f s after start' % (
			st.get('out-data'), st['exitcode'], time.monotonic() - t_start))
		self.assertEqual(st['exitcode'], 0, st)
		self.assertIn('status: done', st['out-data'])
		# booted by the BIOS: no EFI tables (UEFI: the demo's 8002)
		st = self.exec(100, ['test', '-e', '/sys/firmware/efi'])
		self.assertEqual(st['exitcode'], 1, st)
		# the seed bus: only the virtio-scsi CD-ROM is visible (ide2 and sata1 hang off AHCI
		# controllers on q35, which the Debian cloud kernel has no driver for), and it is the
		# one cloud-init read
		st = self.exec(100, ['sh', '-c', 'for d in $(blkid -t LABEL=cidata -o device); do '
			'echo "$d $(readlink -f /sys/class/block/${d#/dev/})"; done'])
		seen = st['out-data'].splitlines()
		self.log('cidata devices the guest sees: %s' % seen)
		self.assertEqual(len(seen), 1, seen)
		self.assertRegex(seen[0], r'^/dev/sr0 /sys/devices/\S+/virtio\d+/host\d+/')
		st = self.exec(100, ['cat', '/var/lib/cloud/data/instance-id'])
		self.assertEqual(st['out-data'], 'iid-scsi\n')
		ifs = self.ok('GET', NODE + '/qemu/100/agent/network-get-interfaces')['result']
		v4 = sorted((i['hardware-address'], i['name'], a['ip-address'], a['prefix'])
			for i in ifs for a in i.get('ip-addresses', []) if a['ip-address-type'] == 'ipv4'
			and i['name'] != 'lo')
		# pci.0 slots 0x12/0x13 behind pve-q35-4.0.cfg's bridges: enp2s18/enp2s19 on q35
		self.assertEqual(v4, sorted([(macs[0], 'enp2s18', '10.3.32.15', 24),
			(macs[1], 'enp2s19', '10.3.33.50', 24)]), ifs)
		self.log('network-get-interfaces: %s' % v4)
		st = self.exec(100, ['id', 'phx'])
		self.assertEqual(st['exitcode'], 0, st)
		self.assertRegex(st['out-data'], r'^uid=\d+\(phx\) gid=\d+\(phx\)')
		st = self.exec(100, ['cat', '/home/phx/.ssh/authorized_keys', '/var/lib/phx-boot-test'])
		self.assertEqual(st['out-data'], key + '\nbooted\n')
		st = self.exec(100, ['sh', '-c', 'echo oops >&2; exit 3'])
		self.assertEqual((st['exitcode'], st.get('err-data')), (3, 'oops\n'))
		st, _, body = sim.api('GET', NODE + '/qemu/100/agent/exec-status', {'pid': 999999})
		self.assertEqual(st, 500)
		self.assertEqual(body['message'], "Agent error: Invalid parameter 'pid'\n")
		self.log('exec: user phx exists, runcmd ran, err-data/exitcode passed through')
		t_sd = time.monotonic()
		self.ok('POST', NODE + '/qemu/100/status/shutdown', {'timeout': 120, 'forceStop': 1},
			task_timeout=180)
		self.log('shutdown through the agent took %.1f s' % (time.monotonic() - t_sd))
		self.assertTrue(wait_gone(pid, 5))
		self.assertEqual(self.ok('GET', NODE + '/qemu/100/status/current')['status'], 'stopped')
		sim.stop()
		self.assertEqual(qemu_pids_under(sim.state_dir), [])
		self.log('boot test done, no qemu left')


if __name__ == '__main__':
	unittest.main()
