"""Parameter validation the way Proxmox VE does it.

A port of the checks in pve-common src/PVE/JSONSchema.pm (check_prop, check_type,
check_format, parse_property_string, check_object) driven by tests/pve-sim/schema.json.
Error texts are the Perl ones, because clients (and our orchestrator) show them to users
and tests compare them. Verifier formats (functions in Perl) are re-implemented below
with the regex and message of the Perl sub named in schema.json's $formats.
"""

import ipaddress
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# Index ranges of the "name[n]" options (from the option descriptions in qemu-server).
INDEX_MAX = {
	'scsi': 30, 'virtio': 15, 'sata': 5, 'ide': 3, 'net': 31, 'ipconfig': 31,
	'unused': 255, 'serial': 3, 'parallel': 2, 'hostpci': 15, 'usb': 14, 'numa': 7,
	'virtiofs': 9, 'mp': 255,
}


class FormatError(Exception):
	"""A die() inside a format check; str() is the Perl message (usually ends in \\n)."""


def load_schema(path=None):
	with open(path or os.path.join(HERE, 'schema.json')) as f:
		return json.load(f)


def perl_re(pattern):
	# Stringified Perl regex objects look like (?^:...) or (?^i:...).
	return re.sub(r'\(\?\^([a-z]*):', lambda m: '(?%s:' % m.group(1) if m.group(1) else '(?:',
		pattern)


def split_list(text):
	# PVE::Tools::split_list
	return [x for x in re.split(r'[\s,;\0]+', text.strip()) if x != '']


def is_number(v):
	return re.match(r'^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$', v) is not None


def is_integer(v):
	return re.match(r'^[+-]?\d+$', v) is not None


def add_error(errors, path, msg):
	path = path or '_root'
	if path in errors:
		errors[path] = errors[path] + '\\n' + msg  # Perl joins with a literal '\n'
	else:
		errors[path] = msg


def _ipv4(v):
	try:
		ipaddress.IPv4Address(v)
		return True
	except ValueError:
		return False


def _ipv6(v):
	try:
		ipaddress.IPv6Address(v)
		return True
	except ValueError:
		return False


def _cidr(v, ver):
	m = re.match(r'^(.+)/(\d+)$', v)
	if not m:
		return False
	bits = int(m.group(2))
	if ver == 4:
		return _ipv4(m.group(1)) and 7 < bits <= 32
	return _ipv6(m.group(1)) and 7 < bits <= 128


def _re_verifier(regex, msg, flags=0):
	def check(v):
		if not re.search(regex, v, flags):
			raise FormatError(msg.format(v=v))
		return v
	return check


def _verify_cidr(v):
	if not (_cidr(v, 4) or _cidr(v, 6)):
		raise FormatError('value does not look like a valid CIDR network\n')
	return v


def _verify_ipv4_config(v):
	if v in ('dhcp', 'manual') or _cidr(v, 4):
		return v
	raise FormatError('value does not look like a valid ipv4 network configuration\n')


def _verify_ipv6_config(v):
	if v in ('auto', 'dhcp', 'manual') or _cidr(v, 6):
		return v
	raise FormatError('value does not look like a valid ipv6 network configuration\n')


def _verify_ipv4(v):
	if not _ipv4(v):
		raise FormatError('value does not look like a valid IPv4 address\n')
	return v


def _verify_ipv6(v):
	if not _ipv6(v):
		raise FormatError('value does not look like a valid IPv6 address\n')
	return v


DNS_RE = r'^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$'


def _verify_address(v):
	if not (_ipv4(v) or _ipv6(v) or re.search(DNS_RE, v)):
		raise FormatError('value does not look like a valid address: %s\n' % v)
	return v


def _verify_disk_size(v):
	if parse_size(v) is None:
		raise FormatError('value does not look like a valid disk size: %s\n' % v)
	return v


def _verify_volume_id(v):
	# PVE::Storage::Plugin::parse_volume_id
	if not re.search(r'^([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)$', v, re.I):
		raise FormatError("unable to parse volume ID '%s'\n" % v)
	return v


