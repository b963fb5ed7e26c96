"""CPU per packet of a live link's workers, and of whole processes: the
receiver's network thread and the sender's worker, on a private dummy jackd
(SCHED_FIFO when root), each end in a process of its own, as deployed.

`profile_packet.py` times the receive path in a tight loop, where Python's
code and data stay in the CPU's caches; here a worker sleeps between
packets, as it does in use, and pays for waking up cold.  The sender
encodes the music test signal, played by a client of this script (Opus's
cost depends on what it encodes).  Each row is the median over ``--rounds``
rounds.  With ``--baseline DIR`` (another checkout
of jacknet, its C module built: ``python setup.py build_ext --inplace``)
every round also runs that code, alternating, so the two are compared in
one run: before and after a change on a noisy, shared machine.

Not a test: it prints a table and asserts nothing.

    .venv/bin/python scripts/bench_worker.py [--seconds 8] [--rounds 3] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SERVER = "jacknet-bench-worker"
CONFIGS = [("float32", 2), ("float32", 16), ("int16", 16), ("opus", 2), ("opus", 16)]

# One end, run in a process of its own (with PYTHONPATH naming the code
# under test): it prints its worker's CPU per packet and its process CPU.
END = r"""
import json, os, sys, time
import jacknet
from jacknet import Receiver, Sender
from jacknet.config import ReceiverConfig, SenderConfig
role, server, port, channels, codec, seconds = sys.argv[1:7]
port, channels, seconds = int(port), int(channels), float(seconds)

def timed(cls):
    class Timed(cls):
        def _work(self):
            self.worker_cpu = 0.0
            start = time.thread_time()
            try:
                super()._work()
            finally:
                self.worker_cpu = time.thread_time() - start
    return Timed

if role == "recv":
    node = timed(Receiver)(ReceiverConfig(port=port, channels=channels, server=server,
                                          name="bw-recv", latency_ms=2.0))
else:
    node = timed(Sender)(SenderConfig(host="127.0.0.1", port=port, channels=channels,
                                      server=server, name="bw-send", codec=codec,
                                      connect="bw-src:out_.*"))
node.start()
time.sleep(1.0)  # settled: starting is not what is measured
t0, c0 = time.monotonic(), os.times()
before = node.stats().packets
time.sleep(seconds)
c1, t1 = os.times(), time.monotonic()
total = node.stats().packets
packets = total - before
node.close()
cpu = (c1.user - c0.user) + (c1.system - c0.system)
print(json.dumps({"code": os.path.dirname(os.path.dirname(jacknet.__file__)), "packets": packets, "process_pct": 100 * cpu / (t1 - t0),
                  "worker_us": 1e6 * node.worker_cpu / max(1, total)}))
"""


def run_pair(code: Path, codec: str, channels: int, seconds: float, port: int) -> dict:
    """Receiver and sender of ``code``, each in its own process, for ``seconds``."""
    # From its own directory: "-c" puts the working directory first on the path.
    env = dict(os.environ, PYTHONPATH=str(code))
    args = [SERVER, str(port), str(channels), codec, str(seconds)]
    recv = subprocess.Popen([sys.executable, "-c", END, "recv", *args], env=env, cwd=code,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    send = subprocess.Popen([sys.executable, "-c", END, "send", *args], env=env, cwd=code,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = {}
    for role, proc in (("send", send), ("recv", recv)):
        stdout, _ = proc.communicate(timeout=seconds + 30)
        lines = stdout.strip().splitlines()
        out[role] = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
        if out[role] is not None and Path(out[role]["code"]) != code:
            raise SystemExit(f"the {role} ran {out[role]['code']}, not {code}")
    return out


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from jacknet.rt.binding import JackClient
    from jacknet.testing.jackserver import PrivateServer
    from jacknet.testing.scene import free_port
    from jacknet.testing.signals import Generator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--period", type=int, default=128)
    ap.add_argument("--baseline", type=Path, help="another jacknet checkout to compare with")
    ap.add_argument("--only", nargs="*", metavar="CODEC/CH", help="e.g. float32/2 (default: all)")
    args = ap.parse_args(argv)
    configs = [c for c in CONFIGS if not args.only or f"{c[0]}/{c[1]}" in args.only]
    codes = [("this", HERE)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    results: dict[tuple, list[dict]] = {}
    with PrivateServer(SERVER, 48000, args.period, sync=False,
                       realtime=os.geteuid() == 0):
        # From this process, so that its CPU is not counted: silence is nearly free to encode.
        src = JackClient("bw-src", SERVER)
        try:
            src.register("out", max(ch for _, ch in configs), "out")
            src.run(Generator(max(ch for _, ch in configs), "music"))
            for rnd in range(args.rounds):
                for codec, channels in configs:
                    order = codes if rnd % 2 == 0 else codes[::-1]
                    for label, code in order:
                        r = run_pair(code, codec, channels, args.seconds, free_port())
                        results.setdefault((codec, channels, label), []).append(r)
        finally:
            src.close()

    def median(runs: list[dict], role: str, key: str) -> str:
        values = [r[role][key] for r in runs if r[role] is not None]
        return f"{statistics.median(values):.1f}" if values else "-"

    print(f"\nperiod {args.period} @ 48000 Hz, median of {args.rounds} rounds of "
          f"{args.seconds:g} s\n")
    print("| codec | ch | code | recv worker µs/packet | recv process % "
          "| send worker µs/packet | send process % |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for (codec, channels, label), runs in results.items():
        print(f"| {codec} | {channels} | {label} | {median(runs, 'recv', 'worker_us')} "
              f"| {median(runs, 'recv', 'process_pct')} | {median(runs, 'send', 'worker_us')} "
              f"| {median(runs, 'send', 'process_pct')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
