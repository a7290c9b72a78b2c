#!/bin/sh
# demo.sh: Phoenix Orchestrator end to end on one machine, with real guests (make demo).
#
# Usage: scripts/demo.sh          (from anywhere; works in the repository it lives in)
#
#   1. installs what is missing (scripts/install-deps.sh) and builds ./orchestrator,
#   2. builds (or reuses) the Debian test cloud image (scripts/build-test-image.sh),
#   3. serves it over HTTP as an `.img` with a SHA256SUMS (tests/servers/file_server.py),
#   4. starts the Proxmox VE API simulator in qemu mode (tests/pve-sim/pve_sim.py --qemu):
#      VMs really boot under qemu-system-x86_64, the guest agent really answers,
#   5. writes build/demo/config.json: one template built from the served image with the guest
#      agent installed offline from .debs, two VMs (8001, 8002) with a user, an SSH key and
#      the `hello` feature (configs/features/hello.sh; docker needs internet, the demo has none);
#      8001 keeps the template's i440fx + SeaBIOS, 8002 is q35 + OVMF (UEFI, an EFI vars disk)
#      with two NICs, the second with a static address, each configured by MAC,
#   6. runs `orchestrator --provision-template [--validate]`, then `orchestrator 8001 8002`,
#      which print their results (the second one a table of VMs and IPs),
#   7. proves through the simulator's API (agent exec in each guest) that cloud-init created
#      the user and ran the feature script, which firmware booted the guest and which address
#      each NIC got, captures VM 8002 as a template (--capture) and reads that template's disk
#      with libguestfs, and prints the time of each phase,
#   8. stops everything it started (simulator -> its qemu guests, file server) on any exit,
#      then ends with a verdict line: "demo: PASSED in N s: ..." (or "demo: FAILED (exit N)").
#
# Logs: build/sim-logs/demo.jsonl (every API request), build/demo/ (config, orchestrator
# output, simulator stderr, guest consoles under build/demo/sim-state/qemu/*.console.log).
# Environment:
#   DEMO_DIR       work dir, wiped at start (default build/demo)
#   DEMO_LOG       the simulator's request log (default build/sim-logs/demo.jsonl)
#   PHX_BIN        orchestrator binary (default ./orchestrator, built when run outside make)
#   DEMO_JOBS      VMs deployed at once (default 2; on 2 cores under TCG the deploy phase took
#                  107 s with 2 vs 176 s with 1)
#   DEMO_VALIDATE  0 skips --validate
# Needs root for the test image (debootstrap) and libguestfs. Measured on a 2-core TCG machine:
# ~7 min on the first run (image build ~2 min more when not cached), ~4.5 min afterwards
# (the customized image is reused). The agent timeout is 1200 s: on that machine loaded by other
# builds (load average 20), 8002's OVMF (Secure Boot code with SMM, slow under TCG: ~55-80 s
# before the kernel starts) and cloud-init took more than 600 s to the agent's first answer.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
demo=${DEMO_DIR:-$repo/build/demo}
logs=$repo/build/sim-logs
orch_bin=${PHX_BIN:-$repo/orchestrator}
simlog=${DEMO_LOG:-$logs/demo.jsonl}
case $demo in /*) ;; *) demo=$repo/$demo ;; esac
case $demo in
/ | "$repo" | "$repo/" | "${HOME:-/}")
	echo "demo: refusing DEMO_DIR=$demo (it is wiped)" >&2
	exit 2
	;;
esac
jobs=${DEMO_JOBS:-2}

sim_pid=
fs_pid=
verdict=
t_begin=$(date +%s)
phases=

say() { printf '\n== %s\n' "$*"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	# SIGTERM makes the simulator end its qemu guests (they also die with it: PDEATHSIG)
	for p in $sim_pid $fs_pid; do
		kill -TERM "$p" 2>/dev/null || :
	done
	for p in $sim_pid $fs_pid; do
		wait "$p" 2>/dev/null || :
	done
	if [ "$rc" -eq 0 ] && [ -n "$verdict" ]; then
		printf '\n%s\n' "$verdict"
	elif [ "$rc" -ne 0 ]; then
		printf '\ndemo: FAILED (exit %s). Logs: %s, %s\n' "$rc" "$demo" "$simlog" >&2
		for c in "$demo"/sim-state/qemu/*.console.log; do
			[ -s "$c" ] || continue
			printf -- '--- last lines of %s\n' "$c" >&2
			tail -n 15 "$c" >&2
		done
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase_start() {
	phase_name=$1
	phase_t0=$(date +%s)
	say "$1"
}
phase_end() {
	dt=$(($(date +%s) - phase_t0))
	phases="$phases$(printf '  %-46s %5d s' "$phase_name" "$dt")
"
}

# Waits for a "KEY value" line in FILE written by a background process PID; prints value.
wait_line() {
	file=$1 key=$2 pid=$3 n=0
	while [ $n -lt 300 ]; do
		v=$(sed -n "s/^$key //p" "$file" 2>/dev/null | head -n 1)
		if [ -n "$v" ]; then
			printf '%s\n' "$v"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
phase_start "dependencies, build"
scripts/install-deps.sh
if [ -z "${PHX_BIN:-}" ] && { [ -z "${MAKELEVEL:-}" ] || [ ! -x ./orchestrator ]; }; then
	make -s orchestrator
fi
"$orch_bin" --version
phase_end

phase_start "test image (cached after the first build)"
img=$(scripts/build-test-image.sh)
imgdir=$(dirname "$img")
for f in vmlinuz initrd.img debs; do
	[ -e "$imgdir/$f" ] || die "$imgdir/$f missing: the full test image has a kernel, initrd and debs/"
done
echo "image: $img ($(du -m "$img" | cut -f1) MiB)"
phase_end

phase_start "image server + simulator (qemu mode)"
rm -rf "$demo"
mkdir -p "$demo/www" "$(dirname "$simlog")"
# the file server only serves files inside its root: a hard link costs nothing
ln "$img" "$demo/www/debian-12-genericcloud-amd64.img" 2>/dev/null ||
	cp --reflink=auto "$img" "$demo/www/debian-12-genericcloud-amd64.img"
(cd "$demo/www" && sha256sum debian-12-genericcloud-amd64.img >SHA256SUMS)
python3 tests/servers/file_server.py --root "$demo/www" --log "$demo/file_server.jsonl" \
	>"$demo/file_server.out" 2>"$demo/file_server.err" &
fs_pid=$!
img_url=$(wait_line "$demo/file_server.out" URL "$fs_pid") ||
	die "file server did not start: $(cat "$demo/file_server.err")"
rm -f "$simlog"
python3 tests/pve-sim/pve_sim.py --state-dir "$demo/sim-state" --port 0 --tls \
	--log "$simlog" --task-duration 0.1 --qemu --qemu-kernel "$imgdir/vmlinuz" \
	--qemu-initrd "$imgdir/initrd.img" >"$demo/sim.out" 2>"$demo/sim.err" &
sim_pid=$!
sim_url=$(wait_line "$demo/sim.out" URL "$sim_pid") ||
	die "simulator did not start: $(cat "$demo/sim.err")"
sim_fp=$(wait_line "$demo/sim.out" FINGERPRINT "$sim_pid") || die "simulator printed no fingerprint"
echo "image server: $img_url  simulator: $sim_url"
export PVE_API_URL="$sim_url"
export PVE_TOKEN_ID='phoenix@pve!ci'
export PVE_TOKEN_SECRET='11111111-2222-3333-4444-555555555555'
export PVE_NODE=pve1
export PVE_TLS_FINGERPRINT="$sim_fp"

key=$demo/id_ed25519
ssh-keygen -q -t ed25519 -N '' -C demo@phoenix -f "$key"
pubkey=$(cat "$key.pub")
debs=$(for d in "$imgdir"/debs/*.deb; do printf '"%s",' "$d"; done | sed 's/,$//')
cat >"$demo/config.json" <<EOF
{
  "_comment": "Written by scripts/demo.sh; the proxmox connection comes from PVE_* variables.",
  "defaults": {
    "storage": "local",
    "import_storage": "local",
    "iso_storage": "local",
    "bridge": "vmbr0",
    "cloudinit_mode": "iso",
    "agent_timeout_s": 1200,
    "tags": ["demo"]
  },
  "templates": [
    {
      "name": "debian-demo",
      "vmid": 9000,
      "os": "debian-12",
      "image_url": "$img_url/debian-12-genericcloud-amd64.img",
      "checksum_url": "$img_url/SHA256SUMS",
      "customize": { "packages": [], "debs": [$debs] },
      "hardware": { "cores": 2, "memory_mb": 1024 }
    },
    {
      "name": "debian-golden",
      "image_url": "$img_url/debian-12-genericcloud-amd64.img",
      "checksum_url": "$img_url/SHA256SUMS",
      "versions": { "vmid_min": 9100, "vmid_max": 9109 },
      "hardware": { "cores": 2, "memory_mb": 1024 }
    }
  ],
  "features": {
    "hello": { "script": "$repo/configs/features/hello.sh" }
  },
  "vms": [
    {
      "vmid": 8001, "name": "demo-1", "clone_from_template": "debian-demo",
      "cores": 2, "memory_mb": 1024,
      "user_config": { "username": "demo", "ssh_public_key": "$pubkey" },
      "features": ["hello"]
    },
    {
      "vmid": 8002, "name": "demo-2", "clone_from_template": "debian-demo",
      "cores": 2, "memory_mb": 1024,
      "bios": "ovmf", "machine": "q35",
      "networks": [
        { "bridge": "vmbr0", "ip": "dhcp" },
        { "bridge": "vmbr0", "ip": "10.250.17.50/24" }
      ],
      "user_config": { "username": "demo", "ssh_public_key": "$pubkey" },
      "features": ["hello"]
    }
  ]
}
EOF
"$orch_bin" --config "$demo/config.json" --check
phase_end

# ---------------------------------------------------------------------------------------------
vflag=
[ "${DEMO_VALIDATE:-1}" = 0 ] || vflag=' --validate'
phase_start "orchestrator --provision-template$vflag"
# Runs the orchestrator with live output (also kept in build/demo/NAME.log); returns its status.
orch() {
	name=$1
	shift
	{
		"$orch_bin" --config "$demo/config.json" "$@" 2>&1
		echo $? >"$demo/$name.rc"
	} | tee "$demo/$name.log"
	return "$(cat "$demo/$name.rc")"
}
rc=0
if [ "${DEMO_VALIDATE:-1}" != 0 ]; then
	orch provision --provision-template --validate debian-demo || rc=$?
	if [ $rc -ne 0 ] && grep -q 'not implemented' "$demo/provision.log"; then
		echo "(--validate is not implemented yet in this build: provisioning without it)"
		rc=0
		orch provision --provision-template debian-demo || rc=$?
	fi
else
	orch provision --provision-template debian-demo || rc=$?
fi
[ $rc -eq 0 ] || die "orchestrator --provision-template failed (exit $rc)"
phase_end

phase_start "orchestrator 8001 8002"
orch deploy --jobs "$jobs" 8001 8002 || die "orchestrator 8001 8002 failed (exit $?)"
phase_end

# ---------------------------------------------------------------------------------------------
phase_start "proof: agent exec in each guest"
python3 - "$sim_url" "$demo/sim-state/pve-ssl.pem" "$PVE_TOKEN_ID=$PVE_TOKEN_SECRET" \
	"$demo/proof.txt" <<'PY'
import json, ssl, sys, time, urllib.parse, urllib.request

url, ca, token, summary = sys.argv[1:5]
lines = []
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False


def api(method, path, params=None):
	data = None
	u = url + '/api2/json/nodes/pve1/qemu' + path
	hdr = {'Authorization': 'PVEAPIToken=' + token}
	if method == 'GET' and params:
		u += '?' + urllib.parse.urlencode(params)
	elif params:
		data = json.dumps(params).encode()
		hdr['Content-Type'] = 'application/json'
	req = urllib.request.Request(u, data=data, method=method, headers=hdr)
	with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
		return json.loads(r.read())['data']


def run(vmid, argv):
	pid = api('POST', '/%d/agent/exec' % vmid, {'command': argv})['pid']
	for _ in range(600):
		st = api('GET', '/%d/agent/exec-status' % vmid, {'pid': pid})
		if st.get('exited'):
			return st
		time.sleep(1)
	raise SystemExit('%s in VM %d did not finish' % (argv, vmid))


ok = True
for vmid in (8001, 8002):
	st = api('GET', '/%d/status/current' % vmid)
	conf = api('GET', '/%d/config' % vmid)
	ifs = api('GET', '/%d/agent/network-get-interfaces' % vmid)['result']
	ips = [a['ip-address'] for i in ifs if i['name'] != 'lo' for a in i.get('ip-addresses', [])
		if a['ip-address-type'] == 'ipv4']
	print('VM %d (%s): %s, %s/%s, agent reports IPv4 %s' % (vmid, st.get('name'), st['status'],
		conf.get('machine', 'pc'), conf.get('bios', 'seabios'), ', '.join(ips) or 'none'))
	# each NIC of the config by its MAC, with the addresses the guest gave it
	nics = []
	for k in sorted((k for k in conf if k.startswith('net') and k[3:].isdigit()),
			key=lambda k: int(k[3:])):
		mac = conf[k].split(',')[0].split('=')[1].lower()
		addrs = ['%s/%s' % (a['ip-address'], a['prefix']) for i in ifs
			if i.get('hardware-address') == mac for a in i.get('ip-addresses', [])
			if a['ip-address-type'] == 'ipv4']
		nics.append('%s %s=%s' % (k, mac, '+'.join(addrs) or 'none'))
	facts = []
	for argv in (['cloud-init', 'status', '--wait'], ['id', 'demo'],
			['cat', '/home/demo/.ssh/authorized_keys'], ['cat', '/var/lib/phoenix/hello'],
			['sh', '-c', 'test -d /sys/firmware/efi && echo uefi || echo bios']):
		r = run(vmid, argv)
		out = (r.get('out-data') or '').strip()
		good = r.get('exitcode') == 0
		ok = ok and good
		print('  %s %-40s -> %s' % ('ok  ' if good else 'FAIL', ' '.join(argv),
			out.replace('\n', ' | ') or (r.get('err-data') or '').strip()))
		facts.append(out.splitlines()[-1] if good and out else 'FAILED: ' + ' '.join(argv))
	lines.append('  VM %d: cloud-init %s; user: %s; feature: %s; firmware: %s; nics: %s' % (
		vmid, facts[0].replace('status: ', ''), facts[1], facts[3], facts[4], ', '.join(nics)))
with open(summary, 'w') as f:
	f.write('\n'.join(lines) + '\n')
sys.exit(0 if ok else 1)
PY
phase_end

# ---------------------------------------------------------------------------------------------
# The golden-image lifecycle's other way in: a deployed (and maybe hand-updated) VM becomes the
# next version of a series. Only the "debian-demo" template is provisioned above; the
# "debian-golden" series gets its first version from VM 8002.
phase_start "orchestrator --capture 8002 --as debian-golden"
orch capture --capture 8002 --as debian-golden || die "orchestrator --capture failed (exit $?)"
phase_end

phase_start "proof: the captured template's disk (libguestfs)"
golden=$(sed -n "s/^captured VM 8002 .* as template \([0-9]*\) .*/\1/p" "$demo/capture.log")
[ -n "$golden" ] || die "no captured template in $demo/capture.log"
# its system disk: the largest of its volumes (a UEFI guest also has a small EFI vars disk)
disk=$(ls -S "$demo/sim-state/storage/local/images/$golden/"*.qcow2 2>/dev/null | head -n 1)
[ -f "$disk" ] || die "the captured template $golden has no disk under $demo/sim-state"
# identity reset: an empty machine-id, no SSH host keys, no cloud-init instance, no history
facts=$(LIBGUESTFS_BACKEND=direct guestfish --ro --format=qcow2 -a "$disk" <<'GF' 2>&1
run
mount-ro /dev/sda1 /
filesize /etc/machine-id
glob-expand /etc/ssh/ssh_host_*
exists /var/lib/cloud/instance
exists /root/.bash_history
GF
) || die "guestfish could not read '$disk': $facts"
echo "$facts" | tr '\n' ' ' | grep -qx '0 false false ' ||
	die "the captured template still carries an identity: $facts"
echo "  template $golden: machine-id empty, no SSH host keys, no cloud-init instance, no shell history" |
	tee -a "$demo/proof.txt"
phase_end

total=$(($(date +%s) - t_begin))
say "summary"
echo "VMs (orchestrator's table):"
sed -n '/^VMID /,$p' "$demo/deploy.log"
echo "proof (through the Proxmox API's agent/exec, answered by qemu-guest-agent in each guest):"
cat "$demo/proof.txt"
echo "time per phase:"
printf '%s' "$phases"
printf '  %-46s %5d s\n' "total" "$total"
vdone=built
if grep -Eq "template [0-9]+ (validated|is already validated)" "$demo/provision.log"; then
	vdone="built and validated"
fi
# the last line, printed by cleanup once everything it started is stopped
verdict="demo: PASSED in $total s: template 9000 $vdone, VMs 8001 and 8002 deployed, cloud-init and the feature checked in each guest, VM 8002 captured as template $golden with its identity reset"
say "stopping the simulator (and its qemu guests) and the file server"
