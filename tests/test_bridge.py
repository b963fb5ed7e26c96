"""The clock bridge on a playout ring without JACK: a stream that joins late
(large sender timestamps), at 44.1, 88.2 or 96 kHz, lands where the jitter
buffer expects it, and a hole too long to conceal stays a hole."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.clock.bridge import ClockBridge
from jacknet.recv.jitter import JitterBuffer
from jacknet.rt.engines import Playout
from jacknet.stats import as_dict
from jacknet.testing.pipesim import PipeSim, Stream

RATE, PERIOD, FRAMES = 48000, 128, 128


@pytest.mark.parametrize("sender_rate", [44100, 88200, 96000])
def test_a_stream_joined_hours_in_is_placed(sender_rate):
    playout = Playout(2, capacity=1 << 16, samplerate=RATE)
    jitter = JitterBuffer(playout, PERIOD, 240, RATE)
    start = 3 * 3600 * RATE  # the sender has been up for three hours
    assert jitter.admit(7, start, 0)
    bridge = ClockBridge(jitter, 7, 2, FRAMES, sender_rate, RATE)
    block = np.full((2, FRAMES), 0.25, np.float32)
    outcomes = []
    for k in range(40):
        bridge.arrived(start + k * FRAMES, k * FRAMES)
        outcomes.append(bridge.place(start + k * FRAMES, block, k * FRAMES, True))
    assert set(outcomes) <= {"stored", "settling"}, outcomes
    # 40 packets at the sender's rate are this many frames at 48 kHz, less the filter's delay.
    produced = bridge._out_end - start
    assert 40 * FRAMES * RATE / sender_rate - 100 < produced <= 40 * FRAMES * RATE / sender_rate


@pytest.mark.parametrize("hole", [0.15, 0.5, 1.0])
@pytest.mark.parametrize("auto", [False, True], ids=["drift", "auto"])
def test_a_hole_too_long_to_conceal_stays_a_hole(auto, hole):
    """Past the sequencer's concealment the decoder starts afresh; the
    bridge must leave the rest of the hole on the receiver's time line.
    Closed up, the audio after it landed a hole early on the ring: its
    packets came late, and the drift loop saw its distance jump."""
    stream = Stream(frames=FRAMES).build(10 * RATE // FRAMES)
    first = 3 * RATE // FRAMES
    lost = range(first, first + round(hole * RATE / FRAMES))
    cycles = 8 * RATE // PERIOD
    holed = PipeSim(period=PERIOD, margin=256, drift=True, auto=auto)
    holed.run(stream.arrivals(lose=set(lost)), cycles)
    clean = PipeSim(period=PERIOD, margin=256, drift=True, auto=auto)
    clean.run(stream.arrivals(), cycles)
    stats = holed.stats()
    assert stats.decoder_restarts == 1 and stats.lost == len(lost)
    assert (stats.late, stats.relocks, stats.loop_jumps) == (0, 0, 0), as_dict(stats)
    assert holed.jitter.latency_frames() == clean.jitter.latency_frames()
    assert abs(stats.drift_ppm) < 1, stats.drift_ppm
    # From a little after the hole (the fade in, the resampler's filter
    # filling) the audio is that of the same run without the hole, at the
    # same place on the time line, and never louder.
    after = lost.stop * FRAMES + RATE // 20
    assert np.array_equal(holed.out[:, after:], clean.out[:, after:])
    assert np.abs(holed.out).max() <= np.abs(clean.out).max()
