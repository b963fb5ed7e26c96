"""The receiver's jitter buffer: packets in by sender timestamp, audio out on
the receiver's clock.

Packets are written into a `Playout` ring at ``ring index = timestamp +
base``.  Each JACK cycle that starts at receiver clock ``now`` plays ring
indices from ``now - offset``.  So arrival order does not matter (reorder),
a frame already stamped is a duplicate, a packet whose frames were all played
is late, and a frame that is missing when its turn comes is concealed by the
C side (fade, never a step).

Lock: the first packets of a stream measure transit ``d = arrival - end of
packet`` in receiver frames.  The cycle starting at ``f`` plays up to index
``f - offset + period - 1``; in the worst case that is the first frame of an
``n``-frame packet ending at ``f - offset + period - 1 + n``, which must have
arrived (at ``end + d``) by ``f``.  That gives
``offset = period + n + low(d) + target``, where ``low`` is a robust low
percentile (`low_transit`).  ``target`` is the margin for jitter
(``--latency``).  A new stream (sender restart) takes over only once the
current one has gone quiet, so foreign or replayed packets cannot hijack it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from jacknet.clock.autolatency import GUARD_SECONDS as AUTO_GUARD_SECONDS, margin_for
from jacknet.rt.engines import Playout

log = logging.getLogger(__name__)

# Transit is measured over this much audio before a stream's first lock: long
# enough that a start-up hiccup (a process still loading) does not set the
# latency for good.  The packets are kept meanwhile, so nothing is lost.
FIRST_SETTLE_SECONDS = 0.25
SETTLE_SECONDS = 0.02   # ... and before a re-sync, where the old mapping is failing
SWITCH_SECONDS = 0.25   # a stream silent this long yields to a new one
RELOCK_AFTER_LATE = 8   # this many late packets in a row mean the mapping is stale
# After a re-sync or a loosening, often made inside a disturbance, the margin
# packets land with (exactly: their first frame minus the read position) is
# watched over REVIEW_WINDOWS windows of REVIEW_SECONDS; in the first window
# whose low percentile exceeds the target by more than TIGHTEN_FRAMES the
# latency comes back down to leave exactly the target (with the same fade a
# re-sync uses; a window that still held the disturbance's tail may leave
# some for the next).  Only a few seconds: slow drift between two machines'
# cycles must not be chased.
REVIEW_SECONDS = 1.0
REVIEW_WINDOWS = 5
TIGHTEN_FRAMES = 16
# Packets that land partly late (their first frames already played) are
# measured exactly against the read position, with no clock estimate.  This
# many within LATE_WINDOW_SECONDS mean the margin is too small: grow it.
LATE_IN_WINDOW = 3
LATE_WINDOW_SECONDS = 1.0
# A frame of a stateful codec still missing this long before its cycle
# starts is revived or concealed by the decoder (the network thread must
# wake, decode and write); the buffer adds it to the latency of such streams.
GUARD_SECONDS = 0.001


def low_transit(samples: list[int]) -> int:
    """The transit the path really offers: a low percentile (the 5th), not
    the minimum.  Arrival times come from JACK's interpolated frame clock,
    which a disturbed cycle can place too early; one such estimate must not
    set a latency the path cannot keep."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 20]


@dataclass
class JitterStats:
    packets: int = 0
    late: int = 0
    duplicate: int = 0
    early: int = 0
    foreign: int = 0
    streams: int = 0
    relocks: int = 0
    tightened: int = 0
    loosened: int = 0
    margin_min: int | None = None  # frames the worst packet landed ahead of the playout