def _verify_volume_id_or_abs(v):
	# qemu-server PVE/QemuServer.pm verify_volume_id_or_absolute_path
	if v.startswith('/'):
		return v
	return _verify_volume_id(v)


def _verify_volume_id_or_qm_path(v):
	# qemu-server PVE/QemuServer.pm verify_volume_id_or_qm_path
	if v in ('none', 'cdrom') or v.startswith('/'):
		return v
	return _verify_volume_id(v)


DRIVE_NAME_RE = r'^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|efidisk0|tpmstate0)$'


def _verify_bootdev(v):
	# qemu-server PVE/QemuServer.pm verify_bootdev
	if re.search(DRIVE_NAME_RE, v) and not v.startswith(('efidisk', 'tpmstate')):
		return v
	m = re.match(r'^(net|usb|hostpci)(\d+)$', v)
	if m and int(m.group(2)) <= INDEX_MAX[m.group(1)]:
		return v
	raise FormatError("invalid boot device '%s'\n" % v)


def _verify_bootdisk(v):
	# qemu-server PVE/QemuServer/Drive.pm verify_bootdisk
	if re.search(DRIVE_NAME_RE, v) and not v.startswith(('efidisk', 'tpmstate')):
		return v
	raise FormatError('value does not look like a valid bootdisk name\n')


def _verify_hotplug(v):
	if v in ('0', '1'):
		return v
	for f in split_list(v):
		if f not in ('network', 'disk', 'cpu', 'memory', 'usb', 'cloudinit'):
			raise FormatError("invalid hotplug feature '%s'\n" % f)
	return v


def _verify_cpuset(v):
	for part in v.split(','):
		if not re.match(r'^\d+(-\d+)?$', part):
			raise FormatError("invalid format - invalid cpuset '%s'\n" % v)
	return v


def _verify_startup(v):
	for p in v.split(','):
		if re.match(r'^\s*$', p):
			continue
		if not re.match(r'^((order=)?\d+|up=\d+|down=\d+)$', p):
			raise FormatError('unable to parse startup options\n')
	return v


def _verify_content(v):
	if v not in ('images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import', 'none'):
		raise FormatError("invalid content type '%s'\n" % v)
	return v


def _verify_storagepair(v):
	for part in [v]:
		m = re.match(r'^([^:]+):([^:]+)$', part)
		ids = [m.group(1), m.group(2)] if m else ([] if part == '1' else [part])
		for i in ids:
			if not re.search(r'^[a-z][a-z0-9\-\_\.]*[a-z0-9]$', i, re.I):
				raise FormatError("entry '%s' contains invalid ID - storage ID '%s' contains "
					"illegal characters\n\n" % (part, i))
	return v


def _verify_phys_bits(v):
	if v == 'host' or (re.match(r'^\d+$', v) and 8 <= int(v) <= 64):
		return v
	raise FormatError("invalid phys-bits '%s'\n" % v)


def _verify_lxc_mp_string(v):
	# pve-container PVE/LXC/Config.pm verify_lxc_mp_string
	if re.search(r'/\.\.?/', v) or re.search(r'/\.\.?$', v) or v.startswith('../'):
		raise FormatError('%s contains illegal character sequences\n' % v)
	return v


def _verify_lxc_dev_string(v):
	# pve-container PVE/LXC/Config.pm verify_lxc_dev_string
	if re.search(r'/\.\.?(?:/|$)', v) or not v.startswith('/dev/'):
		raise FormatError('%s is not a valid device path\n' % v)
	return v


