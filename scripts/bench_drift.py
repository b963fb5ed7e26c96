"""How well the receiver holds its latency against a sender clock that runs fast.

Two private dummy JACK servers: the sender's at 48000 * (1 + ppm) Hz, stamped
as 48000 (a crystal ``--ppm`` fast), the receiver's at 48000.  A 1 kHz tone
goes through a float32 link for ``--seconds``, once with ``--drift`` and once
without, and every ``--every`` seconds the receiver's stats are printed: the
drift it measured, its resampling ratio and loop error, and how far ahead of
the playout the packets land (the margin; the buffered audio is fill).
Held latency shows as a margin that stays put; without correction it grows
by ppm * 48 frames a second until the buffer re-syncs, with a dropout.

    .venv/bin/python scripts/bench_drift.py [--ppm 1000] [--seconds 60]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from jacknet.testing.jackserver import PrivateServer
from jacknet.stats import as_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tone import listening, side_sender  # noqa: E402

RATE = 48000


def run(drift: bool, ppm: int, seconds: float, every: float, period: int) -> list[dict]:
    rows = []
    fast = round(RATE * (1 + ppm * 1e-6))
    with PrivateServer("jacknet-bench-fast", fast, period, sync=False, realtime=True) as a, \
            PrivateServer("jacknet-bench-true", RATE, period, sync=False, realtime=True) as b:
        with listening(b.name, "drift", drift=drift) as (_, recv), \
                side_sender(a.name, recv.address[1], "--nominal-rate", str(RATE)):
            start = time.monotonic()
            while (t := time.monotonic() - start) < seconds:
                time.sleep(every - (t % every))
                s = as_dict(recv.stats())
                s["t"] = time.monotonic() - start
                rows.append(s)
    return rows


def show(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ppm", type=int, default=1000, help="how fast the sender's clock runs")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--period", type=int, default=128)
    args = ap.parse_args()
    print(f"sender clock {args.ppm:+d} ppm, period {args.period}, float32, 5 ms margin asked\n")
    print(f"{'drift':>6} {'t s':>5} {'drift ppm':>9} {'ratio':>9} {'loop err':>8} "
          f"{'margin ms':>9} {'fill ms':>7} {'latency ms':>10} {'relocks':>7} {'concealed':>9} "
          f"{'xruns':>5}")
    summary = []
    for drift in (True, False):
        rows = run(drift, args.ppm, args.seconds, args.every, args.period)
        for s in rows:
            print(f"{'on' if drift else 'off':>6} {s['t']:5.0f} {show(s.get('drift_ppm'), '9.1f')} "
                  f"{show(s.get('ratio'), '9.6f')} {show(s.get('loop_error_frames'), '8.1f')} "
                  f"{show(s['slack_ms'], '9.2f')} {show(s['fill_ms'], '7.2f')} "
                  f"{show(s['latency_ms'], '10.2f')} {s['relocks']:7d} {s['concealed_frames']:9d} "
                  f"{s['xruns']:5d}")
        settled = [s["slack_ms"] for s in rows if s["t"] > 10 and s["slack_ms"] is not None]
        summary.append((drift, min(settled, default=None), max(settled, default=None),
                        rows[-1]["relocks"], rows[-1]["concealed_frames"]))
    print("\nafter 10 s:  drift   margin min..max ms   relocks   concealed frames")
    for drift, lo, hi, relocks, concealed in summary:
        print(f"{'':12} {'on' if drift else 'off':>5}   {show(lo, '6.2f')} .. {show(hi, '6.2f')}"
              f"       {relocks:5d}   {concealed:9d}")


if __name__ == "__main__":
    main()
