"""``jacknet recv``: network -> validated packets -> decoding -> jitter buffer -> JACK outputs.

One network thread receives, validates and reassembles packets; a
`Sequencer` decodes them (in order where the codec needs it), revives lost
ones from the copies later packets carry, and conceals what is still missing
at its deadline; the jitter buffer places the blocks, and the JACK process
callback (C) plays them on the receiver's own clock, fading over any gap.
"""
from __future__ import annotations

import logging
import time
from functools import partial
from dataclasses import dataclass

from jacknet.net import protocol
from jacknet.clock.autolatency import MAX_MARGIN_SECONDS
from jacknet.rt.binding import JackClient
from jacknet.codecs import make_decoder
from jacknet.errors import JacknetError, MalformedPacket
from jacknet.recv.jitter import GUARD_SECONDS, SWITCH_SECONDS, JitterBuffer
from jacknet.node import DEFAULT_RT_PRIORITY, Node
from jacknet.clock.bridge import ClockBridge
from jacknet.rt.engines import Playout
from jacknet.clock.resample import DEFAULT_QUALITY
from jacknet.recv.sequencer import Sequencer, SequencerStats, seq_ahead
from jacknet.stats import RateLimitedLog
from jacknet.net.transport import TcpSource, _show, is_multicast, open_source

log = logging.getLogger(__name__)


@dataclass
class ReceiverConfig:
    host: str = "0.0.0.0"
    port: int = 4477
    channels: int = 2
    name: str = "jacknet-recv"
    connect: str | None = None
    latency_ms: float | None = 5.0    # None: follow the measured jitter (--latency auto)
    server: str | None = None
    rt_priority: int = DEFAULT_RT_PRIORITY
    transport: str = "udp"
    interface: str | None = None      # multicast interface to join on
    allow_any_sender: bool = False
    drift: bool = False               # resample to follow a sender clock that runs apart
    resampler: str = DEFAULT_QUALITY


