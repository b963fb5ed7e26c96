"""Cycles JACK did not run the sender in (its server's xruns), on a
simulated clock: the sender's real `Capture` and `cut` make the packets, a
`PipeSim` receives them.  Packets are stamped with capture positions; with
the missed cycles filled in, those keep counting JACK's clock, so an xrun is
a hole of one packet that the receiver fades over, and nothing after it
lands late."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.recv.policy import TIGHTEN_FRAMES
from jacknet.testing.pipesim import RATE, PipeSim, captured

PERIOD = 128
CYCLES = 8 * RATE // PERIOD
# A storm after 3 s: twenty missed cycles, ten a second.
STORM = {3 * RATE // PERIOD + k * (RATE // 10 // PERIOD) for k in range(20)}


@pytest.mark.parametrize("path", ["fixed", "auto"])
def test_a_missed_cycle_costs_one_faded_packet_and_no_latency(path):
    arrivals, missed = captured(CYCLES, PERIOD, STORM, fill=True)
    assert missed == len(STORM)
    auto = path == "auto"
    sim = PipeSim(period=PERIOD, margin=48, auto=auto, drift=auto)
    sim.run(arrivals, 3 * RATE // PERIOD - 1)
    calm = sim.jitter.latency_frames()
    sim.run([], CYCLES - 3 * RATE // PERIOD + 1)
    s = sim.stats()
    assert (s.loosened, s.relocks, s.late) == (0, 0, 0)
    assert s.lost == missed
    assert abs(sim.jitter.latency_frames() - calm) <= TIGHTEN_FRAMES, (sim.jitter.latency_frames(), calm)
    # Exact but around the holes: each costs at most the cycles its packet
    # and the fades beside it touch.
    if not auto:  # resampled audio is not sample-exact
        bad = [m for m in range(RATE // PERIOD, CYCLES - 4)
               if not sim.exact(m * PERIOD, (m + 1) * PERIOD)]
        assert len(bad) <= 3 * len(STORM), bad
        assert sim.exact((CYCLES - 4 - RATE // PERIOD) * PERIOD, (CYCLES - 4) * PERIOD)
    # Never louder than the same link with no hole (resampling noise
    # overshoots its samples' peak by itself).
    clean = PipeSim(period=PERIOD, margin=48, auto=auto, drift=auto)
    clean.run(captured(CYCLES, PERIOD, set(), fill=True)[0], CYCLES)
    assert np.abs(sim.out).max() <= np.abs(clean.out).max()


def test_closed_up_instead_every_missed_cycle_is_a_step_the_buffer_loosens_by():
    """Why the fill: stamped with a count of captured frames that skips the
    missed cycles, every later packet lands a period later for good."""
    arrivals, missed = captured(CYCLES, PERIOD, STORM, fill=False)
    assert missed == 0
    sim = PipeSim(period=PERIOD, margin=48)
    sim.run(arrivals, CYCLES)
    s = sim.stats()
    assert s.loosened >= len(STORM) // 2, s.loosened
