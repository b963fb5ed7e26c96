"""Between two clocks: resample a stream so it plays at the receiver's rate
and at the receiver's speed.

When the sender's sample rate differs from the receiver's, or its clock runs
apart (``--drift``), the `Sequencer` decodes in order and hands every
block to a `ClockBridge`.  The bridge feeds each packet's arrival to an
`ArrivalDll`, resamples the block at the ratio the `DriftController` sets,
and places the result into the jitter buffer as one continuous stream on the
receiver's own time line.  The jitter buffer locks on that stream as on any
other; from then on the controller holds the distance between the sender
frame arriving now (the DLL's smoothed line) and the sender frame the
playout reads, moving the ratio instead of the audio.

With ``--latency auto`` the bridge also measures the arrival jitter against
the DLL's line and moves the distance held toward the margin that jitter
needs (`AutoLatency`), by resampling a little faster or slower: the latency
comes down without a jump.
"""
from __future__ import annotations

import logging

import numpy as np

from jacknet.clock.autolatency import AutoLatency
from jacknet.clock.drift import ArrivalDll, DriftController, DriftStats
from jacknet.recv.jitter import JitterBuffer
from jacknet.recv.mapping import Moved
from jacknet.recv.outcome import Outcome
from jacknet.clock.resample import DEFAULT_QUALITY, Resampler

log = logging.getLogger(__name__)


