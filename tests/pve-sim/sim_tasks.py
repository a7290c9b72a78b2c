"""Tasks: real-format UPIDs, a worker thread per task (injected task faults, the simulated
duration, stop requests), and the /nodes/{node}/tasks endpoints (status, log, list, stop)."""

import random
import re
import threading
import time

from sim_common import ApiError, TaskFailed, param_exc, perm_exc


class Task:
	def __init__(self, sim, node, ttype, tid, authid):
		self.sim = sim
		self.node = node
		self.type = ttype
		self.id = str(tid) if tid is not None else ''
		self.user = authid
		self.pid = sim.next_pid()
		self.pstart = sim.pstart + random.randint(1, 5000)
		self.starttime = int(time.time())
		self.upid = 'UPID:%s:%08X:%08X:%08X:%s:%s:%s:' % (node, self.pid, self.pstart,
			self.starttime, ttype, self.id, authid)
		self.lines = []
		self.status = 'running'
		self.exitstatus = None
		self.endtime = None
		self.warnings = 0
		self.stop_requested = False
		self.held = False
		# what the task takes is set when it starts (later changes are for later tasks)
		self.duration = sim.task_durations.get(ttype, sim.default_duration)
		self.done = threading.Event()

	def hold(self):
		"""Spends the task's simulated duration now instead of after its work: for work whose
		result appears only when it ends (a file copied into place)."""
		end = time.monotonic() + self.duration
		self.held = True
		while time.monotonic() < end and not self.stop_requested:
			time.sleep(min(0.05, max(0, end - time.monotonic())))
		if self.stop_requested:
			raise TaskFailed('received interrupt')

	def log(self, line):
		with self.sim.lock:
			self.lines.append(line)

	def warn(self, line):
		self.warnings += 1
		self.log('WARN: ' + line)

	def status_dict(self):
		user, _, tok = self.user.partition('!')
		d = {'upid': self.upid, 'node': self.node, 'pid': self.pid, 'pstart': self.pstart,
			'starttime': self.starttime, 'type': self.type, 'id': self.id, 'user': user,
			'status': self.status}
		if tok:
			d['tokenid'] = tok
		if self.status == 'stopped':
			d['exitstatus'] = self.exitstatus
		return d

	def list_entry(self, archived):
		"""One task of GET /nodes/{node}/tasks. Archived (pm API2/Tasks.pm $parse_line): the
		index line's UPID fields plus endtime and status, a token's task split into user
		and tokenid. Active (pc INotify.pm read_active_workers): the UPID fields with the
		token id whole in `user`, `saved` "0" and status RUNNING."""
		d = {'upid': self.upid, 'node': self.node, 'pid': self.pid, 'pstart': self.pstart,
			'starttime': self.starttime, 'type': self.type, 'id': self.id, 'user': self.user}
		if archived:
			user, _, tok = self.user.partition('!')
			d['user'] = user
			if tok:
				d['tokenid'] = tok
			d['endtime'] = self.endtime
			d['status'] = self.exitstatus
		else:
			d['saved'] = '0'
			d['status'] = 'RUNNING'
		return d


def page(r, items, zero_is_all):
	"""The start/limit slice of a list answer (limit 0: everything from start when
	zero_is_all, else nothing); the full length goes out as 'total'."""
	start = int(r.params.get('start', 0))
	limit = int(r.params.get('limit', 50))
	r.extra['total'] = len(items)
	return start, (items[start:] if limit == 0 and zero_is_all else items[start:start + limit])


