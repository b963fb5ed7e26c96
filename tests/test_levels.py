"""Levels per channel, metered in the process callbacks (rt.c, jn_meter)
and folded by monitor.levels.Levels: exact on known blocks, and the same
on both ends of a real link."""
from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import Link
from jacknet.monitor.levels import FLOOR_DBFS, Levels, dbfs, levels_stats
from jacknet.rt.engines import Capture, Playout

RATE = 48000


def test_peak_rms_and_clips_of_known_blocks():
    cap = Capture(3, 1 << 15)
    levels = Levels(cap, RATE)
    block = np.zeros((3, 128), np.float32)
    block[0] = 0.5                      # -6.0 dBFS, peak and RMS
    block[1, ::2], block[1, 1::2] = 1.0, -1.25   # full scale and beyond: every sample clips
    for k in range(375):               # exactly one second
        cap.push(k * 128, block)
    levels.poll()
    last = levels.last
    assert last.peak_dbfs == (-6.0, 1.9, FLOOR_DBFS)
    assert last.rms_dbfs == (-6.0, dbfs(np.sqrt((1 + 1.5625) / 2)), FLOOR_DBFS)
    assert last.clips == (0, RATE, 0) and levels.clips == (0, RATE, 0)
    levels.poll()   # nothing new: no second yet
    assert len(levels.history) == 1


def test_the_stats_carry_the_same_fields_before_the_first_second_as_after():
    cap = Capture(2, 1 << 15)
    levels = Levels(cap, RATE)
    before = levels_stats(levels)
    assert before == {"peak_dbfs": [FLOOR_DBFS] * 2, "rms_dbfs": [FLOOR_DBFS] * 2, "clips": [0, 0]}
    for k in range(375):
        cap.push(k * 128, np.full((2, 128), 0.5, np.float32))
    levels.poll()
    after = levels_stats(levels)
    assert after.keys() == before.keys() and after["peak_dbfs"] == [-6.0, -6.0]


def test_the_meter_moves_every_tenth_of_a_second_and_the_seconds_gather_the_tenths():
    cap = Capture(1, 1 << 15)
    levels = Levels(cap, RATE)
    for k in range(400):
        cap.push(k * 128, np.full((1, 128), 0.5 if k < 300 else 0.25, np.float32))
        levels.poll()   # the worker polls at every turn
    # The last tenth is all 0.25; the second (about 376 cycles) saw 0.5 too.
    assert levels.meter.peak_dbfs == (dbfs(0.25),)
    assert len(levels.history) == 1 and levels.history[0].peak_dbfs == (-6.0,)


def test_the_playout_meters_what_it_plays_concealment_included():
    pl = Playout(1, 1 << 15, RATE)
    levels = Levels(pl, RATE)
    pl.write(0, np.full((1, 4096), 0.25, np.float32))
    pl.set_offset(0)
    out = np.zeros((1, 128), np.float32)
    for k in range(375):
        pl.run(k * 128, out)   # 32 cycles of audio, then a gap fading to silence
    levels.poll()
    assert levels.last.peak_dbfs == (dbfs(0.25),)
    assert levels.last.rms_dbfs[0] < dbfs(0.25) - 9   # mostly silence


def test_a_reader_far_behind_misses_cycles_but_reads_no_garbage():
    cap = Capture(1, 1 << 15)
    levels = Levels(cap, RATE)
    for k in range(5000):   # five times the meter's ring
        cap.push(k * 128, np.full((1, 128), 0.5 if k < 4000 else 0.125, np.float32))
    levels.poll()
    # Only the newest 960 cycles are read: all of them at 0.125.
    assert levels.last.peak_dbfs == (dbfs(0.125),)


@pytest.mark.jack
def test_both_ends_of_a_link_meter_the_known_signal(jack_servers, links):
    server = jack_servers(128)
    link = Link(server, "levels", 2, recv_channels=3)
    links.append(link)
    time.sleep(3.5)
    sent, played = link.sender.stats(), link.receiver.stats()
    # The known signal is uniform in [-0.5, 0.5): peak -6.0 dBFS, RMS
    # 0.5 / sqrt(3), -10.8 dBFS; the receiver's third output has no channel
    # to play, and is silent.
    for peaks, rms in ((sent.peak_dbfs, sent.rms_dbfs), (played.peak_dbfs[:2], played.rms_dbfs[:2])):
        assert peaks == [-6.0, -6.0] and all(abs(r + 10.8) <= 0.1 for r in rms), (peaks, rms)
    assert played.peak_dbfs[2] == FLOOR_DBFS and played.clips == [0, 0, 0]
    assert sent.clips == [0, 0]
