"""Real guests for the simulator (`pve_sim.py --qemu`): one qemu-system-x86_64 per running VM.

Replaces FakeHypervisor (same calls: start, stop, shutdown, agent, forget, close). The VM's
disks are its real qcow2 volumes (a linked clone boots its overlay), drives and NICs sit where
qemu-server puts them: `machine: q35` is the ICH9 board with pve-q35-4.0.cfg's PCI bridges,
anything else i440fx; ideN is a CD-ROM/disk on the board's IDE, which is PIIX on i440fx but the
ICH9 AHCI on q35 (the Debian cloud kernel has no AHCI driver: a seed on ide2 or sataN of a q35
guest is invisible to it), scsiN is on virtio-scsi; `bios: ovmf` boots Debian's OVMF (package
ovmf) from pflash with efidisk0 as the VM's NVRAM; netN is user-mode networking with the
configured MAC at Proxmox's PCI slot (net0 = pci.0 slot 0x12, so an i440fx guest names it ens18
as on Proxmox, a q35 guest enp2s18) in a subnet of its own (guest_net: VM 100's net0 DHCP
address is 10.3.32.15, net1's 10.3.33.15), and the agent
channel is a virtio-serial port `org.qemu.guest_agent.0` on a unix socket, added only when the
config has `agent: 1` (as qemu-server's config_to_command does). `agent/*` requests are answered
by the real qemu-guest-agent through that socket (QGA JSON protocol).

Files, in STATE/qemu/ (or a short /tmp dir when that path is too long for a unix socket):
<vmid>.console.log (serial console), <vmid>.qemu.log (qemu's own stderr), <vmid>.qga and
<vmid>.qmp (sockets).

No qemu outlives the simulator: every qemu is forked by one long-lived launcher thread with
PR_SET_PDEATHSIG=SIGKILL (the signal follows the *thread* that forked, so not a task thread),
and stop/destroy/reset/close/SIGTERM/exit terminate it explicitly.
"""

import atexit
import base64
import ctypes
import glob
import json
import os
import queue
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

PR_SET_PDEATHSIG = 1
# qs PVE/QemuServer/Agent.pm agent_available -> qga_check_running: guest-ping, 3 s timeout
PING_TIMEOUT = 3.0
CMD_TIMEOUT = 10.0
NET_MODELS = {'virtio': 'virtio-net-pci', 'e1000': 'e1000', 'e1000e': 'e1000e',
	'rtl8139': 'rtl8139', 'vmxnet3': 'vmxnet3'}


class AgentTimeout(Exception):
	pass


def _set_pdeathsig():
	# runs in the child between fork and exec
	try:
		ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
	except Exception:
		pass


def probe_kvm(binary, kernel=None, timeout=3.0):
	"""(ok, why): /dev/kvm existing is not enough (nested "PVM" hosts open it, then qemu aborts
	or the guest kernel hangs), so boot a real kernel for a moment and wait for its banner on
	the serial console, as src/customize_accel.c does for libguestfs. A working KVM prints it
	in well under a second."""
	if not os.access('/dev/kvm', os.R_OK | os.W_OK):
		return False, 'no usable /dev/kvm'
	if not kernel:
		ks = sorted(glob.glob('/boot/vmlinuz-*'))
		if not ks:
			return False, 'no kernel to probe KVM with'
		kernel = ks[-1]
	try:
		p = subprocess.Popen([binary, '-accel', 'kvm', '-machine', 'pc', '-cpu', 'max', '-m', '128',
			'-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio', '-monitor', 'none',
			'-kernel', kernel, '-append', 'console=ttyS0 panic=-1'], stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=_set_pdeathsig)
	except OSError as e:
		return False, 'cannot run %s: %s' % (binary, e)
	seen = b''
	ok, why = False, 'no kernel banner within %.0f s (KVM present but guests hang)' % timeout
	end = time.monotonic() + timeout
	try:
		while time.monotonic() < end:
			r, _, _ = select.select([p.stdout], [], [], max(0, end - time.monotonic()))
			if not r:
				break
			c = os.read(p.stdout.fileno(), 4096)
			if not c:
				why = 'qemu exited before the kernel printed its banner'
				break
			seen = seen[-64:] + c
			if b'Linux version' in seen:
				ok, why = True, 'kernel banner seen'
				break
	finally:
		p.kill()
		p.wait()
		p.stdout.close()
	return ok, why


