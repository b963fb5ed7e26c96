"""Levels per channel, from the meters the process callbacks keep.

Each JACK cycle the C side (``jn_meter`` in rt.c) writes the peak, the sum
of squares and the clipped samples of every channel, for the sender's
inputs and for the receiver's outputs as played.  `Levels` is their one
reader: it folds the cycles into one-second values, keeps the last ten
minutes of them, and counts clips since the start.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from jacknet.rt._rt import ffi, lib

FLOOR_DBFS = -120.0   # silence, as a number JSON can carry
HISTORY_SECONDS = 600


def dbfs(amplitude: float) -> float:
    """An amplitude in dB below full scale (1.0), floored at `FLOOR_DBFS`."""
    if amplitude <= 10 ** (FLOOR_DBFS / 20):
        return FLOOR_DBFS
    return round(20 * math.log10(amplitude), 1)


@dataclass(frozen=True)
class Second:
    """One second of levels, a value per channel."""

    peak_dbfs: tuple[float, ...]
    rms_dbfs: tuple[float, ...]
    clips: tuple[int, ...]


class Levels:
    """The reader of one engine's meter (`Capture` or `Playout`).

    Parameters
    ----------
    engine
        Its C state has a ``meter`` (rt.h, ``jn_meter``).
    rate : int
        Frames per second: how many make a `Second`.
    """

    def __init__(self, engine, rate: int) -> None:
        self._meter = ffi.addressof(engine.state, "meter")
        self._keep = engine  # the C state must outlive us
        n = engine.channels
        self.rate = rate
        self.history: deque[Second] = deque(maxlen=HISTORY_SECONDS)
        self.clips = (0,) * n
        self._from = 0
        self._peak = np.zeros(n, np.float32)
        self._sumsq = np.zeros(n, np.float64)
        self._clips = np.zeros(n, np.uint64)
        self._frames = np.zeros(n, np.uint64)
        self._total_clips = np.zeros(n, np.uint64)
        self._ptrs = (ffi.from_buffer("float[]", self._peak), ffi.from_buffer("double[]", self._sumsq),
                      ffi.from_buffer("uint64_t[]", self._clips),
                      ffi.from_buffer("uint64_t[]", self._frames))

    def poll(self) -> None:
        """Fold the cycles metered since the last poll (the reader's thread only)."""
        self._from = int(lib.jn_meter_read(self._meter, self._from, *self._ptrs))
        if self._frames[0] < self.rate:
            return
        frames = self._frames.astype(np.float64)
        self._total_clips += self._clips
        self.history.append(Second(tuple(dbfs(float(p)) for p in self._peak),
                                   tuple(dbfs(math.sqrt(s / f)) for s, f in zip(self._sumsq, frames)),
                                   tuple(int(c) for c in self._clips)))
        self.clips = tuple(int(c) for c in self._total_clips)
        for a in (self._peak, self._sumsq, self._clips, self._frames):
            a[:] = 0

    @property
    def last(self) -> Second | None:
        """The last whole second (None before one); any thread may ask."""
        history = self.history
        return history[-1] if history else None


def levels_stats(levels: Levels | None) -> dict:
    """The stats' ``peak_dbfs``, ``rms_dbfs`` and ``clips``.

    Before the first whole second they read as silence, so the stats line
    carries the same fields from its first print on (scripts parse it).
    """
    if levels is None:
        return {}
    last = levels.last
    if last is None:
        silence = [FLOOR_DBFS] * len(levels.clips)
        return {"peak_dbfs": silence, "rms_dbfs": list(silence), "clips": list(levels.clips)}
    return {"peak_dbfs": list(last.peak_dbfs), "rms_dbfs": list(last.rms_dbfs),
            "clips": list(levels.clips)}
