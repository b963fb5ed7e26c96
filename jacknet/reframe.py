"""Captured audio at the JACK rate in, codec-rate blocks out.

Opus runs at 48 kHz (or 8/12/16/24), so a sender on a 44.1, 88.2 or 96 kHz
JACK server converts before it encodes.  `RateConverter` takes the capture
ring's blocks with their positions, resamples them at the fixed ratio, and
cuts the result into codec frames stamped on the codec rate's own time line.
It runs in the sender's worker thread, never in the process callback.
"""
from __future__ import annotations

import numpy as np

from jacknet.clock.resample import DEFAULT_QUALITY, Resampler


class RateConverter:
    """Fixed-ratio conversion and re-framing.

    Parameters
    ----------
    channels : int
        Channels per block.
    rate_in, rate_out : int
        The JACK rate and the codec's.
    frames : int
        Frames per block out (one codec frame).
    quality : str
        libsamplerate converter (see `jacknet.clock.resample`).
    """

    def __init__(self, channels: int, rate_in: int, rate_out: int, frames: int,
                 quality: str = DEFAULT_QUALITY) -> None:
        self.channels = channels
        self.ratio = rate_out / rate_in
        self.frames = frames
        self.quality = quality
        self._expected: int | None = None

    def _restart(self, pos: int) -> None:
        # A gap in the capture (the worker fell behind): the converter's
        # history belongs to audio that is no longer next to this.
        self._resampler = Resampler(self.channels, self.quality)
        self._pending = np.zeros((self.channels, 0), np.float32)
        self._next_stamp = round(pos * self.ratio)

    def push(self, pos: int, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """One captured ``block`` whose first frame is capture position ``pos``:
        the codec frames it completes, each with its timestamp (codec rate)."""
        if pos != self._expected:
            self._restart(pos)
        self._expected = pos + block.shape[1]
        out = self._resampler.process(block, self.ratio)
        pending = np.concatenate((self._pending, out), axis=1)
        blocks = []
        start = 0
        while pending.shape[1] - start >= self.frames:
            blocks.append((self._next_stamp, pending[:, start:start + self.frames]))
            self._next_stamp += self.frames
            start += self.frames
        self._pending = pending[:, start:]
        return blocks
