"""The clock bridge on a playout ring without JACK: a stream that joins late
(large sender timestamps), at 44.1, 88.2 or 96 kHz, lands where the jitter
buffer expects it."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.clock.bridge import ClockBridge
from jacknet.recv.jitter import JitterBuffer
from jacknet.rt.engines import Playout

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
