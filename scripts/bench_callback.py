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
    pl0 = Playout(1, 1024, 48000)
    empty = per_call(lambda: lib.jn_playout_has(pl0.state, 0))  # next to nothing
    print(f"period {period}, µs per cycle (best of 5 x {CALLS} calls, minus {empty:.2f} µs "
          "of cffi call overhead)\n")
    print("| channels | sender: capture push | receiver: playout run (audio present) | receiver: playout run (concealing) |")
    print("|---:|---:|---:|---:|")
    follow = Playout(1, 1024, 48000)
    follow.follow(True)
    follow_cycle = per_call(lambda: lib.jn_follow_cycle(follow.state, 0, period, 1, 0)) - empty
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
    print(f"\n--follow-transport adds per cycle: jn_follow_cycle {follow_cycle:.2f} µs "
          f"(no command due), jack_transport_query {transport_query(empty):.2f} µs "
          "(libjack, on a private dummy server; the sender's capture calls it too)")
    return 0


def transport_query(empty: float) -> float:
    """What libjack's jack_transport_query costs, called the way rt.c calls it."""
    import jack

    from jacknet.testing.jackserver import PrivateServer
    with PrivateServer("jacknet-bench-callback", 48000, 128) as server:
        client = jack.Client("bench-query", servername=server.name, no_start_server=True)
        pos = jack._ffi.new("jack_position_t *")
        ptr = client._ptr
        cost = per_call(lambda: jack._lib.jack_transport_query(ptr, pos))
        client.close()
    return cost - empty


if __name__ == "__main__":
    sys.exit(main())
