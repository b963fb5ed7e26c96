"""Levels per channel, from the meters the process callbacks keep.

Each JACK cycle the C side (``jn_meter`` in rt.c) writes the peak, the sum
of squares and the clipped samples of every channel, for the sender's
inputs and for the receiver's outputs as played.  `Levels` is their one
reader: it folds the cycles into tenths of a second (`Levels.meter`, what a
meter on a screen shows), those into one-second values (`Levels.history`,
the last ten minutes), and counts clips since the start.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from jacknet.rt._rt import ffi, lib

FLOOR_DBFS = -120.0   # silence, as a number JSON can carry
HISTORY_SECONDS = 600
METER_SECONDS = 0.1  # a screen's meter moves ten times a second
# How often a worker folds the slots: well inside what they hold (1024
# cycles: 0.34 s at 16 frames and 48 kHz), a fifth of a meter's tenth.
POLL_SECONDS = 0.02


def dbfs(amplitude: float) -> float:
    """An amplitude in dB below full scale (1.0), floored at `FLOOR_DBFS`."""
    if amplitude <= 10 ** (FLOOR_DBFS / 20):
        return FLOOR_DBFS
    return round(20 * math.log10(amplitude), 1)


@dataclass(frozen=True)
class Second:
    """One second (or, as `Levels.meter`, a tenth) of levels, a value per channel."""

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
        self.meter: Second | None = None
        self.clips = (0,) * n
        self._from = 0
        self._due = 0.0  # when poll_if_due polls next
        # The tenth being read (what jn_meter_read adds to) and the second
        # the tenths are folded into.
        self._tenth = _Sums(n)
        self._second = _Sums(n)
        self._total_clips = np.zeros(n, np.uint64)
        t = self._tenth
        self._ptrs = (ffi.from_buffer("float[]", t.peak), ffi.from_buffer("double[]", t.sumsq),
                      ffi.from_buffer("uint64_t[]", t.clips),
                      ffi.from_buffer("uint64_t[]", t.frames))

    def poll_if_due(self) -> None:
        """`poll`, at most every `POLL_SECONDS`: a worker turns for every
        datagram, and the slots last far longer than that."""
        now = time.monotonic()
        if now >= self._due:
            self._due = now + POLL_SECONDS
            self.poll()

    def poll(self) -> None:
        """Fold the cycles metered since the last poll (the reader's thread only)."""
        self._from = int(lib.jn_meter_read(self._meter, self._from, *self._ptrs))
        tenth, second = self._tenth, self._second
        if tenth.frames[0] < self.rate * METER_SECONDS:
            return
        self.meter = tenth.levels()
        second.add(tenth)
        tenth.clear()
        if second.frames[0] < self.rate:
            return
        self._total_clips += second.clips
        self.history.append(second.levels())
        self.clips = tuple(int(c) for c in self._total_clips)
        second.clear()

    @property
    def last(self) -> Second | None:
        """The last whole second (None before one); any thread may ask."""
        history = self.history
        return history[-1] if history else None


class _Sums:
    """Peak, sum of squares, clips and frames per channel, summed over cycles."""

    def __init__(self, n: int) -> None:
        self.peak = np.zeros(n, np.float32)
        self.sumsq = np.zeros(n, np.float64)
        self.clips = np.zeros(n, np.uint64)
        self.frames = np.zeros(n, np.uint64)

    def add(self, other: _Sums) -> None:
        np.maximum(self.peak, other.peak, out=self.peak)
        self.sumsq += other.sumsq
        self.clips += other.clips
        self.frames += other.frames

    def clear(self) -> None:
        for a in (self.peak, self.sumsq, self.clips, self.frames):
            a[:] = 0

    def levels(self) -> Second:
        return Second(tuple(dbfs(float(p)) for p in self.peak),
                      tuple(dbfs(math.sqrt(s / f)) if f else FLOOR_DBFS
                            for s, f in zip(self.sumsq, self.frames.astype(np.float64))),
                      tuple(int(c) for c in self.clips))


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
