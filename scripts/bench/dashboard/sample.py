#!/usr/bin/env python3
"""Sample one process's CPU time and RSS from /proc until it exits.

Usage: sample.py PID OUT.json [INTERVAL_SECONDS]

Writes the samples and a summary. CPU seconds are user plus system time of the
process itself, without its children such as QEMU. The summary also gives CPU
as a percentage of one core over the sampled time, the maximum RSS seen in the
samples and the kernel's high-water mark (VmHWM).
"""

import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def read_sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name may contain spaces, so split after its closing ")".
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return {
        "time": time.time(),
        "cpu_seconds": (utime + stime) / TICKS,
        "rss_kib": int(status.get("VmRSS", "0 kB").split()[0]),
        "hwm_kib": int(status.get("VmHWM", "0 kB").split()[0]),
        "threads": int(status.get("Threads", "0")),
    }


def main():
    pid, out = int(sys.argv[1]), sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    samples = []
    while True:
        try:
            samples.append(read_sample(pid))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            break
        time.sleep(interval)
    with open(out, "w") as f:
        json.dump({"summary": summarise(samples), "samples": samples}, f)
        f.write("\n")


def summarise(samples):
    """Return CPU seconds, CPU percent and memory peaks of the samples."""
    # A process that has exited but is not yet reaped has no memory fields,
    # so its last sample counts for CPU time only.
    summary = {"samples": len(samples)}
    if len(samples) < 2:
        return summary
    first, last = samples[0], samples[-1]
    wall = last["time"] - first["time"]
    cpu = last["cpu_seconds"] - first["cpu_seconds"]
    summary.update(
        wall_seconds=round(wall, 1),
        cpu_seconds=round(cpu, 2),
        cpu_percent_of_one_core=round(100 * cpu / wall, 2) if wall else None,
        max_rss_mib=round(max(s["rss_kib"] for s in samples) / 1024, 1),
        hwm_mib=round(max(s["hwm_kib"] for s in samples) / 1024, 1),
    )
    return summary


if __name__ == "__main__":
    main()
