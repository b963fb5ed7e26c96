#!/usr/bin/env python3
"""The impairment sweep's table: for each point (codec, redundancy,
channels, JACK period, loss, bursts, duplication, jitter), the worst latency
held against the target, the output's peak against the input's, and how
long after the path is clean again the output is exact (PCM) or at its clean
SNR (Opus).  Simulated clock, no jackd: the numbers do not depend on the
machine.  Usage: scripts/bench_impairment.py"""
from __future__ import annotations

import logging
import time

from jacknet.testing.sweep import points, run_point


def main() -> None:
    logging.disable(logging.WARNING)
    print("| point | target ms | worst latency ms | peak ratio | recovery s | dropped / lost | late | "
          "relocks | loosened | internal errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    started = time.monotonic()
    results = [run_point(p) for p in points()]
    for r in results:
        s = r.stats
        recovery = "never" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        print(f"| {r.point.name()} | {r.target_ms:.1f} | {r.worst_latency_ms:.1f} | "
              f"{r.peak_ratio:.2f} | {recovery} | {r.dropped} / {s['lost']} | {s['late']} | {s['relocks']} | "
              f"{s['loosened']} | {r.internal_errors} |")
    print(f"\n{len(results)} points in {time.monotonic() - started:.0f} s; worst peak ratio "
          f"{max(r.peak_ratio for r in results):.2f}, worst recovery "
          f"{max((r.recovery_s or 99) for r in results):.1f} s")


if __name__ == "__main__":
    main()
