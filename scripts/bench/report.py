#!/usr/bin/env python3
"""Summarize a scripts/bench.sh results directory as Markdown tables.

Usage: report.py DIR

Every time is wall-clock seconds on the host. Phase boundaries come from bake's
--json events (step.finished of vm, ssh, provision, shutdown, export) and from
the marks manual.sh writes. For both tools, "sshd up" is the first SSH banner
that sshprobe.py saw.
"""

import datetime
import json
import os
import statistics
import sys

PHASES = [
    ("before VM", "start", "vm"),
    ("boot to sshd up", "vm", "sshd"),
    ("SSH connected after sshd up", "sshd", "ssh"),
    ("provisioning", "ssh", "provision"),
    ("fstrim and shutdown", "provision", "shutdown"),
    ("convert (bake: also check, checksum, manifest)", "shutdown", "export"),
    ("after export (exit, cleanup)", "export", "end"),
]


def parse_time(text):
    """Parse an RFC 3339 time with up to nanosecond precision to Unix seconds."""
    text = text.replace("Z", "+00:00")
    main, frac, zone = text, "", ""
    if "." in text:
        main, rest = text.split(".", 1)
        for i, c in enumerate(rest):
            if not c.isdigit():
                frac, zone = rest[:i], rest[i:]
                break
    else:
        main, zone = text[:19], text[19:]
    seconds = datetime.datetime.fromisoformat(main + zone).timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


