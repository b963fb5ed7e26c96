"""The impairment sweep (`jacknet.testing.sweep`), on the simulated receive
path: every codec and Opus frame size, redundancy 0-2, 1-16 channels, JACK
periods smaller and larger than the packet, random loss up to 10 %, loss
bursts, duplication, jitter up to 20 ms and the reordering it brings.  For
every point: no internal error, the latency held within the target plus the
jitter injected and a loosening's step, the output never louder than the
input (Opus: than the codec's own overshoot), every lost packet counted and
no other, and the output exact (PCM) or at its clean SNR (Opus) again
within a few seconds of a clean path."""
from __future__ import annotations

import pytest

from jacknet.recv.jitter import LOOSEN_STEP_SECONDS
from jacknet.testing.sweep import points, run_point

pytestmark = pytest.mark.slow  # 51 points, about 50 s

# Opus's own overshoot under loss, measured across the sweep: at most 1.37.
OPUS_PEAK_RATIO = 1.5
RECOVERY_SECONDS = 3.0


@pytest.mark.parametrize("point", points(), ids=lambda p: p.name().replace(" ", "-"))
def test_impairment_point(point):
    r = run_point(point)
    assert r.internal_errors == 0, r
    allowance_ms = point.jitter_ms + 1000 * LOOSEN_STEP_SECONDS + 1000 * point.period / 48000
    assert r.worst_latency_ms <= r.target_ms + allowance_ms, r
    if point.codec == "opus":
        assert r.peak_ratio <= OPUS_PEAK_RATIO, r
    else:
        assert r.peak_ratio <= 1.0 + (2 ** -15 if point.codec == "int16" else 0), r
    assert r.stats["lost"] == r.dropped, r
    assert r.recovery_s is not None and r.recovery_s <= RECOVERY_SECONDS, r
