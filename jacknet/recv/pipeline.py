"""The receiver's path for datagrams, apart from sockets and JACK.

``StreamPipeline.feed(datagram, peer, arrival)`` takes one datagram through
every stage, in order:

1. **intake**: a unicast UDP receiver plays one sender (`PeerLock`); the
   header is parsed and validated (`jacknet.net.protocol`);
2. **reassembly** of fragments into packets;
3. **admission** of the packet's stream by the jitter buffer (a new stream
   takes over only once the current one has gone quiet);
4. **sequencing and decoding** (`Sequencer`: revival from copies and FEC,
   concealment at the deadline), with a fresh decoder for each stream;
5. **placement**, directly into the jitter buffer or through a
   `ClockBridge` that resamples onto the receiver's clock;
6. **loss accounting** (`LossCounter`).

``tick(now)`` runs what is due without a packet (the bridge's steering,
concealment at a deadline).  Time is the receiver clock in frames, handed
in, so tests drive the whole path with a simulated clock and a simulated
playout (`Playout.run`), with no jackd.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from jacknet.clock.bridge import ClockBridge
from jacknet.clock.resample import DEFAULT_QUALITY
from jacknet.codecs import make_decoder
from jacknet.errors import JacknetError, MalformedPacket
from jacknet.net import protocol
from jacknet.net.address import show_address
from jacknet.recv.continuity import ContinuityStats, Place, Timeline
from jacknet.recv.jitter import DECODE_LEAD_SECONDS, SWITCH_SECONDS, JitterBuffer
from jacknet.recv.outcome import Outcome
from jacknet.recv.sequencer import Sequencer, SequencerStats, seq_ahead
from jacknet.stats import RateLimitedLog, ReceiverStats
from jacknet.sync.heard import Heard, HeardTransport

log = logging.getLogger(__name__)


@dataclass
class IntakeStats:
    datagrams: int = 0
    """Datagrams taken in from the sender played (before validation)."""
    bytes: int = 0
    """Their bytes."""
    late: int = 0
    """Packets that came after their frames were played, revived or concealed."""
    duplicate: int = 0
    """Packets (and fragments) that came before."""
    foreign_sources: int = 0
    """Datagrams from another address while locked to a sender."""
    malformed: Counter = field(default_factory=Counter)
    """Datagrams refused, by reason (`MalformedPacket.reason`)."""
    internal_errors: int = 0
    """Bugs caught on the network thread (logged once)."""


class PeerLock:
    """A unicast receiver plays the first sender it hears; another source
    takes over only once that one has been quiet for ``SWITCH_SECONDS``."""

    def __init__(self, samplerate: int) -> None:
        self.quiet = round(SWITCH_SECONDS * samplerate)
        self.peer: tuple | None = None
        self._seen = 0

    def allows(self, peer: tuple, arrival: int) -> bool:
        if peer == self.peer:
            self._seen = arrival
            return True
        if self.peer is not None and arrival - self._seen < self.quiet:
            return False
        if self.peer is not None:
            log.warning("sender changed from %s to %s", show_address(self.peer), show_address(peer))
        self.peer, self._seen = peer, arrival
        return True


class LossCounter:
    """Loss = sequence numbers never seen (reordered ones are not lost),
    summed over the streams played."""

    def __init__(self) -> None:
        self._stream: int | None = None
        self._first = self._span = self._unique = 0
        self._before = self._current = 0

    def restart(self) -> None:
        """Count the current stream afresh from its next packet (its
        sequence numbers leapt)."""
        self._stream = None

    def count(self, stream_id: int, seq: int, duplicate: bool) -> None:
        if stream_id != self._stream:
            self._stream, self._first, self._span, self._unique = stream_id, seq, 1, 0
            self._before += self._current
            self._current = 0
        ahead = seq_ahead(seq, self._first)
        if ahead >= 0:
            self._span = max(self._span, ahead + 1)
        self._unique += not duplicate
        self._current = max(0, self._span - self._unique)

    def count_run(self, stream_id: int, first: int, count: int) -> None:
        """`count` for ``count`` packets in sequence from ``first``, none a duplicate."""
        self.count(stream_id, first, False)
        if count > 1:
            # The packets between add to the unique count only; the last
            # one moves the span as far as any of them would.
            self._unique += count - 2
            self.count(stream_id, (first + count - 1) & 0xFFFFFFFF, False)

    @property
    def lost(self) -> int:
        return self._before + self._current


class _Stream:
    """What one stream id needs: its format, decoder, sequencer and bridge."""

    def __init__(self, header: protocol.Header, sequencer: Sequencer,
                 bridge: ClockBridge | None, timeline: Timeline) -> None:
        self.stream_id = header.stream_id
        self.format = (header.codec, header.channels, header.frames, header.sample_rate)
        self.sequencer = sequencer
        self.bridge = bridge
        self.timeline = timeline
        self.heard = HeardTransport(header.sample_rate)
        self.copies = False  # its packets carry copies or FEC
        self.next: tuple[int, int] | None = None  # (seq, timestamp) after the newest stored

    def stored(self, seq: int, timestamp: int) -> None:
        """Packet ``seq`` was stored as it arrived."""
        if self.next is None or seq_ahead(seq, self.next[0]) >= 0:
            self.next = ((seq + 1) & 0xFFFFFFFF, timestamp + self.format[2])


@dataclass(frozen=True)
class InLine:
    """The packet a C receive path may place without Python: the next one
    of the stream played, and where it and those after it go."""

    codec: int
    channels: int
    frames: int
    rate: int
    stream_id: int
    seq: int
    timestamp: int
    base: int
    """Ring index = timestamp + base."""
    guard: int
    """Frames the ring keeps free beyond the read position."""
    skew: float
    reach: float
    """A packet whose ``timestamp - arrival`` lies within ``reach`` of
    ``skew`` is on its stream's timeline."""
    peer: tuple | None
    """The sender locked to (None: any)."""
    known: list[int]
    """Packets from ``seq`` on that the reassembler or the sequencer has had
    a part of: theirs to take."""


