"""The sender's side of transport sync: what its JACK transport does, packet
by packet.

Every packet's header carries the state and frame of the JACK transport at
the packet's first frame, and an epoch that counts starts, stops and
locates: a receiver finds a change in any packet after it, so a lost packet
loses nothing (level, not edge).  A position block (the transport's rate and
the BBT) goes with the first packets after a change and a few times a second.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from jacknet.net.protocol import EPOCHS, TRANSPORT_NONE, PositionBlock

ROLLING = 1
POSITION_SECONDS = 0.25   # a position block at least this often
POSITION_AFTER_CHANGE = 3  # packets after a change that carry one, against loss


@dataclass(frozen=True)
class Said:
    """What one packet says of the JACK transport."""

    state: int
    frame: int
    epoch: int
    position: PositionBlock | None


NO_TRANSPORT = Said(TRANSPORT_NONE, 0, 0, None)


class TransportWatch:
    """Counts the changes of a sender's JACK transport and says when a packet
    carries a position block.

    Parameters
    ----------
    rate : int
        The stream's frames per second (packet timestamps count them).
    jack_rate : int
        The JACK transport's (it differs where Opus converts the rate).
    share : bool
        False (``--no-transport``): every packet says there is no transport.
    """

    def __init__(self, rate: int, jack_rate: int, share: bool = True) -> None:
        self.rate = rate
        self.ratio = jack_rate / rate
        self.share = share
        self.epoch = 0
        self.changes = 0
        self.said: tuple[int, int, int] | None = None
        """State, frame and timestamp of the last packet (None before the first)."""
        self.position_due = 0
        """Packets after a change that must still carry a position block."""
        self.next_position = 0
        """The timestamp from which a packet carries one again."""

    def packet(self, timestamp: int, state: int, frame: int,
               position: Callable[[], PositionBlock | None]) -> Said:
        """The JACK transport's ``state`` and ``frame`` at stream frame
        ``timestamp``; ``position()`` gives its position block then (None
        if forgotten), asked for only when a packet is to carry one."""
        if not self.share:
            return NO_TRANSPORT
        if self._changed(timestamp, state, frame):
            self.epoch = (self.epoch + 1) % EPOCHS
            self.changes += 1
            self.position_due = POSITION_AFTER_CHANGE
        self.said = (state, frame, timestamp)
        block = None
        if self.position_due > 0 or timestamp >= self.next_position:
            block = position()
        if block is not None:
            self.position_due = max(0, self.position_due - 1)
            self.next_position = timestamp + round(POSITION_SECONDS * self.rate)
        return Said(state, frame, self.epoch, block)

    def _changed(self, timestamp: int, state: int, frame: int) -> bool:
        if self.said is None:
            return False
        last_state, last_frame, last_ts = self.said
        if (state == ROLLING) != (last_state == ROLLING):
            return True
        if state == ROLLING:
            # A rolling transport runs with the stream; where the rates
            # differ, timestamps are rounded, so allow a frame or two.
            expected = last_frame + round((timestamp - last_ts) * self.ratio)
            return abs(frame_delta(frame, expected)) > 2
        return frame != last_frame


def frame_delta(a: int, b: int) -> int:
    """``a - b`` for two 32-bit JACK transport frames, across a wrap."""
    delta = (a - b) & 0xFFFFFFFF
    return delta - (1 << 32) if delta >= 1 << 31 else delta
