"""The guest side: the fake hypervisor (or qemu_hv.QemuHypervisor with --qemu), the guest agent
endpoints, and the cloud-init data a guest would see."""

import hashlib
import random
import re
import time
import urllib.parse

import pve_schema
from sim_common import ApiError, TaskFailed


class FakeHypervisor:
	"""Runs no guest: start/stop only flip state. The agent answers once the control API says
	it is up (/_sim/agent/<vmid>). A real qemu-system backend can replace this class: it gets
	the same calls (start, stop, agent)."""

	def __init__(self, sim):
		self.sim = sim

	def start(self, vm):
		vm['status'] = 'running'
		vm['started'] = time.time()
		vm['pid'] = self.sim.next_pid()

	def stop(self, vm):
		vm['status'] = 'stopped'
		vm.pop('pid', None)
		vm['agent_up'] = False

	def shutdown(self, vm, timeout=None, force=False):
		self.stop(vm)

	def reboot(self, vm):
		pass

	def forget(self, vmid):
		pass

	def close(self, final=True):
		pass

	def console_tail(self, vmid, nbytes=8192):
		return ''

	def agent(self, vm, command, args):
		if not vm.get('agent_up'):
			raise ApiError(500, 'QEMU guest agent is not running\n')
		if command == 'ping':
			return {}
		if command == 'network-get-interfaces':
			return vm.get('agent_ifaces') or self.default_ifaces(vm)
		if command == 'get-osinfo':
			return {'id': 'debian', 'kernel-release': '6.1.0-sim', 'machine': 'x86_64',
				'name': 'Debian GNU/Linux', 'pretty-name': 'Debian GNU/Linux 12 (bookworm)',
				'version': '12 (bookworm)', 'version-id': '12'}
		if command == 'exec':
			pid = random.randint(1000, 30000)
			vm.setdefault('exec', {})[str(pid)] = {'exited': 1, 'exitcode': 0,
				'out-data': vm.get('exec_out', '')}
			return {'pid': pid}
		if command == 'exec-status':
			st = vm.get('exec', {}).get(str(args.get('pid')))
			if st is None:
				raise ApiError(500, "Agent error: Invalid parameter 'pid'\n")
			return st
		raise ApiError(501, "Method '%s' not implemented\n" % command)

	def default_ifaces(self, vm):
		res = [{'name': 'lo', 'hardware-address': '00:00:00:00:00:00', 'ip-addresses': [
			{'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', 'prefix': 8}]}]
		for i in range(32):
			net = vm['conf'].get('net%d' % i)
			if not net:
				continue
			m = re.search(r'=([0-9A-Fa-f:]{17})', net)
			res.append({'name': 'eth%d' % i, 'hardware-address': (m.group(1) if m else '').lower(),
				'ip-addresses': [{'ip-address': '10.0.%d.%d' % (i, vm['vmid'] % 250 + 2),
					'ip-address-type': 'ipv4', 'prefix': 24}]})
		return res


AGENT_READ = ['VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted']
AGENT_ALL = ['VM.GuestAgent.Unrestricted']