def read_pairs(path):
    pairs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.strip().partition(" ")
            if key:
                pairs[key] = value
    return pairs


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def bake_run(dir):
    start, end = map(float, open(os.path.join(dir, "wall")).read().split())
    marks = {"start": start, "end": end}
    first_output = None
    first_command = None
    connected = None
    with open(os.path.join(dir, "events.json"), encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            kind = ev.get("kind")
            if kind == "step.finished" and ev.get("step") in ("vm", "ssh", "provision", "shutdown", "export"):
                marks[ev["step"]] = parse_time(ev["time"])
            elif kind == "output" and ev.get("step") == "provision" and first_output is None:
                first_output = parse_time(ev["time"])
            elif kind == "info" and ev.get("step") == "ssh" and ev.get("message", "").startswith("connected as"):
                connected = parse_time(ev["time"])
            elif (kind == "info" and ev.get("step") == "provision" and first_command is None
                  and ": running " in ev.get("message", "")):
                # The provisioner announces its command just before it
                # sends the SSH exec request.
                first_command = parse_time(ev["time"])
    probe = read_json(os.path.join(dir, "probe.json"))
    marks["sshd"] = probe["banner_time"]
    return {"marks": marks, "probe": probe, "first_output": first_output, "connected": connected,
            "first_command": first_command, "load": read_pairs(os.path.join(dir, "load"))}


def script_run(dir):
    start, end = map(float, open(os.path.join(dir, "wall")).read().split())
    marks = {k: float(v) for k, v in read_pairs(os.path.join(dir, "phases")).items()}
    marks["start"] = start
    marks["end"] = end
    probe = read_json(os.path.join(dir, "probe.json"))
    marks["sshd"] = probe["banner_time"]
    return {"marks": marks, "probe": probe, "first_output": marks["provision"], "connected": marks["ssh"],
            "load": read_pairs(os.path.join(dir, "load")), "size": int(open(os.path.join(dir, "size")).read())}


def banner_wait(probe):
    """Return the seconds from the probe's last failed attempt to the first banner."""
    return probe["banner_time"] - (probe["last_failure"] or probe["attempt_start"])


def fmt(x, digits=1):
    return f"{x:.{digits}f}"


def spread(values, digits=1):
    return f"{fmt(statistics.median(values), digits)} ({fmt(min(values), digits)}–{fmt(max(values), digits)})"


def main():
    if len(sys.argv) != 2:
        print("usage: report.py DIR", file=sys.stderr)
        return 2
    root = sys.argv[1]
    machine = read_pairs(os.path.join(root, "machine"))
    # A run counts once both tools finished it, so an interrupted session
    # still reports its complete pairs.
    runs = 0
    while all(os.path.exists(os.path.join(root, f"{tool}-{runs + 1}", "probe.json")) and
              os.path.exists(os.path.join(root, f"{tool}-{runs + 1}", "wall")) for tool in ("bake", "script")):
        runs += 1
    if runs == 0:
        print(f"report.py: no run in {root} finished with both tools", file=sys.stderr)
        return 1
    bakes = [bake_run(os.path.join(root, f"bake-{i}")) for i in range(1, runs + 1)]
    scripts = [script_run(os.path.join(root, f"script-{i}")) for i in range(1, runs + 1)]

    def total(r):
        return r["marks"]["end"] - r["marks"]["start"]

    print(f"## Run of {machine['date']}\n")
    print(f"- host: {machine['cpus']} CPUs ({machine['cpu']}), {int(machine['memory_kib']) // 1024} MiB, "
          f"kernel {machine['kernel']}")
    binary = machine.get("bake_binary", "unknown")
    print(f"- {machine['qemu']}, TCG; repository at commit {machine['bake']}, bake binary built {binary}")
    digests = set()
    for i in range(1, runs + 1):
        path = os.path.join(root, f"bake-{i}", "binary")
        if os.path.exists(path):
            digests.add(open(path).read().strip())
    if len(digests) > 1:
        print(f"- warning: bin/bake changed during the session ({len(digests)} different binaries)")
    print(f"- {runs} of {machine['runs']} planned runs of each tool, alternating; medians with (min–max)")
    loads = [float(r["load"][k]) for r in bakes + scripts for k in ("before", "after")]
    print(f"- 1-minute load average at the start and end of each run: median {fmt(statistics.median(loads), 2)}, "
          f"{fmt(min(loads), 2)}–{fmt(max(loads), 2)}\n")

    print("### Overhead: wall-clock seconds\n")
    print("| phase | bake | script |")
    print("| --- | --- | --- |")
    for name, a, b in PHASES:
        bv = [r["marks"][b] - r["marks"][a] for r in bakes]
        sv = [r["marks"][b] - r["marks"][a] for r in scripts]
        print(f"| {name} | {spread(bv, 2)} | {spread(sv, 2)} |")
    bt = [total(r) for r in bakes]
    st = [total(r) for r in scripts]
    print(f"| **total** | **{spread(bt)}** | **{spread(st)}** |")
    ratio = statistics.median(bt) / statistics.median(st)
    pair = [total(b) / total(s) for b, s in zip(bakes, scripts)]
    print()
    print(f"Ratio of medians bake/script: **{fmt(ratio, 3)}** (target ≤ 1.05: "
          f"{'met' if ratio <= 1.05 else 'not met'}). Per-run ratios: {', '.join(fmt(p, 3) for p in pair)}.\n")
    nosshd = [(r["marks"]["end"] - r["marks"]["start"]) - (r["marks"]["sshd"] - r["marks"]["vm"]) for r in bakes]
    nosshd_s = [(r["marks"]["end"] - r["marks"]["start"]) - (r["marks"]["sshd"] - r["marks"]["vm"]) for r in scripts]
    ratio2 = statistics.median(nosshd) / statistics.median(nosshd_s)
    print(f"Without the guest's boot to sshd up (the part neither tool controls): bake {spread(nosshd)} s, "
          f"script {spread(nosshd_s)} s, ratio of medians {fmt(ratio2, 3)}.\n")

    print("### SSH readiness: seconds after sshd first served its banner\n")
    print("| run | bake: banner wait | bake connected | bake first command sent | bake first output line | "
          "script: banner wait | script connected | script first output |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    first = []
    commands = []
    for i, (b, s) in enumerate(zip(bakes, scripts), 1):
        d_conn = b["connected"] - b["marks"]["sshd"]
        d_cmd = b["first_command"] - b["marks"]["sshd"]
        d_first = b["first_output"] - b["marks"]["sshd"]
        first.append(d_first)
        commands.append(d_cmd)
        print(f"| {i} | {fmt(banner_wait(b['probe']), 2)} | {fmt(d_conn, 2)} | {fmt(d_cmd, 2)} | {fmt(d_first, 2)} | "
              f"{fmt(banner_wait(s['probe']), 2)} | {fmt(s['connected'] - s['marks']['sshd'], 2)} | "
              f"{fmt(s['first_output'] - s['marks']['sshd'], 2)} |")
    med = statistics.median(first)
    med_cmd = statistics.median(commands)
    print()
    print("The banner wait is the time from the probe's last failed attempt to the first banner: sshd began "
          "listening within it, so a long wait means a guest slow to serve a new connection. The first "
          "command is sent when the provisioner announces it, right after the connection; its first output "
          "line also includes the guest starting the session and running the command.\n")
    print(f"Median time from sshd up to bake's first command: **{fmt(med_cmd, 2)} s** "
          f"(target < 1 s: {'met' if med_cmd < 1 else 'not met'}). "
          f"To its first output line: {fmt(med, 2)} s.\n")

    size = read_pairs(os.path.join(root, "size"))
    mib = 1 << 20
    b, z, zs = int(size["bake"]), int(size["manual_zlib"]), int(size["manual_zstd"])
    print("### Artifact size (run 1)\n")
    print("| image | bytes | MiB | bake ÷ this |")
    print("| --- | --- | --- | --- |")
    rows = [
        ("bake's qcow2 (zstd)", b),
        ("`qemu-img convert -c -O qcow2` of bake's trimmed work disk (zlib)", z),
        ("`qemu-img convert -c -o compression_type=zstd` of the same disk", zs),
        ("script's qcow2 (zstd), median of its runs", int(statistics.median(s["size"] for s in scripts))),
        ("work disk overlay (changes over the base disk), allocated on the host", int(size["work_disk_allocated"])),
        ("used in the guest (`df -B1 /` before shutdown)", int(size["guest_df_used"])),
    ]
    for name, value in rows:
        print(f"| {name} | {value} | {fmt(value / mib)} | {fmt(b / value, 3)} |")
    print()
    print(f"bake/manual `convert -c`: **{fmt(b / z, 3)}** (target ≤ 1: {'met' if b <= z else 'not met'}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
