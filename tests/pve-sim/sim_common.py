"""What every part of the simulator shares: the error answers (with Proxmox's messages), task
failures, and running qemu-img."""

import json
import os
import subprocess

PERL_AT = ' at /usr/share/perl5/%s line %d.\n'


class ApiError(Exception):
	"""An error answer: HTTP code, message (reason = first line), optional errors map."""

	def __init__(self, code, msg, errors=None, body=True):
		super().__init__(msg)
		self.code = code
		self.msg = msg
		self.errors = errors
		self.body = body


def param_exc(errors):
	# pve-common PVE/Exception.pm raise_param_exc
	return ApiError(400, 'Parameter verification failed.\n', errors)


def perm_exc(what):
	# pve-access-control RPCEnvironment.pm check / raise_perm_exc
	return ApiError(403, 'Permission check failed (%s)\n' % what)


def no_storage_exc(sid):
	return ApiError(500, "storage '%s' does not exist\n" % sid)


def no_volume_exc(volid):
	return ApiError(500, "volume '%s' does not exist\n" % volid)


def root_path_exc():
	# ps Storage.pm: only root may name a file outside a storage
	return ApiError(500, 'Only root can pass arbitrary filesystem paths.' +
		PERL_AT % ('PVE/Storage.pm', 651))


class TaskFailed(Exception):
	pass


def run(cmd):
	p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	if p.returncode != 0:
		raise TaskFailed('%s failed: %s' % (cmd[0] + ' ' + cmd[1], p.stderr.strip()))
	return p.stdout


def qemu_img_info(path):
	out = run(['qemu-img', 'info', '--output=json', '-U', path])
	return json.loads(out)


def remove_files(paths):
	"""Unlinks each path that exists (cleanup of a failed task)."""
	for path in paths:
		try:
			os.unlink(path)
		except FileNotFoundError:
			pass
