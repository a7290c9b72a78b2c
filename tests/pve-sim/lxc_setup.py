#!/usr/bin/env python3
"""The container set-up hooks of pve-container (pc-ct) for the simulator's real container
mode (lxc_hv.py), run inside the container's root file system as pc-ct Setup.pm protected_call
does: the process chroots into the root file system first, so a symlink in the container (say
/etc/resolv.conf -> /run/...) resolves inside it and never reaches the host's files.

Usage (as root): python3 lxc_setup.py ROOTDIR < JSON, where JSON is
  {"hook": "post_create" | "pre_start" | "post_clone", "conf": {the CT config},
   "root_uid": 100000, "root_gid": 100000, "password_hash": "$6$..." or null,
   "ssh_keys": "..." or null, "host_keys": [[path, contents, mode], ...],
   "host_dns": {"search": "...", "dns": ["..."]}}
Prints warnings on stderr; exits 1 with the reason on a failure ("error in setup task").

Implemented: the Debian and Ubuntu plugins (pc-ct Setup/Debian.pm, Setup/Ubuntu.pm on
Setup/Base.pm); another ostype fails, naming it. Not done: randomize_crontab (cron minutes of
root's jobs), the inittab of non-systemd Debian, Ubuntu 12.04-16.04 specifics."""

import json
import os
import re
import sys
import time

HEAD = '# --- BEGIN PVE ---\n'
TAIL = '# --- END PVE ---\n'
SNAKEOIL_UNIT = """[Unit]
Description="Regenerate pre-generated snakeoil certificate and key-pair once"
ConditionPathExists=/etc/ssl/certs/ssl-cert-snakeoil.pem
ConditionFirstBoot=yes
Wants=first-boot-complete.target
Before=first-boot-complete.target

[Service]
Type=oneshot
ExecStart=make-ssl-cert -f generate-default-snakeoil
"""
PLUGINS = {}  # filled below: ostype -> class (pc-ct Setup.pm $plugins)


class Ct:
	"""Base.pm ct_* file wrappers: every file the set-up writes belongs to the container's
	root (ct_reset_ownership) unless a .pve-ignore.<name> file sits beside it."""

	def __init__(self, root_uid, root_gid):
		self.uid = root_uid
		self.gid = root_gid

	def ignored(self, path):
		d, name = os.path.split(path)
		return os.path.isfile(os.path.join(d or '/', '.pve-ignore.' + name))

	def reset_ownership(self, path):
		if self.uid or self.gid:
			os.lchown(path, self.uid, self.gid)

	def exists(self, path):
		return os.path.exists(path)

	def read(self, path):
		with open(path, errors='surrogateescape') as f:
			return f.read()

	def firstline(self, path):
		try:
			with open(path, errors='surrogateescape') as f:
				line = f.readline()
		except OSError:
			return None
		return line.rstrip('\n') if line else None

	def set_contents(self, path, data, perms=None):
		# pve-common Tools.pm file_set_contents: a temporary file renamed over the old one,
		# mode 0644 unless given
		if self.ignored(path):
			return
		tmp = '%s.tmp.%d' % (path, os.getpid())
		fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
		with os.fdopen(fd, 'w', errors='surrogateescape') as f:
			f.write(data)
		os.chmod(tmp, 0o644 if perms is None else perms)
		os.rename(tmp, path)
		self.reset_ownership(path)

	def unlink(self, path):
		if not self.ignored(path):
			try:
				os.unlink(path)
			except FileNotFoundError:
				pass

	def mkdir(self, path, mode):
		os.mkdir(path, mode)
		self.reset_ownership(path)

	def make_path(self, path):
		parts = path.strip('/').split('/')
		cur = ''
		for p in parts:
			cur += '/' + p
			if not os.path.isdir(cur):
				self.mkdir(cur, 0o755)

	def symlink(self, target, path):
		if self.ignored(path):
			return
		self.unlink(path)
		os.symlink(target, path)
		self.reset_ownership(path)

	def modify_file(self, path, data, replace=False, perms=None):
		"""Base.pm ct_modify_file: the part between the PVE markers is ours."""
		if self.ignored(path):
			return
		if data and not data.endswith('\n'):
			data += '\n'
		if not self.exists(path):
			if data:
				self.set_contents(path, HEAD + data + TAIL, perms)
			return
		lines = self.read(path).split('\n')
		if lines and lines[-1] == '':
			lines.pop()
		beg = end = None
		for i, line in enumerate(lines):
			if beg is None and re.match(r'^#\s*---\s*BEGIN\s*PVE\s*', line):
				beg = i
			elif beg is not None and end is None and re.match(r'^#\s*---\s*END\s*PVE\s*', line,
					re.I):
				end = i
				break
		if beg is not None and end is not None:
			lines[beg:end + 1] = [HEAD + data + TAIL.rstrip('\n')]
			self.set_contents(path, '\n'.join(lines) + '\n')
		elif data:
			content = '\n'.join(lines).rstrip('\n') + '\n'
			new = HEAD + data + TAIL
			self.set_contents(path, new if replace else content + new, perms)


