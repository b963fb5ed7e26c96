"""Whether a packet lies on its stream's timeline, before it may move anything.

A real sender stamps packet ``seq`` with timestamp ``t0 + seq * frames``
(its sequence number and capture position advance together), and both
advance with the time its packets arrive: ``timestamp - arrival * ratio``
(the *skew*) stays within the path's jitter of where it was.  A packet off
that line (a jump of hours, a sequence number that does not go with its
timestamp, a replay of something long gone) cannot come from the sender
being played, so it is a **stray**: counted and dropped before it reaches
the clock mapping, the decoder or the loss count.

The skew followed moves toward each packet on the line by at most
``FOLLOW_SECONDS``, so drift is followed while packets that lie cannot drag
it far in a burst.  When the sender really jumps (its JACK server came back
with a new clock, its capture ring overflowed), nothing lands on the old
line any more: once it has been quiet for ``LEAP_QUIET_SECONDS``, the next
packet starts the line afresh (a **leap**), and the stream is played from
there as if new.  Packets that lie while the real stream keeps landing never
win that way.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from jacknet.recv.sequencer import seq_ahead

STRAY_SECONDS = 2.0        # further than this off the line: a stray
FOLLOW_SECONDS = 0.001     # the line moves toward each packet on it by at most this
LEAP_QUIET_SECONDS = 0.25  # the line may leap once nothing landed on it this long


class Place(StrEnum):
    ON = "on"          # on the timeline
    STRAY = "stray"    # off it: drop
    LEAP = "leap"      # off it, but the old line went quiet: start afresh here


@dataclass
class ContinuityStats:
    strays: int = 0
    """Packets far off their stream's timeline (forged, broken or replayed), dropped."""
    leaps: int = 0
    """Times a stream's timeline started afresh (the sender's clock jumped)."""


class Timeline:
    """One stream's timeline.

    Parameters
    ----------
    sender_rate, receiver_rate : int
        Timestamps count sender frames; arrivals receiver frames.
    frames : int
        Sender frames per packet (what one sequence number stands for).
    stats : ContinuityStats
        Where strays and leaps are counted.
    """

    def __init__(self, sender_rate: int, receiver_rate: int, frames: int,
                 stats: ContinuityStats) -> None:
        self.stats = stats
        self._ratio = sender_rate / receiver_rate
        self._frames = frames
        self._window = STRAY_SECONDS * sender_rate
        self._follow = FOLLOW_SECONDS * sender_rate
        self._quiet = LEAP_QUIET_SECONDS * receiver_rate
        self._skew: float | None = None  # timestamp - arrival * ratio, in sender frames
        self._t0 = 0                     # timestamp - seq * frames, the same for every packet
        self._seq = 0                    # the last sequence number on the line, unwrapped
        self._last_seq = 0
        self._last_on = 0

    def place(self, seq: int, timestamp: int, arrival: int) -> Place:
        """Where a packet lies; a packet on the line (or a leap) moves it."""
        at = arrival * self._ratio
        if self._skew is None:
            self._start(seq, timestamp, at, arrival)
            return Place.ON
        unwrapped = self._seq + seq_ahead(seq, self._last_seq)
        off = timestamp - at - self._skew
        if timestamp - unwrapped * self._frames == self._t0 and abs(off) <= self._window:
            self._skew += max(-self._follow, min(self._follow, off))
            self._seq, self._last_seq, self._last_on = unwrapped, seq, arrival
            return Place.ON
        if arrival - self._last_on < self._quiet:
            self.stats.strays += 1
            return Place.STRAY
        self.stats.leaps += 1
        self._start(seq, timestamp, at, arrival)
        return Place.LEAP

    def line(self, packets: int) -> tuple[float, float] | None:
        """Where the line is now, for a placement made without `place`:
        (skew, reach), such that a packet in sequence whose ``timestamp -
        arrival * ratio`` lies within ``reach`` of ``skew`` is still on it
        after ``packets`` more have moved it.  None before the first packet."""
        if self._skew is None:
            return None
        return self._skew, self._window - packets * self._follow

    def _start(self, seq: int, timestamp: int, at: float, arrival: int) -> None:
        self._skew = timestamp - at
        self._t0 = timestamp - seq * self._frames
        self._seq = self._last_seq = seq
        self._last_on = arrival