class ClockBridge:
    """One stream's resampling into a jitter buffer.

    Parameters
    ----------
    jitter : JitterBuffer
        Where the resampled audio goes.
    stream_id : int
        The stream (the jitter buffer's key).
    channels, frames : int
        The stream's channels and frames per packet.
    sender_rate, receiver_rate : int
        The two nominal sample rates.
    quality : str
        The resampler's converter (see `jacknet.clock.resample`).
    auto : bool
        Follow the jitter with the margin (``--latency auto``).
    """

    def __init__(self, jitter: JitterBuffer, stream_id: int, channels: int, frames: int,
                 sender_rate: int, receiver_rate: int, quality: str = DEFAULT_QUALITY,
                 auto: bool = False) -> None:
        self.jitter = jitter
        self.stream_id = stream_id
        self.nominal = sender_rate / receiver_rate  # sender frames per receiver frame
        self.resampler = Resampler(channels, quality)
        self.dll = ArrivalDll(frames, sender_rate, nominal=self.nominal)
        self.controller = DriftController(self.dll, None, jitter.period, receiver_rate,
                                          nominal=self.nominal)
        self.ratio = self.nominal
        self._in_end: int | None = None   # sender frame after the last one resampled
        self._out_end = 0                 # receiver-time frame after the last one produced
        self._first = 0                   # the sender frame both time lines start at
        self._cycle: int | None = None
        self.auto = AutoLatency(receiver_rate) if auto else None
        self._moves: list[Moved] = []  # told by the mapping, handled at the next cycle
        jitter.mapping.on_moved(self._moved)
        self._said_want = 0

    def arrived(self, timestamp: int, arrival: int) -> None:
        """A packet of the stream arrived (any order, duplicates excepted):
        its arrival feeds the clock line and the jitter measurement.  Not
        through `place`: a packet that waited behind a missing one is placed
        long after it came."""
        if self.auto is not None and self.dll.ready:
            self.auto.meter.add(arrival, arrival - self.dll.time_of(timestamp))
        self.dll.update(timestamp, arrival)

    def place(self, timestamp: int, block: np.ndarray, arrival: int, measured: bool) -> Outcome:
        """A `Sequencer` sink: one decoded block, in sequence order."""
        if self._in_end is None:
            # The receiver's time line starts where the sender's is: the jitter
            # buffer took its base from this stream's first timestamp.
            self._out_end = self._first = timestamp
        elif timestamp != self._in_end:
            self._skip(timestamp - self._in_end)
        out = self.resampler.process(block, 1 / self.ratio)
        self._in_end = timestamp + block.shape[1]
        start, self._out_end = self._out_end, self._out_end + out.shape[1]
        if not out.shape[1]:
            return Outcome.STORED  # the resampler's first call fills its filter
        self.jitter.resampled((self._in_end - self._first) / self.nominal
                              - (self._out_end - self._first))
        return self.jitter.insert(self.stream_id, start, out, arrival, measured)

    def _skip(self, gap: int) -> None:
        """A hole of ``gap`` sender frames that nobody filled (too long to
        conceal: the decoder started afresh after it).  It stays a hole on
        the receiver's time line too, for the playout to fade over: closed
        up, what follows would land ``gap`` early against the clock line,
        late for the playout, and a jump in the drift loop's distance.  The
        resampler starts afresh after it, so its first frame out is the
        first frame after the hole; the frames it held back before the hole
        (``delay``) are lost with it."""
        self.resampler.reset()
        self._out_end += round((gap + self.resampler.delay) / self.ratio)

    def _sender_frame(self, out_time: float) -> float:
        """The sender frame that became receiver-time frame ``out_time``."""
        return self._in_end - (self._out_end - out_time) * self.ratio

    def sender_frame(self, out_time: float) -> float | None:
        """The sender frame heard at receiver-time frame ``out_time``, at the
        ratio now (None before the first block).  Exact to the frame, for
        transport sync: the resampler's output lags what it was given by
        the frames it holds back (the drift loop needs no such care: it
        holds a distance, whatever its constant part)."""
        if self._in_end is None:
            return None
        return self._sender_frame(out_time) - self.resampler.delay

    def out_time(self, timestamp: float) -> float | None:
        """The receiver-time frame sender frame ``timestamp`` becomes."""
        if self._in_end is None:
            return None
        return self._out_end + (timestamp - self._in_end) / self.ratio

    def deadline(self, timestamp: int) -> int | None:
        """When sender frame ``timestamp`` must be decoded (see `JitterBuffer.deadline`)."""
        out_time = self.out_time(timestamp)
        return None if out_time is None else self.jitter.deadline(round(out_time))

    def steer(self) -> None:
        """Once per receiver cycle: set the ratio for what comes next."""
        jb, pl = self.jitter, self.jitter.playout
        read_end = pl.read_end
        if not jb.locked or self._in_end is None or read_end == self._cycle:
            return
        self._cycle = read_end
        # The next cycle reads from read_end and starts at read_end + offset.
        # Both from the one value the playout publishes last: reading its
        # clock as well could catch a cycle in between, off by a period.
        now = read_end + pl.offset
        read = self._sender_frame(jb.mapping.timestamp_at(read_end))
        moves, self._moves[:] = list(self._moves), []
        if moves and self.controller.locked:  # the jitter buffer moved the playout on purpose
            self.controller.moved(now, read)
            if self.auto is not None and any(m.old_offset is not None and m.offset > m.old_offset
                                             for m in moves):
                self.auto.grew(now)
        slew = 0.0
        if self.auto is not None and self.controller.locked:
            slew = self.auto.slew(now, self._margin())
            if self.auto.want is not None and self.auto.want != jb.margin.wanted:
                self._say_want(jb.margin.wanted, self.auto.want)
                jb.want_margin(self.auto.want)
        self.ratio, _ = self.controller.step(now, read, slew)

    def _moved(self, move: Moved) -> None:
        self._moves.append(move)

    def _say_want(self, old: int, new: int) -> None:
        """Log a change of the margin wanted, when it is a millisecond or more."""
        rate = self.auto.rate
        if abs(new - self._said_want) >= rate // 1000:
            self._said_want = new
            log.info("latency auto: jitter %.1f ms, margin %.1f ms (was %.1f)",
                     1000 * self.auto.jitter / rate, 1000 * new / rate, 1000 * old / rate)

    def _margin(self) -> float:
        """The jitter margin held now, in receiver frames (beyond the packet
        a copy or FEC adds, which is not jitter)."""
        jb = self.jitter
        return jb.latency_frames() - jb.period - jb.mapping.lead - jb.margin.extra

    @property
    def drift(self) -> DriftStats:
        """The drift loop's counters (owned by its `DriftController`)."""
        return self.controller.stats

    def jitter_ms(self) -> float | None:
        """With ``--latency auto``: the arrival jitter measured."""
        if self.auto is None or self.auto.jitter is None:
            return None
        return 1000 * self.auto.jitter / self.auto.rate
