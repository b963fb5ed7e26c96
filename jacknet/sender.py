"""``jacknet send``: JACK inputs -> encoded packets -> network.

The JACK process callback (C) copies each period into a `Capture` ring and
wakes the worker thread, which cuts the ring into blocks of
``frames_per_packet`` (for Opus: one Opus frame, whatever the JACK period;
at a JACK rate Opus does not run at, converted to 48 kHz first), encodes
them and sends them as one or more datagrams.  With ``redundancy`` each
datagram also carries the previous packets' payloads, as many as fit in the
MTU.  If the worker falls behind, the ring drops the oldest audio and
counts it; the process callback never waits.
"""
from __future__ import annotations

import logging
import secrets
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from jacknet.net import protocol
from jacknet.rt.binding import JackClient
from jacknet.codecs import Encoder, make_encoder
from jacknet.codecs.opus import RATES as OPUS_RATES, OpusSettings
from jacknet.node import DEFAULT_RT_PRIORITY, Node
from jacknet.rt.engines import Capture
from jacknet.reframe import RateConverter
from jacknet.net.transport import open_sink

log = logging.getLogger(__name__)


@dataclass
class SenderConfig:
    host: str
    port: int
    channels: int = 2
    name: str = "jacknet-send"
    connect: str | None = None
    codec: str = "float32"
    dither: bool = False
    frames_per_packet: int | None = None  # None: the JACK period
    mtu: int = 1400
    server: str | None = None
    rt_priority: int = DEFAULT_RT_PRIORITY
    transport: str = "udp"
    ttl: int = 1                      # multicast hops
    interface: str | None = None      # multicast interface (IPv4 address, or IPv6 name/index)
    redundancy: int = 0               # earlier packets' payloads carried in each datagram
    opus: OpusSettings = field(default_factory=OpusSettings)


class Sender(Node):
    """A running sender (`start`, `stats`, `close`)."""

    def __init__(self, config: SenderConfig) -> None:
        super().__init__(config.rt_priority)
        self.config = config
        self.stream_id = secrets.randbits(32)
        self.encoder: Encoder | None = None
        self.capture: Capture | None = None
        self.packets = 0
        self.datagrams = 0
        self.bytes = 0
        self.copies_left_out = 0
        self.frames = self.rate = 0
        self.converter: RateConverter | None = None
        self._seq = 0
        self._history: deque[bytes] = deque(maxlen=config.redundancy)  # newest first

    def start(self) -> "Sender":
        c = self.config
        self.link = open_sink(c.transport, c.host, c.port, c.ttl, c.interface)
        self.jack = JackClient(c.name, c.server)
        try:
            jack_rate = self.jack.samplerate
            self.rate = 48000 if c.codec == "opus" and jack_rate not in OPUS_RATES else jack_rate
            self.encoder = make_encoder(c.codec, c.channels, self.rate,
                                        dither=c.dither, opus=c.opus)
            self.jack.register("in", c.channels, "in")
            self.frames = self.encoder.frames or c.frames_per_packet or self.jack.blocksize
            if self.rate != jack_rate:
                log.info("JACK runs at %d Hz: converting to %d Hz for Opus", jack_rate, self.rate)
                self.converter = RateConverter(c.channels, jack_rate, self.rate, self.frames)
            self.capture = Capture(c.channels, capacity=max(32768, 8 * self.frames))
            self.jack.run(self.capture)
            self.jack.connect(c.connect)
        except BaseException:
            self.close()
            raise
        self._spawn(self._work, "jacknet-send")
        log.info("sending %d channel(s) of %s from JACK '%s' to %s:%d over %s, %d frames per packet%s",
                 c.channels, c.codec, self.jack.name, c.host, c.port, c.transport, self.frames,
                 f", {c.redundancy} earlier packet(s) in each" if c.redundancy else "")
        return self

    def _work(self) -> None:
        cap = self.capture
        # With a converter the ring is read a JACK period at a time and the
        # converter cuts codec frames; else a packet at a time.
        block = np.zeros((self.config.channels, self.jack.blocksize if self.converter
                          else self.frames), np.float32)
        expected = None
        # Audio captured before this thread ran would go out as a burst of
        # stale packets and make the receiver lock on a wrong transit time.
        cap.skip()
        while not self._stop.is_set():
            cap.wait(0.1)
            while (pos := cap.read_into(block)) >= 0:
                if pos != expected:  # copies are of the packets right before, or none
                    self._history.clear()
                expected = pos + block.shape[1]
                transport = cap.transport_at(pos)
                if self.converter is None:
                    self._send(pos, block, transport)
                    continue
                for stamp, frame in self.converter.push(pos, block):
                    self._send(stamp, frame, transport)

    def _send(self, timestamp: int, block: np.ndarray, transport: tuple[int, int]) -> None:
        """Encode one packet's audio and send it, with its copies."""
        c = self.config
        encoded = self.encoder.encode(block)
        payload, more = self._with_copies(encoded, self._history)
        flags = protocol.FLAG_FEC if c.codec == "opus" and c.opus.fec else 0
        header = protocol.Header(self.encoder.codec_id, self.stream_id, self._seq, timestamp,
                                 self.rate, self.frames, c.channels, flags=flags | more,
                                 transport_state=transport[0], transport_frame=transport[1])
        if c.redundancy:
            self._history.appendleft(encoded)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.packets += 1
        for datagram in protocol.fragment(header, payload, c.mtu):
            if self.link.send(datagram):
                self.datagrams += 1
                self.bytes += len(datagram)

    def _with_copies(self, encoded: bytes, history: deque[bytes]) -> tuple[bytes, int]:
        """The payload with as many earlier packets as fit in one datagram,
        and the flag that says so.  A packet that needs fragments goes alone:
        a bigger datagram would make loss worse, not better."""
        if not self.config.redundancy:
            return encoded, 0
        room = self.config.mtu - protocol.HEADER_SIZE
        if protocol.redundant_size(len(encoded), []) > room:
            self.copies_left_out += len(history)
            return encoded, 0
        sizes: list[int] = []
        for copy in history:
            if protocol.redundant_size(len(encoded), sizes + [len(copy)]) > room:
                break
            sizes.append(len(copy))
        self.copies_left_out += len(history) - len(sizes)
        return protocol.pack_redundant(encoded, list(history)[:len(sizes)]), protocol.FLAG_REDUNDANT

    def stats(self) -> dict:
        cap = self.capture
        audio_seconds = self.packets * self.frames / self.rate if self.rate else 0.0
        return {
            "packets": self.packets, "datagrams": self.datagrams, "bytes": self.bytes,
            "kbit_s": 8 * self.bytes / audio_seconds / 1000 if audio_seconds else 0.0,
            "copies_left_out": self.copies_left_out if self.config.redundancy else None,
            "send_errors": self.link.errors if self.link else 0,
            "queue_dropped": self.link.dropped if self.link else 0,
            "connected": None if self.config.transport == "udp" else int(bool(self.link and self.link.connected)),
            "dropped_frames": cap.dropped if cap else 0,
            "clipped": self.encoder.stats.get("clipped") if self.encoder else None,
            "xruns": self.jack.xruns if self.jack else 0,
            "cycles": cap.cycles if cap else 0,
        }
