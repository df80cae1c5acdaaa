#!/bin/bash
# Benchmarks bake's boot typing on the Debian netboot fixture under TCG.
#
#   keys     types TYPING_RUNS lines of TYPING_LENGTH characters at the
#            isolinux boot: prompt at each pace in TYPING_PACES, with the
#            harness in scripts/bench/typing, and compares isolinux's echo on
#            the serial console with each line
#   preseed  runs `bake build recipes/debian-12-netinst.toml` TYPING_NETINST
#            times and measures the time from bake's start to the installer's
#            GET of /preseed.cfg, then stops bake with SIGINT
#
# Both compare with Packer's default pacing computed for the same text: 100 ms
# after every key down and key up, four events for a shifted character.
#
# Environment:
#   TYPING_RUNS     lines per pace (default 20)
#   TYPING_LENGTH   characters per line (default 300)
#   TYPING_PACES    paces, see `go run ./scripts/bench/typing -h`
#                   (default "echo,default")
#   TYPING_NETINST  netinst runs (default 3; 0 skips them)
#   BENCH_DIR       where results go (default ~/.cache/bake/bench/typing-DATE)
#
# Needs the netboot fixture (scripts/fixtures.sh netboot-iso), Go and QEMU.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=${TYPING_RUNS:-20}
length=${TYPING_LENGTH:-300}
paces=${TYPING_PACES:-echo,default}
netinst_runs=${TYPING_NETINST:-3}
home=${BAKE_HOME:-$HOME/.cache/bake}
out=${BENCH_DIR:-$home/bench/typing-$(date -u +%Y%m%d-%H%M%S)}

log() {
	echo "typing: $*" >&2
}

die() {
	echo "typing: $*" >&2
	exit 1
}

iso=$("$repo/scripts/fixtures.sh" path netboot-iso)
[ -f "$iso" ] || die "missing netboot fixture $iso: run 'scripts/fixtures.sh netboot-iso' first"
for tool in go qemu-system-x86_64 jq python3; do
	command -v "$tool" >/dev/null || die "missing $tool: run scripts/deps.sh"
done

mkdir -p "$out"
log "results in $out"
(cd "$repo" && go build -o "$out/typing" ./scripts/bench/typing && go build -o "$out/bake" ./cmd/bake)

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/typing" -iso "$iso" -runs "$runs" -length "$length" -paces "$paces" -out "$out/keys.jsonl" >/dev/null

# preseed_run starts bake on the netinst recipe, waits for the http.request
# event for /preseed.cfg in its JSON stream and interrupts it. The report
# takes the request's time from the event, not from this polling loop.
preseed_run() {
	local dir=$out/netinst-$1 pid start got=""
	mkdir -p "$dir"
	: >"$dir/events.json"
	echo "load_before $(cut -d' ' -f1 /proc/loadavg)" >"$dir/load"
	start=$(date +%s.%N)
	(cd "$dir" && exec "$out/bake" build "$repo/recipes/debian-12-netinst.toml" --ci --force \
		--var iso="$iso" --var iso_checksum=none --json "$dir/events.json" >"$dir/bake.log" 2>&1) &
	pid=$!
	for _ in $(seq 1 3000); do
		if grep -q '"path":"/preseed.cfg"' "$dir/events.json"; then
			got=$(date +%s.%N)
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "load_after $(cut -d' ' -f1 /proc/loadavg)" >>"$dir/load"
	[ -n "$got" ] || die "run $1: the installer never requested /preseed.cfg; see $dir/bake.log"
	echo "$start $got" >"$dir/wall"
	log "netinst run $1: preseed requested after $(echo "$got - $start" | bc) s"
}

for i in $(seq 1 "$netinst_runs"); do
	preseed_run "$i"
done

python3 "$repo/scripts/bench/typing/report.py" "$out" | tee "$out/summary.md"
