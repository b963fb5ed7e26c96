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
        self.channels = n = engine.channels
        self.rate = rate
        self.history: deque[Second] = deque(maxlen=HISTORY_SECONDS)
        self.meter: Second | None = None
        self.clips = (0,) * n
        self._from = 0
        self._due = 0.0  # when poll_if_due polls next
        self._sums = ffi.new("jn_sums[2]")  # the tenth being read, and its second
        self._tenth, self._second = self._sums + 0, self._sums + 1
        self._tenth_frames = rate * METER_SECONDS
        self._total_clips = [0] * n

    def poll_if_due(self) -> None:
        """`poll`, at most every `POLL_SECONDS`: a worker turns for every
        datagram, and the slots last far longer than that."""
        now = time.monotonic()
        if now >= self._due:
            self._due = now + POLL_SECONDS
            self.poll()

    def poll(self) -> None:
        """Fold the cycles metered since the last poll (the reader's thread only)."""
        # No numpy here: a worker polls between packets, its caches cold,
        # where each numpy call cost tens of microseconds (a poll with
        # numpy sums cost 84 µs on average in a live link at period 128).
        tenth, second = self._tenth, self._second
        self._from = lib.jn_meter_read(self._meter, self._from, tenth, second)
        if tenth.frames < self._tenth_frames:
            return
        self.meter = _levels(tenth, self.channels)
        _clear(tenth)
        if second.frames < self.rate:
            return
        last = _levels(second, self.channels)
        self._total_clips = [a + b for a, b in zip(self._total_clips, last.clips)]
        self.history.append(last)
        self.clips = tuple(self._total_clips)
        _clear(second)

    @property
    def last(self) -> Second | None:
        """The last whole second (None before one); any thread may ask."""
        history = self.history
        return history[-1] if history else None


def _levels(sums, n: int) -> Second:
    """The levels of a ``jn_sums`` of ``n`` channels."""
    frames = sums.frames
    return Second(tuple(dbfs(p) for p in sums.peak[0:n]),
                  tuple(dbfs(math.sqrt(q / frames)) if frames else FLOOR_DBFS
                        for q in sums.sumsq[0:n]),
                  tuple(sums.clips[0:n]))


def _clear(sums) -> None:
    ffi.memmove(sums, _ZERO_SUMS, len(_ZERO_SUMS))


_ZERO_SUMS = bytes(ffi.sizeof("jn_sums"))


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
