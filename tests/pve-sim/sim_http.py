"""The HTTP(S) side of the simulator: the server, routing to the h_* endpoint methods, token
auth, request bodies (form, JSON, multipart uploads), injected HTTP faults, the answer
envelope, the request log, and the /_sim/ control API."""

import hashlib
import http.server
import json
import mmap
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.parse
import uuid

from sim_common import PERL_AT, ApiError, param_exc

BASE = '/api2/json'
MAX_POST = 512 * 1024  # phs AnyEvent.pm $limit_max_post (newer versions)


class Req:
	pass


class Router:
	"""Maps a method and a path below /api2/json to its schema entry and its endpoint method
	on the simulator: h_ + lower-case method and path template ('{x}' -> 'x', other
	non-alphanumerics -> '_'). Each gets (req) with req.params, req.authid, the URI
	parameters as attributes, and returns the 'data' value."""

	def __init__(self, sim):
		self.table = []
		for key, ms in sim.validator.schema.items():
			if key.startswith('$'):
				continue
			method, path = key.split(' ', 1)
			rx = '^' + re.sub(r'\\\{(\w+)\\\}', lambda m: '(?P<%s>%s)' % (m.group(1),
				'.+' if m.group(1) == 'volume' else '[^/]+'), re.escape(path)) + '$'
			handler = getattr(sim, 'h_' + re.sub(r'[^a-z0-9]+', '_',
				(method + path).lower().replace('{', '').replace('}', '')).strip('_'), None)
			self.table.append((method, re.compile(rx), ms, handler, path))

	def route(self, method, rel):
		for m, rx, ms, handler, path in self.table:
			mm = rx.match(rel)
			if mm and m == method:
				return ms, handler, mm.groupdict(), path
		return None, None, None, None


# ----------------------------------------------------------------------------------------------
def write_log(sim, rec):
	if not sim.opts.log:
		return
	line = json.dumps(rec, sort_keys=True)
	with sim.log_lock:
		with open(sim.opts.log, 'a') as f:
			f.write(line + '\n')


def loggable(params):
	"""Request parameters as the log keeps them: never a password."""
	return {k: v for k, v in params.items() if k != 'password'}


def decode_form(text):
	# phs decode_urlencoded: repeated keys are joined with \0
	res = {}
	for part in text.split('&'):
		if not part:
			continue
		k, _, v = part.partition('=')
		k = urllib.parse.unquote_plus(k)
		v = urllib.parse.unquote_plus(v)
		res[k] = res[k] + '\0' + v if k in res else v
	return res


def decode_body(body, ctype):
	"""The parameters of a form or JSON request body, or the error Proxmox answers."""
	ctype = (ctype or '').split(';')[0].strip()
	if ctype == 'application/json':
		try:
			bparams = json.loads(body.decode() or '{}')
		except ValueError as e:
			raise ApiError(400, 'JSON decode error: %s\n' % e)
		if not isinstance(bparams, dict):
			raise ApiError(400, 'JSON body must be an object\n')
		return bparams
	if ctype in ('', 'application/x-www-form-urlencoded'):
		return decode_form(body.decode('utf-8', 'replace'))
	raise ApiError(506, "upload 'Content-Type '%s' not implemented" % ctype, body=False)


def multipart_boundary(ctype):
	"""The boundary of a multipart/form-data Content-Type, else None."""
	ctype = ctype or ''
	mb = re.search(r'boundary\s*=\s*"?([^";,\s]+)"?', ctype)
	if ctype.split(';')[0].strip() == 'multipart/form-data' and mb:
		return mb.group(1)
	return None


