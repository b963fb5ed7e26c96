#!/usr/bin/env python3
"""Issue 11's stall, reproduced as it was seen: ``jacknet send`` launched
through ``stdbuf -oL -eL`` on a realtime dummy server (``jackd -R -d dummy
-p 128``), its inputs connected by another client right after it started.
Each launch runs a few seconds; a launch counts as stalled if its stats
stop advancing ``cycles=`` for good, and as rebuilt if the sender's
watchdog logged the stall and its cycles run again.  Prints one table row
per run of launches.  Usage: scripts/repro_stall.py [LAUNCHES]"""
from __future__ import annotations

import re
import subprocess
import sys
import time

from jacknet.rt.binding import JackClient
from jacknet.testing.jackserver import PrivateServer
from jacknet.testing.signals import Generator

SERVER = "jacknet-repro-stall"


def launch(sig: JackClient, seconds: float = 4.0) -> tuple[bool, bool, list[int]]:
    """(stalled at the end, watchdog rebuilt it, cycles per stats line)."""
    cmd = ["stdbuf", "-oL", "-eL", sys.executable, "-m", "jacknet", "send", "127.0.0.1:9",
           "--server", SERVER, "--name", "repro-send", "--channels", "2",
           "--stats-interval", "0.5", "--seconds", str(seconds)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:   # connect the moment its ports exist
        try:
            for ch in (1, 2):
                sig.connect_ports(f"repro-sig:out_{ch}", f"repro-send:in_{ch}")
            break
        except Exception:
            time.sleep(0.005)
    out, err = proc.communicate(timeout=seconds + 20)
    cycles = [int(c) for c in re.findall(r"cycles=(\d+)", out)]
    stalled = len(cycles) >= 2 and cycles[-1] == cycles[-2]
    return stalled, "JACK stopped running client" in err, cycles


def main() -> None:
    launches = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    with PrivateServer(SERVER, 48000, 128, sync=False, realtime=True) as server:
        sig = JackClient("repro-sig", server.name)
        sig.register("out", 2, "out")
        sig.run(Generator(2, "noise"))
        stalled = rebuilt = 0
        try:
            for _ in range(launches):
                s, r, _cycles = launch(sig)
                stalled += s
                rebuilt += r
        finally:
            sig.close()
    print("| launches | stalled at the end | stalls the watchdog rebuilt |")
    print("|---|---|---|")
    print(f"| {launches} | {stalled} | {rebuilt} |")


if __name__ == "__main__":
    main()
