"""The sender's conversion for Opus: JACK periods at 44.1/88.2/96 kHz in,
48 kHz Opus frames out, stamped without a hole, and restarted at a gap."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.reframe import RateConverter

FRAME = 240  # 5 ms at 48 kHz


def tone(rate: int, frames: int, start: int = 0) -> np.ndarray:
    t = (np.arange(frames) + start) / rate
    return np.stack([np.sin(2 * np.pi * 1000 * t)] * 2).astype(np.float32)


@pytest.mark.parametrize("rate", [44100, 88200, 96000])
def test_periods_in_opus_frames_out_at_48k(rate):
    conv = RateConverter(2, rate, 48000, FRAME)
    out = []
    for k in range(200):
        out += conv.push(k * 256, tone(rate, 256, k * 256))
    stamps = [s for s, _ in out]
    assert all(b.shape == (2, FRAME) for _, b in out)
    assert np.all(np.diff(stamps) == FRAME)  # one continuous 48 kHz time line
    produced = len(out) * FRAME
    assert 200 * 256 * 48000 / rate - FRAME - 200 < produced <= 200 * 256 * 48000 / rate
    # Still a 1 kHz tone, now at 48 kHz: compare with one made there.
    x = np.concatenate([b for _, b in out], axis=1)[0, 2000:]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.argmax(spectrum) * 48000 / len(x) == pytest.approx(1000, abs=48000 / len(x))


def test_a_gap_in_the_capture_restarts_the_time_line_where_it_resumes():
    conv = RateConverter(1, 44100, 48000, FRAME)
    for k in range(10):
        conv.push(k * 128, np.zeros((1, 128), np.float32))
    later = 44100 * 60  # a minute on (the worker fell behind, the ring skipped)
    out = []
    for k in range(10):
        out += conv.push(later + k * 128, np.zeros((1, 128), np.float32))
    assert out[0][0] == round(later * 48000 / 44100)
