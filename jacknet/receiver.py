"""``jacknet recv``: network -> validated packets -> jitter buffer -> JACK outputs.

One network thread receives, validates, reassembles, decodes and places each
packet into the jitter buffer; the JACK process callback (C) plays the
buffer on the receiver's own clock and conceals what is missing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jacknet import protocol
from jacknet.binding import JackClient
from jacknet.codecs import Decoder, make_decoder
from jacknet.errors import MalformedPacket
from jacknet.jitter import SWITCH_SECONDS, JitterBuffer
from jacknet.node import DEFAULT_RT_PRIORITY, Node
from jacknet.realtime import Playout
from jacknet.stats import RateLimitedLog
from jacknet.transport import TcpSource, _show, is_multicast, open_source

log = logging.getLogger(__name__)


@dataclass
class ReceiverConfig:
    host: str = "0.0.0.0"
    port: int = 4477
    channels: int = 2
    name: str = "jacknet-recv"
    connect: str | None = None
    latency_ms: float = 5.0
    server: str | None = None
    rt_priority: int = DEFAULT_RT_PRIORITY
    transport: str = "udp"
    interface: str | None = None      # multicast interface to join on
    allow_any_sender: bool = False


class Receiver(Node):
    """A running receiver (`start`, `stats`, `close`)."""

    def __init__(self, config: ReceiverConfig) -> None:
        super().__init__(config.rt_priority)
        self.config = config
        self.playout: Playout | None = None
        self.jitter: JitterBuffer | None = None
        self._bad = RateLimitedLog(log)
        self._decoders: dict[int, Decoder] = {}
        self._format: tuple | None = None
        self._mapped_warned = False
        self.reassembler = protocol.Reassembler()
        self.datagrams = 0
        self.bytes = 0
        self.malformed: dict[str, int] = {}
        self.rate_mismatch = 0
        self.foreign_sources = 0
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
            target = round(c.latency_ms * rate / 1000)
            self.playout = Playout(c.channels, capacity=2 * (target + 8192) + rate // 2,
                                   samplerate=rate)
            self.jitter = JitterBuffer(self.playout, period, target, rate)
            self.jack.run(self.playout)
            self.jack.connect(c.connect)
        except BaseException:
            self.close()
            raise
        self._spawn(self._work, "jacknet-recv")
        log.info("receiving on %s over %s into %d channel(s) of JACK '%s', %.1f ms target buffer",
                 _show(self.address), c.transport, c.channels, self.jack.name, c.latency_ms)
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
        while not self._stop.is_set():
            n, peer = source.receive(buf)
            if isinstance(source, TcpSource) and source.new_peer:
                source.new_peer = False
                self.jitter.resync("a sender connected")
            if not n or not self._from_our_sender(peer):
                continue
            self.datagrams += 1
            self.bytes += n
            try:
                self._handle(view[:n])
            except MalformedPacket as e:
                self.malformed[e.reason] = self.malformed.get(e.reason, 0) + 1
                self._bad(e.reason, "dropped a malformed packet (%s)", e)

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
        rate = self.jack.samplerate
        if header.sample_rate != rate:
            self.rate_mismatch += 1
            self._bad("rate", "refusing a stream at %d Hz: this JACK server runs at %d Hz "
                      "(resampling is not supported yet)", header.sample_rate, rate)
            return
        fmt = (header.codec, header.channels, header.sample_rate, header.frames)
        if fmt != self._format:
            if self._format is not None:
                log.info("stream format changed: codec %d, %d channel(s), %d Hz, %d frames/packet",
                         *fmt)
            self._format = fmt
        if header.channels != self.config.channels and not self._mapped_warned:
            self._mapped_warned = True
            log.warning("sender has %d channel(s), this receiver %d: playing the first %d",
                        header.channels, self.config.channels,
                        min(header.channels, self.config.channels))
        decoder = self._decoders.get(header.codec)
        if decoder is None:
            try:
                decoder = self._decoders[header.codec] = make_decoder(header.codec)
            except ValueError as e:
                raise MalformedPacket("codec", str(e)) from None
        try:
            block = decoder.decode(payload, header.channels, header.frames)
        except ValueError as e:
            raise MalformedPacket("payload", str(e)) from None
        outcome = self.jitter.insert(header.stream_id, header.timestamp, block,
                                     self._arrival_clock())
        if outcome != "foreign":
            self._count_sequence(header.stream_id, header.seq, outcome == "duplicate")

    def _count_sequence(self, stream_id: int, seq: int, duplicate: bool) -> None:
        """Loss = sequence numbers never seen (reordered ones are not lost)."""
        if stream_id != self._seq_stream:
            self._seq_stream, self._seq_first, self._seq_span, self._seq_unique = stream_id, seq, 1, 0
            self._lost_before += self._lost_current
            self._lost_current = 0
        ahead = (seq - self._seq_first) & 0xFFFFFFFF
        if ahead < 1 << 31:
            self._seq_span = max(self._seq_span, ahead + 1)
        self._seq_unique += not duplicate
        self._lost_current = max(0, self._seq_span - self._seq_unique)

    @property
    def lost(self) -> int:
        return self._lost_before + self._lost_current

    def _malformed_counts(self) -> dict[str, int]:
        counts = dict(self.malformed)
        if isinstance(self.link, TcpSource) and self.link.malformed:
            counts["framing"] = self.link.malformed
        return counts

    def stats(self) -> dict:
        jb, pl = self.jitter, self.playout
        rate = self.jack.samplerate if self.jack else 48000
        lat = jb.latency_frames() if jb else None
        s = jb.stats if jb else None
        margin = jb.take_margin() if jb else None
        return {
            "datagrams": self.datagrams, "bytes": self.bytes,
            "packets": s.packets if s else 0,
            "lost": self.lost, "incomplete": self.reassembler.incomplete,
            "late": s.late if s else 0,
            "duplicate": (s.duplicate if s else 0) + self.reassembler.duplicate,
            "overruns": s.early if s else 0, "foreign": s.foreign if s else 0,
            "foreign_sources": self.foreign_sources,
            "refused": self.link.refused if isinstance(self.link, TcpSource) else None,
            "malformed": self._malformed_counts(), "rate_mismatch": self.rate_mismatch,
            "concealed_frames": pl.concealed_frames if pl else 0,
            "underruns": pl.underruns if pl else 0,
            "relocks": s.relocks if s else 0, "tightened": s.tightened if s else 0,
            "loosened": s.loosened if s else 0,
            "xruns": self.jack.xruns if self.jack else 0,
            "fill_ms": 1000.0 * jb.fill_frames() / rate if jb else None,
            "latency_ms": None if lat is None else 1000.0 * lat / rate,
            "margin_ms": None if margin is None else 1000.0 * margin / rate,
        }