VERIFIERS = {
	'urlencoded': _re_verifier(r"^[-%a-zA-Z0-9_.!~*'()]*$", 'invalid urlencoded string: {v}\n'),
	'pve-configid': _re_verifier(r'^[a-z][a-z0-9_-]+$', "invalid configuration ID '{v}'\n", re.I),
	'pve-storage-id': _re_verifier(r'^[a-z][a-z0-9\-\_\.]*[a-z0-9]$',
		"storage ID '{v}' contains illegal characters\n", re.I),
	'pve-bridge-id': _re_verifier(r'^[-_.\w\d]+$', "invalid bridge ID '{v}'\n"),
	'pve-vmid': _re_verifier(r'^[1-9][0-9]{2,8}$', 'value does not look like a valid VM ID\n'),
	'pve-node': _re_verifier(r'^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$',
		'value does not look like a valid node name\n'),
	'mac-addr': _re_verifier(r'^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$',
		'value does not look like a valid unicast MAC address\n', re.I),
	'ipv4': _verify_ipv4,
	'ipv6': _verify_ipv6,
	'CIDR': _verify_cidr,
	'pve-ipv4-config': _verify_ipv4_config,
	'pve-ipv6-config': _verify_ipv6_config,
	'dns-name': _re_verifier(DNS_RE, 'value does not look like a valid DNS name\n'),
	'address': _verify_address,
	'disk-size': _verify_disk_size,
	'pve-tag': _re_verifier(r'^[a-z0-9_][a-z0-9_\-\+\.]*$', 'invalid characters in tag\n', re.I),
	'pve-volume-id': _verify_volume_id,
	'pve-volume-id-or-absolute-path': _verify_volume_id_or_abs,
	'pve-volume-id-or-qm-path': _verify_volume_id_or_qm_path,
	'pve-qm-bootdev': _verify_bootdev,
	'pve-qm-bootdisk': _verify_bootdisk,
	'pve-hotplug-features': _verify_hotplug,
	'pve-cpuset': _verify_cpuset,
	'pve-startup-order': _verify_startup,
	'pve-storage-content': _verify_content,
	'storage-pair': _verify_storagepair,
	'pve-phys-bits': _verify_phys_bits,
	'pve-poolid': _re_verifier(r'^[A-Za-z0-9\.\-_]+(?:/[A-Za-z0-9\.\-_]+){0,2}$',
		"invalid pool ID '{v}'\n"),
	'pve-realm': _re_verifier(r'^[A-Za-z][A-Za-z0-9\.\-_]+$', "realm ID '{v}' contains illegal characters\n"),
	'pve-priv': _re_verifier(r'^[A-Za-z][A-Za-z0-9.]*$', "invalid privilege name '{v}'\n"),
	'pve-task-status-type': _re_verifier(r'^(ok|error|warning|unknown)$', "invalid status '{v}'\n", re.I),
	'pve-lxc-mp-string': _verify_lxc_mp_string,
	'pve-lxc-dev-string': _verify_lxc_dev_string,
	'string': lambda v: v,
}


def parse_size(value):
	# PVE::JSONSchema::parse_size (bytes) or None
	m = re.match(r'^(\d+(\.\d+)?)([KMGT])?$', value)
	if not m:
		return None
	size = float(m.group(1))
	mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}.get(m.group(3), 1)
	return int(size * mult)


def format_size(size):
	# PVE::JSONSchema::format_size
	size = int(size)
	kb = size // 1024
	if kb * 1024 != size:
		return str(size)
	mb = kb // 1024
	if mb * 1024 != kb:
		return '%dK' % kb
	gb = mb // 1024
	if gb * 1024 != mb:
		return '%dM' % mb
	tb = gb // 1024
	if tb * 1024 != gb:
		return '%dG' % gb
	return '%dT' % tb


def parse_boolean(v):
	if re.match(r'^(1|on|yes|true)$', v, re.I):
		return 1
	if re.match(r'^(0|off|no|false)$', v, re.I):
		return 0
	return None


