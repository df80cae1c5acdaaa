#!/usr/bin/env python3
"""Summarise a dashboard.sh results directory as Markdown on standard output."""

import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sample import summarise  # noqa: E402


def ingest(path):
    frames, rates = [], []
    for line in open(path):
        if line.startswith("BenchmarkIngest"):
            frame = re.search(r"([\d.]+) ns/frame", line)
            rate = re.search(r"([\d.]+) MB/s", line)
            if frame:
                frames.append(float(frame.group(1)))
            if rate:
                rates.append(float(rate.group(1)))
    if frames:
        print(f"BenchmarkIngest (4 consoles, 200x60 frame): median {statistics.median(frames) / 1e6:.2f} ms "
              f"per frame over {len(frames)} runs ({min(frames) / 1e6:.2f}–{max(frames) / 1e6:.2f} ms), "
              f"console ingest {statistics.median(rates):.1f} MB/s.")
        print()


def replay(out):
    print("| replay | seconds | console bytes in | terminal bytes out | CPU user + system | CPU, % of one core | max RSS | load (1 min) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in ("none", "tui", "tui-low"):
        path = os.path.join(out, f"replay-{mode}.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        label = f"4 × {r['rate_bytes_per_second_per_build'] / 1000:g} KB/s, "
        label += "events dropped, no dashboard" if mode == "none" else f"dashboard {r['columns']}x{r['rows']}"
        print(f"| {label} | {r['seconds']:.1f} | {r['console_bytes'] / 1e6:.1f} MB | {r['terminal_bytes'] / 1e6:.1f} MB "
              f"| {r['user_seconds']:.2f} + {r['system_seconds']:.2f} s | {r['cpu_percent_of_one_core']:.1f} % "
              f"| {r['max_rss_mib']:.1f} MiB | {r['load1']} |")
    print()


def real(out):
    path = os.path.join(out, "real", "sample.json")
    if not os.path.exists(path):
        return
    s = summarise(json.load(open(path))["samples"])
    finished = []
    for line in open(os.path.join(out, "real", "events.json")):
        e = json.loads(line)
        if e["kind"] == "build.finished":
            finished.append(e)
    failed = sum(1 for e in finished if e.get("error"))
    load = dict(line.split() for line in open(os.path.join(out, "real", "load")))
    print(f"Real bake, 4 tiny installers with --parallel 4 under the dashboard in a 200x60 tmux window: "
          f"{len(finished)} builds finished ({failed} failed), bake sampled for {s.get('wall_seconds')} s, "
          f"{s.get('cpu_seconds')} s CPU = {s.get('cpu_percent_of_one_core')} % of one core, "
          f"max RSS {s.get('hwm_mib')} MiB (VmHWM); load average {load.get('load_before')} before, "
          f"{load.get('load_after')} after.")


def main():
    out = sys.argv[1]
    print(f"# Dashboard results in {out}")
    print()
    ingest(os.path.join(out, "ingest.txt"))
    replay(out)
    real(out)


if __name__ == "__main__":
    main()
