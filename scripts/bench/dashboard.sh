#!/bin/bash
# Benchmarks bake's dashboard while four VMs stream their consoles.
#
#   frame    BenchmarkIngest in tui/: time to render one frame of four busy
#            consoles (ns/frame) and console throughput
#   replay   scripts/bench/dashboard replays recorded console logs
#            (~/.cache/bake/logs) into tui.Run at DASHBOARD_RATE bytes/s per
#            build for DASHBOARD_SECONDS, drawing to a 200x60
#            pseudo-terminal, and reports CPU time (getrusage) and max RSS;
#            a second run drops the same events without a dashboard to show
#            the replay's own cost, and a third draws a tenth of the rate
#   real     bakes four copies of recipes/tiny-installer.toml with
#            --parallel 4 and the dashboard in a 200x60 tmux window, samples
#            bake's own CPU time and RSS from /proc (QEMU not counted) and
#            presses q when all four builds have finished
#
# Environment:
#   DASHBOARD_RATE     console bytes per second per build (default 200000)
#   DASHBOARD_SECONDS  replay length (default 30)
#   DASHBOARD_REAL     1 runs the real bake (default), 0 skips it
#   BENCH_DIR          where results go (default ~/.cache/bake/bench/dashboard-DATE)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
rate=${DASHBOARD_RATE:-200000}
seconds=${DASHBOARD_SECONDS:-30}
real=${DASHBOARD_REAL:-1}
home=${BAKE_HOME:-$HOME/.cache/bake}
out=${BENCH_DIR:-$home/bench/dashboard-$(date -u +%Y%m%d-%H%M%S)}

log() {
	echo "dashboard: $*" >&2
}

die() {
	echo "dashboard: $*" >&2
	exit 1
}

for tool in go python3 tmux; do
	command -v "$tool" >/dev/null || die "missing $tool: run scripts/deps.sh or apt-get install $tool"
done

mkdir -p "$out"
log "results in $out"
(cd "$repo" && go build -o "$out/replay" ./scripts/bench/dashboard && go build -o "$out/bake" ./cmd/bake)

log "frame: BenchmarkIngest (load average $(cut -d' ' -f1 /proc/loadavg))"
(cd "$repo" && go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 5x -count 3 ./tui/) >"$out/ingest.txt"

for mode in none tui; do
	log "replay: mode $mode, 4 builds at $rate bytes/s each for $seconds s (load average $(cut -d' ' -f1 /proc/loadavg))"
	"$out/replay" -mode "$mode" -builds 4 -rate "$rate" -duration "${seconds}s" >"$out/replay-$mode.json" </dev/null
done
low=$((rate / 10))
log "replay: mode tui, 4 builds at $low bytes/s each for $seconds s (load average $(cut -d' ' -f1 /proc/loadavg))"
"$out/replay" -mode tui -builds 4 -rate "$low" -duration "${seconds}s" >"$out/replay-tui-low.json" </dev/null

# real_run bakes four tiny installers under the dashboard in tmux.
real_run() {
	local iso dir=$out/real session=bake-dashboard-bench-$$ pid
	iso=$("$repo/scripts/fixtures.sh" path tiny-iso)
	[ -f "$iso" ] || die "missing tiny installer fixture $iso: run 'scripts/fixtures.sh tiny-iso' first"
	mkdir -p "$dir/recipes"
	cp -r "$repo/recipes/files" "$dir/recipes/"
	local list=()
	for i in 1 2 3 4; do
		sed "s/^name = \"tiny-installer\"$/name = \"tiny-dash-$i\"/" \
			"$repo/recipes/tiny-installer.toml" >"$dir/recipes/tiny-dash-$i.toml"
		list+=("$dir/recipes/tiny-dash-$i.toml")
	done

	: >"$dir/events.json"
	echo "load_before $(cut -d' ' -f1 /proc/loadavg)" >"$dir/load"
	tmux new-session -d -s "$session" -x 200 -y 60 \
		"cd '$dir' && echo \$\$ >'$dir/pid' && exec '$out/bake' build --parallel 4 --force --var iso='$iso' --json '$dir/events.json' ${list[*]} 2>'$dir/stderr'"
	for _ in $(seq 1 100); do
		[ -s "$dir/pid" ] && break
		sleep 0.1
	done
	pid=$(cat "$dir/pid")
	log "real: bake pid $pid in tmux session $session"

	python3 "$repo/scripts/bench/dashboard/sample.py" "$pid" "$dir/sample.json" 1 &
	local sampler=$!
	local start quit=0
	start=$(date +%s)
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$quit" = 0 ] && [ "$(grep -c '"kind":"build.finished"' "$dir/events.json")" -ge 4 ]; then
			sleep 2
			tmux capture-pane -e -p -t "$session" >"$dir/screen.txt" || true
			tmux send-keys -t "$session" q || true
			quit=1
		fi
		if [ $(($(date +%s) - start)) -gt 3600 ]; then
			log "real: builds did not finish within an hour; stopping bake"
			kill -INT "$pid" 2>/dev/null || true
		fi
		sleep 1
	done

	wait "$sampler" || true
	tmux kill-session -t "$session" 2>/dev/null || true
	echo "load_after $(cut -d' ' -f1 /proc/loadavg)" >>"$dir/load"
	echo "$start $(date +%s)" >"$dir/wall"
}

if [ "$real" = 1 ]; then
	real_run
fi

python3 "$repo/scripts/bench/dashboard/report.py" "$out" | tee "$out/summary.md"
