#!/usr/bin/env python3
"""Proxmox VE API simulator (Python standard library only).

Strict where Proxmox is strict, slow where it is slow, failing the way it fails: every request
is validated against schema.json (copied from the official API dump), tokens have per-path
privileges, async calls run as tasks with real-format UPIDs, disks are real qcow2 files made
with qemu-img. Semantics follow ../shared/pve-api/NOTES.md; the Perl function each behaviour
comes from is named next to it. See README.md for the CLI and the /_sim/ control API.
"""

import argparse
import os
import signal
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The simulator is split by concern (see README.md); the names are re-exported here.
import pve_schema  # noqa: E402,F401
from pve_schema import format_size, parse_size  # noqa: E402,F401
from sim_agent import AgentHandlers, FakeHypervisor  # noqa: E402,F401
from sim_cluster import ClusterHandlers  # noqa: E402
from sim_lxc import LxcHandlers  # noqa: E402
from sim_common import (PERL_AT, ApiError, TaskFailed, param_exc, perm_exc,  # noqa: E402,F401
	qemu_img_info, run)
from sim_migrate import MigrateHandlers  # noqa: E402
from sim_http import (BASE, MAX_POST, Handler, Req, Router, Server,  # noqa: E402,F401
	cert_fingerprint, decode_form, ensure_cert, write_log)
from sim_qemu import (ALL_VM_CONFIG, DRIVE_RE, NEW_DISK_RE, NOT_CONFIG,  # noqa: E402,F401
	OPT_PRIV, ROOT_ONLY, QemuHandlers, opt_base)
from sim_state import DEFAULT_SECRET, DEFAULT_TOKEN, RWLock, SimState  # noqa: E402,F401
from sim_storage import STORAGE_CONTENT, StorageHandlers  # noqa: E402,F401
from sim_tasks import Task, TaskHandlers  # noqa: E402,F401

Sim = SimState


class SimServer(ClusterHandlers, MigrateHandlers, LxcHandlers, QemuHandlers, AgentHandlers,
		StorageHandlers, TaskHandlers, SimState):
	"""The simulator: its state plus every endpoint (method h_<method>_<path>, see
	sim_http.Router)."""
	fingerprint = ''


def parse_args(argv):
	ap = argparse.ArgumentParser(description='Proxmox VE API simulator')
	ap.add_argument('--state-dir', required=True)
	ap.add_argument('--port', type=int, default=0)
	ap.add_argument('--host', default='127.0.0.1')
	ap.add_argument('--tls', action='store_true', help='serve HTTPS (self-signed certificate)')
	ap.add_argument('--cert')
	ap.add_argument('--key')
	ap.add_argument('--log', help='request log (JSON lines)')
	ap.add_argument('--token', action='append', help="'USER@REALM!NAME=SECRET' (repeatable)")
	ap.add_argument('--token-privs', action='append',
		help="'USER@REALM!NAME=/path:Priv1,Priv2;/path2:Priv3' (repeatable)")
	ap.add_argument('--nodes', default='pve1')
	ap.add_argument('--task-duration', type=float, default=0.2)
	ap.add_argument('--lock-timeout', type=float, default=10.0)
	ap.add_argument('--auth-delay', type=float, default=0.0,
		help='delay of 401 answers (real servers: 3 s)')
	ap.add_argument('--pve-version', default='9.1',
		help='8.4, 9.0 or 9.1 (default), or a full pve-manager version such as 9.1.9')
	ap.add_argument('--qemu-server-version',
		help='qemu-server version (default: the one of the release, see sim_state.RELEASES)')
	ap.add_argument('--storage-config',
		help='JSON list of storage definitions (default: one dir storage local)')
	ap.add_argument('--sdn-config', help='JSON {"vnets": [{"vnet": ..., "zone": ...}]}')
	ap.add_argument('--node-resources', help='JSON file or string {"pve2": {"maxmem": ..., '
		'"mem": ..., "maxcpu": ..., "cpu": ..., "online": false}}')
	q = ap.add_argument_group('qemu mode (real guests, see qemu_hv.py)')
	q.add_argument('--qemu', action='store_true',
		help='status/start boots the VM with qemu-system-x86_64; agent/* asks the real agent')
	q.add_argument('--qemu-kernel', help='kernel to boot (for images without a boot loader)')
	q.add_argument('--qemu-initrd', help='initrd for --qemu-kernel')
	q.add_argument('--qemu-append', default='root=LABEL=cloudimg-rootfs console=ttyS0',
		help='kernel command line for --qemu-kernel')
	q.add_argument('--qemu-accel', default='auto', choices=('auto', 'kvm', 'tcg'),
		help="'auto' (default): KVM when a probe boot shows it works, else TCG")
	q.add_argument('--qemu-binary', default='qemu-system-x86_64')
	q.add_argument('--qemu-max-memory', type=int, default=1024, help='MiB cap per guest')
	q.add_argument('--qemu-max-cpus', type=int, default=2, help='vCPU cap per guest')
	x = ap.add_argument_group('real containers (see lxc_hv.py; root, lxc and dnsmasq)')
	x.add_argument('--lxc-real', action='store_true',
		help='containers get real root file systems and run with lxc-start')
	x.add_argument('--lxc-bridge', action='append', metavar='NAME=CIDR',
		help="host address of the bridge that stands for Proxmox bridge NAME, e.g. "
		"vmbr0=10.199.7.1/24 (default: a free 10.197-199.x.0/24)")
	return ap.parse_args(argv)


def main(argv=None):
	opts = parse_args(argv if argv is not None else sys.argv[1:])
	os.makedirs(opts.state_dir, exist_ok=True)
	sim = SimServer(opts)
	ctx = None
	fp = ''
	if opts.tls:
		cert, key = ensure_cert(opts.state_dir, opts.cert, opts.key)
		ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		ctx.load_cert_chain(cert, key)
		fp = cert_fingerprint(cert)
	sim.fingerprint = fp
	srv = Server((opts.host, opts.port), sim, ctx)
	stop = threading.Event()

	def on_signal(signum, frame):
		if not stop.is_set():
			stop.set()
			threading.Thread(target=srv.shutdown, daemon=True).start()

	signal.signal(signal.SIGTERM, on_signal)
	signal.signal(signal.SIGINT, on_signal)
	port = srv.server_address[1]
	print('URL %s://%s:%d' % ('https' if ctx else 'http', opts.host, port), flush=True)
	print('FINGERPRINT %s' % fp, flush=True)
	try:
		srv.serve_forever(poll_interval=0.1)
	finally:
		sim.hv.close()
		if sim.lxc_rt:
			sim.lxc_rt.close()
	srv.server_close()
	# let running tasks finish their qemu-img call so no child outlives us
	deadline = time.monotonic() + 5
	for t in list(sim.tasks.values()):
		t.stop_requested = True
		t.done.wait(max(0, deadline - time.monotonic()))
	return 0


if __name__ == '__main__':
	sys.exit(main())
