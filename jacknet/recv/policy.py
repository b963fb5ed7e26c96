"""When the jitter buffer moves its mapping: relock, loosen and tighten, as
pure functions of the margins packets land with (no I/O, no playout).

The `JitterBuffer` feeds every measured packet in and applies what comes
out; tests drive the same rules with made-up numbers.

* **relock**: this many fresh packets in a row whose first frames were
  already played mean the mapping is stale (transit grew past the margin).
* **loosen**: packets that land partly late, measured exactly against the
  read position, ``LATE_IN_WINDOW`` times within ``LATE_WINDOW_SECONDS``:
  the margin is too small, so grow by the worst lateness seen plus a step.
* **tighten**: after a lock or a loosening, often made inside a
  disturbance, the slack packets land with is watched over
  ``REVIEW_WINDOWS`` windows of ``REVIEW_SECONDS``; in the first window
  whose least slack exceeds the margin by more than ``TIGHTEN_FRAMES`` (a
  stream's first lock: and a period) the latency comes back down to leave
  exactly the margin.  The least, not a low percentile: slack is measured
  exactly against the read position, and the rare late packets a
  loosening covered are what a percentile leaves out, so it tightened back
  onto them, and loosened again, every second.  Only a few
  seconds: slow drift between two machines' cycles must not be chased.  A
  buffer still held above its target when a review ends (the disturbance
  outlasted it) starts another, so it comes back whenever the path calms.
"""
from __future__ import annotations

RELOCK_AFTER_LATE = 8
REVIEW_SECONDS = 1.0
REVIEW_WINDOWS = 5
TIGHTEN_FRAMES = 16
LATE_IN_WINDOW = 3
LATE_WINDOW_SECONDS = 1.0


def low_transit(samples: list[int]) -> int:
    """The transit the path really offers: a low percentile (the 5th), not
    the minimum.  Arrival times come from JACK's interpolated frame clock,
    which a disturbed cycle can place too early; one such estimate must not
    set a latency the path cannot keep."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 20]


class MarginPolicy:
    """The state the three rules need, and their verdicts.

    Parameters
    ----------
    samplerate : int
        Receiver frames per second (the rules' windows are in seconds).
    review : bool
        Whether to tighten at all (``--latency auto`` lowers the latency by
        resampling instead, never with a jump).
    """

    def __init__(self, samplerate: int, review: bool = True) -> None:
        self.samplerate = samplerate
        self.review_enabled = review
        self._late_run = 0
        self._late_times: list[int] = []
        self._late_worst = 0
        self._review_until: int | None = None
        self._least: int | None = None  # the least slack of the review window
        self._beyond = 0
        self._reviews_left = 0

    def forget(self) -> None:
        """A new measurement of the mapping begins: what was seen no longer counts."""
        self._review_until = None
        self._late_run = 0
        self._late_times, self._late_worst = [], 0

    def fresh_packet(self, partly_played: bool) -> bool:
        """A packet with audio newer than any before; True: relock now."""
        self._late_run = self._late_run + 1 if partly_played else 0
        return self._late_run >= RELOCK_AFTER_LATE

    def partly_late(self, shortfall: int, arrival: int) -> int | None:
        """A packet landed ``shortfall`` frames after its first frame was due.
        Returns the worst shortfall of the window once the window is full
        (then starts a new one), else None."""
        window = LATE_WINDOW_SECONDS * self.samplerate
        self._late_times = [t for t in self._late_times if arrival - t < window] + [arrival]
        self._late_worst = max(self._late_worst if len(self._late_times) > 1 else 0, shortfall)
        if len(self._late_times) < LATE_IN_WINDOW:
            return None
        worst = self._late_worst
        self._late_times, self._late_worst = [], 0
        return worst

    def start_review(self, arrival: int, beyond: int = 0) -> None:
        """Watch the slack for a while from ``arrival`` on (after a move made
        inside a disturbance); tighten only an excess of more than
        ``TIGHTEN_FRAMES + beyond``."""
        if not self.review_enabled:
            return
        self._review_until = arrival + round(REVIEW_SECONDS * self.samplerate)
        self._reviews_left = REVIEW_WINDOWS
        self._least = None
        self._beyond = beyond

    @property
    def reviewing(self) -> bool:
        return self._review_until is not None

    def review(self, slack: int, arrival: int, margin: int) -> int | None:
        """One packet's slack; returns the frames to tighten by at the end of
        a review window whose least slack leaves more than the ``margin``."""
        if self._review_until is None:
            return None
        self._least = slack if self._least is None else min(self._least, slack)
        if arrival < self._review_until:
            return None
        excess = self._least - margin
        self._least = None
        self._reviews_left -= 1
        self._review_until = (arrival + round(REVIEW_SECONDS * self.samplerate)
                              if self._reviews_left else None)
        return excess if excess > TIGHTEN_FRAMES + self._beyond else None
