#!/usr/bin/env python3
"""How fast the daemons are ready and come back, as an admin runs them:
``jacknet send`` and ``recv`` subprocesses started from config files, on a
private dummy JACK server, a known signal in and a recorder out (the helpers
of `tests/daemons.py`), the test relay between them.

Each round measures, in seconds:

- process start to ``READY=1`` (on a notification socket of ours), with the
  JACK server running and without one (``--wait-for-jack``);
- process start to a JACK server of its own accepting clients
  (``start = "if-missing"``);
- a network outage of 10 s (``--outage-seconds``; the relay drops
  everything): path clear again to bit-exact audio;
- ``kill -9`` of jackd: server ready again to bit-exact audio;
- the recording client restarted: to bit-exact audio.

"Bit-exact audio" is when the recording's last second began to be exact
(`Ends.exact_for`), so the checker's own 50 ms polling is in the numbers.
Not a test: it prints a table and asserts nothing.

Usage: .venv/bin/python scripts/bench_headless.py [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jack

from jacknet.testing.jackserver import PrivateServer
from jacknet.testing.scene import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from daemons import PERIOD, RATE, Ends, FakeSystemd, daemon  # noqa: E402
from relay import UdpRelay  # noqa: E402

SERVER = "jacknet-bench-headless"
OWN = "jacknet-bench-own"


def stop(*procs) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=20)


def recv_body(server: str, port: int, extra: str = "") -> str:
    return (f'[link]\nhost = "127.0.0.1"\nport = {port}\n[jack]\nname = "hl-recv"\n'
            f'server = "{server}"\nconnect = "hl-rec:in_.*"\n{extra}[receive]\nlatency = 10\n')


def send_body(server: str, port: int) -> str:
    return (f'[link]\nhost = "127.0.0.1"\nport = {port}\n[jack]\nname = "hl-send"\n'
            f'server = "{server}"\nconnect = "hl-sig:out_.*"\n')


def time_to_ready(tmp: Path, with_jack: bool) -> float | None:
    fake = FakeSystemd(tmp / "notify")
    server = PrivateServer(SERVER, RATE, PERIOD).start() if with_jack else None
    proc = None
    try:
        started = time.monotonic()
        proc = daemon(tmp, "recv", recv_body(SERVER, free_port()),
                      env={**os.environ, **fake.env(10.0)})
        ready = fake.wait_for(lambda m: "READY=1" in m, 20)
        return None if ready is None else ready[0] - started
    finally:
        stop(proc)
        if server is not None:
            server.stop()
        fake.close()
        (tmp / "notify").unlink()


def server_accepts(name: str) -> bool:
    try:
        jack.Client("bench-probe", servername=name, no_start_server=True).close()
    except jack.JackOpenError:
        return False
    return True


def time_to_own_server(tmp: Path) -> float | None:
    own = (f'start = "if-missing"\ndriver = "dummy"\nrate = {RATE}\nperiod = {PERIOD}\n'
           'no-realtime = true\n')
    started = time.monotonic()
    proc = daemon(tmp, "recv", recv_body(OWN, free_port(), own))
    try:
        while time.monotonic() - started < 20:
            if server_accepts(OWN):
                return time.monotonic() - started
            time.sleep(0.02)
        return None
    finally:
        stop(proc)


def link_round(tmp: Path, outage_seconds: float) -> dict[str, float | None]:
    """Outage, JACK killed, recorder restarted: seconds to exact audio each."""
    out: dict[str, float | None] = {}
    server = PrivateServer(SERVER, RATE, PERIOD, sync=True).start()
    relay = UdpRelay(seed=1)
    port = free_port()
    ends = recv = send = None
    try:
        ends = Ends(SERVER)
        recv = daemon(tmp, "recv", recv_body(SERVER, port))
        send = daemon(tmp, "send", send_body(SERVER, relay.start(("127.0.0.1", port))[1]))
        if ends.exact_for(2, 20) is None:
            raise SystemExit(f"the link never became exact: {ends.checker.summary()}")
        relay.impair(loss=1.0)
        time.sleep(outage_seconds)
        relay.impair()
        out["outage"] = ends.exact_for(1, 15)

        server.process.kill()
        server.process.wait()
        ends.close()
        ends = None
        time.sleep(1)
        server.stop()
        server.start()
        ready = time.monotonic()
        ends = Ends(SERVER)
        took = ends.exact_for(1, 15)
        out["jack"] = None if took is None else time.monotonic() - ready - 1

        ends.rec.close()
        ends.start_recorder()
        out["recorder"] = ends.exact_for(1, 15)
    finally:
        stop(send, recv)
        if ends is not None:
            ends.close()
        relay.close()
        server.stop()
    return out


ROWS = [("ready_jack", "process start to READY=1, JACK running"),
        ("ready_none", "process start to READY=1, no JACK (--wait-for-jack)"),
        ("own", 'process start to its own JACK server accepting clients (start = "if-missing")'),
        ("outage", "network outage: path clear to bit-exact audio"),
        ("jack", "kill -9 of jackd: server ready again to bit-exact audio"),
        ("recorder", "recording client restarted: to bit-exact audio")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--outage-seconds", type=float, default=10.0)
    args = ap.parse_args()
    results: dict[str, list[float | None]] = {key: [] for key, _ in ROWS}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for _ in range(args.rounds):
            results["ready_jack"].append(time_to_ready(tmp, True))
            results["ready_none"].append(time_to_ready(tmp, False))
            results["own"].append(time_to_own_server(tmp))
            for key, value in link_round(tmp, args.outage_seconds).items():
                results[key].append(value)
    print(f"period {PERIOD} @ {RATE} Hz, dummy JACK, {args.rounds} rounds, outages of "
          f"{args.outage_seconds:g} s\n")
    print("| what | median s | worst s | failed |")
    print("|---|---:|---:|---:|")
    for key, label in ROWS:
        got = [v for v in results[key] if v is not None]
        failed = len(results[key]) - len(got)
        median = f"{statistics.median(got):.2f}" if got else "-"
        worst = f"{max(got):.2f}" if got else "-"
        print(f"| {label} | {median} | {worst} | {failed} |")


if __name__ == "__main__":
    main()
