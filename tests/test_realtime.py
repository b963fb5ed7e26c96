"""The C capture ring and the test signal, without JACK."""
from __future__ import annotations

import numpy as np

from jacknet.rt._rt import lib
from jacknet.rt.engines import Capture
from jacknet.testing.signals import known_signal


def test_numpy_test_signal_matches_c():
    t = np.array([0, 1, 2**31, 2**32 - 1, 123456], np.int64)
    for ch in (0, 5, 63):
        c = np.array([lib.jn_test_sample(ch, int(x)) for x in t], np.float32)
        assert np.array_equal(known_signal(ch, t), c)
    assert np.abs(known_signal(0, np.arange(100000))).max() <= 0.5


def test_capture_reads_blocks_in_order_across_the_wrap():
    cap = Capture(2, capacity=1024)
    out = np.zeros((2, 100), np.float32)
    data = np.arange(2 * 5000, dtype=np.float32).reshape(2, 5000)
    pos_seen, got = [], []
    for c in range(0, 5000, 50):
        cap.push(1000 + c, data[:, c:c + 50], jack_transport_state=1, jack_transport_frame=c)
        while (pos := cap.read_into(out)) >= 0:
            pos_seen.append(pos)
            got.append(out.copy())
    assert pos_seen == list(range(0, 5000, 100))
    assert np.array_equal(np.concatenate(got, axis=1), data)
    assert cap.dropped == 0 and cap.discontinuities == 0
    assert cap.frame_time_at(4990) == 1000 + 4990
    assert cap.jack_transport_at(4990) == (1, 4990)


def test_capture_overrun_drops_the_oldest_and_counts_it():
    cap = Capture(1, capacity=1024)
    for c in range(40):  # 40 * 64 frames, nobody reading
        cap.push(c * 64, np.full((1, 64), c, np.float32))
    out = np.zeros((1, 64), np.float32)
    pos = cap.read_into(out)
    assert cap.dropped > 0 and pos == cap.dropped    # skipped straight past the oldest
    assert out[0, 0] == pos // 64                    # and what it read is the newest audio


def test_capture_counts_discontinuities():
    cap = Capture(1, capacity=1024)
    cap.push(0, np.zeros((1, 64), np.float32))
    cap.push(64, np.zeros((1, 64), np.float32))
    cap.push(1000, np.zeros((1, 64), np.float32))
    assert cap.discontinuities == 1


def test_a_missed_cycle_is_filled_with_silence_so_positions_keep_jack_s_clock():
    cap = Capture(1, capacity=4096)
    cap.fill_missed_cycles(256)
    for c, ft in enumerate((1000, 1064, 1192, 1256)):  # JACK skipped the cycle at 1128
        cap.push(ft, np.full((1, 64), c + 1, np.float32), jack_transport_state=1,
                 jack_transport_frame=ft - 1000)
    out = np.zeros((1, 320), np.float32)
    assert cap.read_into(out) == 0
    assert np.array_equal(out[0], np.repeat([1, 2, 0, 3, 4], 64))
    assert cap.discontinuities == 1 and cap.filled == 64
    assert [cap.frame_time_at(p) for p in (0, 128, 191, 192, 319)] == [1000, 1128, 1191, 1192, 1319]
    assert cap.jack_transport_at(130) == (1, 130) and cap.jack_transport_at(200) == (1, 200)
    # Blocks with any silence in them, and only those.
    assert [p for p in range(0, 320, 32) if cap.filled_in(p, 32)] == [128, 160]
    assert cap.filled_in(100, 32) and cap.filled_in(190, 32) and not cap.filled_in(192, 128)


def test_a_gap_longer_than_the_fill_or_a_recorder_s_gap_is_left_as_it_is():
    for fill, ahead in ((0, 64), (128, 192)):
        cap = Capture(1, capacity=4096)
        cap.fill_missed_cycles(fill)
        cap.push(0, np.ones((1, 64), np.float32))
        cap.push(64 + ahead, np.ones((1, 64), np.float32))
        assert cap.discontinuities == 1 and cap.filled == 0
        assert cap.frame_time_at(64) == 64 + ahead
        assert not cap.filled_in(0, 128)
