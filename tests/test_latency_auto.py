"""``--latency auto`` on a real link: the test relay delays each datagram by
0..J ms (so they also reorder), and the receiver must want a margin above J
and below twice it, hold at least that and never more without a cause its
counters show, and play a tone through it without a gap."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jacknet.testing.jackserver import PrivateServer
from jacknet.stats import as_dict
from relay import UdpRelay
from tone import TONE, measure, record, skipped_sample_snr_db, tone_link

pytestmark = pytest.mark.jack  # each test runs a private jackd

RATE = 48000


@pytest.mark.parametrize("jitter_ms", [6])
def test_auto_settles_above_the_jitter_and_below_twice_it(jitter_ms):
    relay = UdpRelay(seed=11)
    relay.impair(jitter=jitter_ms / 1000)
    # A SCHED_FIFO server, as in test_clocks: a cycle the non-RT dummy timer
    # skips on this busy machine is a hiccup of its own, which auto rightly
    # answers by growing, and then needs tens of seconds to come back from.
    period_ms, lead_ms = 1000 * 128 / RATE, 1.0
    counters = ("late", "loosened", "plc_concealed", "concealed_frames", "underruns", "relocks",
                "loop_jumps", "xruns")
    tries = []
    with PrivateServer("jacknet-test-auto", RATE, 128, sync=False, realtime=True) as server, \
            tone_link(server.name, "auto", relay, latency_ms=None) as (cap, recv):
        # Lock on a margin measured in the first 0.25 s (start-up noise and
        # all), hold it 10 s while the jitter is measured, then move toward
        # the margin wanted: down at 0.3 ms a second, up at 1 ms.
        time.sleep(24)
        # A stretch is judged if nothing disturbed it: sender and receiver
        # share this process's GIL, and a packet it delivers late beyond the
        # margin makes auto grow at once (rightly; CI and quiet runs alike
        # saw packets 20 ms late here) and come down only at SHRINK_PPM.
        # The counters say whether that happened; one stretch of three must
        # be undisturbed.  In it the margin wanted lies between J and 2J,
        # and the latency held is at least that and never rises: it is at
        # 2J or on its way down to it.  (That it gets there, and how fast,
        # tests/test_autolatency.py checks on a simulated clock.)
        for _ in range(3):
            before = as_dict(recv.stats())
            samples: list[dict] = []
            stretches = record(cap, server.period, 6,
                               during=lambda: samples.append(as_dict(recv.stats())))
            after = as_dict(recv.stats())
            moved = {k: after[k] - before[k] for k in counters if after[k] != before[k]}
            tries.append((moved, [round(s["latency_ms"], 2) for s in samples[::20]]))
            # The meter's 10 s window also holds this machine's own noise: a
            # stretch whose jitter measured is far above the jitter injected
            # was disturbed too (CI: 25 ms measured for 6 injected).
            noisy = max(s["jitter_ms"] for s in samples) >= 1.5 * jitter_ms
            tries[-1] = (*tries[-1], round(max(s["jitter_ms"] for s in samples), 1))
            if not moved and not noisy:
                break
        else:
            raise AssertionError(f"no undisturbed stretch in three: {tries}")
    held = [s["latency_ms"] for s in samples]
    assert min(held) - period_ms - lead_ms > jitter_ms, tries
    # Up only toward the target (auto grows by resampling when the jitter
    # it measures rises), never beyond it (the slew's rounding aside).
    assert all(b <= max(a, s["target_ms"]) + 0.05
               for a, b, s in zip(held, held[1:], samples[1:])), (tries, samples[-1])
    for s in samples:
        # The jitter measured, and the margin wanted and held, beyond the
        # receiver's period and decoding lead.
        # (It includes this busy machine's own scheduling noise, up to 1.5 ms.)
        assert 0.8 * jitter_ms < s["jitter_ms"] < 1.5 * jitter_ms, s
        assert jitter_ms < s["target_ms"] - period_ms - lead_ms < 2 * jitter_ms, s
    # Clean everywhere, judged in 20 ms windows, 10 ms apart: short enough
    # that the resampling ratio's wobble under this jitter leaves the fit
    # above 45 dB (in 100 ms windows it reached 28), while a skipped or
    # repeated sample stays at its 30 dB in whichever window holds it.
    freq, snrs = measure(stretches, RATE, 6, window=0.02, hop=0.01)
    assert freq == pytest.approx(TONE, abs=0.5)
    skip = skipped_sample_snr_db(RATE, freq, 0.02, 0.01)
    assert snrs.min() >= skip + 6, (skip, np.sort(snrs)[:5], after)
