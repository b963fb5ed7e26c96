"""Cost of the real-time process callbacks' work per JACK cycle.

Calls the C functions the process callbacks run (capture push, playout run)
directly, many times, on preallocated buffers, and subtracts the cost of an
empty C call made the same way (the cffi call overhead, which JACK's RT
thread does not pay).  Prints microseconds per cycle.  Not a test.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from jacknet.rt._rt import ffi, lib
from jacknet.rt.engines import Capture, Playout

CALLS = 20000


def per_call(fn) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(CALLS):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / CALLS / 1000)
    return best


def main() -> int:
    period = 128
    cap0 = Capture(1, 1024)
    empty = per_call(lambda: lib.jn_capture_available(cap0.state))
    print(f"period {period}, µs per cycle (best of 5 x {CALLS} calls, minus {empty:.2f} µs "
          "of cffi call overhead)\n")
    print("| channels | sender: capture push | receiver: playout run (audio present) | receiver: playout run (concealing) |")
    print("|---:|---:|---:|---:|")
    for ch in (2, 8, 16, 64):
        ins = np.random.default_rng(0).standard_normal((ch, period)).astype(np.float32)
        in_ptrs = ffi.new("float *[]", [ffi.from_buffer("float[]", r) for r in ins])
        cap = Capture(ch, 1 << 15)
        pos = ffi.new("jn_position *")
        push = per_call(lambda: lib.jn_capture_push(cap.state, 0, period, in_ptrs, pos, 0))

        pl = Playout(ch, 1 << 15, 48000)
        block = np.zeros((ch, 1 << 14), np.float32)
        pl.write(0, block)
        pl.set_offset(0)
        outs = np.zeros((ch, period), np.float32)
        out_ptrs = ffi.new("float *[]", [ffi.from_buffer("float[]", r) for r in outs])
        pl.run(0, outs)  # settles the fade-in
        for _ in range(200):
            lib.jn_playout_run(pl.state, 0, period, out_ptrs)
        play = per_call(lambda: lib.jn_playout_run(pl.state, 0, period, out_ptrs))
        conceal = per_call(lambda: lib.jn_playout_run(pl.state, 1 << 20, period, out_ptrs))
        print(f"| {ch} | {push - empty:.2f} | {play - empty:.2f} | {conceal - empty:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
