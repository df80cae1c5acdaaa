#!/bin/bash
# Bakes scripts/bench/overhead.toml by hand, as the reference for bake's
# overhead benchmark: the host tools, the QEMU argv bake uses, and no step the
# image does not need. It records the wall-clock time (Unix seconds) after each
# phase in WORKDIR/phases.
#
# Usage: manual.sh BASE_DISK WORKDIR
#   The image is written to WORKDIR/output.qcow2; the guest's `df` output goes
#   to WORKDIR/df and the SSH port to WORKDIR/port as soon as it is chosen.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: manual.sh BASE_DISK WORKDIR" >&2
	exit 2
fi
base=$1
work=$2
mkdir -p "$work"
phases=$work/phases
: >"$phases"

mark() {
	echo "$1 $(date +%s.%N)" >>"$phases"
}

mark start

# The build's SSH key and the same cloud-init seed as the recipe, on a CD
# labelled cidata.
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/id_ed25519"
mkdir -p "$work/seed"
cat >"$work/seed/user-data" <<USERDATA
#cloud-config
disable_root: false
ssh_pwauth: false
ssh_authorized_keys:
  - $(cat "$work/id_ed25519.pub")
USERDATA
cat >"$work/seed/meta-data" <<METADATA
instance-id: bench-overhead
local-hostname: bench-overhead
METADATA
xorriso -as mkisofs -quiet -o "$work/seed.iso" -V cidata -J -R \
	"$work/seed/user-data" "$work/seed/meta-data" 2>/dev/null

qemu-img create -q -f qcow2 -F qcow2 -b "$base" "$work/disk.qcow2" 4G

# A free loopback port for the SSH forward, picked the way bake does: bind
# port 0 and let the kernel choose.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "$port" >"$work/port"

qemu-system-x86_64 -name bench-overhead -machine pc -accel tcg,thread=multi \
	-smp 2 -m 2048M -display none -vga std -serial stdio -monitor none \
	-qmp "unix:$work/qmp.sock,server=on,wait=off" \
	-drive "file=$work/disk.qcow2,id=disk0,format=qcow2,cache=unsafe,discard=unmap,detect-zeroes=unmap,if=virtio" \
	-drive "file=$work/seed.iso,id=seed0,if=ide,media=cdrom,readonly=on,format=raw" \
	-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" \
	-device virtio-net-pci,netdev=net0 \
	</dev/null >"$work/console.log" 2>"$work/qemu-stderr.log" &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null || true' EXIT
mark vm

# One SSH master connection, reused by every later command the way bake
# reuses its connection. ConnectTimeout also bounds the banner exchange, which
# hangs while QEMU's user-mode network accepts connections for a guest that
# is not up yet.
ssh_opts=(-i "$work/id_ed25519" -p "$port" -o StrictHostKeyChecking=no
	-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=2
	-o LogLevel=ERROR -o ControlMaster=auto -o "ControlPath=$work/ssh.sock"
	-o ControlPersist=yes)
until ssh "${ssh_opts[@]}" root@127.0.0.1 true 2>/dev/null; do
	if ! kill -0 "$qemu_pid" 2>/dev/null; then
		echo "manual.sh: qemu exited before SSH came up; see $work/qemu-stderr.log" >&2
		exit 1
	fi
	sleep 0.2
done
mark ssh

ssh "${ssh_opts[@]}" root@127.0.0.1 \
	"printf 'recipe=%s\\n' 'bench-overhead' > /etc/bake-release && df -B1 --output=used / | tail -n 1" >"$work/df"
mark provision

ssh "${ssh_opts[@]}" root@127.0.0.1 'fstrim -av || true' >/dev/null
ssh "${ssh_opts[@]}" root@127.0.0.1 poweroff >/dev/null 2>&1 || true
# The guest gets as long as bake's default shutdown.timeout (5 minutes).
for _ in $(seq 6000); do
	kill -0 "$qemu_pid" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$qemu_pid" 2>/dev/null; then
	echo "manual.sh: guest still running 5 minutes after poweroff; see $work/console.log" >&2
	exit 1
fi
wait "$qemu_pid" || true
trap - EXIT
ssh "${ssh_opts[@]}" -O exit root@127.0.0.1 2>/dev/null || true
mark shutdown

qemu-img convert -O qcow2 -c -o compression_type=zstd "$work/disk.qcow2" "$work/output.qcow2"
mark export
