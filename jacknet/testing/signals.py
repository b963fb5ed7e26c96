"""Known signals for tests, the demo and the benchmarks.

`Generator` plays them into JACK output ports from C (``rt/generator.c``);
`known_signal` and `known_music` compute the same samples in numpy, so a
checker can verify any recorded frame without a copy of what was sent.
"""
from __future__ import annotations

import numpy as np

from jacknet.rt._rt import ffi, lib
from jacknet.rt.engines import _Engine


def known_signal(channel: int, frame_times: np.ndarray) -> np.ndarray:
    """The generator's known signal, computed in numpy (bit-identical to C).

    Parameters
    ----------
    channel : int
        Zero-based channel index.
    frame_times : numpy.ndarray
        JACK frame times (any integer dtype, taken modulo 2**32).
    """
    t = np.asarray(frame_times).astype(np.uint32)
    with np.errstate(over="ignore"):
        h = t * np.uint32(0x9E3779B1) + np.uint32(((channel + 1) * 0x85EBCA77) & 0xFFFFFFFF)
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(12)
        h *= np.uint32(0x297A2D39)
        h ^= h >> np.uint32(15)
    return ((h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)) - np.float32(0.5)


def known_music(channel: int, frame_times: np.ndarray) -> np.ndarray:
    """The generator's ``"music"`` signal, computed in numpy (see rt.c)."""
    t = np.asarray(frame_times).astype(np.uint32)
    s = 0.05 * known_signal(channel, t).astype(np.float64)
    for period, gain in ((211 + 2 * channel, 0.3), (37, 0.15), (13, 0.06)):
        s += gain * np.sin(6.283185307179586 * (t % np.uint32(period)).astype(np.float64) / period
                           + channel)
    return s.astype(np.float32)


class Generator(_Engine):
    """Known test signal (``"noise"``, or ``"music"`` for lossy codecs),
    ``"impulse"`` train, a ``"tone"`` of ``tone_hz`` at ``rate``, the JACK
    ``"transport"`` as audio (generator.c), or ``"silence"``."""

    process_name = "jn_generator_process"
    MODES = {"silence": 0, "noise": 1, "impulse": 2, "music": 3, "tone": 4, "transport": 5}

    def __init__(self, channels: int, mode: str = "noise", impulse_interval: int = 0,
                 tone_hz: int = 1000, rate: int = 48000) -> None:
        super().__init__(ffi.gc(lib.jn_generator_new(channels), lib.jn_generator_free), channels)
        self.state.impulse_interval = impulse_interval
        self.state.tone_hz, self.state.rate = tone_hz, rate
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        self.state.mode = self.MODES[mode]