class AgentHandlers:
	def make_hypervisor(self, opts):
		if getattr(opts, 'qemu', False):
			from qemu_hv import QemuHypervisor
			return QemuHypervisor(self, opts, ApiError, TaskFailed)
		return FakeHypervisor(self)

	# -- cloud-init ---------------------------------------------------------------------------
	def ci_data(self, vm):
		# qs PVE/QemuServer/Cloudinit.pm cloudinit_userdata / nocloud_network / nocloud_gen_metadata
		conf = vm['conf']
		name = conf.get('name', 'VM%d' % vm['vmid'])
		host = name.split('.')[0]
		fqdn = name if '.' in name else (name + '.' + conf['searchdomain']
			if conf.get('searchdomain') else None)
		u = ['#cloud-config', 'hostname: ' + host, 'manage_etc_hosts: true']
		if fqdn:
			u.append('fqdn: ' + fqdn)
		if conf.get('ciuser'):
			u.append('user: ' + conf['ciuser'])
		if conf.get('cipassword'):
			u.append('password: ' + conf['cipassword'])
		if conf.get('sshkeys'):
			keys = [k for k in urllib.parse.unquote(conf['sshkeys']).split('\n') if k.strip()]
			u.append('ssh_authorized_keys:')
			u += ['  - ' + k for k in keys]
		u += ['chpasswd:', '  expire: False', 'users:', '  - default']
		if str(conf.get('ciupgrade', 1)) != '0':
			u.append('package_upgrade: true')
		user = '\n'.join(u) + '\n'
		n = ['version: 1', 'config:']
		for i in range(32):
			net = conf.get('net%d' % i)
			if not net:
				continue
			mac = re.search(r'=([0-9A-Fa-f:]{17})', net)
			n += ['    - type: physical', '      name: eth%d' % i,
				"      mac_address: '%s'" % (mac.group(1).lower() if mac else ''), '      subnets:']
			ipc = {}
			for part in str(conf.get('ipconfig%d' % i, '')).split(','):
				if '=' in part:
					a, b = part.split('=', 1)
					ipc[a] = b
			ip = ipc.get('ip', 'dhcp' if not ipc.get('ip6') else None)
			if ip == 'dhcp':
				n.append('      - type: dhcp4')
			elif ip:
				n += ['      - type: static', "        address: '%s'" % ip]
				if ipc.get('gw'):
					n.append("        gateway: '%s'" % ipc['gw'])
			if ipc.get('ip6') in ('dhcp', 'auto'):
				n.append('      - type: ' + ('dhcp6' if ipc['ip6'] == 'dhcp' else 'ipv6_slaac'))
			elif ipc.get('ip6'):
				n += ['      - type: static6', "        address: '%s'" % ipc['ip6']]
		if conf.get('nameserver') or conf.get('searchdomain'):
			n.append('    - type: nameserver')
			if conf.get('nameserver'):
				n.append('      address:')
				n += ["      - '%s'" % a for a in pve_schema.split_list(conf['nameserver'])]
			if conf.get('searchdomain'):
				n.append('      search:')
				n += ["      - '%s'" % a for a in pve_schema.split_list(conf['searchdomain'])]
		network = '\n'.join(n) + '\n'
		meta = 'instance-id: %s\n' % hashlib.sha1((user + network).encode()).hexdigest()
		return {'user': user, 'network': network, 'meta': meta}

	def h_get_nodes_node_qemu_vmid_cloudinit_dump(self, r):
		return self.ci_data(self.audited_vm(r))[r.params['type']]

	def h_get_nodes_node_qemu_vmid_cloudinit(self, r):
		vm = self.audited_vm(r)
		res = []
		for k, v in sorted(vm['conf'].items()):
			if re.match(r'^(ci\w+|sshkeys|ipconfig\d+|nameserver|searchdomain)$', k):
				res.append({'key': k, 'value': '**********' if k == 'cipassword' else v})
		return res

	def h_put_nodes_node_qemu_vmid_cloudinit(self, r):
		vm = self.get_vm(r.vmid, r.node)
		self.check(r.authid, '/vms/%d' % vm['vmid'], ['VM.Config.Cloudinit'])
		return None

	# -- agent --------------------------------------------------------------------------------
	def agent_call(self, r, command, privs):
		vm = self.get_vm(r.vmid, r.node)
		vmid = vm['vmid']
		# qs API2/Qemu/Agent.pm: VM.Monitor before qemu-server 9.0.3 (commit b92a40ce),
		# then VM.GuestAgent.Audit or .Unrestricted (reads), .Unrestricted (exec)
		if not self.qs_at_least('9.0.3'):
			privs = ['VM.Monitor']
		self.check(r.authid, '/vms/%d' % vmid, privs, any_of=True)
		# qs PVE/QemuServer/Agent.pm assert_agent_available
		if not re.match(r'^(enabled=)?(1|on|yes|true)(,|$)', str(vm['conf'].get('agent', ''))):
			raise ApiError(500, 'No QEMU guest agent configured\n')
		if vm['status'] != 'running':
			raise ApiError(500, 'VM %d is not running\n' % vmid)
		return {'result': self.hv.agent(vm, command, r.params)}

	def h_post_nodes_node_qemu_vmid_agent_ping(self, r):
		return self.agent_call(r, 'ping', AGENT_READ)

	def h_get_nodes_node_qemu_vmid_agent_network_get_interfaces(self, r):
		return self.agent_call(r, 'network-get-interfaces', AGENT_READ)

	def h_get_nodes_node_qemu_vmid_agent_get_osinfo(self, r):
		return self.agent_call(r, 'get-osinfo', AGENT_READ)

	def h_post_nodes_node_qemu_vmid_agent_exec(self, r):
		return self.agent_call(r, 'exec', AGENT_ALL)['result']

	def h_get_nodes_node_qemu_vmid_agent_exec_status(self, r):
		return self.agent_call(r, 'exec-status', AGENT_ALL)['result']