def pick_accel(binary, kernel):
	"""'kvm' or 'tcg' for --qemu-accel auto; the verdict is kept per host boot (it cannot change
	before a reboot) so each simulator start does not pay for the probe."""
	try:
		with open('/proc/sys/kernel/random/boot_id') as f:
			boot = f.read().strip()
	except OSError:
		boot = None
	cache = os.path.join(tempfile.gettempdir(), 'pve-sim-accel-%s' % boot) if boot else None
	if cache:
		try:
			with open(cache) as f:
				v = f.read().split('\n')[0]
			if v in ('kvm', 'tcg'):
				return v
		except OSError:
			pass
	ok, why = probe_kvm(binary, kernel)
	v = 'kvm' if ok else 'tcg'
	if cache:
		try:
			with open(cache + '.tmp', 'w') as f:
				f.write('%s\n%s\n' % (v, why))
			os.replace(cache + '.tmp', cache)
		except OSError:
			pass
	return v


def guest_net(vmid, i):
	"""The user-mode network of netN: 10.<vmid bits>.0/24 instead of qemu's 10.0.2.0/24 for all,
	so each VM's DHCP address (.15) is different and tells which VM it is. net1+ get their own
	subnets too (slirp routes only to the host, never between guests)."""
	n = (vmid * 8 + i) % (1 << 16)
	return '10.%d.%d.0/24' % (n >> 8, n & 255)


def pci_addr(slot):
	"""qs PCI.pm print_pci_addr: slot on pci.0, or (bus, slot) on a bridge."""
	bus, slot = slot if isinstance(slot, tuple) else (0, slot)
	return ',bus=pci.%d,addr=0x%x' % (bus, slot)


def qarg(path):
	"""A value inside a qemu -drive/-chardev option: commas are escaped by doubling."""
	return path.replace(',', ',,')


class QgaClient:
	"""One persistent connection to a guest agent socket. guest-sync-delimited before every
	command discards whatever an earlier, timed-out command left in the channel."""

	def __init__(self, path):
		self.path = path
		self.sock = None
		self.buf = b''
		self.lock = threading.Lock()

	def close(self):
		if self.sock is not None:
			try:
				self.sock.close()
			except OSError:
				pass
		self.sock = None
		self.buf = b''

	def _connect(self):
		if self.sock is None:
			s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
			s.settimeout(2)
			s.connect(self.path)
			self.sock = s
			self.buf = b''

	def _send(self, data, deadline):
		self.sock.settimeout(max(0.05, deadline - time.monotonic()))
		self.sock.sendall(data)

	def _fill(self, deadline):
		left = deadline - time.monotonic()
		if left <= 0:
			raise AgentTimeout()
		self.sock.settimeout(left)
		try:
			c = self.sock.recv(65536)
		except socket.timeout:
			raise AgentTimeout()
		if not c:
			raise ConnectionError('agent socket closed')
		self.buf += c

	def _line(self, deadline):
		while b'\n' not in self.buf:
			self._fill(deadline)
		line, _, self.buf = self.buf.partition(b'\n')
		return line

	def sync(self, timeout):
		"""Raises AgentTimeout / OSError when the agent does not answer."""
		deadline = time.monotonic() + timeout
		self._connect()
		sid = random.randint(1, 2 ** 31 - 1)
		# 0xFF first resets the agent's JSON parser (qemu-ga: "guest-sync-delimited")
		self._send(b'\xff' + json.dumps({'execute': 'guest-sync-delimited',
			'arguments': {'id': sid}}).encode() + b'\n', deadline)
		while True:
			while b'\xff' not in self.buf:
				self.buf = b''
				self._fill(deadline)
			self.buf = self.buf[self.buf.index(b'\xff') + 1:]
			while True:
				if b'\xff' in self.buf.split(b'\n', 1)[0]:
					break  # another delimiter before a full line: resynchronize
				line = self._line(deadline)
				try:
					obj = json.loads(line.decode('utf-8', 'replace'))
				except ValueError:
					continue
				if isinstance(obj, dict) and obj.get('return') == sid:
					return

	def command(self, name, args, timeout):
		"""Returns the agent's answer object ({'return': ..} or {'error': ..})."""
		deadline = time.monotonic() + timeout
		msg = {'execute': name}
		if args:
			msg['arguments'] = args
		self._send(json.dumps(msg).encode() + b'\n', deadline)
		while True:
			line = self._line(deadline).strip(b'\xff \r\t')
			if not line:
				continue
			try:
				obj = json.loads(line.decode('utf-8', 'replace'))
			except ValueError:
				continue
			if isinstance(obj, dict) and ('return' in obj or 'error' in obj):
				return obj


