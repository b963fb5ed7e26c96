"""Estimating two sample clocks' ratio and steering a resampler to hold a latency.

The receiver's view of the sender's clock comes from packet arrivals: packet
``k`` carries the sender's frame counter ``s_k`` and arrives at receiver frame
time ``t_k``, late by a transit that jitters.  `ArrivalDll`, a second-order
delay-locked loop, smooths those arrivals into a straight line ``t(s)``
whose slope is the clock ratio.  `DriftController` then works once per
receiver cycle on the *interpolated* write position at the cycle's start,
not on the raw buffer fill, so arrival jitter does not reach the resampler:
one hard correction at lock, then a PI loop (fast while it settles, slow
after) that sets how many sender frames the resampler consumes per receiver
frame, clamped, and a re-sync if the error runs away.  This is the recipe of
zita-njbridge (F. Adriaensen, "Using a DLL to filter time", LAC 2005).

Pure arithmetic, no I/O: the receiver feeds it, and tests drive it with
simulated clocks.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class ArrivalDll:
    """Smooths packet arrivals into receiver time as a function of sender frames.

    Parameters
    ----------
    frames : int
        Nominal sender frames per packet.
    rate : float
        Sender frames per second (packets per second set the loop's step).
    bandwidth : float
        Loop bandwidth in Hz: lower rejects more jitter, higher follows faster.
    nominal : float
        Sender frames per receiver frame the two rates imply: the slope the
        loop starts from (44.1 kHz into 48 kHz is 9 % away from 1).
    """

    def __init__(self, frames: int, rate: float, bandwidth: float = 0.5,
                 nominal: float = 1.0) -> None:
        self.frames = frames
        w = 2 * math.pi * bandwidth * frames / rate
        self._b, self._c = math.sqrt(2) * w, w * w
        self.ready = False
        self.packets = 0
        self._s = 0        # sender frame of the anchor
        self._t = 0.0      # its smoothed arrival time (receiver frames)
        self._dt = frames / nominal  # receiver frames per packet

    def update(self, sender_frame: int, arrival: float) -> None:
        """One packet (in any order; older ones only nudge the line)."""
        self.packets += 1
        if not self.ready:
            self._s, self._t, self.ready = sender_frame, float(arrival), True
            return
        predicted = self.time_of(sender_frame)
        error = arrival - predicted
        packets = (sender_frame - self._s) / self.frames
        if packets <= 0:  # reordered or repeated: too old to move the anchor
            return
        # Per packet of progress the loop applies its gains once.
        self._s, self._t = sender_frame, predicted + self._b * error
        self._dt += self._c * error / max(1.0, packets)

    def time_of(self, sender_frame: float) -> float:
        """Smoothed receiver time at which ``sender_frame`` arrives."""
        return self._t + (sender_frame - self._s) * self._dt / self.frames

    def frame_at(self, time: float) -> float:
        """Sender frame arriving, on the smoothed line, at receiver ``time``."""
        return self._s + (time - self._t) * self.frames / self._dt

    @property
    def ratio(self) -> float:
        """Sender frames per receiver frame (1 + drift)."""
        return self.frames / self._dt


@dataclass
class DriftStats:
    drift_ppm: float = 0.0
    """The ratio applied, relative to nominal, over the last 10 s."""
    ratio: float = 1.0
    """Sender frames the resampler consumes per receiver frame."""
    loop_error_frames: float = 0.0
    """Loop error: buffered sender frames beyond the target."""
    loop_jumps: int = 0
    """Steps of the read or write position (an xrun, lost audio): not drift."""
    loop_resyncs: int = 0
    """Errors too large to be drift after settling: the loop locked again."""


DRIFT_AVERAGE_SECONDS = 10.0
# After a deliberate move of the read position, how long the loop holds its
# ratio at the drift learnt before it adopts the distance as it is then: the
# arrival line needs this long to follow a step of the arrivals (ArrivalDll's
# 0.5 Hz, its slope bent meanwhile).
MOVE_SETTLE_SECONDS = 2.0


class DriftController:
    """Sets the resampling ratio once per receiver cycle.

    A PI loop on the error between the interpolated write position and the
    read position: its integral is the clock drift (the DLL's slope alone
    wanders by 100 ppm under 1 ms of jitter; the integral, filtered by the
    loop, settles to a ppm).  Bandwidth ``fast`` Hz for ``settle_seconds``
    after a lock, ``slow`` Hz after, both critically damped.

    Parameters
    ----------
    dll : ArrivalDll
        The arrival line of the stream being played.
    target : float or None
        Sender frames to hold between the write and read positions; None
        adopts the distance found at lock (when something else, such as the
        jitter buffer, has already placed the read position).
    period, rate : int
        The receiver's cycle in frames, and its frames per second.
    nominal : float
        Sender frames per receiver frame the two rates imply (their ratio).
    max_ppm : float
        Largest correction the ratio may make (clock tolerance plus margin).
    resync_frames : float
        An error larger than this after settling is not drift: jump again.
    """

    def __init__(self, dll: ArrivalDll, target: float | None, period: int, rate: int,
                 nominal: float = 1.0, max_ppm: float = 2000.0, fast: float = 0.2,
                 slow: float = 0.02, settle_seconds: float = 5.0, lock_seconds: float = 1.0,
                 resync_frames: float = 2048.0) -> None:
        self.dll = dll
        self.target = target
        self.adopt = target is None
        self.nominal = nominal
        self.period = period
        self.max_dev = max_ppm * 1e-6
        self.fast, self.slow = self._gains(fast, period, rate), self._gains(slow, period, rate)
        self.settle_cycles = round(settle_seconds * rate / period)
        self.lock_packets = max(2, round(lock_seconds * rate / dll.frames))
        self.resync_frames = resync_frames
        self.jump_frames = max(32.0, period / 2)
        self.move_settle_cycles = max(1, round(MOVE_SETTLE_SECONDS * rate / period))
        self._holding = 0  # cycles left before a move's distance is adopted
        self.stats = DriftStats()
        self.locked = False
        self._integral = 0.0
        self._cycles = 0
        self.stats.ratio = nominal
        # The drift reported is a plain mean over the last ten seconds, kept
        # in one-second buckets: an exponential average would still carry
        # the loop's settling long after it ended.
        self._bucket_cycles = max(1, round(rate / period))
        self._buckets: deque[tuple[float, int]] = deque(maxlen=round(DRIFT_AVERAGE_SECONDS))
        self._bucket = (0.0, 0)

    @staticmethod
    def _gains(bandwidth: float, period: int, rate: int) -> tuple[float, float]:
        """(proportional, integral) per cycle for a critically damped loop."""
        w = 2 * math.pi * bandwidth * period / rate
        return 2 * w / period, w * w / period

    def lock(self, now: float, read: float) -> float | None:
        """The one hard correction, made at lock and at a re-sync: the read
        position (sender frames) that holds exactly ``target`` at ``now``,
        or None when the target is adopted from ``read`` instead."""
        self.locked = True
        self._cycles = 0
        self._holding = 0
        # Not the DLL's slope: a second after a start it is still off by
        # hundreds of ppm, no better a start than none.
        self._integral = 0.0
        self.stats.loop_error_frames = 0.0
        if self.adopt:
            self.retarget(now, read)
            return None
        return self.dll.frame_at(now) - self.target

    def retarget(self, now: float, read: float) -> None:
        """Hold the distance there is now; the drift learnt so far stays."""
        self.target = self.dll.frame_at(now) - read

    def moved(self, now: float, read: float) -> None:
        """The read position was moved on purpose (the jitter buffer grew or
        tightened): hold the ratio at the drift learnt until the arrival line
        has settled, then adopt the distance as it is then.  A buffer grows
        because packets landed late, most often for good (the sender's clock
        jumped in an xrun): the line then follows the later arrivals over a
        second or two, and a loop that held the distance adopted at the move
        would win the jump back by resampling slower, adding it to the
        latency each time.  While the loop still settles, its drift is no
        estimate to hold (hundreds of ppm off in the first seconds; held
        for 2 s, a fresh-clone run drifted 1000 ppm into late packets), so
        the distance is adopted at once, as before."""
        if self._cycles < self.settle_cycles:
            self.retarget(now, read)
        else:
            self._holding = self.move_settle_cycles

    def _ratio(self, deviation: float) -> float:
        deviation = max(-self.max_dev, min(self.max_dev, deviation))
        return self.nominal * (1 + deviation)

    def step(self, now: float, read: float, slew: float = 0.0) -> tuple[float, float | None]:
        """One receiver cycle starting at ``now`` whose playout reads from
        sender frame ``read``.  Returns (ratio, new read position or None):
        the position is given only when the loop jumped (lock or re-sync).

        ``slew`` moves the target itself, as a fraction of real time
        (positive: less buffered, played that much faster).  The ratio
        carries it directly, so the loop's error, and its integral, stay
        with the drift alone."""
        if self.dll.packets < self.lock_packets:
            return self.nominal, None
        if not self.locked:
            return self._ratio(self._integral), self.lock(now, read)
        self.target -= slew * self.nominal * self.period
        if self._holding:
            self._holding -= 1
            if not self._holding:
                self.retarget(now, read)
            self.stats.loop_error_frames = 0.0
            return self._apply(self._integral, slew), None
        error = self.dll.frame_at(now) - read - self.target
        if abs(error - self.stats.loop_error_frames) > self.jump_frames:
            # Drift moves the error by a fraction of a frame per cycle; a step
            # of many frames is an xrun or audio lost on the way, which the
            # loop must not try to pull back by bending the pitch for seconds.
            self.stats.loop_jumps += 1
            self.retarget(now, read)
            error = 0.0
        self.stats.loop_error_frames = error
        if self._cycles > self.settle_cycles and abs(error) > self.resync_frames:
            self.stats.loop_resyncs += 1
            return self._ratio(self._integral), self.lock(now, read)
        kp, ki = self.fast if self._cycles < self.settle_cycles else self.slow
        self._cycles += 1
        self._integral = max(-self.max_dev, min(self.max_dev, self._integral + ki * error))
        return self._apply(self._integral + kp * error, slew), None

    def _apply(self, deviation: float, slew: float) -> float:
        """The ratio for a loop ``deviation`` plus the ``slew`` asked for,
        recorded; the drift reported leaves the slew out."""
        ratio = self._ratio(deviation + slew)
        self.stats.ratio = ratio
        self._average(ratio / self.nominal - 1 - slew)
        return ratio

    def _average(self, drift: float) -> None:
        """What the link really did over the last seconds: the integral alone
        still wanders with the jitter while the loop is fast."""
        total, n = self._bucket
        self._bucket = (total + drift, n + 1)
        if self._bucket[1] == self._bucket_cycles:
            self._buckets.append(self._bucket)
            self._bucket = (0.0, 0)
        total = self._bucket[0] + sum(b[0] for b in self._buckets)
        n = self._bucket[1] + sum(b[1] for b in self._buckets)
        self.stats.drift_ppm = total / n * 1e6
