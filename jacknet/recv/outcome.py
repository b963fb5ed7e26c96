"""What became of one packet (or block) on its way to the playout."""
from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """The result of placing a block, shared by the sequencer, the clock bridge
    and the jitter buffer; the stream pipeline counts the ones that matter."""

    STORED = "stored"
    """In the ring, in time to be played."""
    SETTLING = "settling"
    """Stored (if it fits) while the mapping is still being measured."""
    HELD = "held"
    """Waiting behind a missing packet (ordered decoding), placed later."""
    LATE = "late"
    """Every frame of it was already played, revived or concealed."""
    DUPLICATE = "duplicate"
    """It came before."""
    REVIVED = "revived"
    """It came after a copy of it was placed: neither late nor lost, and
    not a duplicate of a packet that came."""
    OVERRUN = "overrun"
    """Further ahead than the ring holds: the buffer re-syncs."""
    FOREIGN = "foreign"
    """Of another stream than the one playing."""