class TaskHandlers:
	def new_task(self, node, ttype, tid, authid, work, on_error=None, lock_release=None):
		t = Task(self, node, ttype, tid, authid)
		with self.lock:
			self.tasks[t.upid] = t

		def runner():
			err = None
			try:
				# an injected failure ends the task before its work, as the checks that
				# fail real tasks (checksum, storage, qemu-img) run before anything is
				# moved into place; work that fails midway cleans up in on_error
				f = self.take_fault('task', type=ttype, id=t.id)
				if f:
					raise TaskFailed(f.get('message', 'simulated task failure'))
				work(t)
				dur = 0 if t.held else self.task_durations.get(ttype, self.default_duration)
				end = time.monotonic() + dur
				while time.monotonic() < end and not t.stop_requested:
					time.sleep(min(0.05, max(0, end - time.monotonic())))
				if t.stop_requested:
					raise TaskFailed('received interrupt')
			except (TaskFailed, ApiError) as e:
				err = str(e.msg if isinstance(e, ApiError) else e).strip()
			except Exception as e:  # a simulator bug must still end the task
				err = 'internal simulator error: %r' % e
			if err is not None and on_error:
				try:
					on_error(t)
				except Exception as e:
					t.log('cleanup failed: %r' % e)
			if lock_release:
				lock_release()
			with self.lock:
				if err is not None:
					t.lines.append('TASK ERROR: ' + err)
					t.exitstatus = err.replace('\n', ' ')
				elif t.warnings:
					t.lines.append('TASK WARNINGS: %d' % t.warnings)
					t.exitstatus = 'WARNINGS: %d' % t.warnings
				else:
					t.lines.append('TASK OK')
					t.exitstatus = 'OK'
				t.status = 'stopped'
				t.endtime = int(time.time())
			t.done.set()

		threading.Thread(target=runner, daemon=True, name='task-' + ttype).start()
		return t.upid

	# -- endpoints ------------------------------------------------------------------------------
	def get_task(self, r):
		t = self.tasks.get(r.upid)
		if t is None or t.node != r.node:
			# pm API2/Tasks.pm: the task log is local to its node
			raise param_exc({'upid': 'no such task'})
		# pm API2/Tasks.pm $check_task_user: a token sees its own tasks
		if t.user != r.authid and not self.has(r.authid, '/nodes/' + r.node, 'Sys.Audit'):
			raise perm_exc('/nodes/%s, Sys.Audit' % r.node)
		return t

	def h_get_nodes_node_tasks_upid_status(self, r):
		t = self.get_task(r)
		with self.lock:
			return t.status_dict()

	def h_get_nodes_node_tasks_upid_log(self, r):
		t = self.get_task(r)
		with self.lock:
			lines = list(t.lines) or ['no content']
		start, sel = page(r, lines, True)
		return [{'n': start + i + 1, 't': s} for i, s in enumerate(sel)]

	def h_delete_nodes_node_tasks_upid(self, r):
		t = self.get_task(r)
		t.stop_requested = True
		return None

	def h_get_nodes_node_tasks(self, r):
		"""pm API2/Tasks.pm node_tasks: `source` archive (default: finished tasks, from the
		index file), active (running ones, from the active file) or all (active first);
		the filters, then start/limit over what passes them, `total` counting all of it."""
		p = r.params
		source = p.get('source') or 'archive'
		userfilter = p.get('userfilter')
		typefilter = p.get('typefilter')
		vmid = p.get('vmid')
		since, until = p.get('since'), p.get('until')
		wanted = {'ok', 'warning', 'error', 'unknown'}
		if p.get('statusfilter') is not None and not truthy(p.get('errors')):
			wanted = {s.strip().lower() for s in re.split(r'[;,\s]+', str(p['statusfilter']))
				if s.strip()}
		elif truthy(p.get('errors')):
			wanted.discard('ok')
		auditor = self.has(r.authid, '/nodes/' + r.node, 'Sys.Audit')
		with self.lock:
			mine = [t for t in self.tasks.values() if t.node == r.node]
			# the active file holds running tasks (in start order); a finished task is
			# archived at once here (RESTEnvironment.pm active_workers does it when the
			# worker ends), newest end first as File::ReadBackwards reads the index
			active = [t.list_entry(archived=False) for t in
				sorted(mine, key=lambda t: t.starttime) if t.status == 'running']
			archive = [t.list_entry(archived=True) for t in
				sorted(mine, key=lambda t: (t.endtime or 0, t.starttime), reverse=True)
				if t.status == 'stopped']
		entries = (active if source in ('active', 'all') else []) + \
			(archive if source != 'active' else [])

		def visible(e):
			# $filter_task; a token sees its own tasks ($check_task_user), an auditor all.
			# An active entry keeps the full token id in `user` (no $convert_token_task)
			if userfilter and userfilter.lower() not in e['user'].lower():
				return False
			if not auditor and not task_user_is(e, r.authid):
				return False
			if typefilter and e['type'] != typefilter:
				return False
			if vmid and (not e['id'] or e['id'] != str(vmid)):
				return False
			if since is not None and e['starttime'] < int(since):
				return False
			if until is not None and e['starttime'] > int(until):
				return False
			# filtered before a running task's status becomes RUNNING: 'unknown'
			return status_type(None if 'saved' in e else e.get('status')) in wanted

		return page(r, [e for e in entries if visible(e)], False)[1]


def truthy(v):
	return v in (1, True, '1', 'true', 'yes', 'on')


def task_user_is(e, authid):
	"""pm API2/Tasks.pm $check_task_user: a token sees only its own tasks, a user also the
	tasks of its tokens."""
	if e.get('tokenid'):
		return authid in (e['user'] + '!' + e['tokenid'], e['user'])
	return authid == e['user']


def status_type(status):
	"""pc UPID.pm normalize_status_type."""
	if not status:
		return 'unknown'
	if status == 'OK':
		return 'ok'
	if re.match(r'^WARNINGS: \d+$', status):
		return 'warning'
	if status == 'unexpected status':
		return 'unknown'
	return 'error'