class Validator:
	def __init__(self, schema):
		self.schema = schema
		self.formats = schema.get('$formats', {})

	# -- property strings --------------------------------------------------------------
	def parse_property_string(self, fmt, data, path):
		"""Returns the parsed dict; raises FormatError with the Perl message."""
		res = {}
		default_key = None
		for part in data.split(','):
			if re.match(r'^\s*$', part):
				continue
			m = re.match(r'^([^=]+)=(.+)$', part, re.S)
			if m:
				k, v = m.group(1), m.group(2)
				if k in res:
					raise FormatError('duplicate key in comma-separated list property: %s\n' % k)
				sch = fmt.get(k)
				if sch and sch.get('alias'):
					ka = sch.get('keyAlias')
					if ka:
						if ka in res:
							raise FormatError("key alias '%s' is already defined\n" % ka)
						res[ka] = k
					k = sch['alias']
					sch = fmt.get(k)
				if not sch:
					raise FormatError('invalid key in comma-separated list property: %s\n' % k)
				if sch.get('type') == 'boolean':
					b = parse_boolean(v)
					v = str(b) if b is not None else v
				res[k] = v
			elif '=' not in part:
				if default_key:
					raise FormatError('duplicate key in comma-separated list property: %s\n'
						% default_key)
				for key, sch in fmt.items():
					if isinstance(sch, dict) and sch.get('default_key'):
						default_key = key
						if not res.get(key):
							res[key] = part
							break
						raise FormatError('duplicate key in comma-separated list property: %s\n'
							% key)
				if not default_key:
					raise FormatError('value without key, but schema does not define a default key\n')
			else:
				raise FormatError('missing key in comma-separated list property\n')
		errors = {}
		self.check_object(path, fmt, res, False, errors)
		if errors:
			# PVE::Exception stringify: message, then "path: text\n" per error
			raise FormatError('format error\n' + ''.join('%s: %s\n' % (k, v)
				for k, v in sorted(errors.items())))
		return res

	def check_format(self, fmt, value, path):
		if isinstance(fmt, dict):
			return self.parse_property_string(fmt, value, path)
		if fmt == 'regex':
			return value
		m = re.match(r'^(.*?)(?:-(list|opt))?$', fmt)
		name, kind = m.group(1), m.group(2) or 'none'
		reg = self.formats.get(name)
		if name in VERIFIERS:
			fn = VERIFIERS[name]
			if kind == 'list':
				return [fn(v) for v in split_list(value)]
			if kind == 'opt':
				return fn(value) if value else None
			return fn(value)
		if reg is None and name + '-list' in self.formats and kind == 'none':
			reg = self.formats.get(name + '-list')
		if reg and reg.get('kind') == 'property-string':
			return self.parse_property_string(reg['properties'], value, path)
		# Formats we do not model are accepted, like an unknown format would not be.
		return value

	# -- generic checks ----------------------------------------------------------------
	def check_type(self, path, typ, value, errors):
		if not typ or typ == 'any':
			return True
		if isinstance(typ, list):
			for t in typ:
				tmp = {}
				self.check_type(path, t, value, tmp)
				if not tmp:
					return True
			add_error(errors, path, "type check ('%s') failed" % '|'.join(typ))
			return False
		if typ == 'null':
			if value is not None:
				add_error(errors, path, "type check ('null') failed - value is not null")
				return False
			return True
		if typ == 'array':
			if not isinstance(value, list):
				add_error(errors, path, "type check ('array') failed")
				return False
			return True
		if typ == 'object':
			if not isinstance(value, dict):
				add_error(errors, path, "type check ('object') failed")
				return False
			return True
		if isinstance(value, (list, dict)) or isinstance(value, bool):
			if typ == 'boolean' and isinstance(value, bool):
				return True
			perl = 'ARRAY' if isinstance(value, list) else 'HASH' if isinstance(value, dict) \
				else 'JSON::PP::Boolean'
			add_error(errors, path, "type check ('%s') failed - got %s" % (typ, perl))
			return False
		sval = value if isinstance(value, str) else json.dumps(value)
		if typ == 'boolean':
			if sval in ('1', '0'):
				return True
			add_error(errors, path, "type check ('boolean') failed - got '%s'" % sval)
			return False
		if typ == 'integer' and not is_integer(sval):
			add_error(errors, path, "type check ('integer') failed - got '%s'" % sval)
			return False
		if typ == 'number' and not is_number(sval):
			add_error(errors, path, "type check ('number') failed - got '%s'" % sval)
			return False
		return True

	def check_prop(self, value, schema, path, errors):
		if value is None:
			if schema.get('type') == 'null':
				return
			if not schema.get('optional') and not schema.get('alias') and not schema.get('group'):
				add_error(errors, path, 'property is missing and it is not optional')
			return
		if not self.check_type(path, schema.get('type'), value, errors):
			return
		if isinstance(value, (list, dict)):
			return
		sval = value if isinstance(value, str) else (
			('1' if value else '0') if isinstance(value, bool) else json.dumps(value))
		fmt = schema.get('format')
		if fmt:
			try:
				self.check_format(fmt, sval, path)
			except FormatError as e:
				add_error(errors, path, 'invalid format - %s' % e)
				return
		pat = schema.get('pattern')
		if pat and not re.search('^' + perl_re(pat) + '$', sval):
			add_error(errors, path, 'value does not match the regex pattern')
			return
		if schema.get('maxLength') is not None and len(sval) > int(schema['maxLength']):
			add_error(errors, path, 'value may only be %s characters long' % schema['maxLength'])
			return
		if schema.get('minLength') is not None and len(sval) < int(schema['minLength']):
			add_error(errors, path, 'value must be at least %s characters long'
				% schema['minLength'])
			return
		if is_number(sval):
			if schema.get('maximum') is not None and float(sval) > float(schema['maximum']):
				add_error(errors, path, 'value must have a maximum value of %s' % schema['maximum'])
				return
			if schema.get('minimum') is not None and float(sval) < float(schema['minimum']):
				add_error(errors, path, 'value must have a minimum value of %s' % schema['minimum'])
				return
		enum = schema.get('enum')
		if enum and sval not in [str(e) for e in enum]:
			add_error(errors, path, "value '%s' does not have a value in the enumeration '%s'"
				% (sval, ', '.join(str(e) for e in enum)))

	def check_object(self, path, props, value, additional, errors, lookup=None):
		lookup = lookup or (lambda k: props.get(k))
		for k, sch in props.items():
			if not isinstance(sch, dict) or '[n]' in k:
				continue
			self.check_prop(value.get(k), sch, '%s.%s' % (path, k) if path else k, errors)
		for k in value:
			newpath = '%s.%s' % (path, k) if path else k
			sch = lookup(k)
			if sch is not None:
				req = sch.get('requires')
				if isinstance(req, str) and value.get(req) is None:
					add_error(errors, '%s.%s' % (path, req) if path else req,
						"missing property - '%s' requires this property" % newpath)
				if '[n]' in self._key_for(props, k):
					self.check_prop(value[k], sch, newpath, errors)
				continue
			if not additional:
				add_error(errors, newpath, 'property is not defined in schema and the schema '
					'does not allow additional properties')

	@staticmethod
	def _key_for(props, k):
		if k in props:
			return k
		m = re.match(r'^([a-z]+)(\d+)$', k)
		return '%s[n]' % m.group(1) if m else k

	def lookup_indexed(self, props, k):
		if k in props:
			return props[k]
		m = re.match(r'^([a-z]+)(\d+)$', k)
		if m and m.group(1) + '[n]' in props:
			idx = int(m.group(2))
			if idx <= INDEX_MAX.get(m.group(1), 0) and str(idx) == m.group(2):
				return props[m.group(1) + '[n]']
		return None

	def validate_params(self, method_schema, params):
		"""Returns {} when valid, else Proxmox's errors map (param -> message)."""
		pschema = method_schema.get('parameters') or {}
		props = pschema.get('properties') or {}
		additional = pschema.get('additionalProperties', 0)
		errors = {}
		self.check_object('', props, params, bool(additional) and additional != '0', errors,
			lookup=lambda k: self.lookup_indexed(props, k))
		return errors