def remove_pve_sections(data):
	return re.sub(r'^[ \t]*# --- BEGIN PVE ---.*^[ \t]*# --- END PVE ---.*?$', '', data,
		flags=re.M | re.S)


def parse_net(value):
	"""pc-ct LXC/Config.pm parse_lxc_network (the keys the set-up reads)."""
	d = {}
	for part in str(value).split(','):
		k, _, v = part.partition('=')
		d[k] = v
	return d


def cidr_netmask(bits):
	n = (0xffffffff << (32 - bits)) & 0xffffffff
	return '.'.join(str((n >> s) & 255) for s in (24, 16, 8, 0))


def ip_in_cidr(ip, cidr):
	addr, _, bits = cidr.partition('/')

	def num(a):
		return int.from_bytes(bytes(int(x) for x in a.split('.')), 'big')
	try:
		mask = (0xffffffff << (32 - int(bits))) & 0xffffffff
		return num(ip) & mask == num(addr) & mask
	except ValueError:
		return False


class Debian:
	"""pc-ct Setup/Debian.pm on top of Setup/Base.pm."""

	def __init__(self, ct, conf, host_dns):
		self.ct = ct
		self.conf = conf
		self.host_dns = host_dns
		version = ct.firstline('/etc/debian_version')
		if version is None:
			raise SystemExit('unable to read version info')
		version = {'bookworm/sid': '12', 'trixie/sid': '13', 'forky/sid': '14'}.get(version,
			version)
		m = re.match(r'^(\d+)', version)
		if not m:
			raise SystemExit("unable to parse version info '%s'" % version)
		self.version = int(m.group(1))

	# -- Base.pm ------------------------------------------------------------------------------
	def uses_systemd(self):
		return any(os.access(p, os.X_OK) for p in ('/lib/systemd/systemd',
			'/usr/lib/systemd/systemd'))

	def clear_machine_id(self, clone):
		dbus = '/var/lib/dbus/machine-id'
		existed = self.ct.exists('/etc/machine-id')
		if self.ct.exists(dbus) and not os.path.islink(dbus) and self.uses_systemd():
			self.ct.unlink(dbus)
		if existed:
			if clone:
				# truncated on clone, so no ConditionFirstBoot in the clone
				old = self.ct.firstline('/etc/machine-id') or ''
				if self.uses_systemd() and old != 'uninitialized':
					self.ct.set_contents('/etc/machine-id', '\n')
			else:
				self.ct.unlink('/etc/machine-id')

	def set_user_password(self, user, password_hash):
		if not self.ct.exists('/etc/passwd'):
			return
		epw = password_hash or '*'  # no password: a locked account
		if self.ct.exists('/etc/shadow'):
			self.replacepw('/etc/shadow', user, epw, True)
			self.replacepw('/etc/passwd', user, 'x', False)
		else:
			self.replacepw('/etc/passwd', user, epw, False)

	def replacepw(self, path, user, epw, shadow):
		st = os.stat(path)
		last_change = int(time.time() / 86400)
		out = []
		for line in self.ct.read(path).splitlines(True):
			if shadow:
				line = re.sub(r'^%s:[^:]*:[^:]*:' % re.escape(user), lambda m: '%s:%s:%d:' % (
					user, epw, last_change), line)
			else:
				line = re.sub(r'^%s:[^:]*:' % re.escape(user), lambda m: '%s:%s:' % (user, epw),
					line)
			out.append(line)
		tmp = '%s.%d' % (path, os.getpid())
		with open(tmp, 'w', errors='surrogateescape') as f:
			f.write(''.join(out))
		os.chmod(tmp, st.st_mode & 0o7777)
		os.chown(tmp, st.st_uid, st.st_gid)
		os.rename(tmp, path)

	def set_user_authorized_ssh_keys(self, user, keys):
		home = '/root/' if user == 'root' else '/home/%s/' % user
		if self.ct.exists('/etc/passwd'):
			for line in self.ct.read('/etc/passwd').splitlines():
				f = line.split(':')
				if len(f) >= 6 and f[0] == user:
					home = f[5]
		if not os.path.isdir(home):
			raise SystemExit("home directory '%s' of %s does not exist!" % (home, user))
		if not os.path.isdir(home + '/.ssh'):
			self.ct.mkdir(home + '/.ssh', 0o700)
		self.ct.modify_file(home + '/.ssh/authorized_keys', keys, perms=0o700)

	def setup_systemd_preset(self, extra):
		preset = {'sys-kernel-config.mount': 0, 'sys-kernel-debug.mount': 0,
			'getty@.service': 0, 'container-getty@.service': 1}
		preset.update(extra)
		data = '# Added by PVE at create-time for first-boot configuration.\n'
		for svc in sorted(preset):
			data += '%s %s\n' % ('enable' if preset[svc] else 'disable', svc)
		self.ct.make_path('/etc/systemd/system-preset')
		self.ct.set_contents('/etc/systemd/system-preset/00-pve.preset', data)

	def setup_container_getty_service(self):
		sd_dir = '/lib/systemd/system' if os.access('/lib/systemd/systemd', os.X_OK) else \
			'/usr/lib/systemd/system'
		template = '%s/container-getty@.service' % sd_dir
		instance = 'container-getty@'
		if not self.ct.exists(template):
			template = 'getty@.service'
			instance = '{getty@}tty'  # sic, Base.pm
			if not self.ct.exists(template):
				return
		raw = self.ct.read(template)
		new = re.sub(r'pts/%I|lxc/tty%I', 'tty%I', raw)  # devttydir: '' on Debian
		if new != raw:
			self.ct.set_contents(template, new)
		wants = '/etc/systemd/system/getty.target.wants/'
		ttycount = int(self.conf.get('tty', 2))  # get_tty_count: cmode console/shell aside
		for i in range(1, 7):
			self.ct.unlink('%s/getty@tty%d.service' % (wants, i))
			self.ct.unlink('%s/container-getty@%d.service' % (wants, i))
			if i <= ttycount and os.path.isdir(wants):
				self.ct.symlink(template, '%s/%s%d.service' % (wants, instance, i))
		self.ct.unlink('/etc/systemd/system/getty.target')

	def lookup_dns_conf(self):
		ns = self.conf.get('nameserver')
		search = self.conf.get('searchdomain')
		if ns is None:
			ns = ' '.join(self.host_dns.get('dns', [])[:3])
		if search is None:
			search = self.host_dns.get('search')
		return search, ns

	def set_dns(self):
		search, ns = self.lookup_dns_conf()
		data = ''
		if search:
			data += 'search %s\n' % ' '.join(re.split(r'[ ,;]+', search.strip()))
		for n in re.split(r'[ ,;]+', (ns or '').strip()):
			if n:
				data += 'nameserver %s\n' % n
		self.ct.modify_file('/etc/resolv.conf', data, replace=True)

	def primary_ips(self):
		# LXC.pm get_primary_ips: net0's static addresses
		d = parse_net(self.conf.get('net0', ''))
		ip4 = d.get('ip')
		ip6 = d.get('ip6')
		ip4 = ip4.split('/')[0] if ip4 and ip4 not in ('dhcp', 'manual') else None
		ip6 = ip6.split('/')[0] if ip6 and ip6 not in ('dhcp', 'auto', 'manual') else None
		return ip4, ip6

	def set_hostname(self):
		hostname = self.conf.get('hostname') or 'localhost'
		namepart = hostname.split('.')[0]
		ip4, ip6 = self.primary_ips()
		search, _ = self.lookup_dns_conf()
		self.update_etc_hosts(ip4 or ip6, hostname, search)
		self.ct.set_contents('/etc/hostname', namepart + '\n')

	def update_etc_hosts(self, hostip, newname, search):
		fn = '/etc/hosts'
		if self.ct.ignored(fn):
			return
		namepart = newname.split('.')[0]
		if '.' in newname:
			names = '%s %s' % (newname, namepart)
		else:
			names = ' '.join(['%s.%s' % (newname, d) for d in re.split(r'[ ,;]+',
				(search or '').strip()) if d] + [newname])
		lo4 = '127.0.0.1 localhost.localnet localhost\n'
		lo6 = '::1 localhost.localnet localhost\n'
		section = ''
		if self.ct.exists(fn):
			data = remove_pve_sections(self.ct.read(fn))
			if not re.search(r'^[ \t]*127\.0\.0\.1[ \t]+', data, re.M):
				section += lo4
			if not re.search(r'^[ \t]*::1[ \t]+', data, re.M):
				section += lo6
		else:
			section = lo4 + lo6
		if hostip:
			section += '%s %s\n' % (hostip, names)
		elif namepart != 'localhost':
			section += '127.0.1.1 %s\n' % names
		else:
			section += '127.0.1.1 %s\n' % namepart
		self.ct.modify_file(fn, section)

	def set_timezone(self):
		tz = self.conf.get('timezone')
		if not tz:
			return
		path = '/usr/share/zoneinfo/%s' % tz
		if tz == 'host' or not self.ct.exists(path):
			print("container does not have %s, timezone can not be modified" % path,
				file=sys.stderr)
			return
		if os.path.realpath('/etc/localtime') != path:
			self.ct.symlink(path, '/etc/localtime')
		if self.ct.exists('/etc/timezone'):
			self.ct.set_contents('/etc/timezone', tz + '\n')

	# -- Debian.pm ----------------------------------------------------------------------------
	def setup_init(self):
		init = os.path.realpath('/sbin/init') if os.path.islink('/sbin/init') else None
		if init and init.endswith('/systemd'):
			self.setup_container_getty_service()
			if self.version >= 12:
				# first boot only (no /etc/machine-id): Debian uses ifupdown
				self.setup_systemd_preset({'systemd-networkd.service': 0})
		# setup_inittab: no /etc/inittab in a systemd Debian

	def networks(self):
		nets = {}
		for k in sorted(self.conf):
			if not re.match(r'^net\d+$', k):
				continue
			d = parse_net(self.conf[k])
			if not d.get('name'):
				continue
			n = {}
			ip = d.get('ip')
			if ip:
				if ip in ('dhcp', 'manual'):
					n['address'] = ip
				else:
					n['address'] = ip.split('/')[0]
					n['netmask'] = cidr_netmask(int(ip.split('/')[1]))
					n['cidr'] = ip
			if d.get('gw'):
				n['gateway'] = d['gw']
				if n.get('cidr') and not ip_in_cidr(d['gw'], n['cidr']):
					n['needsroute'] = True
			ip6 = d.get('ip6')
			if ip6:
				if ip6 in ('auto', 'dhcp', 'manual'):
					n['address6'] = ip6
				else:
					n['address6'], _, n['netmask6'] = ip6.partition('/')
					n['cidr6'] = ip6
			if d.get('gw6'):
				n['gateway6'] = d['gw6']
			if n:
				nets[d['name']] = n
		return nets

	def section(self, ifname, net, family, attrs):
		"""Debian.pm setup_network $print_section for one family (Debian >= 10: 'address
		CIDR')."""
		v6 = family == 'ipv6'
		addr = net.get('address6' if v6 else 'address')
		if addr is None:
			return ''
		inet = 'inet6' if v6 else 'inet'
		if addr in ('auto', 'dhcp', 'manual'):
			return 'iface %s %s %s\n\n' % (ifname, inet, addr)
		out = 'iface %s %s static\n' % (ifname, inet)
		out += '\taddress %s\n' % net['cidr6' if v6 else 'cidr']
		attrs = strip_gateway_scripts(attrs)
		gw = net.get('gateway6' if v6 else 'gateway')
		if gw:
			if net.get('needsroute6' if v6 else 'needsroute'):
				out += ('# --- BEGIN PVE ---\n\tpost-up ip route add {gw} dev {i}\n\tpost-up ip '
					'route add default via {gw} dev {i}\n\tpre-down ip route del default via {gw} '
					'dev {i}\n\tpre-down ip route del {gw} dev {i}\n# --- END PVE ---\n').format(
					gw=gw, i=ifname)
			else:
				out += '\tgateway %s\n' % gw
		for a in attrs:
			out += '\t%s\n' % a
		return out + '\n'

	def setup_network(self):
		"""Debian.pm setup_network: /etc/network/interfaces with our sections for each netN
		that has a name; every other line of the old file is kept."""
		nets = self.networks()
		if not nets:
			return
		fn = '/etc/network/interfaces'
		out = ''
		auto_done = set()
		done = {'ipv4': set(), 'ipv6': set()}
		sec = [None]

		def flush():
			s = sec[0]
			if not s:
				return ''
			sec[0] = None
			res = ''
			if s['ifname'] not in auto_done:
				res += 'auto %s\n' % s['ifname']
				auto_done.add(s['ifname'])
			done[s['type']].add(s['ifname'])
			return res + self.section(s['ifname'], nets[s['ifname']], s['type'], s['attr'])

		if self.ct.exists(fn):
			lines = self.ct.read(fn).split('\n')
			if lines[-1] == '':
				lines.pop()  # the Perl reads lines
			for line in lines:
				if re.match(r'^# --- (?:BEGIN|END) PVE ---', line):
					if sec[0]:
						sec[0]['attr'].append(line)
					continue
				if line.startswith('#'):
					out += line + '\n'
					continue
				if not line.strip():
					if sec[0]:
						out += flush()
					else:
						out += line + '\n'
					continue
				m = re.match(r'^\s*iface\s+(\S+)\s+(inet6?)\s+(\S+)\s*$', line)
				if m:
					out += flush()
					if m.group(1) not in nets:
						out += line + '\n'
						continue
					sec[0] = {'type': 'ipv6' if m.group(2) == 'inet6' else 'ipv4',
						'ifname': m.group(1), 'attr': []}
					continue
				m = re.match(r'^\s*auto\s*(.*)$', line)
				if m:
					auto_done.update(m.group(1).split())
					out += flush() + line + '\n'
					continue
				if re.match(r'^\s*(?:mapping\s|allow-|source\s|source-directory\s)', line):
					out += flush() + line + '\n'
					continue
				m = re.match(r'^\s*((\S+)\s(.*))$', line)
				if sec[0] and m:
					if m.group(2) not in ('address', 'netmask', 'gateway', 'broadcast'):
						sec[0]['attr'].append(m.group(1))
					continue
				out += line + '\n'
			out += flush()
		need_sep = bool(out) and not out.endswith('\n\n')
		for ifname in sorted(nets):
			net = nets[ifname]
			for fam, key in (('ipv4', 'address'), ('ipv6', 'address6')):
				if ifname in done[fam] or net.get(key) is None:
					continue
				if need_sep:
					out += '\n'
					need_sep = False
				if ifname not in auto_done:
					out += 'auto %s\n' % ifname
					auto_done.add(ifname)
				out += self.section(ifname, net, fam, [])
		if 'lo' not in auto_done:
			# older templates (< Debian 8) do not configure the loopback interface
			out = 'auto lo\niface lo inet loopback\niface lo inet6 loopback\n\n' + out
		self.ct.make_path('/etc/network')
		self.ct.set_contents(fn, out)

	# -- the hooks (Base.pm) ------------------------------------------------------------------
	def pre_start_hook(self):
		self.ct.set_contents('/fastboot', '')  # skips fsck, among other things
		self.setup_init()
		self.setup_network()
		self.set_hostname()
		self.set_dns()
		self.set_timezone()

	def snakeoil_fixup(self):
		"""Debian.pm snakeoil_fixup: a pre-generated ssl-cert key is removed and regenerated
		at first boot."""
		key = '/etc/ssl/private/ssl-cert-snakeoil.key'
		if not self.ct.exists(key):
			return
		init = os.path.realpath('/sbin/init') if os.path.islink('/sbin/init') else ''
		if init.endswith('/systemd'):
			unit = 'proxmox-regenerate-snakeoil.service'
			self.ct.set_contents('/etc/systemd/system/' + unit, SNAKEOIL_UNIT)
			self.ct.make_path('/etc/systemd/system/first-boot-complete.target.wants')
			self.ct.symlink('/etc/systemd/system/' + unit,
				'/etc/systemd/system/first-boot-complete.target.wants/' + unit)
		else:
			print('Template contains pre-generated snakeoil certificate!', file=sys.stderr)
		self.ct.unlink(key)

	def template_fixup(self):
		pass

	def post_create_hook(self, password_hash, ssh_keys):
		self.clear_machine_id(False)
		self.snakeoil_fixup()
		self.template_fixup()
		self.set_user_password('root', password_hash)
		if ssh_keys:
			self.set_user_authorized_ssh_keys('root', ssh_keys)
		self.setup_init()
		self.setup_network()
		self.set_hostname()
		self.set_dns()
		self.set_timezone()

	def post_clone_hook(self):
		self.clear_machine_id(True)