class Launcher:
	"""Starts long-lived children (qemu, lxc-start, dnsmasq) from one long-lived thread with
	PR_SET_PDEATHSIG=SIGKILL: the signal follows the thread that forked, so a child forked by a
	short-lived task thread would be killed when that thread ends."""

	def __init__(self, name):
		self.q = queue.Queue()
		threading.Thread(target=self._run, daemon=True, name=name).start()

	def _run(self):
		while True:
			fn, box, ev = self.q.get()
			try:
				box['res'] = fn()
			except BaseException as e:
				box['exc'] = e
			ev.set()

	def spawn(self, argv, logf):
		box, ev = {}, threading.Event()

		def fn():
			return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
				preexec_fn=_set_pdeathsig, close_fds=True)
		self.q.put((fn, box, ev))
		ev.wait()
		if 'exc' in box:
			raise box['exc']
		return box['res']


class Guest:
	def __init__(self, vmid, proc, files, agent):
		self.vmid = vmid
		self.proc = proc
		self.files = files
		self.qga = QgaClient(files['qga']) if agent else None


class QemuHypervisor:
	def __init__(self, sim, opts, api_error, task_failed):
		# the simulator's exception classes are passed in: pve_sim runs as __main__, so
		# importing it here would create a second, unrelated copy of them
		self.ApiError = api_error
		self.TaskFailed = task_failed
		self.sim = sim
		self.binary = opts.qemu_binary
		self.kernel = os.path.abspath(opts.qemu_kernel) if opts.qemu_kernel else None
		self.initrd = os.path.abspath(opts.qemu_initrd) if opts.qemu_initrd else None
		self.append = opts.qemu_append
		self.accel = opts.qemu_accel
		self.max_mem = opts.qemu_max_memory
		self.max_smp = opts.qemu_max_cpus
		if shutil.which(self.binary) is None:
			raise SystemExit('--qemu: %s not found' % self.binary)
		for p in (self.kernel, self.initrd):
			if p and not os.path.isfile(p):
				raise SystemExit('--qemu: no such file %s' % p)
		if self.accel == 'auto':
			self.accel = pick_accel(self.binary, self.kernel)
		d = os.path.join(sim.state_dir, 'qemu')
		os.makedirs(d, exist_ok=True)
		self.logdir = d
		# sun_path holds 108 bytes: long state dirs get their sockets in a short private dir
		self.sockdir = d if len(d) + 20 < 100 else tempfile.mkdtemp(prefix='pvesim-q')
		self.guests = {}
		self.lock = threading.Lock()
		self.closed = False
		self.launcher = Launcher('qemu-launcher')
		atexit.register(self.close)

	# -- process handling --------------------------------------------------------------------
	def _spawn(self, argv, logf):
		return self.launcher.spawn(argv, logf)

	def files(self, vmid):
		return {'console': os.path.join(self.logdir, '%d.console.log' % vmid),
			'log': os.path.join(self.logdir, '%d.qemu.log' % vmid),
			'qga': os.path.join(self.sockdir, '%d.qga' % vmid),
			'qmp': os.path.join(self.sockdir, '%d.qmp' % vmid)}

	def agent_enabled(self, conf):
		return bool(re.match(r'^(enabled=)?(1|on|yes|true)(,|$)', str(conf.get('agent', ''))))

	def vol_file(self, volid, node=None):
		path, ctype, _ = self.sim.vol_path(volid, node)
		if not os.path.exists(path):
			raise self.TaskFailed("volume '%s' does not exist" % volid)
		# the volume's format as Proxmox passes it (file storages: from the name); on block
		# storages the file's own format, as thin clones there are qcow2 overlays
		v = self.sim.vol(volid, node)
		if ctype == 'iso':
			fmt = 'raw'
		elif self.sim.is_file(v['st']):
			fmt = v['format']
		else:
			fmt = self.sim.phys_format(path)
		return path, fmt

	def cloudinit_image(self, vm, path):
		"""qs QemuServer/Cloudinit.pm: the cloudinit drive is regenerated at every start."""
		data = self.sim.ci_data(vm)
		tmp = tempfile.mkdtemp(prefix='pvesim-ci-')
		try:
			for name, key in (('user-data', 'user'), ('network-config', 'network'),
					('meta-data', 'meta')):
				with open(os.path.join(tmp, name), 'w') as f:
					f.write(data[key])
			iso = os.path.join(tmp, 'seed.iso')
			tool = shutil.which('xorriso') or shutil.which('genisoimage')
			if tool is None:
				raise self.TaskFailed('cloudinit drive: neither xorriso nor genisoimage found')
			pre = ['xorriso', '-as', 'mkisofs'] if tool.endswith('xorriso') else [tool]
			p = subprocess.run(pre + ['-quiet', '-o', iso, '-V', 'cidata', '-J', '-r',
				os.path.join(tmp, 'user-data'), os.path.join(tmp, 'network-config'),
				os.path.join(tmp, 'meta-data')], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
				text=True)
			if p.returncode:
				raise self.TaskFailed('cloudinit drive: %s' % p.stderr.strip())
			p = subprocess.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O',
				'qcow2' if path.endswith('.qcow2') else 'raw', iso, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
			if p.returncode:
				raise self.TaskFailed('cloudinit drive: %s' % p.stderr.strip())
		finally:
			shutil.rmtree(tmp, ignore_errors=True)

	def firmware(self, vm, q35):
		"""qs OVMF.pm print_ovmf_drive_commandlines (the -drive form qemu-server used before
		QEMU 10's -blockdev): the code read-only in unit 0, the VM's efidisk0 as its NVRAM in
		unit 1 (raw volumes may be larger than the vars: size= says how much is flash); without
		an efidisk0, a fresh copy of the vars template per start, as qemu-server warns."""
		from sim_qemu import ovmf_files
		conf = vm['conf']
		d = self.sim.parse_drive('efidisk0', str(conf['efidisk0'])) if conf.get('efidisk0') \
			else None
		try:
			code, vars_ = ovmf_files(d, q35)
		except Exception as e:
			raise self.TaskFailed(str(getattr(e, 'msg', e)))
		size = os.path.getsize(vars_)
		if d:
			path, fmt = self.vol_file(d['file'], vm.get('node'))
		else:
			path, fmt = os.path.join(self.logdir, '%d-ovmf.fd' % vm['vmid']), 'raw'
			shutil.copyfile(vars_, path)
		var = 'if=pflash,unit=1,id=drive-efidisk0,format=%s,file=%s' % (fmt, qarg(path))
		if fmt == 'raw':
			var += ',size=%d' % size
		return ['-drive', 'if=pflash,unit=0,format=raw,readonly=on,file=' + qarg(code),
			'-drive', var]

	def command_line(self, vm, files):
		"""qemu argv for the VM's config (a subset of qs config_to_command). Devices sit at
		qemu-server's PCI addresses (qs PCI.pm print_pci_addr); q35 gets the PCI bridges of
		pve-q35-4.0.cfg that those addresses name. A tpmstate0 is not emulated (no swtpm)."""
		conf = vm['conf']
		vmid = vm['vmid']
		q35 = self.machine_is_q35(conf)
		# memory is an integer or (PVE 9) a property string 'current=N[,...]'
		mem = min(int(str(conf.get('memory', 512)).split(',')[0].replace('current=', '')),
			self.max_mem)
		cpus = max(1, min(int(conf.get('cores', 1)) * int(conf.get('sockets', 1)), self.max_smp))
		a = [self.binary, '-name', 'vm%d' % vmid, '-machine', 'q35' if q35 else 'pc',
			'-accel', self.accel, '-m', str(mem), '-smp', str(cpus), '-nodefaults', '-display',
			'none'] + (['-cpu', 'host'] if self.accel == 'kvm' else []) + [
			'-serial', 'file:' + files['console'],
			'-qmp', 'unix:%s,server=on,wait=off' % qarg(files['qmp'])]
		if conf.get('bios') == 'ovmf':
			a += self.firmware(vm, q35)
		if q35:
			# usr/pve-q35-4.0.cfg (-readconfig): a DMI-to-PCI bridge on pcie.0 and the PCI
			# bridges pci.0..pci.3 behind it, where print_pci_addr puts the devices
			a += ['-device', 'i82801b11-bridge,id=pcidmi,bus=pcie.0,addr=1e.0']
			for i in range(4):
				a += ['-device', 'pci-bridge,id=pci.%d,bus=pcidmi,addr=%d.0,chassis_nr=%d' % (
					i, i + 1, i + 1)]
		else:
			# qs config_to_command "add pci bridges": pci.1 and pci.2 on pci.0 (2.3+ machines)
			a += ['-device', 'pci-bridge,id=pci.2,chassis_nr=2%s' % pci_addr(31),
				'-device', 'pci-bridge,id=pci.1,chassis_nr=1%s' % pci_addr(30)]
		if self.kernel:
			a += ['-kernel', self.kernel, '-append', self.append]
			if self.initrd:
				a += ['-initrd', self.initrd]
		scsi = False
		ahci = False
		for k in sorted(conf):
			m = re.match(r'^(ide|sata|scsi|virtio)(\d+)$', k)
			if not m:
				continue
			bus, idx = m.group(1), int(m.group(2))
			d = self.sim.parse_drive(k, str(conf[k]))
			f = d['file']
			if f in ('none', 'cdrom') or f.split(':')[0] not in self.sim.storages:
				continue
			cd = d.get('media') == 'cdrom'
			path, fmt = self.vol_file(f, vm.get("node"))
			if cd and re.search(r'-cloudinit(\.qcow2|\.raw)?$', path):
				self.cloudinit_image(vm, path)
			drv = 'file=%s,if=none,id=drive-%s,format=%s' % (qarg(path), k, fmt)
			if cd:
				drv += ',media=cdrom,readonly=on'
			a += ['-drive', drv]
			if bus == 'ide':
				# qs DriveDevice.pm print_drivedevice_full: two units per IDE bus; q35's
				# ICH9 AHCI has six one-unit buses ide.0..5, odd indices move up by 2
				ctl, unit = idx // 2, idx % 2
				if q35:
					ctl, unit = ctl + 2 * unit, 0
				a += ['-device', '%s,bus=ide.%d,unit=%d,drive=drive-%s' % (
					'ide-cd' if cd else 'ide-hd', ctl, unit, k)]
			elif bus == 'sata':
				if not ahci:
					a += ['-device', 'ahci,id=ahci0,multifunction=on,bus=pci.0,addr=0x7']
					ahci = True
				a += ['-device', '%s,bus=ahci0.%d,drive=drive-%s' % (
					'ide-cd' if cd else 'ide-hd', idx, k)]
			elif bus == 'scsi':
				if not scsi:
					a += ['-device', 'virtio-scsi-pci,id=scsihw0,bus=pci.0,addr=0x5']
					scsi = True
				a += ['-device', '%s,bus=scsihw0.0,channel=0,scsi-id=0,lun=%d,drive=drive-%s' % (
					'scsi-cd' if cd else 'scsi-hd', idx, k)]
			else:
				a += ['-device', 'virtio-blk-pci,drive=drive-%s%s' % (k, pci_addr(
					10 + idx if idx < 6 else (2, idx - 5)))]
		for i in range(32):
			net = conf.get('net%d' % i)
			if not net:
				continue
			parts = str(net).split(',')
			model, _, mac = parts[0].partition('=')
			opts = dict(p.split('=', 1) for p in parts[1:] if '=' in p)
			if str(opts.get('link_down', '0')) == '1':
				continue
			# net0..net5 on pci.0 slots 18..23, net6.. on pci.1 from slot 1
			dev = '%s,netdev=net%d,mac=%s%s' % (NET_MODELS.get(model, 'e1000'), i, mac,
				pci_addr(0x12 + i if i < 6 else (1, i - 5)))
			a += ['-netdev', 'user,id=net%d,net=%s' % (i, guest_net(vmid, i)), '-device', dev]
		if self.agent_enabled(conf):
			a += ['-chardev', 'socket,path=%s,server=on,wait=off,id=qga0' % qarg(files['qga']),
				'-device', 'virtio-serial,id=qga0%s' % pci_addr(8), '-device',
				'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0']
		return a

	def machine_is_q35(self, conf):
		from sim_qemu import machine_is_q35
		return machine_is_q35(conf)

	# -- FakeHypervisor interface ------------------------------------------------------------
	def start(self, vm):
		vmid = vm['vmid']
		if self.closed:
			raise self.TaskFailed('simulator is shutting down')
		old = self.guests.get(vmid)
		if old and old.proc.poll() is None:
			raise self.TaskFailed('VM %d already running' % vmid)
		files = self.files(vmid)
		for k in ('qga', 'qmp'):
			try:
				os.unlink(files[k])
			except FileNotFoundError:
				pass
		argv = self.command_line(vm, files)
		open(files['console'], 'w').close()
		with open(files['log'], 'w') as logf:
			logf.write(' '.join(argv) + '\n')
			logf.flush()
			proc = self._spawn(argv, logf)
		g = Guest(vmid, proc, files, self.agent_enabled(vm['conf']))
		with self.lock:
			self.guests[vmid] = g
		# qemu fails fast on a bad command line or an image it cannot open; a booting guest
		# keeps running. 2 s, not less: on a loaded 2-core machine a failing qemu took
		# longer than 0.5 s to exit and its start was reported OK
		try:
			proc.wait(2.0)
		except subprocess.TimeoutExpired:
			pass
		if proc.poll() is not None:
			with self.lock:
				self.guests.pop(vmid, None)
			with open(files['log']) as f:
				tail = f.read().strip().splitlines()[-3:]
			raise self.TaskFailed('start failed: QEMU exited with code %d: %s' % (
				proc.returncode, ' '.join(tail[1:] if len(tail) > 1 else tail)))
		vm['status'] = 'running'
		vm['started'] = time.time()
		vm['pid'] = proc.pid
		vm['agent_up'] = False
		threading.Thread(target=self._reap, args=(vm, g), daemon=True,
			name='reap-%d' % vmid).start()

	def _reap(self, vm, g):
		g.proc.wait()
		with self.sim.lock:
			with self.lock:
				if self.guests.get(g.vmid) is not g:
					return
				self.guests.pop(g.vmid, None)
			if g.qga:
				g.qga.close()
			vm['status'] = 'stopped'
			vm.pop('pid', None)
			vm['agent_up'] = False

	def _kill(self, g, grace=5.0):
		if g.proc.poll() is None:
			g.proc.terminate()
			try:
				g.proc.wait(grace)
			except subprocess.TimeoutExpired:
				g.proc.kill()
				g.proc.wait()
		if g.qga:
			g.qga.close()

	def stop(self, vm):
		with self.lock:
			g = self.guests.pop(vm['vmid'], None)
		if g:
			self._kill(g)
		vm['status'] = 'stopped'
		vm.pop('pid', None)
		vm['agent_up'] = False

	def shutdown(self, vm, timeout=None, force=False):
		"""qs vm_shutdown: guest-shutdown through the agent when configured, else ACPI
		powerdown; after the timeout, SIGTERM with forceStop, else the task fails."""
		g = self.guests.get(vm['vmid'])
		if g is None or g.proc.poll() is not None:
			self.stop(vm)
			return
		timeout = 180 if timeout is None else int(timeout)
		sent = False
		if g.qga:
			with g.qga.lock:
				try:
					g.qga.sync(PING_TIMEOUT)
					g.qga._send(b'{"execute":"guest-shutdown"}\n', time.monotonic() + 2)
					sent = True
				except (AgentTimeout, OSError):
					g.qga.close()
		if not sent:
			self.qmp(g, 'system_powerdown')
		try:
			g.proc.wait(timeout)
		except subprocess.TimeoutExpired:
			if not force:
				raise self.TaskFailed('VM quit/powerdown failed - got timeout')
		self.stop(vm)

	def reboot(self, vm):
		# qs vm_reboot: a shutdown, then a fresh start (new qemu process)
		self.shutdown(vm, force=True)
		self.start(vm)

	def qmp(self, g, command):
		try:
			with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
				s.settimeout(3)
				s.connect(g.files['qmp'])
				f = s.makefile('rwb')
				f.readline()  # greeting
				for cmd in ('qmp_capabilities', command):
					f.write(json.dumps({'execute': cmd}).encode() + b'\n')
					f.flush()
					while True:
						obj = json.loads(f.readline() or b'{}')
						if 'return' in obj or 'error' in obj or not obj:
							break
		except (OSError, ValueError):
			pass

	def agent(self, vm, command, args):
		ApiError = self.ApiError
		vmid = vm['vmid']
		g = self.guests.get(vmid)
		if g is None or g.proc.poll() is not None:
			raise ApiError(500, 'VM %d is not running\n' % vmid)
		if g.qga is None:
			raise ApiError(500, 'No QEMU guest agent configured\n')
		qcmd = {'ping': 'guest-ping', 'network-get-interfaces': 'guest-network-get-interfaces',
			'get-osinfo': 'guest-get-osinfo', 'exec': 'guest-exec',
			'exec-status': 'guest-exec-status'}.get(command)
		if qcmd is None:
			raise ApiError(501, "Method '%s' not implemented\n" % command)
		qargs = None
		if command == 'exec':
			cmd = args.get('command')
			cmd = list(cmd) if isinstance(cmd, list) else [str(cmd)]
			# qs Agent.pm qemu_exec
			qargs = {'path': cmd[0], 'arg': cmd[1:], 'capture-output': True}
			if args.get('input-data') is not None:
				qargs['input-data'] = base64.b64encode(
					str(args['input-data']).encode()).decode()
		elif command == 'exec-status':
			qargs = {'pid': int(args['pid'])}
		with g.qga.lock:
			try:
				g.qga.sync(PING_TIMEOUT)
			except (AgentTimeout, OSError):
				g.qga.close()
				vm['agent_up'] = False
				raise ApiError(500, 'QEMU guest agent is not running\n')
			vm['agent_up'] = True
			try:
				res = g.qga.command(qcmd, qargs, CMD_TIMEOUT)
			except (AgentTimeout, OSError) as e:
				g.qga.close()
				raise ApiError(500, "VM %d qga command '%s' failed - %s\n" % (vmid, qcmd,
					'got timeout' if isinstance(e, AgentTimeout) else e))
		if 'error' in res:
			if command in ('exec', 'exec-status'):
				# qs Agent.pm check_agent_error
				raise ApiError(500, 'Agent error: %s\n' % res['error'].get('desc', ''))
			return {'error': res['error']}
		ret = res['return']
		if command == 'exec-status':
			# qs Agent.pm qemu_exec_status: out-data/err-data come back decoded
			for k in ('out-data', 'err-data'):
				if ret.get(k):
					ret[k] = base64.b64decode(ret[k]).decode('utf-8', 'replace')
			for k in ('exited', 'out-truncated', 'err-truncated'):
				if isinstance(ret.get(k), bool):
					ret[k] = 1 if ret[k] else 0
		return ret

	def console_tail(self, vmid, nbytes=8192):
		path = self.files(vmid)['console']
		try:
			with open(path, 'rb') as f:
				f.seek(0, os.SEEK_END)
				f.seek(max(0, f.tell() - nbytes))
				return f.read().decode('utf-8', 'replace')
		except FileNotFoundError:
			return ''

	def forget(self, vmid):
		with self.lock:
			g = self.guests.pop(vmid, None)
		if g:
			self._kill(g)

	def close(self, final=True):
		"""Ends every guest: at SIGTERM and exit (final: no start afterwards) and reset."""
		if final:
			self.closed = True
		with self.lock:
			gs = list(self.guests.values())
			self.guests.clear()
		for g in gs:
			if g.proc.poll() is None:
				g.proc.terminate()
		for g in gs:
			self._kill(g, grace=3.0)

	def pids(self):
		with self.lock:
			return {vmid: g.proc.pid for vmid, g in self.guests.items() if g.proc.poll() is None}