class JitterBuffer:
    """Place packets into a `Playout` ring and keep its clock mapping.

    Parameters
    ----------
    playout : Playout
        The ring the JACK process callback plays from.
    period : int
        Receiver JACK period in frames.
    target : int
        Extra buffering for arrival jitter, in frames.
    samplerate : int
        Receiver sample rate (for the time constants).
    auto : bool
        ``--latency auto``: the first lock sets ``target`` from the jitter it
        measured, and the buffer never lowers its latency itself (a
        `ClockBridge` does, by resampling); packets that land late still
        make it grow at once.
    """

    def __init__(self, playout: Playout, period: int, target: int, samplerate: int,
                 auto: bool = False) -> None:
        self.playout = playout
        self.period = period
        self.target = self.requested_target = target
        self.auto = auto
        self.locks = 0
        self.extra = 0  # frames need_margin adds to the requested target
        self._locked_transit = 0
        self.lead = 0  # frames a decoding stage needs before the playout (see `deadline`)
        self.samplerate = samplerate
        self.stats = JitterStats()
        self.stream_id: int | None = None
        self._base = 0
        self._next_base = playout.capacity  # ring indices of a new stream start beyond any old stamp
        self._settling = True
        self._settle: list[int] = []
        self._settle_frames = 0
        self._last_arrival = 0
        self._late_run = 0
        self.transit_min: int | None = None
        self._review_until: int | None = None
        self._review_samples: list[int] = []
        self._reviews_left = 0
        self._review_after_lock = False
        self._late_times: list[int] = []
        self._late_worst = 0
        self._frames = period

    # -- mapping ---------------------------------------------------------
    def _start_stream(self, stream_id: int, timestamp: int) -> None:
        self.stream_id = stream_id
        self._base = self._next_base - timestamp
        self._newest_end = 0
        self.playout.unlock()  # the old stream's mapping means nothing for the new one
        self.playout.count_gaps_from(self._next_base)
        self.stats.streams += 1
        self._begin_settle(FIRST_SETTLE_SECONDS)

    def _begin_settle(self, seconds: float = SETTLE_SECONDS) -> None:
        self._review_until = None
        self._late_times, self._late_worst = [], 0
        self._settle_target = seconds * self.samplerate
        self._settling = True
        self._settle = []
        self._settle_frames = 0

    def _lock(self) -> None:
        d = low_transit(self._settle)
        if self.auto and not self.locks:
            # Over the 0.25 s of a first lock this index is the latest arrival:
            # a short sample says little about the tail, so take all of it.
            spread = sorted(self._settle)[len(self._settle) * 199 // 200] - d
            self.set_margin(margin_for(spread, self.samplerate))
        self.locks += 1
        self._locked_transit = d
        self._set_transit(d)
        self._settling = False
        if self._review_after_lock:
            self._review_after_lock = False
            self._start_review(self._last_arrival)

    def _set_transit(self, d: int) -> None:
        self.transit_min = d
        self.playout.set_offset(self.period + self._frames + d + self.target + self.lead)
        log.debug("locked: transit %d frames, offset %d", d, self.playout.offset)

    def _start_review(self, arrival: int) -> None:
        if self.auto:
            return
        self._review_until = arrival + round(REVIEW_SECONDS * self.samplerate)
        self._reviews_left = REVIEW_WINDOWS
        self._review_samples = []

    def _review(self, margin: int, arrival: int) -> None:
        if self._review_until is None:
            return
        self._review_samples.append(margin)
        if arrival < self._review_until:
            return
        excess = low_transit(self._review_samples) - self.target
        self._review_samples = []
        self._reviews_left -= 1
        self._review_until = (arrival + round(REVIEW_SECONDS * self.samplerate)
                              if self._reviews_left else None)
        if excess > TIGHTEN_FRAMES:
            log.info("path calmer again: latency down by %d frames", excess)
            self.stats.tightened += 1
            self._set_transit(self.transit_min - excess)

    def need_margin(self, frames: int, lead: int = 0) -> None:
        """Add ``frames`` to the margin asked for (a stream's redundancy or FEC
        comes one packet later than the packet itself, and then has the same
        jitter to cross), and keep a `lead` of ``lead`` frames for a decoder
        that must conceal before the playout."""
        self.extra = frames
        want = self.requested_target + frames
        if (want, lead) != (self.target, self.lead):
            log.info("jitter margin %s%s, decoding lead %d frames",
                     "auto" if self.auto else f"{want} frames",
                     " (one packet more, to wait for its copy or FEC)" if frames
                     else "", lead)
            self.target, self.lead = want, lead
            if self.transit_min is not None and not self._settling:
                self._set_transit(self.transit_min)

    def set_margin(self, frames: int) -> None:
        """Ask for a margin of ``frames`` from the next lock on (the playout
        does not move now: ``--latency auto`` moves it by resampling)."""
        self.requested_target = frames
        self.target = frames + self.extra

    @property
    def locked(self) -> bool:
        return self.playout.locked and not self._settling

    def latency_frames(self) -> int | None:
        """The receiver's share of the link's latency: its period plus the
        jitter margin actually set, grown or tightened since the lock (on
        one JACK server, the whole link's delay is this plus the network's
        few frames)."""
        if self.transit_min is None or not self.playout.locked:
            return None
        return self.playout.offset - self._locked_transit - self._frames

    # -- packets ---------------------------------------------------------
    def admit(self, stream_id: int, timestamp: int, arrival: int) -> bool:
        """Whether a packet of ``stream_id`` may be played: the current stream,
        or a new one once the current one has gone quiet (it then takes over).
        A refused packet is counted as ``foreign``."""
        if stream_id == self.stream_id:
            return True
        quiet = arrival - self._last_arrival
        if self.stream_id is not None and quiet < SWITCH_SECONDS * self.samplerate:
            self.stats.foreign += 1
            return False
        if self.stream_id is not None:
            log.info("new stream %08x replaces %08x", stream_id, self.stream_id)
        self._start_stream(stream_id, timestamp)
        return True

    def deadline(self, timestamp: int) -> int | None:
        """Receiver clock by which the frame at sender ``timestamp`` must be
        in the ring to be played; None while the mapping is being measured.
        The cycle that plays ring index ``i`` is the first to start after
        ``i + offset - period`` (cycles start every period from the last one,
        ``now``); `lead` frames before it leave time to decode and write."""
        if not self.locked:
            return None
        pl = self.playout
        after = timestamp + self._base + pl.offset - self.period + 1 - pl.now
        return pl.now + -(-after // self.period) * self.period - self.lead

    def timestamp_at(self, index: int) -> int:
        """The stream timestamp that ring ``index`` holds."""
        return index - self._base

    def missed(self, deadline: int | None, arrival: int) -> None:
        """A packet came ``arrival - deadline`` frames after its `deadline`, so
        its frame was concealed: as a packet that lands after its playout, it
        says the margin is too small."""
        if deadline is not None and self.locked:
            self._partly_late(max(1, arrival - deadline), arrival)

    def insert(self, stream_id: int, timestamp: int, block: np.ndarray, arrival: int,
               measured: bool = True) -> str:
        """Place one decoded packet.

        Parameters
        ----------
        stream_id, timestamp : int
            From the packet header.
        block : numpy.ndarray
            Planar float32 audio, channels x frames.
        arrival : int
            Receiver clock (64-bit frames) when the packet arrived.
        measured : bool
            False for blocks that are not a packet placed as it arrived
            (revived, concealed, decoded after waiting): they are placed but
            do not count as packets or feed the transit measurements.

        Returns
        -------
        str
            What happened: ``"stored"``, ``"late"``, ``"duplicate"``,
            ``"early"``, ``"foreign"`` or ``"settling"``.
        """
        if not self.admit(stream_id, timestamp, arrival):
            return "foreign"
        pl = self.playout
        frames = block.shape[1]
        first = timestamp + self._base
        end = first + frames
        self._next_base = max(self._next_base, end + pl.capacity)
        read_end = pl.read_end
        fits = not pl.locked or end <= read_end + pl.capacity - 2 * max(frames, self.period)
        if not measured:
            if end <= read_end or not fits:
                return "late" if fits else "early"
            pl.write(first, block)
            return "stored"
        self._last_arrival = arrival
        self.stats.packets += 1
        self._frames = frames
        if pl.has(first) and pl.has(end - 1):
            self.stats.duplicate += 1
            return "duplicate"

        if self._settling:
            self._settle.append(arrival - end)
            self._settle_frames += frames
            if fits:
                pl.write(first, block)
            if self._settle_frames < self._settle_target:
                return "settling"
            self._lock()
            return "stored"

        # New audio whose first frames were already played, packet after
        # packet, means the mapping is stale (transit grew past the margin),
        # even when each packet is only partly late.  Late replays of old
        # packets must not be able to force a re-sync, so only fresh ones count.
        if end > self._newest_end:
            self._newest_end = end
            self._late_run = self._late_run + 1 if first < read_end else 0
            if self._late_run >= RELOCK_AFTER_LATE:
                self._relock("packets keep arriving after their playout time")
        # A partly late packet lies inside the playout window, so it cannot be
        # an old replay: count it even if a later packet overtook it.
        if not self._settling and first < read_end < end:
            self._partly_late(read_end - first, arrival)
        if end <= read_end:
            self.stats.late += 1
            return "late"
        if not fits:
            self.stats.early += 1
            self._relock("packets arrive further ahead than the buffer holds")
            return "early"
        pl.write(first, block)
        margin = first - read_end
        self._review(margin, arrival)
        if self.stats.margin_min is None or margin < self.stats.margin_min:
            self.stats.margin_min = margin
        return "stored"

    def fill_frames(self) -> int:
        """Audio buffered ahead of the playout position, in frames."""
        if not self.playout.locked:
            return 0
        return max(0, self._newest_end - self.playout.read_end)

    def take_margin(self) -> int | None:
        """Worst arrival margin since the last call (then start a new window)."""
        margin, self.stats.margin_min = self.stats.margin_min, None
        return margin

    def _partly_late(self, shortfall: int, arrival: int) -> None:
        """Grow the buffer when packets keep landing after their first frames
        were due, even when they never do so 8 times in a row."""
        window = LATE_WINDOW_SECONDS * self.samplerate
        self._late_times = [t for t in self._late_times if arrival - t < window] + [arrival]
        self._late_worst = max(self._late_worst if len(self._late_times) > 1 else 0, shortfall)
        if len(self._late_times) < LATE_IN_WINDOW:
            return
        # Fixed targets grow by a whole margin more; auto adds a guard and
        # leaves the rest to the measured jitter, which now holds these packets.
        grow = self._late_worst + (round(AUTO_GUARD_SECONDS * self.samplerate) if self.auto
                                   else self.target)
        log.info("packets keep landing up to %d frames late; buffer grows by %d frames",
                 self._late_worst, grow)
        self.stats.loosened += 1
        self._late_times, self._late_worst = [], 0
        self._set_transit(self.transit_min + grow)
        self._start_review(arrival)  # if it was a passing disturbance, come back down

    def resync(self, why: str) -> None:
        """Measure the mapping afresh (after a reconnect, say)."""
        if self.stream_id is not None:
            self._relock(why)

    def _relock(self, why: str) -> None:
        log.warning("re-syncing the jitter buffer: %s", why)
        self.stats.relocks += 1
        self._late_run = 0
        self._begin_settle()
        self._review_after_lock = True
