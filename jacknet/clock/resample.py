"""A streaming resampler whose ratio may change at every call, without clicks.

libsamplerate (through the ``samplerate`` package) ramps the ratio smoothly
from one call's value to the next, which is what drift correction needs; its
sinc converters keep the audio band clean.  Blocks are planar float32
(channels x frames), as everywhere in jacknet.
"""
from __future__ import annotations

import numpy as np

QUALITIES = ("linear", "sinc_fastest", "sinc_medium", "sinc_best")
DEFAULT_QUALITY = "sinc_fastest"


class Resampler:
    """Resample a stream block by block.

    Parameters
    ----------
    channels : int
        Channels per block.
    quality : str
        libsamplerate converter: one of `QUALITIES` (CPU cost grows along
        the list; see docs/benchmarks.md).
    """

    def __init__(self, channels: int, quality: str = DEFAULT_QUALITY) -> None:
        import samplerate
        if quality not in QUALITIES:
            raise ValueError(f"resampler quality must be one of {', '.join(QUALITIES)}")
        self.channels = channels
        self._state = samplerate.Resampler(quality, channels=channels)
        self.delay = _delay(quality)

    def process(self, block: np.ndarray, ratio: float) -> np.ndarray:
        """Resample ``block`` at ``ratio`` output frames per input frame."""
        out = self._state.process(np.ascontiguousarray(block.T), ratio, end_of_input=False)
        return np.ascontiguousarray(out.T, dtype=np.float32).reshape(self.channels, -1)

    def reset(self) -> None:
        """Start afresh: the frames held back are dropped, and the next
        block's first frame is the first one out."""
        self._state.reset()


_DELAYS: dict[str, int] = {}


def _delay(quality: str) -> int:
    """Input frames a converter holds back: its output's last frame is of
    input frame (frames in - 1 - delay).  Measured once, on a ramp: what
    libsamplerate does is easier measured than derived per converter."""
    if quality not in _DELAYS:
        import samplerate
        ramp = np.arange(4096, dtype=np.float32)
        out = samplerate.Resampler(quality, channels=1).process(ramp, 1.0, end_of_input=False)
        _DELAYS[quality] = round(len(ramp) - 1 - float(out[-1]))
    return _DELAYS[quality]
