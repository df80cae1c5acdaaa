#!/usr/bin/env python3
"""Summarise a parallel.sh results directory as Markdown on standard output."""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard"))
from sample import summarise  # noqa: E402


def main():
    out = sys.argv[1]
    dirs = sorted((d for d in os.listdir(out) if d.startswith("n") and d[1:].isdigit()), key=lambda d: int(d[1:]))
    print(f"# Parallel builds in {out}")
    print()
    print("| N | wall time | vs N=1 | per build (median, min–max) | builds / hour | failed | bake CPU (% of one core) | bake max RSS | load before/after |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = None
    for d in dirs:
        n = int(d[1:])
        path = os.path.join(out, d)
        start, end, status = open(os.path.join(path, "wall")).read().split()
        wall = float(end) - float(start)
        if base is None and n == 1:
            base = wall
        finished = []
        for line in open(os.path.join(path, "events.json")):
            e = json.loads(line)
            if e["kind"] == "build.finished":
                finished.append(e)
        durations = [e["duration_ns"] / 1e9 for e in finished]
        failed = sum(1 for e in finished if e.get("error"))
        summary = summarise(json.load(open(os.path.join(path, "sample.json")))["samples"])
        load = dict(line.split() for line in open(os.path.join(path, "load")))
        per = "—"
        if durations:
            per = f"{statistics.median(durations):.0f} s ({min(durations):.0f}–{max(durations):.0f})"
        ratio = f"{wall / base:.2f}×" if base else "—"
        print(f"| {n} | {wall:.0f} s | {ratio} | {per} | {3600 * (n - failed) / wall:.0f} | {failed} of {n} "
              f"| {summary.get('cpu_percent_of_one_core', '?')} | {summary.get('hwm_mib', '?')} MiB "
              f"| {load.get('load_before', '?')}/{load.get('load_after', '?')} |")


if __name__ == "__main__":
    main()
