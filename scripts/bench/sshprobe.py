#!/usr/bin/env python3
"""Record when a forwarded SSH port first serves an SSH banner.

With QEMU user-mode networking the host side of a forward accepts a TCP
connection even while nothing in the guest listens, so only the banner
("SSH-2.0-...") shows that the guest's sshd accepts connections. The probe
connects, waits for the banner and closes, starting a new attempt at most
every INTERVAL seconds until one succeeds. Before the guest's network is up an
attempt can hang until its timeout. Once the network is up, a closed port
resets the connection at once, so attempts near sshd's start are INTERVAL
apart. It writes one JSON object to OUT:

  port           the port probed
  banner_time    Unix time at which the first banner arrived
  attempt_start  Unix time at which that successful attempt connected
  last_failure   Unix time at which the attempt before it failed, a lower
                 bound for when sshd began listening (null if none failed)
  attempts       number of attempts
  banner         the banner line

The port comes from --port, or from the "waiting for SSH on USER@HOST:PORT"
message in a bake --json event file that is still being written.
"""

import argparse
import json
import re
import socket
import sys
import time

WAITING = re.compile(r"waiting for SSH on \S+@127\.0\.0\.1:(\d+)")


def port_from_events(path, deadline):
    while time.time() < deadline:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if '"ssh"' not in line:
                        continue
                    m = WAITING.search(json.loads(line).get("message", ""))
                    if m:
                        return int(m.group(1))
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    return None


def port_from_file(path, deadline):
    while time.time() < deadline:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return None


def read_banner(port, timeout):
    """Return the banner line, or None when the attempt failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    return None
                data += chunk
            line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
            return line if line.startswith("SSH-") else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", help="bake --json event file to read the port from")
    src.add_argument("--port-file", help="file that will contain the port number")
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between attempts (default 0.05)")
    # Each attempt dropped before its banner still costs the guest a forked
    # sshd, so a short timeout slows a guest that already needs seconds per
    # connection under TCG on a loaded host.
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds one attempt waits for connect and banner (default 10)")
    ap.add_argument("--deadline", type=float, default=1800, help="seconds before giving up (default 1800)")
    args = ap.parse_args()

    deadline = time.time() + args.deadline
    if args.events:
        port = port_from_events(args.events, deadline)
    else:
        port = port_from_file(args.port_file, deadline)
    if port is None:
        print("sshprobe: no SSH port found before the deadline", file=sys.stderr)
        return 1

    attempts = 0
    last_failure = None
    while time.time() < deadline:
        attempts += 1
        start = time.time()
        banner = read_banner(port, args.timeout)
        now = time.time()
        if banner:
            result = {"port": port, "banner_time": now, "attempt_start": start,
                      "last_failure": last_failure, "attempts": attempts, "banner": banner}
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(result, f)
                f.write("\n")
            return 0
        last_failure = now
        time.sleep(max(0.0, args.interval - (now - start)))
    print(f"sshprobe: no SSH banner on port {port} before the deadline", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