class Handler(http.server.BaseHTTPRequestHandler):
	protocol_version = 'HTTP/1.1'
	server_version = 'pve-api-daemon/3.0'
	sys_version = ''

	def log_message(self, fmt, *args):
		pass

	def do_GET(self):
		self.handle_any()

	do_POST = do_PUT = do_DELETE = do_GET

	def send(self, code, reason, body=None, close=False, extra_headers=None):
		reason = reason.split('\n')[0]
		if '\r' in reason:
			code, reason, body = 400, 'Bad Request', None
		data = b''
		if body is not None:
			data = json.dumps(body).encode()
		self.send_response(code, reason)
		if data:
			self.send_header('Content-Type', 'application/json;charset=UTF-8')
		self.send_header('Content-Length', str(len(data)))
		self.send_header('Cache-Control', 'max-age=0')
		self.send_header('Pragma', 'no-cache')
		for k, v in (extra_headers or {}).items():
			self.send_header(k, v)
		if code >= 400 or close:
			self.send_header('Connection', 'close')
			self.close_connection = True
		self.status = code
		# log before the answer leaves, so a client that reads the log right after its
		# request sees it (the log is how tests count requests)
		self.log_now()
		if self.close_after:
			# fault "close-after": the handler has run (a task may be running), then the
			# connection closes with nothing sent, as when a proxy or the network drops it
			self._headers_buffer = []
			self.hang_up()
			return
		self.end_headers()
		self.wfile.write(data)

	def log_now(self):
		rec = getattr(self, 'logrec', None)
		if rec is None or rec.get('_logged'):
			return
		rec['_logged'] = True
		rec['status'] = self.status
		rec['duration_ms'] = round((time.monotonic() - self.t0) * 1000, 3)
		rec['time'] = time.strftime('%Y-%m-%dT%H:%M:%S')
		write_log(self.server.sim, {k: v for k, v in rec.items() if k != '_logged'})

	def handle_any(self):
		self.t0 = time.monotonic()
		self.status = None
		self.close_after = False
		rec = {'method': self.command, 'path': self.path.split('?', 1)[0], 'params': {}}
		self.logrec = rec
		try:
			if self.path.startswith('/_sim/'):
				rec['control'] = True
				self.control()
				return
			self.api(rec)
		except ApiError as e:
			body = None
			if e.body:
				body = {'data': None, 'message': e.msg}
				if e.errors is not None:
					body['errors'] = e.errors
			rec['error'] = e.msg
			try:
				self.send(e.code, e.msg, body)
			except OSError:
				pass
		except (ConnectionError, BrokenPipeError):
			self.close_connection = True
		finally:
			self.log_now()

	def drain(self):
		# Take what the client already sent so closing does not reset the connection before
		# it reads our error answer (Proxmox itself does not read it; clients then see RST).
		try:
			self.connection.settimeout(0.2)
			while self.connection.recv(1 << 16):
				pass
		except (OSError, ssl.SSLError):
			pass
		finally:
			self.connection.settimeout(None)

	def body_chunks(self, n):
		"""Yields the next n bytes of the request body in chunks (fewer if it ends early)."""
		while n > 0:
			c = self.rfile.read(min(n, 1 << 20))
			if not c:
				break
			n -= len(c)
			yield c

	def read_body(self, n):
		return b''.join(self.body_chunks(n))

	def lenient_params(self, query, body):
		"""Query and form/JSON body parameters as far as they decode (for the log of a
		request that is not answered from them)."""
		params = decode_form(query)
		if body:
			try:
				bparams = decode_body(body, self.headers.get('Content-Type'))
			except ApiError:
				return params
			bparams.update(params)
			params = bparams
		return params

	def api(self, rec):
		sim = self.server.sim
		raw_path, _, query = self.path.partition('?')
		path = urllib.parse.unquote(raw_path)
		# the log shows every request's parameters, also of those refused before the body
		# is read
		rec['params'] = loggable(decode_form(query))
		te = self.headers.get('Transfer-Encoding')
		if te:
			# phs AnyEvent.pm process_header
			msg = 'chunked transfer encoding not supported' if te.lower() == 'chunked' else \
				"Unknown transfer encoding '%s'" % te
			self.drain()
			raise ApiError(501, msg, body=False)
		if not path.startswith(BASE + '/') and path != BASE:
			raise ApiError(501, "no such file '%s'" % path, body=False)
		rel = path[len(BASE):] or '/'
		# -- auth (phs authenticate_and_handle_request, pac AccessControl.pm verify_token)
		auth = self.headers.get('Authorization') or ''
		m = re.search(r'PVEAPIToken[= ]([^;]*)', auth)
		authid = None
		if m:
			val = urllib.parse.unquote(m.group(1).strip())
			tid, _, secret = val.rpartition('=')
			tok = sim.tokens.get(tid)
			if tok and tok['secret'] == secret and re.match(
					r'^[^\s:/!@]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$', tid):
				authid = tid
		if authid is None:
			length = int(self.headers.get('Content-Length') or 0)
			if length and length <= MAX_POST:
				rec['params'] = loggable(self.lenient_params(query, self.read_body(length)))
			if sim.opts.auth_delay:
				time.sleep(sim.opts.auth_delay)
			raise ApiError(401, 'Authentication failed!', body=False)
		rec['authid'] = authid
		method = self.command
		ms, handler, uparams, tpl = self.server.router.route(method, rel)
		length_hdr = self.headers.get('Content-Length')
		length = int(length_hdr or 0)
		is_upload = tpl == '/nodes/{node}/storage/{storage}/upload'
		if length and method not in ('POST', 'PUT'):
			raise ApiError(501, "Unexpected content for method '%s'" % method, body=False)
		# -- fault injection happens after auth, before the body is looked at (it is read
		# only for the log: nothing in it changes the fault's answer)
		f = sim.take_fault('http', method=method, path=path)
		if f and f.get('action') == 'close-after':
			# the request runs as usual; only its answer is lost (see send)
			rec['fault'] = 'close-after'
			self.close_after = True
			f = None
		if f:
			rec['fault'] = f.get('action', 'error')
			rec['params'] = loggable(self.faulted_params(sim, query, length, is_upload,
				uparams))
			self.apply_fault(f)
			return
		params = decode_form(query)
		upload = None
		if is_upload and length:
			# pm HTTPServer.pm auth_handler checks the upload privilege before the body is read
			if uparams:
				sim.check(authid, '/storage/' + uparams['storage'], ['Datastore.AllocateTemplate'])
			ctype = self.headers.get('Content-Type') or ''
			boundary = multipart_boundary(ctype)
			if not boundary:
				self.read_body(length)
				raise ApiError(501, "upload 'Content-Type '%s' not implemented" % ctype,
					body=False)
			upload = self.receive_multipart(sim, boundary, length, params)
		elif length:
			if length > MAX_POST:
				raise ApiError(501, 'for data too large', body=False)
			bparams = decode_body(self.read_body(length), self.headers.get('Content-Type'))
			bparams.update(params)  # query parameters win (phs extract_params)
			params = bparams
		rec['params'] = loggable(params)
		if ms is None:
			# pm HTTPServer.pm rest_handler
			raise ApiError(501, "Method '%s %s' not implemented\n" % (method, rel))
		if not ms.get('allowtoken', 1):
			raise ApiError(403, "URI '%s' not available with API token, need proper ticket.\n"
				% rel)
		for k, v in uparams.items():
			if k in params and str(params[k]) != v:
				raise param_exc({k: 'duplicate parameter (URI and body)'})
			params[k] = v
		rec['params'] = loggable(params)
		if ms.get('proxyto') == 'node' and uparams.get('node') in sim.nodes and \
				uparams['node'] != sim.nodes[0] and not sim.node_online(uparams['node']):
			# pm HTTPServer.pm rest_handler: the schema's permission check, then the call is
			# proxied (phs AnyEvent.pm proxy_request) to a node that does not answer:
			# AnyEvent::HTTP's pseudo-status 595 with the connect error as reason and no body
			sim.check_schema_perms(ms, authid, params)
			raise ApiError(595, 'No route to host', body=False)
		errors = sim.validator.validate_params(ms, params)
		if errors:
			rec['violations'] = [{'param': k, 'message': v} for k, v in sorted(errors.items())]
			if upload:
				os.unlink(upload[0])
			raise param_exc(errors)
		if handler is None:
			raise ApiError(501, "Method '%s %s' not implemented in the simulator\n" % (method, rel))
		req = Req()
		req.params = params
		req.authid = authid
		req.upload = upload
		req.extra = {}
		for k, v in uparams.items():
			setattr(req, k, v)
		if 'node' in uparams and uparams['node'] not in sim.nodes:
			raise ApiError(500, "hostname lookup '%s' failed - failed to get address info for: "
				"%s: Name or service not known\n" % (uparams['node'], uparams['node']))
		try:
			data = handler(req)
		except ApiError:
			if upload and os.path.exists(upload[0]):
				os.unlink(upload[0])
			raise
		body = {'data': data}
		body.update(req.extra)
		self.send(200, 'OK', body)

	def receive_multipart(self, sim, boundary, length, params):
		"""Streams the body to a temp file, then parses it like phs file_upload_multipart."""
		tmp = os.path.join(sim.tmpdir, 'pveupload-' + uuid.uuid4().hex)
		with open(tmp, 'wb') as out:
			left = length
			for c in self.body_chunks(length):
				out.write(c)
				left -= len(c)
		try:
			if left > 0:
				raise ApiError(501, 'upload failed', body=False)
			with open(tmp, 'rb') as f:
				head = f.read(64 * 1024)
			nl = rb'\r?\n'
			b = re.escape(boundary.encode())
			delim = b'--' + b + nl
			m = re.search(b'^.*?(' + delim + b')', head, re.S)
			if not m:
				raise ApiError(501, 'upload failed', body=False)
			pos = m.start(1)
			buf = head[pos:]
			consumed = pos

			def take(name, buf):
				mm = re.match(b'^' + delim + b'.*?Content-Disposition: (.*?); name="' +
					re.escape(name.encode()) + b'"(.*?' + delim + b')', buf, re.S)
				if mm:
					if mm.group(1) != b'form-data':
						raise ApiError(501, "wrong Content-Disposition '%s' in multipart, "
							"expected 'form-data'" % mm.group(1).decode('utf-8', 'replace'),
							body=False)
					rest = buf[mm.start(2):]
					rest = re.sub(b'^.*?(' + nl + b'){2}', b'', rest, count=1, flags=re.S)
					mv = re.match(b'^(.*?)(' + delim + b')', rest, re.S)
					params[name] = mv.group(1).decode('utf-8', 'replace').strip()
					return rest[mv.start(2):]
				return buf

			before = len(buf)
			for name in ('content', 'checksum-algorithm', 'checksum'):
				buf = take(name, buf)
			mm = re.match(b'^' + delim + b'Content-Disposition: (.*?); name="(.*?)"; filename="'
				b'([^"]+)"' + nl, buf, re.S)
			if not mm:
				raise ApiError(501, 'upload failed', body=False)
			if mm.group(1) != b'form-data':
				raise ApiError(501, "wrong Content-Disposition '%s' in multipart, expected "
					"'form-data'" % mm.group(1).decode('utf-8', 'replace'), body=False)
			if mm.group(2) != b'filename':
				raise ApiError(501, "wrong field name '%s' for file upload, expected 'filename'"
					% mm.group(2).decode() + PERL_AT.rstrip('\n') % ('PVE/APIServer/AnyEvent.pm',
					1187), body=False)
			params['filename'] = mm.group(3).decode('utf-8', 'replace').strip()
			buf = buf[mm.end():]
			hdr_end = re.match(b'^.*?(' + nl + b'){2}', buf, re.S)
			buf_off = hdr_end.end() if hdr_end else 0
			data_start = consumed + (before - len(buf)) + buf_off
			close = b'--' + boundary.encode() + b'--'
			with open(tmp, 'rb') as f:
				mmp = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
				try:
					idx = mmp.find(close, data_start)
					if idx < 0:
						raise ApiError(501, 'upload failed', body=False)
					end = idx
					if end - 1 >= data_start and mmp[end - 1:end] == b'\n':
						end -= 1
						if end - 1 >= data_start and mmp[end - 1:end] == b'\r':
							end -= 1
				finally:
					mmp.close()
			return (tmp, data_start, end)
		except BaseException:
			os.unlink(tmp)
			raise

	# -- injected HTTP faults ---------------------------------------------------------------
	def faulted_params(self, sim, query, length, is_upload, uparams):
		"""Reads the body of a request that an injected fault answers and returns the
		request's parameters as sent (query, form/JSON body or multipart text fields, URI
		parameters), as far as they decode; the file of an upload is thrown away."""
		boundary = multipart_boundary(self.headers.get('Content-Type'))
		if is_upload and length and boundary:
			params = decode_form(query)
			try:
				os.unlink(self.receive_multipart(sim, boundary, length, params)[0])
			except ApiError:
				pass
		else:
			params = self.lenient_params(query, self.read_body(length) if length else b'')
		for k, v in (uparams or {}).items():
			params.setdefault(k, v)
		return params

	def hang_up(self):
		"""Closes the connection with nothing more sent."""
		self.close_connection = True
		try:
			self.connection.shutdown(socket.SHUT_RDWR)
		except OSError:
			pass

	def send_json_head(self, doc):
		"""The status line and headers of a 200 JSON answer; returns the body, for a fault
		to send (part of) it its own way."""
		body = json.dumps(doc).encode()
		self.send_response(200, 'OK')
		self.send_header('Content-Type', 'application/json;charset=UTF-8')
		self.send_header('Content-Length', str(len(body)))
		self.end_headers()
		return body

	def apply_fault(self, f):
		action = f.get('action', 'error')
		if action in ('drop', 'close'):
			# logged before the client sees anything, as every other answer is
			self.status = 200 if action == 'drop' else 0
			self.log_now()
			if action == 'drop':
				# answer 200 with a Content-Length, then cut the body halfway
				body = self.send_json_head({'data': 'x' * 64})
				self.wfile.write(body[:len(body) // 2])
				self.wfile.flush()
			self.hang_up()
			return
		if action == 'trickle':
			# a server that answers at a few bytes a second (a hung proxy, a dying link):
			# only the client's own deadline ends the request
			self.status = 200
			self.log_now()
			rate = max(1, int(f.get('rate', 2)))
			try:
				body = self.send_json_head({'data': 'x' * 4096})
				for i in range(0, len(body), rate):
					self.wfile.write(body[i:i + rate])
					self.wfile.flush()
					time.sleep(1)
			except OSError:
				pass
			self.close_connection = True
			return
		if f.get('delay'):
			time.sleep(float(f['delay']))
		code = int(f.get('status', 500))
		msg = f.get('message') or {500: 'Internal Server Error', 503: 'Service Unavailable'}.get(
			code, 'simulated failure')
		raise ApiError(code, msg + ('' if msg.endswith('\n') else '\n'),
			body=f.get('body', True))

	# -- control API ----------------------------------------------------------------------------
	def ok(self, data=None):
		self.send(200, 'OK', {'data': data})

	def control_vm(self, p):
		"""The VM named by the end of a control path, or None after answering 404."""
		vm = self.server.sim.vms.get(int(p.rsplit('/', 1)[1]))
		if vm is None:
			self.send(404, 'no such vm', {'error': 'no such vm'})
		return vm

	def control(self):
		sim = self.server.sim
		raw_path, _, query = self.path.partition('?')
		length = int(self.headers.get('Content-Length') or 0)
		body = {}
		if length:
			raw = self.read_body(length)
			try:
				body = json.loads(raw.decode() or '{}')
			except ValueError:
				self.send(400, 'bad json', {'error': 'body must be JSON'})
				return
		self.logrec['params'] = body
		m = self.command
		p = raw_path[len('/_sim'):]
		if m == 'GET' and p == '/state':
			self.ok(sim.dump_state())
		elif m == 'POST' and p == '/reset':
			sim.reset()
			self.ok()
		elif m == 'POST' and p == '/fault':
			kind = body.get('kind', 'http')
			if kind not in ('http', 'task', 'lock-timeout'):
				self.send(400, 'bad fault kind', {'error': 'kind must be http|task|lock-timeout'})
				return
			if kind == 'http' and body.get('action', 'error') not in ('error', 'drop', 'close',
					'close-after', 'trickle'):
				self.send(400, 'bad fault action', {'error': 'action must be '
					'error|drop|close|close-after|trickle'})
				return
			f = dict(body, kind=kind)
			f.setdefault('count', 1)
			with sim.lock:
				sim.faults.append(f)
			self.ok(f)
		elif m == 'GET' and p == '/faults':
			self.ok(sim.faults)
		elif m == 'DELETE' and p == '/faults':
			with sim.lock:
				sim.faults.clear()
			self.ok()
		elif m == 'POST' and p == '/task-duration':
			if body.get('type'):
				sim.task_durations[body['type']] = float(body['seconds'])
			else:
				sim.default_duration = float(body['seconds'])
			self.ok()
		elif m == 'POST' and p == '/lock-timeout':
			sim.lock_timeout = float(body['seconds'])
			self.ok()
		elif re.match(r'^/agent/\d+$', p) and m == 'POST':
			vm = self.control_vm(p)
			if vm is None:
				return
			with sim.lock:
				vm['agent_up'] = bool(body.get('up', True))
				if 'interfaces' in body:
					vm['agent_ifaces'] = body['interfaces']
				if 'exec_out' in body:
					vm['exec_out'] = body['exec_out']
			self.ok()
		elif re.match(r'^/console/\d+$', p) and m == 'GET':
			# the serial console of a qemu-mode guest (empty for the fake hypervisor)
			self.ok(sim.hv.console_tail(int(p.rsplit('/', 1)[1]),
				int(urllib.parse.parse_qs(query).get('bytes', ['8192'])[0])))
		elif re.match(r'^/node/[^/]+$', p) and m == 'POST':
			n = p.rsplit('/', 1)[1]
			if n not in sim.nodes:
				self.send(404, 'no such node', {'error': 'no such node %s' % n})
				return
			if n == sim.nodes[0] and body.get('online') is False:
				self.send(400, 'entry node', {'error': 'the first node (%s) is the one the '
					'client talks to; it cannot go offline' % n})
				return
			try:
				self.ok(sim.set_node(n, body))
			except (ValueError, TypeError) as e:
				self.send(400, 'bad node values', {'error': str(e)})
		elif re.match(r'^/vm/\d+$', p) and m == 'POST':
			# force a state (e.g. a stale lock) for tests of recovery paths
			vm = self.control_vm(p)
			if vm is None:
				return
			with sim.lock:
				for k, v in body.get('conf', {}).items():
					if v is None:
						vm['conf'].pop(k, None)
					else:
						vm['conf'][k] = v
				if body.get('status') in ('running', 'stopped'):
					if sim.is_ct(vm):
						(sim.ct_start if body['status'] == 'running' else sim.ct_stop)(vm)
					else:
						(sim.hv.start if body['status'] == 'running' else sim.hv.stop)(vm)
				sim.save_vm(vm)
			self.ok()
		else:
			self.send(404, 'no such control endpoint', {'error': 'unknown %s %s' % (m, p)})


class Server(http.server.ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True

	def __init__(self, addr, sim, ctx):
		self.sim = sim
		self.ctx = ctx
		self.router = Router(sim)
		super().__init__(addr, Handler)

	def finish_request(self, request, client_address):
		# headers and body go out in separate writes: without NODELAY each answer waits for
		# the peer's delayed ACK (~40 ms on loopback), which real pveproxy does not do
		try:
			request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		except OSError:
			pass
		# TLS handshake in the connection's own thread, not in the accept loop
		if self.ctx:
			try:
				request.settimeout(30)
				request = self.ctx.wrap_socket(request, server_side=True)
				request.settimeout(None)
			except (ssl.SSLError, OSError):
				return
		try:
			Handler(request, client_address, self)
		except (ConnectionError, ssl.SSLError, OSError):
			pass
		finally:
			# wrapped socket: make sure it closes (shutdown_request only sees the raw one)
			try:
				request.close()
			except OSError:
				pass


def ensure_cert(state_dir, cert=None, key=None):
	if cert and key:
		return cert, key
	cert = os.path.join(state_dir, 'pve-ssl.pem')
	key = os.path.join(state_dir, 'pve-ssl.key')
	if not (os.path.exists(cert) and os.path.exists(key)):
		subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
			'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days',
			'3650', '-subj', '/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=pve1',
			'-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pve1'],
			check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
	return cert, key


def cert_fingerprint(cert):
	with open(cert) as f:
		der = ssl.PEM_cert_to_DER_cert(f.read())
	h = hashlib.sha256(der).hexdigest().upper()
	return ':'.join(h[i:i + 2] for i in range(0, len(h), 2))
