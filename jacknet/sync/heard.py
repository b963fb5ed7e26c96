"""The receiver's record of the sender's JACK transport, from the packets.

Each packet says what the sender's JACK transport did at the packet's first
frame (state, frame, epoch; `jacknet.sync.watch`).  `HeardTransport` keeps
the last seconds of it by stream timestamp, so the follower can ask what the
transport was at any frame it plays, or is about to play.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from jacknet.net.protocol import TRANSPORT_NONE, PositionBlock

ROLLING, STARTING = 1, 3
KEEP_SECONDS = 4.0


@dataclass(frozen=True)
class Heard:
    """The sender's JACK transport at one stream frame."""

    state: int
    frame: float
    """Its transport frame there (at the transport's own rate)."""
    epoch: int

    @property
    def rolling(self) -> bool:
        return self.state == ROLLING


class HeardTransport:
    """What the packets of one sender said of its JACK transport.

    Parameters
    ----------
    rate : int
        The stream's rate: timestamps count its frames.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.transport_rate = rate  # until a position block says otherwise
        self.position: PositionBlock | None = None
        self.changes = 0
        self._keep = round(KEEP_SECONDS * rate)
        self._latest: tuple[int, int, int] | None = None  # what the newest packet said
        self._stamps: list[int] = []
        self._said: list[tuple[int, int, int]] = []   # state, frame, epoch at each stamp
        self._epoch: int | None = None

    def add(self, timestamp: int, state: int, frame: int, epoch: int,
            position: PositionBlock | None = None) -> None:
        """One packet's header (and position block, if it had one)."""
        if position is not None:
            self.position = position
            self.transport_rate = position.rate
        if state == TRANSPORT_NONE:
            self._latest = None
            return
        if self._stamps and timestamp > self._stamps[-1]:
            if epoch != self._epoch:
                self.changes += 1
            self._epoch = epoch
        elif not self._stamps:
            self._epoch = epoch
        at = bisect.bisect_left(self._stamps, timestamp)
        if at < len(self._stamps) and self._stamps[at] == timestamp:
            return
        self._stamps.insert(at, timestamp)
        self._said.insert(at, (state, frame, epoch))
        self._latest = self._said[-1]
        # Cut a second at a time: a cut per packet moves the whole list each time.
        keep = self._keep
        if self._stamps[0] < self._stamps[-1] - keep - self.rate:
            cut = bisect.bisect_left(self._stamps, self._stamps[-1] - keep)
            del self._stamps[:cut], self._said[:cut]

    @property
    def latest(self) -> Heard | None:
        """What the newest packet said (None if it said nothing); any thread
        may ask."""
        said = self._latest
        if said is None:
            return None
        state, frame, epoch = said
        return Heard(state, float(frame) if state == ROLLING else frame, epoch)

    def at(self, timestamp: float) -> Heard | None:
        """The sender's transport at stream frame ``timestamp``, carried on
        from the last packet at or before it (None if there is none)."""
        i = bisect.bisect_right(self._stamps, timestamp) - 1
        if i < 0:
            return None
        state, frame, epoch = self._said[i]
        if state == ROLLING:
            frame = frame + (timestamp - self._stamps[i]) * self.transport_rate / self.rate
        return Heard(state, frame, epoch)

    @property
    def newest(self) -> int | None:
        """The timestamp of the newest packet heard."""
        return self._stamps[-1] if self._stamps else None
