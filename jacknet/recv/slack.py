"""The least slack of the last few seconds: how early the least early packet
landed ahead of the playout's read position (``slack_ms`` in the stats)."""
from __future__ import annotations

from collections import deque


class SlackWindow:
    """The least slack of the last ``seconds``: a sliding minimum, kept as it
    is fed, so any number of readers may look without moving it."""

    def __init__(self, seconds: float, samplerate: int) -> None:
        self.span = round(seconds * samplerate)
        self._q: deque[tuple[int, int]] = deque()  # (arrival, slack), slack rising

    def add(self, arrival: int, slack: int) -> None:
        q = self._q
        while q and q[-1][1] >= slack:
            q.pop()
        q.append((arrival, slack))
        while q[0][0] <= arrival - self.span:
            q.popleft()

    def least(self, now: int) -> int | None:
        for arrival, slack in list(self._q):  # a copy: the network thread may be adding
            if arrival > now - self.span:
                return slack
        return None
