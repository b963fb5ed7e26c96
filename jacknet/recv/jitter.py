"""The receiver's jitter buffer: packets in by sender timestamp, audio out on
the receiver's clock.

Blocks are written into a `Playout` ring at the index their stream's
`ClockMapping` gives.  So arrival order does not matter (reorder), a frame
already stamped is a duplicate, a packet whose frames were all played is
late, and a frame that is missing when its turn comes is concealed by the C
side (fade, never a step).

Lock: the first packets of a stream measure transit ``d = arrival - end of
packet`` in receiver frames.  The cycle starting at ``f`` plays up to index
``f - offset + period - 1``; in the worst case that is the first frame of an
``n``-frame packet ending at ``f - offset + period - 1 + n``, which must have
arrived (at ``end + d``) by ``f``.  That gives
``offset = period + n + low(d) + margin``, where ``low`` is a robust low
percentile (`low_transit`) and ``margin`` the allowance for jitter
(``--latency``).  When to move it afterwards is `MarginPolicy`'s call.  A new
stream (sender restart) takes over only once the current one has gone quiet,
so foreign or replayed packets cannot hijack it.

Placement and the lock stay in one module (a little over 300 lines) because
they are one state machine: whether a stream is settling decides where each
packet goes.  The rules that move the mapping are `jacknet.recv.policy`'s,
the mapping itself `jacknet.recv.mapping`'s.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from jacknet.clock.autolatency import margin_for
from jacknet.recv.mapping import ClockMapping, Move
from jacknet.recv.outcome import Outcome
from jacknet.recv.policy import TIGHTEN_FRAMES, MarginPolicy, low_transit
from jacknet.recv.slack import SlackWindow
from jacknet.recv.transit import TransitWindow
from jacknet.rt.engines import Playout

log = logging.getLogger(__name__)

# Transit is measured over this much audio before a stream's first lock: long
# enough that a start-up hiccup (a process still loading) does not set the
# latency for good.  The packets are kept meanwhile, so nothing is lost.
FIRST_SETTLE_SECONDS = 0.25
SETTLE_SECONDS = 0.02   # ... and before a re-sync, where the old mapping is failing
SWITCH_SECONDS = 0.25   # a stream silent this long yields to a new one
# A frame of a stateful codec still missing this long before its cycle
# starts is revived or concealed by the decoder (the network thread must
# wake, decode and write); the buffer adds it to the latency of such streams.
DECODE_LEAD_SECONDS = 0.001
SLACK_WINDOW_SECONDS = 5.0  # `slack` is the least over this much recent time
TRANSIT_WINDOW_SECONDS = 2.0  # the latency held is measured over this much
RELOCK_AFTER_OVERRUN = 4    # packets beyond the ring in a row that re-sync it
LOOSEN_STEP_SECONDS = 0.001  # a loosening grows by the lateness seen and this much


@dataclass
class JitterStats:
    packets: int = 0
    """Packets placed as they arrived (not copies, concealment or late decodes)."""
    overruns: int = 0
    """Packets further ahead than the ring holds (each starts a re-sync)."""
    foreign: int = 0
    """Packets of another stream while one is live."""
    streams: int = 0
    """Streams started (a sender restart is a new stream)."""
    relocks: int = 0
    """Re-syncs: the mapping measured afresh."""
    tightened: int = 0
    """Latency brought back down once a disturbance had passed."""
    loosened: int = 0
    """Buffer grown because packets kept landing partly late."""


@dataclass
class Margin:
    """The jitter margin in frames, and what a stream adds to it."""

    wanted: int
    """Asked for: ``--latency``, or what ``auto`` wants now."""
    extra: int = 0
    """One packet more for a stream whose losses are revived from copies or FEC."""

    @property
    def total(self) -> int:
        return self.wanted + self.extra


class JitterBuffer:
    """Place blocks into a `Playout` ring and keep its clock mapping.

    Parameters
    ----------
    playout : Playout
        The ring the JACK process callback plays from.
    period : int
        Receiver JACK period in frames.
    margin : int
        Extra buffering for arrival jitter, in frames.
    samplerate : int
        Receiver sample rate (for the time constants).
    auto : bool
        ``--latency auto``: the first lock sets the margin from the jitter it
        measured, and the buffer never lowers its latency itself (a
        `ClockBridge` does, by resampling); packets that land late still
        make it grow at once.
    """

    def __init__(self, playout: Playout, period: int, margin: int, samplerate: int,
                 auto: bool = False) -> None:
        self.playout = playout
        self.period = period
        self.samplerate = samplerate
        self.auto = auto
        self.mapping = ClockMapping(playout, period)
        self.policy = MarginPolicy(samplerate, review=not auto)
        self.margin = Margin(margin)
        self.stats = JitterStats()
        self.slack = SlackWindow(SLACK_WINDOW_SECONDS, samplerate)
        self.transits = TransitWindow(TRANSIT_WINDOW_SECONDS, samplerate)
        self.stream_id: int | None = None
        self.locks = 0
        self.transit: int | None = None   # the transit the mapping allows for now
        self._locked_transit = 0          # ... and at the last lock
        # Frames fewer than nominal a clock bridge has made of the stream by
        # resampling (negative: more), now and at the last lock.  The mapping
        # does not move for them, but the audio held does.
        self._shortfall = 0.0
        self._locked_shortfall = 0.0
        self._next_index = playout.capacity  # a new stream starts beyond any old stamp
        self._newest_end = 0
        self._settling = True
        self._settle: list[int] = []
        self._settle_frames = 0
        self._settle_target = 0.0
        self._last_arrival = 0
        self._frames = period
        self._overrun_run = 0
        self._relocking = False  # the lock measured now replaces a stale one
        # Packets that arrived by this receiver clock met the read position
        # as it was before the last move took effect (the next cycle).
        self._moved_at = -1

    # -- mapping ---------------------------------------------------------
    def leap(self, timestamp: int) -> None:
        """The current stream's timeline leapt to ``timestamp``: map and lock
        it afresh, as a new stream."""
        self._start_stream(self.stream_id, timestamp)

    def _start_stream(self, stream_id: int, timestamp: int) -> None:
        self.stream_id = stream_id
        self._shortfall = 0.0  # a new stream's bridge (if it has one) starts afresh
        self.mapping.start(timestamp, self._next_index)
        self._newest_end = 0
        self._overrun_run = 0
        self._relocking = False
        self.playout.count_gaps_from(self._next_index)
        self.stats.streams += 1
        self._begin_settle(FIRST_SETTLE_SECONDS)

    def _begin_settle(self, seconds: float = SETTLE_SECONDS) -> None:
        self.policy.forget()
        self.mapping.remeasure()
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
            self.want_margin(margin_for(spread, self.samplerate))
        self.locks += 1
        self._locked_transit = d
        self._locked_shortfall = self._shortfall
        self.transits.clear()  # a fresh lock measures afresh
        self._settling = False
        self._set_transit(d, Move.LOCK)
        # A stream's first lock too: a receiver held up as it starts reads
        # the packets of that lock late, and held 50 ms for a whole bench
        # round from a transit the path did not have.  It is judged only
        # beyond the period: where in a cycle packets land leaves up to a
        # period of slack, and a calm start needs no move.
        self.policy.start_review(self._last_arrival, 0 if self._relocking else self.period)
        self._relocking = False

    def _set_transit(self, d: int, why: Move) -> None:
        self.transit = d
        self._moved_at = self.playout.now + self.period
        self.mapping.move(self.period + self._frames + d + self.margin.total + self.mapping.lead,
                          why)
        log.debug("mapping moved (%s): transit %d frames, offset %d", why, d, self.mapping.offset)

    def need_margin(self, extra: int, lead: int = 0) -> None:
        """Add ``extra`` frames to the margin asked for (a stream's redundancy
        or FEC comes one packet later than the packet itself, and then has the
        same jitter to cross), and keep a lead of ``lead`` frames for a
        decoder that must conceal before the playout."""
        m = self.margin
        if (extra, lead) != (m.extra, self.mapping.lead):
            log.info("jitter margin %s%s, decoding lead %d frames",
                     "auto" if self.auto else f"{m.wanted + extra} frames",
                     " (one packet more, to wait for its copy or FEC)" if extra else "", lead)
            m.extra, self.mapping.lead = extra, lead
            if self.transit is not None and not self._settling:
                self._set_transit(self.transit, Move.MARGIN)

    def set_margin(self, frames: int) -> None:
        """A new ``--latency`` while running (SIGHUP): the playout moves to it
        now, as a loosen or tighten does, rather than at the next lock."""
        if frames != self.margin.wanted:
            self.want_margin(frames)
            if self.transit is not None and not self._settling:
                self._set_transit(self.transit, Move.MARGIN)

    def want_margin(self, frames: int) -> None:
        """Ask for a margin of ``frames`` from the next lock on (the playout
        does not move now: ``--latency auto`` moves it by resampling)."""
        self.margin.wanted = frames

    @property
    def locked(self) -> bool:
        return self.playout.locked and not self._settling

    def latency_frames(self) -> float | None:
        """The receiver's share of the link's latency: how long a packet of
        the low transit waits in the buffer (its period plus the margin
        actually held; on one JACK server, the whole link's delay is this
        plus the network's few frames).  The transit is the last seconds'
        (`TransitWindow`), with resampling taken out so that it counts at
        once; just after a lock, the lock's."""
        if self.transit is None or not self.playout.locked:
            return None
        live = self.transits.low
        transit = self._locked_transit - self._locked_shortfall if live is None else live
        return self.mapping.offset - transit - self._frames - self._shortfall

    def resampled(self, shortfall: float) -> None:
        """A `ClockBridge` has made ``shortfall`` frames fewer of the stream
        than its nominal rate would have (negative: more), so its packets land
        that much later on the ring's time line, and wait that much less."""
        self._shortfall = shortfall

    def target_frames(self) -> int:
        """The same, as aimed at: period, margin and decoding lead."""
        return self.period + self.margin.total + self.mapping.lead

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
        """See `ClockMapping.deadline`."""
        return self.mapping.deadline(timestamp)

    def missed(self, deadline: int | None, arrival: int) -> None:
        """A packet came ``arrival - deadline`` frames after its `deadline`, so
        its frame was concealed: as a packet that lands after its playout, it
        says the margin is too small."""
        if deadline is not None and self.locked and arrival > deadline:
            self._partly_late(arrival - deadline, arrival)

    def insert(self, stream_id: int, timestamp: int, block: np.ndarray, arrival: int,
               measured: bool = True) -> Outcome:
        """Place one decoded block.

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
        Outcome
            STORED, SETTLING, LATE, DUPLICATE, OVERRUN or FOREIGN.
        """
        if not self.admit(stream_id, timestamp, arrival):
            return Outcome.FOREIGN
        return self._place(timestamp, block.shape[1], arrival, self.playout.read_end, block,
                           measured)

    def guard(self, frames: int) -> int:
        """Frames of the ring a packet of ``frames`` may not reach into,
        ahead of the playout: a writer must never lap the reader."""
        return 2 * max(frames, self.period)

    def placed(self, timestamp: int, frames: int, arrival: int, read_end: int) -> None:
        """Account for a packet of the current stream that the C receive
        path (`jacknet.rt.recvpath`) wrote where `insert` would have, when
        the playout had read up to ``read_end``: by the same rules."""
        self._place(timestamp, frames, arrival, read_end, None, True)

    def _place(self, timestamp: int, frames: int, arrival: int, read_end: int,
               block: np.ndarray | None, measured: bool) -> Outcome:
        """`insert`'s rules; ``block`` None: the frames are in the ring already."""
        pl = self.playout
        first = self.mapping.index(timestamp)
        end = first + frames
        self._next_index = max(self._next_index, end + pl.capacity)
        fits = not pl.locked or end <= read_end + pl.capacity - self.guard(frames)
        if not measured:
            if end <= read_end or not fits:
                return Outcome.LATE if fits else Outcome.OVERRUN
            pl.write(first, block)
            return Outcome.STORED
        self._last_arrival = arrival
        self.stats.packets += 1
        self._frames = frames
        if block is not None and pl.has(first) and pl.has(end - 1):
            return Outcome.DUPLICATE

        if self._settling:
            self._settle.append(arrival - end)
            self._settle_frames += frames
            if fits and block is not None:
                pl.write(first, block)
            if self._settle_frames < self._settle_target:
                return Outcome.SETTLING
            self._lock()
            return Outcome.STORED

        # Lateness against the read position before the last move took
        # effect is what the move answered.  The C receive path accounts for
        # a few dozen packets at once, after the fact: counted again, every
        # three of them loosened once more (a 10 s bench round held 80 ms).
        answered = arrival <= self._moved_at
        # Late replays of old packets must not be able to force a re-sync, so
        # only fresh ones count towards it.  The newest end is taken from
        # packets stored, so one that lies about its place cannot hide the
        # real ones' lateness for longer than the ring is long.
        if not answered and end > self._newest_end and self.policy.fresh_packet(first < read_end):
            self._relock("packets keep arriving after their playout time")
        # A partly late packet lies inside the playout window, so it cannot be
        # an old replay: count it even if a later packet overtook it.
        if not answered and not self._settling and first < read_end < end:
            self._partly_late(read_end - first, arrival)
        if end <= read_end:
            return Outcome.LATE
        if not fits:
            self.stats.overruns += 1
            # One packet that lies about its place must not move the mapping:
            # only a run of them with nothing stored between.
            self._overrun_run += 1
            if self._overrun_run >= RELOCK_AFTER_OVERRUN:
                self._relock("packets arrive further ahead than the buffer holds")
            return Outcome.OVERRUN
        self._overrun_run = 0
        if block is not None:
            pl.write(first, block)
        self._newest_end = max(self._newest_end, end)
        # Resampling faster makes packets land later on the ring's time
        # line: latency taken off, which `_shortfall` counts at once.
        self.transits.add(arrival, arrival - end - self._shortfall)
        slack = first - read_end
        tighten = self.policy.review(slack, arrival, self.margin.total)
        # Grown inside a disturbance that outlasted a review: by the moves
        # since the lock, not by the latency measured, which may sit above
        # the target on a path calmer now than at the lock, where a move
        # would cost a crossfade for nothing.
        if tighten is None and not self.auto and not self.policy.reviewing \
                and self.transit - self._locked_transit > TIGHTEN_FRAMES:
            self.policy.start_review(arrival)
        if tighten is not None:
            log.info("path calmer again: latency down by %d frames", tighten)
            self.stats.tightened += 1
            self._set_transit(self.transit - tighten, Move.TIGHTEN)
        self.slack.add(arrival, slack)
        return Outcome.STORED

    def fill_frames(self) -> int:
        """Audio buffered ahead of the playout position, in frames."""
        if not self.playout.locked:
            return 0
        return max(0, self._newest_end - self.playout.read_end)

    def least_slack(self) -> int | None:
        """How early the least early packet of the last few seconds landed."""
        return self.slack.least(self.playout.now) if self.playout.locked else None

    def _partly_late(self, shortfall: int, arrival: int) -> None:
        worst = self.policy.partly_late(shortfall, arrival)
        if worst is None:
            return
        # Grow by what would have made the latest of these packets on time,
        # and a step: never by more, so a burst of lateness under loss cannot
        # run the latency away, and never past half the ring, which must
        # still hold the packets that arrive early.  What the ring holds is
        # the lesser of the latency held and the audio buffered ahead of the
        # playout: the first counts every jump of the receiver's JACK clock
        # (an xrun's) as latency, which the audio never was (a 10-minute
        # link under an xrun storm said 680 ms and could grow no more while
        # it played 4 ms late); the second counts a forged packet far ahead.
        step = round(LOOSEN_STEP_SECONDS * self.samplerate)
        held = min(math.ceil(self.latency_frames() or 0), self.fill_frames())
        grow = min(worst + step, self.playout.capacity // 2 - held)
        if grow <= 0:
            log.warning("packets keep landing up to %d frames late, and the buffer "
                        "holds all it can (%d frames)", worst, held)
            return
        log.info("packets keep landing up to %d frames late; buffer grows by %d frames",
                 worst, grow)
        self.stats.loosened += 1
        self._set_transit(self.transit + grow, Move.LOOSEN)
        self.policy.start_review(arrival)  # if it was a passing disturbance, come back down

    def resync(self, why: str) -> None:
        """Measure the mapping afresh (after a reconnect, say)."""
        if self.stream_id is not None:
            self._relock(why)

    def _relock(self, why: str) -> None:
        log.warning("re-syncing the jitter buffer: %s", why)
        self.stats.relocks += 1
        self._relocking = True
        self._begin_settle()