class Ubuntu(Debian):
	"""pc-ct Setup/Ubuntu.pm: Debian's plugin, but 17.10 and newer are configured through
	systemd-networkd (Base.pm setup_systemd_networkd), which is enabled on first boot from
	23.04 on."""

	def __init__(self, ct, conf, host_dns):
		self.ct = ct
		self.conf = conf
		self.host_dns = host_dns
		lsb = ct.read('/etc/lsb-release') if ct.exists('/etc/lsb-release') else ''
		if not re.search(r'^DISTRIB_ID=Ubuntu$', lsb, re.M | re.I):
			raise SystemExit('got unknown DISTRIB_ID')
		m = re.search(r'^DISTRIB_RELEASE=(\d+\.\d+)$', lsb, re.M | re.I)
		if not m:
			raise SystemExit('unable to read version info')
		self.version = float(m.group(1))  # the Perl compares them as numbers too
		if self.version < 17:
			raise SystemExit("unsupported ancient Ubuntu version '%s'" % m.group(1))

	def template_fixup(self):
		if 17.10 <= self.version < 23.04:
			for d in ('multi-user.target.wants', 'socket.target.wants'):
				if not os.path.isdir('/etc/systemd/system/' + d):
					self.ct.mkdir('/etc/systemd/system/' + d, 0o755)
			self.ct.symlink('/lib/systemd/system/systemd-networkd.service',
				'/etc/systemd/system/multi-user.target.wants/systemd-networkd.service')
			self.ct.symlink('/lib/systemd/system/systemd-networkd.socket',
				'/etc/systemd/system/socket.target.wants/systemd-networkd.socket')
		if self.version >= 17.10:
			self.ct.unlink('/etc/netplan/10-lxc.yaml')

	def setup_init(self):
		if self.version >= 23.04:
			self.setup_systemd_preset({'systemd-networkd.service': 1})
		if self.version >= 16.10:
			self.setup_container_getty_service()

	def setup_network(self):
		if self.version < 17.10:
			return Debian.setup_network(self)
		# Base.pm setup_systemd_networkd: /etc/systemd/network/<name>.network per netN
		for k in sorted(self.conf):
			if not re.match(r'^net\d+$', k):
				continue
			d = parse_net(self.conf[k])
			if not d.get('name'):
				continue
			data = ('[Match]\nName = {n}\n\n[Network]\nDescription = Interface {n} '
				'autoconfigured by PVE\n').format(n=d['name'])
			routes = ''
			dhcp = 0
			accept_ra = 'false'
			ip = d.get('ip')
			if ip == 'dhcp':
				dhcp |= 1
			elif ip and ip != 'manual':
				data += 'Address = %s\n' % ip
			if d.get('gw'):
				data += 'Gateway = %s\n' % d['gw']
				if ip and ip not in ('dhcp', 'manual') and not ip_in_cidr(d['gw'], ip):
					routes += '\n[Route]\nDestination = %s/32\nScope = link\n' % d['gw']
			ip6 = d.get('ip6')
			if ip6 == 'dhcp':
				dhcp |= 2
				accept_ra = 'true'
			elif ip6 == 'auto':
				accept_ra = 'true'
			elif ip6 and ip6 != 'manual':
				data += 'Address = %s\n' % ip6
			if d.get('gw6'):
				accept_ra = 'false'
				data += 'Gateway = %s\n' % d['gw6']
			data += 'DHCP = %s\n' % ('no', 'ipv4', 'ipv6', 'yes')[dhcp]
			data += 'IPv6AcceptRA = %s\n' % accept_ra
			data += routes
			self.ct.make_path('/etc/systemd/network')
			self.ct.set_contents('/etc/systemd/network/%s.network' % d['name'], data)


