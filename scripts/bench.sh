#!/bin/bash
# Benchmarks bake against a minimal shell script doing the same bake
# (scripts/bench/manual.sh) in the same session, and prints the ratios.
#
#   overhead   wall-clock time of bake vs the script, alternating the two
#   ssh        time from the guest's sshd serving its banner (seen by
#              scripts/bench/sshprobe.py polling every 50 ms) to bake's first
#              provisioner output line
#   size       bake's qcow2 vs `qemu-img convert -c` of the same trimmed work
#              disk, and vs the blocks `df` reports used inside the guest
#
# Environment:
#   BENCH_RUNS  runs of each tool (default 3)
#   BENCH_DIR   where results go (default $BAKE_HOME/bench/DATE or
#               ~/.cache/bake/bench/DATE)
#
# Runs one QEMU at a time. Needs the Debian fixture (scripts/fixtures.sh
# debian-disk) and bin/bake (just build); `just bench` does both first.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bench=$repo/scripts/bench
bake=$repo/bin/bake
runs=${BENCH_RUNS:-3}
home=${BAKE_HOME:-$HOME/.cache/bake}
out=${BENCH_DIR:-$home/bench/$(date -u +%Y%m%d-%H%M%S)}

log() {
	echo "bench: $*" >&2
}

die() {
	echo "bench: $*" >&2
	exit 1
}

case $runs in
'' | *[!0-9]* | 0) die "invalid BENCH_RUNS \"$runs\": use a positive whole number" ;;
esac
[ -x "$bake" ] || die "missing $bake: run 'just build' first"
base=$("$repo/scripts/fixtures.sh" path debian-disk)
[ -f "$base" ] || die "missing Debian fixture $base: run 'scripts/fixtures.sh debian-disk' first"
for tool in qemu-system-x86_64 qemu-img xorriso ssh ssh-keygen jq python3; do
	command -v "$tool" >/dev/null || die "missing $tool: run scripts/deps.sh"
done

mkdir -p "$out"
log "results in $out"
checksum=sha256:$(sha256sum "$base" | cut -d' ' -f1)

{
	echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpus $(nproc)"
	echo "cpu $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory_kib $(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
	echo "kernel $(uname -r)"
	echo "qemu $(qemu-system-x86_64 --version | head -n 1)"
	echo "bake $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "bake_binary $(date -u -r "$bake" +%Y-%m-%dT%H:%M:%SZ) $(sha256sum "$bake" | cut -c1-12)"
	echo "runs $runs"
} >"$out/machine"

now() {
	date +%s.%N
}

# loadavg appends the 1-minute load average to FILE with a label.
loadavg() {
	echo "$2 $(cut -d' ' -f1 /proc/loadavg)" >>"$1"
}

# stop_probe ends a probe that found no banner; a finished probe is reaped.
stop_probe() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

run_bake() {
	local dir=$out/bake-$1 probe start end
	mkdir -p "$dir"
	log "run $1: bake"
	# bin/bake may be rebuilt while a long session runs, so each run records
	# the binary it used.
	sha256sum "$bake" | cut -c1-12 >"$dir/binary"
	python3 "$bench/sshprobe.py" --events "$dir/events.json" --out "$dir/probe.json" --deadline 3600 &
	probe=$!
	loadavg "$dir/load" before
	start=$(now)
	# --keep-work keeps the trimmed work disk for the size comparison; the
	# script's run also leaves its work disk until after its clock stops.
	if ! (cd "$dir" && "$bake" build "$bench/overhead.toml" --ci --verbose --keep-work --force \
		--json "$dir/events.json" --var base_image="$base" --var base_checksum="$checksum" \
		>"$dir/bake.log" 2>&1); then
		stop_probe "$probe"
		die "bake failed in run $1; see $dir/bake.log"
	fi
	end=$(now)
	loadavg "$dir/load" after
	echo "$start $end" >"$dir/wall"
	stop_probe "$probe"

	local workdisk
	workdisk=$(jq -r 'select(.kind == "info" and .step == "disk") | .message' "$dir/events.json" |
		sed -n 's/^work disk \(.*\) ([0-9]* MiB virtual)$/\1/p' | head -n 1)
	[ -f "$workdisk" ] || die "work disk of run $1 not found in $dir/events.json"
	if [ "$1" -eq 1 ]; then
		measure_size "$dir" "$workdisk"
	fi
	rm -rf "$(dirname "$workdisk")"
}

# measure_size converts bake's trimmed work disk by hand, once with zlib
# (`convert -c`, qemu-img's default compression) and once with zstd, and
# records the sizes next to bake's artifact.
measure_size() {
	local dir=$1 workdisk=$2
	log "run 1: converting bake's work disk by hand for the size comparison"
	qemu-img convert -O qcow2 -c "$workdisk" "$dir/manual-zlib.qcow2"
	qemu-img convert -O qcow2 -c -o compression_type=zstd "$workdisk" "$dir/manual-zstd.qcow2"
	{
		echo "bake $(stat -c %s "$dir/output/bench-overhead/bench-overhead.qcow2")"
		echo "manual_zlib $(stat -c %s "$dir/manual-zlib.qcow2")"
		echo "manual_zstd $(stat -c %s "$dir/manual-zstd.qcow2")"
		echo "work_disk_allocated $(qemu-img info --output=json "$workdisk" | jq '."actual-size"')"
		echo "guest_df_used $(jq -r 'select(.kind == "output") | .message' "$dir/events.json" | head -n 1)"
	} >"$out/size"
	rm -f "$dir/manual-zlib.qcow2" "$dir/manual-zstd.qcow2"
}

run_script() {
	local dir=$out/script-$1 probe start end
	mkdir -p "$dir"
	log "run $1: script"
	python3 "$bench/sshprobe.py" --port-file "$dir/work/port" --out "$dir/probe.json" --deadline 3600 &
	probe=$!
	loadavg "$dir/load" before
	start=$(now)
	if ! "$bench/manual.sh" "$base" "$dir/work" >"$dir/script.log" 2>&1; then
		stop_probe "$probe"
		die "manual.sh failed in run $1; see $dir/script.log"
	fi
	end=$(now)
	loadavg "$dir/load" after
	echo "$start $end" >"$dir/wall"
	stop_probe "$probe"
	cp "$dir/work/phases" "$dir/work/df" "$dir/"
	echo "$(stat -c %s "$dir/work/output.qcow2")" >"$dir/size"
	rm -rf "$dir/work"
}

# Alternate which tool goes first, so a drift in the machine's load or a
# warm page cache does not favour one of them.
for i in $(seq 1 "$runs"); do
	if [ $((i % 2)) -eq 1 ]; then
		run_bake "$i"
		run_script "$i"
	else
		run_script "$i"
		run_bake "$i"
	fi
done

python3 "$bench/report.py" "$out" | tee "$out/summary.md"

# Typing, dashboard and parallel-build benchmarks, each with its own summary.
# BENCH_EXTRA=0 runs only the benchmarks above.
if [ "${BENCH_EXTRA:-1}" != 0 ]; then
	for script in typing dashboard parallel; do
		"$bench/$script.sh"
	done
fi
