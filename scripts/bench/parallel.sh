#!/bin/bash
# Benchmarks parallel builds: for each N in PARALLEL_N, bakes N copies of
# recipes/tiny-installer.toml (distinct names, so distinct output
# directories) with `bake build --parallel N --ci` and records the wall-clock
# time, each build's duration, bake's own CPU time and RSS (sampled from
# /proc; its QEMU children are not counted) and the load average.
#
# Environment:
#   PARALLEL_N  space-separated build counts (default "1 2 4")
#   BENCH_DIR   where results go (default ~/.cache/bake/bench/parallel-DATE)
#
# Needs the tiny installer fixture (scripts/fixtures.sh tiny-iso), Go and
# QEMU. Runs one N at a time.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
counts=${PARALLEL_N:-1 2 4}
home=${BAKE_HOME:-$HOME/.cache/bake}
out=${BENCH_DIR:-$home/bench/parallel-$(date -u +%Y%m%d-%H%M%S)}

log() {
	echo "parallel: $*" >&2
}

die() {
	echo "parallel: $*" >&2
	exit 1
}

iso=$("$repo/scripts/fixtures.sh" path tiny-iso)
[ -f "$iso" ] || die "missing tiny installer fixture $iso: run 'scripts/fixtures.sh tiny-iso' first"
for tool in go qemu-system-x86_64 python3; do
	command -v "$tool" >/dev/null || die "missing $tool: run scripts/deps.sh"
done

mkdir -p "$out"
log "results in $out"
(cd "$repo" && go build -o "$out/bake" ./cmd/bake)

# copies writes N renamed copies of the tiny installer recipe into DIR, with
# the files its provisioners upload, and prints their paths.
copies() {
	local n=$1 dir=$2
	mkdir -p "$dir"
	cp -r "$repo/recipes/files" "$dir/"
	for i in $(seq 1 "$n"); do
		sed "s/^name = \"tiny-installer\"$/name = \"tiny-installer-$i\"/" \
			"$repo/recipes/tiny-installer.toml" >"$dir/tiny-installer-$i.toml"
		grep -q "^name = \"tiny-installer-$i\"$" "$dir/tiny-installer-$i.toml" ||
			die "recipes/tiny-installer.toml no longer has the line name = \"tiny-installer\""
		echo "$dir/tiny-installer-$i.toml"
	done
}

for n in $counts; do
	dir=$out/n$n
	mkdir -p "$dir"
	mapfile -t list < <(copies "$n" "$dir/recipes")
	log "N=$n: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "load_before $(cut -d' ' -f1 /proc/loadavg)" >"$dir/load"
	start=$(date +%s.%N)
	(cd "$dir" && exec "$out/bake" build --parallel "$n" --ci --force --var iso="$iso" \
		--json "$dir/events.json" "${list[@]}" >"$dir/bake.log" 2>&1) &
	pid=$!
	python3 "$repo/scripts/bench/dashboard/sample.py" "$pid" "$dir/sample.json" 1 &
	sampler=$!
	status=0
	wait "$pid" || status=$?
	end=$(date +%s.%N)
	wait "$sampler" || true
	echo "load_after $(cut -d' ' -f1 /proc/loadavg)" >>"$dir/load"
	echo "$start $end $status" >"$dir/wall"
	log "N=$n: exit status $status after $(echo "$end - $start" | bc) s"
	[ "$status" -eq 0 ] || log "N=$n: a build failed; see $dir/bake.log"
done

python3 "$repo/scripts/bench/parallel/report.py" "$out" | tee "$out/summary.md"