def strip_gateway_scripts(attrs):
	"""Debian.pm remove_gateway_scripts: drop the marked routing section."""
	res = []
	keep = True
	for a in attrs:
		if a == '# --- BEGIN PVE ---':
			keep = False
		elif a == '# --- END PVE ---':
			keep = True
		elif keep:
			res.append(a)
	return res


PLUGINS.update(debian=Debian, ubuntu=Ubuntu)


def main():
	root = sys.argv[1]
	req = json.load(sys.stdin)
	conf = req['conf']
	ostype = conf.get('ostype', 'debian')
	os.chroot(root)
	os.chdir('/')
	ct = Ct(req.get('root_uid', 0), req.get('root_gid', 0))
	if ostype not in PLUGINS:
		raise SystemExit("the simulator's real container mode implements the set-up of %s, "
			"not '%s'" % (' and '.join(sorted(PLUGINS)), ostype))
	plugin = PLUGINS[ostype](ct, conf, req.get('host_dns') or {})
	hook = req['hook']
	if hook == 'post_create':
		plugin.post_create_hook(req.get('password_hash'), req.get('ssh_keys'))
		if os.path.isdir('/etc/ssh'):
			# Setup.pm rewrite_ssh_host_keys: made on the host, written here at once
			for path, data, mode in req.get('host_keys') or []:
				ct.set_contents(path, data, mode)
	elif hook == 'pre_start':
		plugin.pre_start_hook()
	elif hook == 'post_clone':
		plugin.post_clone_hook()
	else:
		raise SystemExit('unknown hook %s' % hook)


if __name__ == '__main__':
	main()
