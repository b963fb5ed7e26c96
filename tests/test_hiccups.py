"""A hiccup costs one faded gap, on a simulated clock (`PipeSim`): the
receiver's network thread (or the path) held up for 20 to 300 ms, then
everything it held at once.  The burst's packets are late, and nothing
else is: no re-sync, no buffer grown by the hiccup's length, no drift loop
resampling the buffer away after it, the latency as before."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.stats import as_dict
from jacknet.testing.pipesim import RATE, PipeSim, Stream

PERIOD = FRAMES = 128
AT = 6 * RATE  # when the hiccup begins


def held_up(stream: Stream, seconds: float) -> list:
    """The stream's arrivals (with 1 ms of jitter), those due during the
    hiccup all arriving at its end."""
    arrivals = stream.arrivals(jitter=48, seed=2)
    end = AT + round(seconds * RATE)
    for a in arrivals:
        if AT <= a.at < end:
            a.at = end
    return arrivals


@pytest.mark.parametrize("seconds", [0.02, 0.05, 0.17, 0.3])
@pytest.mark.parametrize("drift", [False, True], ids=["fixed", "drift"])
def test_a_hiccup_costs_one_gap_and_nothing_else(drift, seconds):
    stream = Stream(frames=FRAMES).build(12 * RATE // FRAMES)
    cycles = 11 * RATE // PERIOD
    hiccup = PipeSim(period=PERIOD, margin=256, drift=drift).run(held_up(stream, seconds), cycles)
    clean = PipeSim(period=PERIOD, margin=256, drift=drift).run(
        stream.arrivals(jitter=48, seed=2), cycles)
    stats = as_dict(hiccup.stats())
    # Before the hiccup's fix: a 50 ms hiccup re-synced (8 late packets in a
    # row, all at once), or loosened by the hiccup's length and tightened
    # again, and on the drift path the loop then ran to 500 ppm.
    assert (stats["relocks"], stats["loosened"], stats["tightened"]) == (0, 0, 0), stats
    assert hiccup.jitter.latency_frames() == clean.jitter.latency_frames()
    # One gap: the audio missing is at most the hiccup's packets.
    assert stats["underruns"] <= seconds * RATE / PERIOD + 1, stats
    after = AT + round((seconds + 0.1) * RATE)
    if drift:
        assert stats["loop_jumps"] == 0, stats
        assert abs(stats["drift_ppm"] - clean.stats().drift_ppm) < 1, stats
    else:
        assert np.array_equal(hiccup.out[:, after:], clean.out[:, after:])
    assert np.abs(hiccup.out).max() <= np.abs(clean.out).max()
