"""Outages: stretches of 100 ms or more with no datagram from the sender.

A link that says "fine" through drop-outs is worse than no monitor at all
(JackTrip's users found their Wi-Fi that way), so every gap is measured
where datagrams arrive, on the receiver's network thread, which is the one
writer.  Any thread may read.
"""
from __future__ import annotations

import threading
from collections import deque

OUTAGE_SECONDS = 0.1
MINUTE = 60.0


class Outages:
    """Gaps between datagrams of `OUTAGE_SECONDS` or more.

    Parameters
    ----------
    threshold : float
        The shortest gap, in seconds, that is an outage.
    """

    def __init__(self, threshold: float = OUTAGE_SECONDS) -> None:
        self.threshold = threshold
        self.count = 0
        """Outages that have ended, since the start."""
        self.last_seconds: float | None = None
        """How long the last one that ended lasted."""
        self._last: float | None = None  # when the newest datagram came
        self._ends: deque[float] = deque()
        self._lock = threading.Lock()  # the deque is written and read by two threads

    def arrived(self, now: float) -> float | None:
        """A datagram came at ``now`` (seconds, monotonic); returns the length
        of the outage it ended, if it ended one."""
        last, self._last = self._last, now
        if last is None or now - last < self.threshold:
            return None
        gap = now - last
        with self._lock:
            self._ends.append(now)
            while self._ends[0] < now - MINUTE:
                self._ends.popleft()
        self.last_seconds = gap
        self.count += 1
        return gap

    def ongoing(self, now: float, seen: float | None = None) -> float | None:
        """Seconds since the newest datagram, if that is an outage already.
        ``seen``: a newer datagram the writer has not told of yet (the
        receiver's C path tells of its datagrams in batches)."""
        last = self._last
        if seen is not None and (last is None or seen > last):
            last = seen
        if last is None or now - last < self.threshold:
            return None
        return now - last

    def last_minute(self, now: float, seen: float | None = None) -> int:
        """Outages that ended in the last minute, and one going on now."""
        with self._lock:
            ended = sum(1 for t in self._ends if t >= now - MINUTE)
        return ended + (self.ongoing(now, seen) is not None)
