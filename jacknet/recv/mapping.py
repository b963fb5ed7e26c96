"""The clock mapping of one stream: sender timestamp <-> ring index <-> receiver clock.

A packet's frames go into the `Playout` ring at ``index = timestamp + base``;
the JACK cycle that starts at receiver clock ``now`` plays ring indices from
``now - offset``.  ``base`` is set when a stream starts, ``offset`` at every
lock and every deliberate move (loosen, tighten, a new margin).  Whoever
needs to know when a sender frame is heard (the clock bridge, transport
sync, MIDI) asks this object, and is told when it moves (`on_moved`).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Callable

from jacknet.rt.engines import Playout


class Move(StrEnum):
    LOCK = "lock"          # measured afresh (first lock or a re-sync)
    LOOSEN = "loosen"      # grown: packets kept landing late
    TIGHTEN = "tighten"    # lowered: the path is calmer again
    MARGIN = "margin"      # the margin asked for changed (a stream's copies, FEC, lead)


@dataclass(frozen=True)
class Moved:
    """What a listener of `ClockMapping.on_moved` is told."""

    why: Move
    old_offset: int | None
    """None: the playout was not locked before."""
    offset: int


class ClockMapping:
    """One stream's mapping onto the receiver's clock.

    Parameters
    ----------
    playout : Playout
        The ring whose ``offset`` this mapping sets.
    period : int
        Receiver JACK period in frames.
    """

    def __init__(self, playout: Playout, period: int) -> None:
        self.playout = playout
        self.period = period
        self.base = 0
        self.lead = 0     # frames a decoding stage needs before the playout (see `deadline`)
        self.ready = False  # False while the mapping is being measured
        self._listeners: list[Callable[[Moved], None]] = []

    def on_moved(self, listener: Callable[[Moved], None]) -> None:
        """Call ``listener(Moved)`` whenever the offset is set (same thread)."""
        self._listeners.append(listener)

    def start(self, timestamp: int, index: int) -> None:
        """A new stream whose ``timestamp`` goes to ring ``index``; unplayable
        until the next `move`: the old stream's offset means nothing for it."""
        self.base = index - timestamp
        self.ready = False
        self.playout.unlock()

    def remeasure(self) -> None:
        """A re-sync begins: the offset plays on, but no deadline holds until
        the next `move`."""
        self.ready = False

    def move(self, offset: int, why: Move) -> None:
        """Set the playout's offset (the C side follows with a crossfade)."""
        old = self.playout.offset if self.playout.locked else None
        self.playout.set_offset(offset)
        self.ready = True
        for listener in self._listeners:
            listener(Moved(why, old, offset))

    @property
    def offset(self) -> int:
        return self.playout.offset

    def index(self, timestamp: int) -> int:
        """The ring index of sender frame ``timestamp``."""
        return timestamp + self.base

    def timestamp_at(self, index: int) -> int:
        """The sender frame that ring ``index`` holds."""
        return index - self.base

    def deadline(self, timestamp: int) -> int | None:
        """Receiver clock by which sender frame ``timestamp`` must be in the
        ring to be played; None while the mapping is being measured.  The
        cycle that plays ring index ``i`` is the first to start after
        ``i + offset - period`` (cycles start every period from the last one,
        ``now``); `lead` frames before it leave time to decode and write."""
        if not self.ready or not self.playout.locked:
            return None
        pl = self.playout
        after = self.index(timestamp) + pl.offset - self.period + 1 - pl.now
        return pl.now + -(-after // self.period) * self.period - self.lead
