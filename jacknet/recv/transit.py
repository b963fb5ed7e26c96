"""The transit packets take now: what the latency held is measured from.

A packet's transit is its arrival less the end of its frames on the ring's
time line (receiver frames).  The jitter buffer locks on a low percentile of
it and counts the latency held as ``offset - frames - transit``.  Taken once
at the lock, that transit can go stale: whatever moves the arrivals for good
against the stamps (a sender held up longer than its missed-cycle fill
covers, a receiver's server losing time, a path that got slower) makes every
later packet land later; the buffer loosens by it, and a count from the lock
would grow by every such step while the audio held stays the same.
`TransitWindow` measures it afresh from the last few seconds of packets
instead, so the latency reported, and the one ``--latency auto`` steers by, is
the audio actually held.
"""
from __future__ import annotations

from collections import deque

from jacknet.recv.policy import low_transit


class TransitWindow:
    """The low transit (`low_transit`) of the packets of the last ``seconds``.

    Parameters
    ----------
    seconds : float
        How much recent traffic counts.  A jump of the arrivals shows in full
        once nearly all of it is newer than the jump.
    samplerate : int
        Receiver frames per second.
    refresh_seconds : float
        The percentile is worked out again at most this often: a sort of
        the window per packet would cost more than the packet.
    least_seconds : float
        No measurement (`low` is None) before this much traffic since `clear`.
    """

    def __init__(self, seconds: float, samplerate: int, refresh_seconds: float = 0.1,
                 least_seconds: float = 0.5) -> None:
        self.span = round(seconds * samplerate)
        self.refresh = round(refresh_seconds * samplerate)
        self.least = round(least_seconds * samplerate)
        self._q: deque[tuple[int, float]] = deque()  # (arrival, transit)
        self._first = 0
        self._next = 0
        self.low: float | None = None
        """The low transit of the window, or None with too little traffic."""

    def clear(self) -> None:
        """Forget every packet (a fresh lock measures afresh)."""
        self._q.clear()
        self.low = None

    def add(self, arrival: int, transit: float) -> None:
        """One packet that took ``transit`` frames, arriving at ``arrival``."""
        q = self._q
        if not q:
            self._first, self._next = arrival, arrival
        q.append((arrival, transit))
        while q[0][0] <= arrival - self.span:
            q.popleft()
        if arrival >= self._next and arrival - self._first >= self.least:
            self._next = arrival + self.refresh
            self.low = low_transit([t for _, t in q])
