#!/usr/bin/env python3
"""Summarise a typing.sh results directory as Markdown on standard output."""

import json
import os
import statistics
import sys
from datetime import datetime

# Packer's QEMU builder defaults: 100 ms after every key event, a shifted
# character is four events, and boot_wait is 10 s.
PACKER_KEY_INTERVAL = 0.1
PACKER_BOOT_WAIT = 10.0
SHIFTED = set('~!@#$%^&*()_+{}|:"<>?ABCDEFGHIJKLMNOPQRSTUVWXYZ')
# The netinst recipe's default root password, masked in boot.keys events.
NETINST_PASSWORD = "bake-netinst"


def packer_seconds(text):
    """Packer's typing time for text, where tags such as <esc> are one key."""
    events = 0
    i = 0
    while i < len(text):
        if text[i] == "<" and ">" in text[i:]:
            events += 2
            i = text.index(">", i) + 1
            continue
        events += 4 if text[i] in SHIFTED else 2
        i += 1
    return events * PACKER_KEY_INTERVAL


def key_count(text):
    """Count the key presses in text, where a tag such as <esc> is one key."""
    keys = 0
    i = 0
    while i < len(text):
        if text[i] == "<" and ">" in text[i:]:
            i = text.index(">", i) + 1
        else:
            i += 1
        keys += 1
    return keys


def parse_time(value):
    return datetime.fromisoformat(value).timestamp()


def keys_table(path):
    runs = [json.loads(line) for line in open(path)]
    paces = []
    for r in runs:
        if r["pace"] not in paces:
            paces.append(r["pace"])
    print("| pace | interval | burst | hold | lines intact | only keys lost | wrong keys | characters/s (median) | line time (median) | Packer default, computed | speed-up | load average (1 min) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pace in paces:
        rs = [r for r in runs if r["pace"] == pace]
        intact = sum(r["intact"] for r in rs)
        lost = sum(r["only_lost"] for r in rs)
        wrong = len(rs) - intact - lost
        rate = statistics.median(r["chars_per_second"] for r in rs)
        secs = statistics.median(r["seconds"] for r in rs)
        packer = statistics.median(r["packer_seconds"] for r in rs)
        loads = [float(r["load1"]) for r in rs if r["load1"]]
        first = rs[0]
        print(f"| {pace} | {first['interval_ns'] / 1e6:g} ms | {first['burst']} | {first['hold_ns'] / 1e6:g} ms "
              f"| {intact} of {len(rs)} | {lost} | {wrong} | {rate:.1f} | {secs:.2f} s | {packer:.1f} s "
              f"| {packer / secs:.1f}× | {min(loads):.1f}–{max(loads):.1f} |")
    print()
    print("Characters lost per damaged line, by pace:")
    print()
    for pace in paces:
        missing = [r["length"] - r["echoed"] for r in runs if r["pace"] == pace and not r["intact"]]
        print(f"- {pace}: {missing if missing else 'none'}")


def netinst_echo(events):
    """Return the text isolinux echoed after boot: in the build's console log."""
    logs = next(e["message"] for e in events if e["kind"] == "info" and e["message"].startswith("logs in "))
    # newline="" keeps isolinux's "\r\r\n" line wraps as they are.
    text = open(os.path.join(logs[len("logs in "):], "console.log"), errors="replace", newline="").read()
    text = text.replace("\r\r\n\x1b[K", "")
    after = text.split("boot: ", 1)[1] if "boot: " in text else ""
    return after.split("\x1b[?7h", 1)[0]


def netinst_table(out):
    dirs = sorted(d for d in os.listdir(out) if d.startswith("netinst-"))
    if not dirs:
        return
    print()
    print("| run | bake start → GET /preseed.cfg | start → boot step | boot step → first key | <esc> → end of typing | typing → GET | keys typed | Packer default typing, computed | echo intact | load before/after |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = []
    for d in dirs:
        path = os.path.join(out, d)
        start = float(open(os.path.join(path, "wall")).read().split()[0])
        events = [json.loads(line) for line in open(os.path.join(path, "events.json")) if line.strip()]
        boot = next(e for e in events if e["kind"] == "step.started" and e.get("step") == "boot")
        keys = [e for e in events if e["kind"] == "boot.keys"]
        get = next(e for e in events if e["kind"] == "http.request" and e["http"]["path"] == "/preseed.cfg")
        masked = "".join(e["message"] for e in keys)
        text = masked.replace("********", NETINST_PASSWORD)
        # The typer emits a boot.keys event when a line ends, so the first
        # one marks the end of <esc> and the last one the end of typing.
        first_key, last_key = parse_time(keys[0]["time"]), parse_time(keys[-1]["time"])
        # The console log masks the password as the boot.keys events do.
        line = masked.split("<esc>", 1)[-1].removesuffix("<enter>")
        intact = "yes" if netinst_echo(events) == line else "no"
        total = parse_time(get["time"]) - start
        totals.append(total)
        load = dict(line.split() for line in open(os.path.join(path, "load")))
        print(f"| {d.split('-')[1]} | {total:.1f} s | {parse_time(boot['time']) - start:.1f} s "
              f"| {first_key - parse_time(boot['time']):.1f} s | {last_key - first_key:.1f} s "
              f"| {parse_time(get['time']) - last_key:.1f} s | {key_count(text)} | {packer_seconds(text):.1f} s "
              f"| {intact} | {load.get('load_before', '?')}/{load.get('load_after', '?')} |")
    print()
    print(f"Median bake start → GET /preseed.cfg: {statistics.median(totals):.1f} s over {len(totals)} runs.")
    print(f"Packer's default adds a {PACKER_BOOT_WAIT:.0f} s boot_wait before it types.")


def main():
    out = sys.argv[1]
    print(f"# Typing results in {out}")
    print()
    keys_table(os.path.join(out, "keys.jsonl"))
    netinst_table(out)


if __name__ == "__main__":
    main()