class Receiver(Node):
    """A running receiver (`start`, `stats`, `close`)."""

    def __init__(self, config: ReceiverConfig) -> None:
        super().__init__(config.rt_priority)
        self.config = config
        self.playout: Playout | None = None
        self.jitter: JitterBuffer | None = None
        self._bad = RateLimitedLog(log)
        self._sequencer: Sequencer | None = None
        self._bridge: ClockBridge | None = None
        self._sequencer_key: tuple | None = None
        self.decoding = SequencerStats()
        self._need = (0, 0)
        self._mapped_warned = False
        self.reassembler = protocol.Reassembler()
        self.datagrams = 0
        self.bytes = 0
        self.malformed: dict[str, int] = {}
        self.foreign_sources = 0
        self.internal_errors = 0
        self._peer: tuple | None = None
        self._peer_seen = 0.0
        self._seq_stream: int | None = None
        self._seq_first = self._seq_span = self._seq_unique = 0
        self._lost_before = self._lost_current = 0

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (useful with port 0)."""
        return self.link.address

    def start(self) -> "Receiver":
        c = self.config
        self.link = open_source(c.transport, c.host, c.port, c.interface)
        # Only a unicast UDP receiver can be reached by anyone at any time.
        self._lock_sender = (c.transport == "udp" and not is_multicast(c.host)
                             and not c.allow_any_sender)
        try:
            self.jack = JackClient(c.name, c.server)
            self.jack.register("out", c.channels, "out")
            rate, period = self.jack.samplerate, self.jack.blocksize
            auto = c.latency_ms is None
            # Auto starts from nothing (its first lock measures the jitter),
            # but the ring must hold the most it may ask for.
            target = 0 if auto else round(c.latency_ms * rate / 1000)
            most = round(MAX_MARGIN_SECONDS * rate) if auto else target
            self.playout = Playout(c.channels, capacity=2 * (most + 8192) + rate // 2,
                                   samplerate=rate)
            self.jitter = JitterBuffer(self.playout, period, target, rate, auto=auto)
            self.jack.run(self.playout)
            self.jack.connect(c.connect)
        except BaseException:
            self.close()
            raise
        self._spawn(self._work, "jacknet-recv")
        log.info("receiving on %s over %s into %d channel(s) of JACK '%s', %s jitter margin",
                 _show(self.address), c.transport, c.channels, self.jack.name,
                 "automatic" if c.latency_ms is None else f"{c.latency_ms:.1f} ms")
        return self

    def _arrival_clock(self) -> int:
        """Now, on the playout's 64-bit receiver clock."""
        ref = self.playout.now
        delta = (self.jack.frame_time - ref) & 0xFFFFFFFF
        return ref + (delta - (1 << 32) if delta >= 1 << 31 else delta)

    def _work(self) -> None:
        buf = bytearray(protocol.MAX_DATAGRAM)
        view = memoryview(buf)
        source = self.link
        rate = self.jack.samplerate
        while not self._stop.is_set():
            n, peer = source.receive(buf, self._wait(rate))
            if isinstance(source, TcpSource) and source.new_peer:
                source.new_peer = False
                self.jitter.resync("a sender connected")
            try:
                if n and self._from_our_sender(peer):
                    self.datagrams += 1
                    self.bytes += n
                    try:
                        self._handle(view[:n])
                    except MalformedPacket as e:
                        self.malformed[e.reason] = self.malformed.get(e.reason, 0) + 1
                        self._bad(e.reason, "dropped a malformed packet (%s)", e)
                if self._bridge is not None:
                    self._bridge.steer()
                if self._sequencer is not None:
                    self._sequencer.expire(self._arrival_clock(), self._deadline_of)
            except Exception:  # a bug must not silence the link for good: say it, count it, go on
                self.internal_errors += 1
                if self.internal_errors == 1:
                    log.exception("error in the receiver's network thread (logged once, "
                                  "counted in internal_errors); please report it")

    def _deadline_of(self, timestamp: int) -> int | None:
        return (self._bridge or self.jitter).deadline(timestamp)

    def _wait(self, rate: int) -> float:
        """Seconds until a missing frame's deadline (at most 0.1)."""
        deadline = self._sequencer.next_deadline(self._deadline_of) if self._sequencer else None
        if deadline is None:
            return 0.1
        return min(0.1, max(0.0, (deadline - self._arrival_clock()) / rate))

    def _from_our_sender(self, peer: tuple) -> bool:
        """A unicast receiver plays the first sender it hears; another source
        takes over only once that one has gone quiet (or with --allow-any-sender)."""
        if not self._lock_sender:
            return True
        now = time.monotonic()
        if peer == self._peer:
            self._peer_seen = now
            return True
        if self._peer is not None and now - self._peer_seen < SWITCH_SECONDS:
            self.foreign_sources += 1
            self._bad("source", "ignoring packets from %s: locked to sender %s "
                      "(--allow-any-sender to take any)", _show(peer), _show(self._peer))
            return False
        if self._peer is not None:
            log.warning("sender changed from %s to %s", _show(self._peer), _show(peer))
        self._peer, self._peer_seen = peer, now
        return True

    def _handle(self, datagram: memoryview) -> None:
        header = protocol.parse(datagram)
        whole = self.reassembler.add(header, datagram[protocol.HEADER_SIZE:])
        if whole is None:
            return
        header, payload = whole
        if header.channels != self.config.channels and not self._mapped_warned:
            self._mapped_warned = True
            log.warning("sender has %d channel(s), this receiver %d: playing the first %d",
                        header.channels, self.config.channels,
                        min(header.channels, self.config.channels))
        arrival = self._arrival_clock()
        if not self.jitter.admit(header.stream_id, header.timestamp, arrival):
            return
        sequencer = self._sequencer_for(header)
        copies: list[bytes] = []
        if header.flags & protocol.FLAG_REDUNDANT:
            payload, copies = protocol.split_redundant(payload)
        try:
            outcome = sequencer.push(header.seq, header.timestamp, payload, copies, arrival)
        except ValueError as e:
            raise MalformedPacket("payload", str(e)) from None
        if outcome == "late" and sequencer.ordered:
            self.jitter.missed(self._deadline_of(header.timestamp), arrival)
        if self._bridge is not None and outcome != "duplicate":
            self._bridge.arrived(header.timestamp, arrival)
        self._count_sequence(header.stream_id, header.seq, outcome == "duplicate")

    def _sequencer_for(self, header: protocol.Header) -> Sequencer:
        """This stream's sequencer, with a fresh decoder for each new stream.
        A sender's format is fixed for the life of its stream id, so a packet
        that claims otherwise is refused rather than reset the decoder."""
        fmt = (header.codec, header.channels, header.frames, header.sample_rate)
        if self._sequencer_key is None or header.stream_id != self._sequencer_key[0]:
            if self._sequencer_key is not None and fmt != self._sequencer_key[1]:
                log.info("stream format changed: codec %d, %d channel(s), %d frames/packet, %d Hz",
                         *fmt)
            try:
                decoder = make_decoder(header.codec)
            except (ValueError, JacknetError) as e:  # unknown codec, or no libopus here
                raise MalformedPacket("codec", str(e)) from None
            stream, rate = header.stream_id, self.jack.samplerate
            self._bridge = None
            if self.config.drift or self.jitter.auto or header.sample_rate != rate:
                if header.sample_rate != rate:
                    log.info("stream at %d Hz, JACK at %d Hz: resampling", header.sample_rate, rate)
                self._bridge = ClockBridge(self.jitter, stream, header.channels, header.frames,
                                           header.sample_rate, rate, self.config.resampler,
                                           auto=self.jitter.auto)
                sink = self._bridge.place
            else:
                sink = partial(self.jitter.insert, stream)
            self._sequencer = Sequencer(decoder, header.channels, header.frames,
                                        header.sample_rate, sink, self.decoding,
                                        ordered=self._bridge is not None)
            self._sequencer_key = (header.stream_id, fmt)
        elif fmt != self._sequencer_key[1]:
            raise MalformedPacket("format", "codec, channels, frames or rate differ from the "
                                            "rest of its stream")
        # Reviving from a copy or from FEC means waiting one packet for it;
        # a decoder that conceals must do so a little before the playout.
        rate = self.jack.samplerate
        need = (round(header.frames * rate / header.sample_rate)
                if header.flags & (protocol.FLAG_REDUNDANT | protocol.FLAG_FEC) else 0,
                round(GUARD_SECONDS * rate) if self._sequencer.ordered else 0)
        if need != self._need:
            self._need = need
            self.jitter.need_margin(*need)
        return self._sequencer

    def _count_sequence(self, stream_id: int, seq: int, duplicate: bool) -> None:
        """Loss = sequence numbers never seen (reordered ones are not lost)."""
        if stream_id != self._seq_stream:
            self._seq_stream, self._seq_first, self._seq_span, self._seq_unique = stream_id, seq, 1, 0
            self._lost_before += self._lost_current
            self._lost_current = 0
        ahead = seq_ahead(seq, self._seq_first)
        if ahead >= 0:
            self._seq_span = max(self._seq_span, ahead + 1)
        self._seq_unique += not duplicate
        self._lost_current = max(0, self._seq_span - self._seq_unique)

    @property
    def lost(self) -> int:
        return self._lost_before + self._lost_current

    def _malformed_counts(self) -> dict[str, int]:
        counts = dict(self.malformed)
        if self.decoding.undecodable:
            counts["payload"] = counts.get("payload", 0) + self.decoding.undecodable
        if isinstance(self.link, TcpSource) and self.link.malformed:
            counts["framing"] = self.link.malformed
        return counts

    def stats(self) -> dict:
        jb, pl = self.jitter, self.playout
        rate = self.jack.samplerate if self.jack else 48000
        lat = (self._bridge or jb).latency_frames() if jb else None
        s = jb.stats if jb else None
        margin = jb.take_margin() if jb else None
        dec = self.decoding
        return {
            "datagrams": self.datagrams, "bytes": self.bytes,
            "packets": s.packets if s else 0,
            "lost": self.lost, "incomplete": self.reassembler.incomplete,
            "late": (s.late if s else 0) + dec.late,
            "duplicate": (s.duplicate if s else 0) + self.reassembler.duplicate + dec.duplicate,
            "revived": dec.revived, "fec_recovered": dec.fec_recovered,
            "plc_concealed": dec.plc_concealed, "decoder_restarts": dec.restarts,
            "overruns": s.early if s else 0, "foreign": s.foreign if s else 0,
            "foreign_sources": self.foreign_sources,
            "refused": self.link.refused if isinstance(self.link, TcpSource) else None,
            "malformed": self._malformed_counts(), "internal_errors": self.internal_errors,
            "concealed_frames": pl.concealed_frames if pl else 0,
            "underruns": pl.underruns if pl else 0,
            "relocks": s.relocks if s else 0, "tightened": s.tightened if s else 0,
            "loosened": s.loosened if s else 0,
            "xruns": self.jack.xruns if self.jack else 0,
            "fill_ms": 1000.0 * jb.fill_frames() / rate if jb else None,
            # The latency the receiver aims at, comparable with latency_ms.
            "target_ms": 1000.0 * (jb.period + jb.target + jb.lead) / rate if jb else None,
            "latency_ms": None if lat is None else 1000.0 * lat / rate,
            "margin_ms": None if margin is None else 1000.0 * margin / rate,
            **(self._bridge.stats() if self._bridge else {}),
        }
