"""``--latency auto``: a jitter margin that follows the path.

`JitterMeter` keeps the last seconds of arrival residuals (how late each
packet came against the `ArrivalDll`'s smoothed line, so clock drift does not
count as jitter) and gives their spread.  A hold-up (the path, or the
receiver's own thread, stalled for a while) counts once: the packets queued
behind the first one land together, each a packet less late than the one
before, and are one event, not many.  `AutoLatency` turns that spread into
the margin to hold and says, once per receiver cycle, which way to move the
margin held now: up at once when packets have been late (the jitter buffer
jumps, it is a glitch already), up smoothly when the jitter grows, and down
only slowly and only by resampling, never by a jump, and only after the path
has been calm for a while.

Pure arithmetic, no I/O: the `ClockBridge` feeds it, and tests drive it
with simulated arrivals.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

WINDOW_SECONDS = 10.0  # jitter is judged over this much recent traffic
MIN_SECONDS = 2.0      # ... and not before this much
# The spread runs from the 5th percentile, where the jitter buffer's lock
# puts its reference (`low_transit`), to the 99.9th: rarer outliers (fewer
# than a packet in a thousand) are left to concealment and, if they keep
# coming, to the late-packet growth.  The 99.5th left this machine's own
# scheduling tail out: a packet concealed every few seconds under 6 ms of
# jitter, in one test run of five.
LOW_QUANTILE, HIGH_QUANTILE = 0.05, 0.999
JITTER_FACTOR = 1.2    # margin = JITTER_FACTOR * spread + HEADROOM_SECONDS
MAX_MARGIN_SECONDS = 0.2  # the most auto asks for (the receiver's ring is sized for it)
HEADROOM_SECONDS = 0.0005  # what the spread of a few seconds may not have shown yet
# Moving the margin by resampling: up fast enough to follow a path getting
# worse within seconds, down slowly (0.3 ms a second, a pitch change of
# 300 ppm, half a cent, inaudible), and only once the path has been calm for
# HOLD_SECONDS since the margin last grew (or the stream began).
GROW_PPM = 1000.0
SHRINK_PPM = 300.0
HOLD_SECONDS = 10.0
# A margin far above the one wanted (a loosen that covered one hold-up, a
# path that calmed down) comes down faster: at a pace, set as the shrinking
# starts, that takes the excess off in SHRINK_SECONDS, but never faster than
# GROW_PPM (1000 ppm, 1.7 cents).  At SHRINK_PPM alone a 33 ms loosen took
# two minutes to come off.
SHRINK_SECONDS = 20.0
# Packets that land within this of each other came out of one queue.
TOGETHER_SECONDS = 0.0002
# Dead bands: move when the margin held is this far from the one wanted,
# stop when it is within STOP_SECONDS.
GROW_BAND_SECONDS = 0.0005
SHRINK_BAND_SECONDS = 0.001
SHRINK_BAND_FRACTION = 0.15
STOP_SECONDS = 0.0001


class JitterMeter:
    """The spread of recent arrival residuals, in receiver frames.

    Parameters
    ----------
    rate : int
        Receiver frames per second.
    window_seconds : float
        How much recent traffic counts.
    """

    def __init__(self, rate: int, window_seconds: float = WINDOW_SECONDS) -> None:
        self.rate = rate
        self.window = window_seconds * rate
        self.together = TOGETHER_SECONDS * rate
        self._samples: deque[tuple[float, float]] = deque()  # (arrival, residual)
        self._last = (-math.inf, 0.0)      # the packet before: (arrival, residual)
        self._high: float | None = None    # the late end of the last spread

    def add(self, arrival: float, residual: float) -> None:
        """One packet that arrived at ``arrival``, ``residual`` frames after
        the smoothed line said it would.

        A packet later than the late end of the last spread that lands
        together with the one before it, and less late than it, waited in
        the same queue: the hold-up was counted with the first of them.
        Counted packet by packet, a 33 ms stall made a dozen late packets,
        above the 99.9th percentile's one in a thousand, and auto held 47 ms
        for the ten seconds they stayed in the window.  A stall that comes
        back more than once in a thousand packets raises the late end, and
        its packets count again: that is jitter."""
        last, self._last = self._last, (arrival, residual)
        if (self._high is not None and residual > self._high
                and arrival - last[0] <= self.together and residual < last[1]):
            return
        self._samples.append((arrival, residual))
        while arrival - self._samples[0][0] > self.window:
            self._samples.popleft()

    def spread(self) -> float | None:
        """Frames between early and late arrivals, or None with too little traffic."""
        if len(self._samples) < 2:
            return None
        if self._samples[-1][0] - self._samples[0][0] < MIN_SECONDS * self.rate:
            return None
        r = np.fromiter((s[1] for s in self._samples), float, len(self._samples))
        low, self._high = np.quantile(r, [LOW_QUANTILE, HIGH_QUANTILE])
        return float(self._high - low)


def margin_for(spread: float, rate: int) -> int:
    """The jitter margin, in frames, that covers arrivals ``spread`` apart
    (at most `MAX_MARGIN_SECONDS`: beyond that a path is not a live link)."""
    return min(math.ceil(JITTER_FACTOR * spread + HEADROOM_SECONDS * rate),
               round(MAX_MARGIN_SECONDS * rate))


class AutoLatency:
    """Which way to move the margin, once per receiver cycle.

    Parameters
    ----------
    rate : int
        Receiver frames per second.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.meter = JitterMeter(rate)
        self.want: int | None = None     # the margin wanted, frames
        self.jitter: float | None = None  # the spread measured, frames
        self._direction = 0               # -1 growing, +1 shrinking, 0 holding
        self._shrink = 0.0                # the shrinking's pace, set as it starts
        self._grown_at: float | None = None  # the start counts as a growth: a few seconds say little
        self._recompute_every = rate      # frames of receiver time between estimates
        self._recomputed_at = -math.inf

    def grew(self, now: float) -> None:
        """The margin was raised by a jump (packets came late): no shrinking
        for a while, whatever the spread says."""
        self._grown_at = now

    def slew(self, now: float, margin: float) -> float:
        """How fast to move the ``margin`` held at ``now`` (frames): a
        fraction of real time, positive to shrink (play faster), negative
        to grow (play slower), 0 to hold."""
        if self._grown_at is None:
            self._grown_at = now
        if now - self._recomputed_at >= self._recompute_every:
            self._recomputed_at = now
            self.jitter = self.meter.spread()
            self.want = None if self.jitter is None else margin_for(self.jitter, self.rate)
        if self.want is None:
            return 0.0
        gap = margin - self.want
        if self._direction == 0:
            shrink_band = max(SHRINK_BAND_SECONDS * self.rate, SHRINK_BAND_FRACTION * self.want)
            if gap < -GROW_BAND_SECONDS * self.rate:
                self._direction = -1
            elif gap > shrink_band and now - self._grown_at > HOLD_SECONDS * self.rate:
                self._direction = 1
                self._shrink = max(min(gap / (SHRINK_SECONDS * self.rate), GROW_PPM * 1e-6),
                                   SHRINK_PPM * 1e-6)
        elif self._direction * gap < STOP_SECONDS * self.rate:
            self._direction = 0
        if self._direction < 0:
            self._grown_at = now
            return -GROW_PPM * 1e-6
        return self._shrink if self._direction > 0 else 0.0