class StreamPipeline:
    """Datagrams in, audio placed in the jitter buffer's ring.

    Parameters
    ----------
    jitter : JitterBuffer
        Where decoded audio goes (and the clock mapping it keeps).
    channels : int
        The receiver's channel count (a sender with more plays its first ones).
    samplerate : int
        The receiver's rate.
    lock_sender : bool
        Play only the first sender heard until it goes quiet (unicast UDP).
    drift : bool
        Resample even when the rates match, to follow a drifting clock.
    resampler : str
        The converter used when resampling.
    """

    def __init__(self, jitter: JitterBuffer, channels: int, samplerate: int,
                 lock_sender: bool = False, drift: bool = False,
                 resampler: str = DEFAULT_QUALITY) -> None:
        self.jitter = jitter
        self.channels = channels
        self.samplerate = samplerate
        self.drift = drift
        self.resampler = resampler
        self.stats = IntakeStats()
        self.decoding = SequencerStats()
        self.continuity = ContinuityStats()
        self.loss = LossCounter()
        self.reassembler = protocol.Reassembler()
        self.peers = PeerLock(samplerate) if lock_sender else None
        self.stream: _Stream | None = None
        self._need = (0, 0)
        self._mapped_warned = False
        self.partial = False
        """The last datagram fed left its packet incomplete: the rest of its
        fragments are likely waiting already."""
        self._bad = RateLimitedLog(log)

    @property
    def bridge(self) -> ClockBridge | None:
        return self.stream.bridge if self.stream else None

    # -- input -------------------------------------------------------------
    def feed(self, datagram: memoryview | bytes, peer: tuple, arrival: int) -> None:
        """One datagram from ``peer``, arrived at receiver clock ``arrival``.
        Never raises: whatever is wrong with it is counted."""
        s = self.stats
        self.partial = False
        try:
            if self.peers is not None and not self.peers.allows(peer, arrival):
                s.foreign_sources += 1
                self._bad("source", "ignoring packets from %s: locked to sender %s "
                          "(--allow-any-sender to take any)", show_address(peer),
                          show_address(self.peers.peer))
                return
            s.datagrams += 1
            s.bytes += len(datagram)
            try:
                self._handle(datagram, arrival)
            except MalformedPacket as e:
                s.malformed[e.reason] += 1
                self._bad(e.reason, "dropped a malformed packet (%s)", e)
        except Exception:  # a bug must not silence the link for good: say it, count it, go on
            self._internal_error()

    def _internal_error(self) -> None:
        self.stats.internal_errors += 1
        if self.stats.internal_errors == 1:
            log.exception("error in the receiver's network thread (logged once, "
                          "counted in internal_errors); please report it")

    def _handle(self, datagram: memoryview | bytes, arrival: int) -> None:
        header = protocol.parse(datagram)
        fragments_duplicate = self.reassembler.duplicate
        whole = self.reassembler.add(header, datagram[protocol.HEADER_SIZE:])
        self.stats.duplicate += self.reassembler.duplicate - fragments_duplicate
        if whole is None:
            self.partial = header.frag_count > 1
            return
        header, payload = whole
        block = None
        if header.flags & protocol.FLAG_POSITION:
            block, payload = protocol.split_position(payload)
        if header.channels != self.channels and not self._mapped_warned:
            self._mapped_warned = True
            log.warning("sender has %d channel(s), this receiver %d: playing the first %d",
                        header.channels, self.channels, min(header.channels, self.channels))
        if not self.jitter.admit(header.stream_id, header.timestamp, arrival):
            return
        stream = self._stream_for(header)
        place = stream.timeline.place(header.seq, header.timestamp, arrival)
        if place is Place.STRAY:
            self._bad("stray", "dropped packets far off their stream's timeline "
                      "(forged, broken or replayed; counted in strays)")
            return
        if place is Place.LEAP:
            log.warning("stream %08x jumped (sender clock or sequence); playing it afresh from here",
                        header.stream_id)
            stream = self._rebuild(header, stream.timeline)
        copies: list[bytes] = []
        stream.copies = bool(header.flags & (protocol.FLAG_REDUNDANT | protocol.FLAG_FEC))
        if header.flags & protocol.FLAG_REDUNDANT:
            payload, copies = protocol.split_redundant(payload)
        try:
            outcome = stream.sequencer.push(header.seq, header.timestamp, payload, copies, arrival)
        except ValueError as e:
            raise MalformedPacket("payload", str(e)) from None
        self._counted(stream, header.seq, header.timestamp, outcome, arrival,
                      (header.jack_transport_state, header.jack_transport_frame,
                       header.jack_transport_epoch, block))

    def _counted(self, stream: _Stream, seq: int, timestamp: int, outcome: Outcome,
                 arrival: int, transport: tuple) -> None:
        """What follows a packet's outcome, whoever placed it: its count,
        the stream's next packet, the bridge's clock, the transport heard
        (``transport``: `HeardTransport.add`'s state, frame, epoch and
        position block) and loss."""
        if outcome is Outcome.LATE:
            self.stats.late += 1
            if stream.sequencer.ordered:
                self.jitter.missed(self.deadline(timestamp), arrival)
        elif outcome is Outcome.DUPLICATE:
            self.stats.duplicate += 1
        elif outcome is Outcome.STORED:
            stream.stored(seq, timestamp)
        if stream.bridge is not None and outcome is not Outcome.DUPLICATE:
            stream.bridge.arrived(timestamp, arrival)
        if outcome is not Outcome.DUPLICATE:
            stream.heard.add(timestamp, *transport)
        self.loss.count(stream.stream_id, seq, outcome is Outcome.DUPLICATE)

    # -- the C receive path ---------------------------------------------------
    def in_line(self, packets: int, most_known: int) -> InLine | None:
        """What the C receive path may place for the next ``packets``
        packets, or None while every packet needs Python: no stream locked
        yet, another codec, copies or FEC, resampling, or more than
        ``most_known`` of those packets already known in part."""
        st, jb = self.stream, self.jitter
        if st is None or st.next is None or st.bridge is not None or st.copies:
            return None
        codec, channels, frames, rate = st.format
        line = st.timeline.line(packets)
        if (codec not in (protocol.CODEC_FLOAT32, protocol.CODEC_INT16) or rate != self.samplerate
                or not jb.locked or jb.stream_id != st.stream_id or line is None):
            return None
        seq = st.next[0]
        known = st.sequencer.seen_of(seq, packets)
        known += [s for s in self.reassembler.seqs(st.stream_id) if 0 <= seq_ahead(s, seq) < packets]
        if len(known) > most_known:
            return None
        return InLine(codec, channels, frames, rate, st.stream_id, *st.next,
                      base=jb.mapping.base, guard=jb.guard(frames), skew=line[0],
                      reach=line[1], peer=self.peers.peer if self.peers else None, known=known)

    def placed(self, records: list[tuple]) -> None:
        """Account for packets of `in_line`'s stream that the C receive path
        placed, in order: what `feed` would have counted and moved for each.
        ``records`` are (seq, timestamp, arrival, read_end, transport state,
        transport frame, epoch, datagrams, bytes), consecutive packets of
        the stream.  Never raises, as `feed`."""
        try:
            self._placed(records)
        except Exception:
            self._internal_error()

    def _placed(self, records: list[tuple]) -> None:
        # Per stage, a run at a time: a return from C finds the worker's
        # caches cold, and a stage's calls per packet cost several times
        # what they do warm (docs/benchmarks.md, "Cold returns").  The
        # stages do not look at each other's state for these packets, so
        # the order of the stages does not matter, only each one's own.
        st, s = self.stream, self.stats
        codec, channels, frames, rate = st.format
        jitter, timeline, heard = self.jitter, st.timeline, st.heard
        for seq, timestamp, arrival, read_end, tstate, tframe, epoch, datagrams, size in records:
            s.datagrams += datagrams
            s.bytes += size
            if datagrams > 1:
                self.reassembler.completed(protocol.Header(codec, st.stream_id, seq, timestamp,
                                                           rate, frames, channels, 0, datagrams))
            timeline.place(seq, timestamp, arrival)  # on the line: C kept to `in_line`'s reach
            jitter.placed(timestamp, frames, arrival, read_end)
            heard.add(timestamp, tstate, tframe, epoch)
        seq, timestamp, arrival = records[-1][:3]
        if self.peers is not None:
            self.peers.allows(self.peers.peer, arrival)
        st.sequencer.placed(records[0][0], len(records))
        st.stored(seq, timestamp)
        self.loss.count_run(st.stream_id, records[0][0], len(records))

    def _stream_for(self, header: protocol.Header) -> _Stream:
        """This stream's path, with a fresh decoder for each new stream.  A
        sender's format is fixed for the life of its stream id, so a packet
        that claims otherwise is refused rather than reset the decoder."""
        fmt = (header.codec, header.channels, header.frames, header.sample_rate)
        old = self.stream
        if old is not None and header.stream_id == old.stream_id:
            if fmt != old.format:
                raise MalformedPacket("format", "codec, channels, frames or rate differ from "
                                                "the rest of its stream")
            return old
        if old is not None and fmt != old.format:
            log.info("stream format changed: codec %d, %d channel(s), %d frames/packet, %d Hz",
                     *fmt)
        timeline = Timeline(header.sample_rate, self.samplerate, header.frames, self.continuity)
        self.stream = stream = self._build(header, timeline)
        self._need_margin(header, stream.sequencer.ordered)
        return stream

    def _rebuild(self, header: protocol.Header, timeline: Timeline) -> _Stream:
        """The same stream played afresh after a leap of its timeline: a new
        decoder and mapping, loss counted from here."""
        self.jitter.leap(header.timestamp)
        self.loss.restart()
        self.stream = stream = self._build(header, timeline)
        return stream

    def _build(self, header: protocol.Header, timeline: Timeline) -> _Stream:
        try:
            decoder = make_decoder(header.codec)
        except (ValueError, JacknetError) as e:  # unknown codec, or no libopus here
            raise MalformedPacket("codec", str(e)) from None
        jb, rate = self.jitter, self.samplerate
        bridge = None
        if self.drift or jb.auto or header.sample_rate != rate:
            if header.sample_rate != rate:
                log.info("stream at %d Hz, JACK at %d Hz: resampling", header.sample_rate, rate)
            bridge = ClockBridge(jb, header.stream_id, header.channels, header.frames,
                                 header.sample_rate, rate, self.resampler, auto=jb.auto)
            sink = bridge.place
        else:
            sink = partial(jb.insert, header.stream_id)
        jb.playout.limit = decoder.ceiling
        sequencer = Sequencer(decoder, header.channels, header.frames, header.sample_rate,
                              sink, self.decoding, ordered=bridge is not None,
                              malformed=self.stats.malformed)
        return _Stream(header, sequencer, bridge, timeline)

    def _need_margin(self, header: protocol.Header, ordered: bool) -> None:
        """Reviving from a copy or from FEC means waiting one packet for it; a
        decoder that conceals must do so a little before the playout."""
        rate = self.samplerate
        need = (round(header.frames * rate / header.sample_rate)
                if header.flags & (protocol.FLAG_REDUNDANT | protocol.FLAG_FEC) else 0,
                round(DECODE_LEAD_SECONDS * rate) if ordered else 0)
        if need != self._need:
            self._need = need
            self.jitter.need_margin(*need)

    # -- the sender's JACK transport ------------------------------------------
    @property
    def heard(self) -> HeardTransport | None:
        return self.stream.heard if self.stream else None

    def heard_at(self, index: int) -> Heard | None:
        """The sender's JACK transport for the audio at ring ``index`` (None
        while the mapping is measured)."""
        stream, mapping = self.stream, self.jitter.mapping
        if stream is None or not mapping.ready:
            return None
        when = mapping.timestamp_at(index)
        if stream.bridge is not None:
            when = stream.bridge.sender_frame(when)
            if when is None:
                return None
        return stream.heard.at(when)

    def heard_until(self) -> int | None:
        """The ring index of the newest packet heard (None as `heard_at`)."""
        stream, mapping = self.stream, self.jitter.mapping
        newest = stream.heard.newest if stream else None
        if newest is None or not mapping.ready:
            return None
        when: float | None = newest + stream.format[2]
        if stream.bridge is not None:
            when = stream.bridge.out_time(when)
            if when is None:
                return None
        return mapping.index(round(when))

    # -- time --------------------------------------------------------------
    def deadline(self, timestamp: int) -> int | None:
        """Receiver clock by which sender frame ``timestamp`` must be decoded."""
        bridge = self.bridge
        return (bridge or self.jitter).deadline(timestamp)

    def tick(self, now: int) -> None:
        """What is due at receiver clock ``now`` without a packet: steer the
        resampler, conceal what is still missing at its deadline."""
        try:
            if self.stream is None:
                return
            if self.stream.bridge is not None:
                self.stream.bridge.steer()
            self.stream.sequencer.expire(now, self.deadline)
        except Exception:
            self._internal_error()

    def wait(self, now: int, longest: float = 0.1) -> float:
        """Seconds until the next deadline of a missing frame (at most ``longest``)."""
        if self.stream is None:
            return longest
        deadline = self.stream.sequencer.next_deadline(self.deadline)
        if deadline is None:
            return longest
        return min(longest, max(0.0, (deadline - now) / self.samplerate))

    def resync(self, why: str) -> None:
        """Measure the mapping afresh (a new TCP connection, say)."""
        self.jitter.resync(why)

    def report(self, out: ReceiverStats) -> None:
        """Fill in what the pipeline's stages and its playout count (taking
        it changes nothing)."""
        s, d, jb = self.stats, self.decoding, self.jitter
        js = jb.stats
        out.datagrams, out.bytes, out.packets = s.datagrams, s.bytes, js.packets
        out.lost, out.incomplete = self.loss.lost, self.reassembler.incomplete
        out.late, out.duplicate = s.late, s.duplicate
        out.revived, out.fec_recovered = d.revived, d.fec_recovered
        out.plc_concealed, out.decoder_restarts = d.plc_concealed, d.decoder_restarts
        out.overruns, out.foreign, out.foreign_sources = js.overruns, js.foreign, s.foreign_sources
        out.malformed.update(s.malformed)
        out.internal_errors = s.internal_errors
        out.strays, out.leaps = self.continuity.strays, self.continuity.leaps
        pl = jb.playout
        out.concealed_frames, out.underruns = pl.concealed_frames, pl.underruns
        out.nonfinite_samples, out.limited_samples = pl.nonfinite_samples, pl.limited_samples
        out.relocks, out.tightened, out.loosened = js.relocks, js.tightened, js.loosened
        ms = 1000.0 / self.samplerate
        out.fill_ms = jb.fill_frames() * ms
        out.target_ms = jb.target_frames() * ms
        latency, slack = jb.latency_frames(), jb.least_slack()
        out.latency_ms = None if latency is None else latency * ms
        out.slack_ms = None if slack is None else slack * ms
        bridge = self.bridge
        if bridge is not None:
            drift = bridge.drift
            out.drift_ppm, out.ratio = drift.drift_ppm, drift.ratio
            out.loop_error_frames, out.loop_jumps = drift.loop_error_frames, drift.loop_jumps
            out.loop_resyncs, out.jitter_ms = drift.loop_resyncs, bridge.jitter_ms()
