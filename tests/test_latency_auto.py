"""``--latency auto`` on a real link: the test relay delays each datagram by
0..J ms (so they also reorder), and the receiver must measure at least that
jitter, want a margin above what it measures and below twice it, hold at
least J and never more without a cause its counters show, and play a tone
through it without a gap."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jacknet.clock.autolatency import GROW_BAND_SECONDS
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
    counters = ("late", "loosened", "plc_concealed", "underruns", "relocks", "loop_jumps",
                "xruns")
    with PrivateServer("jacknet-test-auto", RATE, 128, sync=False, realtime=True) as server, \
            tone_link(server.name, "auto", relay, latency_ms=None) as (cap, recv):
        # Lock on a margin measured in the first 0.25 s (start-up noise and
        # all), hold it 10 s while the jitter is measured, then move toward
        # the margin wanted: down at 0.3 ms a second, up at 1 ms.
        time.sleep(24)
        before = as_dict(recv.stats())
        samples: list[dict] = []
        stretches = record(cap, server.period, 6,
                           during=lambda: samples.append(as_dict(recv.stats())))
        after = as_dict(recv.stats())
    # Sender and receiver share this process's GIL, and the machine is
    # shared: a packet delivered late beyond the margin makes auto grow at
    # once (rightly: CI saw packets 20 ms late here), and the jitter it
    # measures then includes the machine's noise (CI: 20-25 ms for 6
    # injected) and comes down only at SHRINK_PPM.  So the bars are what
    # this run measured; those of the injected jitter hold when nothing
    # disturbed the run.  That auto then comes down to 2J, and how fast,
    # tests/test_autolatency.py checks on a simulated clock.
    events = {k: after[k] - before[k] for k in counters if after[k] != before[k]}
    measured = [s["jitter_ms"] for s in samples]
    disturbed = bool(events) or max(measured) >= 1.5 * jitter_ms
    held = [s["latency_ms"] for s in samples]
    said = (events, [round(h, 2) for h in held[::20]], [round(j, 1) for j in measured[::20]],
            [round(s["loop_error_frames"], 1) for s in samples[::20]])
    assert min(held) - period_ms - lead_ms > jitter_ms, said
    # Up only toward the target (auto grows by resampling when the jitter
    # it measures rises) or by a jump its counters show, never beyond the
    # target: the latency held is measured, and it wanders by the drift
    # loop's error and the measurement's own: auto's grow band, or how far
    # the loop's error wandered in this run if more (a fresh-clone run: the
    # latency rose 0.52 ms past a band of 0.5).  An xrun is a cause too:
    # the sender's clock jumps against the receiver's, and the latency
    # measured moves by up to the jump while its window (2 s) holds
    # transits from both sides of it.
    if "xruns" not in events:
        errors = [s["loop_error_frames"] for s in samples]
        loop_wander = 1000 * (max(errors) - min(errors)) / RATE
        wander, ceiling = GROW_BAND_SECONDS * 1000 + loop_wander, held[0]
        for b, r, s in zip(held[1:], samples, samples[1:]):
            if s["loosened"] > r["loosened"]:
                ceiling = b
            assert b <= max(ceiling, s["target_ms"]) + wander, said
    for s in samples:
        # The jitter measured covers the jitter injected (and this machine's
        # own noise, up to 1.5 ms when quiet), and the margin wanted lies
        # between it and twice it, beyond the receiver's period and lead.
        assert s["jitter_ms"] > 0.8 * jitter_ms, s
        assert s["jitter_ms"] < s["target_ms"] - period_ms - lead_ms < 2 * s["jitter_ms"], s
        if not disturbed:
            assert s["jitter_ms"] < 1.5 * jitter_ms, s
            assert jitter_ms < s["target_ms"] - period_ms - lead_ms < 2 * jitter_ms, s
    # Clean everywhere, judged in 20 ms windows, 10 ms apart: short enough
    # that the resampling ratio's wobble under this jitter leaves the fit
    # above 45 dB (in 100 ms windows it reached 28), while a skipped or
    # repeated sample stays at its 30 dB in whichever window holds it.  A
    # window or two for each event the counters show (a late packet
    # concealed, a jump, a cycle the server missed) may fall below that.
    freq, snrs = measure(stretches, RATE, 6, window=0.02, hop=0.01)
    # Auto moves its margin by resampling (up to GROW_PPM): the tone may be
    # off 1 kHz by what it applied while it recorded (CI: 1000.66 Hz).
    applied = max(abs(s["ratio"] - 1) for s in samples if s["ratio"] is not None)
    assert abs(freq - TONE) < 0.5 + TONE * applied, (freq, applied)
    skip = skipped_sample_snr_db(RATE, freq, 0.02, 0.01)
    assert np.sum(snrs < skip + 6) <= 2 * sum(events.values()), (skip, np.sort(snrs)[:5], said)
