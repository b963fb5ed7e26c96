"""``jacknet send``: JACK inputs -> encoded packets -> network.

The JACK process callback (C) copies each period into a `Capture` ring and
wakes the worker thread, which cuts the ring into blocks of
``frames_per_packet``, encodes them and sends them as one or more datagrams.
If the worker falls behind, the ring drops the oldest audio and counts it;
the process callback never waits.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import numpy as np

from jacknet import protocol
from jacknet.binding import JackClient
from jacknet.codecs import make_encoder
from jacknet.node import DEFAULT_RT_PRIORITY, Node
from jacknet.realtime import Capture
from jacknet.transport import open_sink

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


class Sender(Node):
    """A running sender (`start`, `stats`, `close`)."""

    def __init__(self, config: SenderConfig) -> None:
        super().__init__(config.rt_priority)
        self.config = config
        self.stream_id = secrets.randbits(32)
        self.encoder = make_encoder(config.codec, dither=config.dither)
        self.capture: Capture | None = None
        self.packets = 0
        self.datagrams = 0
        self.bytes = 0

    def start(self) -> "Sender":
        c = self.config
        self.link = open_sink(c.transport, c.host, c.port, c.ttl, c.interface)
        self.jack = JackClient(c.name, c.server)
        try:
            self.jack.register("in", c.channels, "in")
            self.frames = c.frames_per_packet or self.jack.blocksize
            self.capture = Capture(c.channels, capacity=max(32768, 8 * self.frames))
            self.jack.run(self.capture)
            self.jack.connect(c.connect)
        except BaseException:
            self.close()
            raise
        self._spawn(self._work, "jacknet-send")
        log.info("sending %d channel(s) of %s from JACK '%s' to %s:%d over %s, %d frames per packet",
                 c.channels, c.codec, self.jack.name, c.host, c.port, c.transport, self.frames)
        return self

    def _work(self) -> None:
        cap, sink, c = self.capture, self.link, self.config
        block = np.zeros((c.channels, self.frames), np.float32)
        rate = self.jack.samplerate
        seq = 0
        # Audio captured before this thread ran would go out as a burst of
        # stale packets and make the receiver lock on a wrong transit time.
        cap.skip()
        while not self._stop.is_set():
            cap.wait(0.1)
            while True:
                pos = cap.read_into(block)
                if pos < 0:
                    break
                tstate, tframe = cap.transport_at(pos)
                payload = self.encoder.encode(block)
                header = protocol.Header(self.encoder.codec_id, self.stream_id, seq,
                                         pos, rate, self.frames, c.channels,
                                         transport_state=tstate, transport_frame=tframe)
                seq = (seq + 1) & 0xFFFFFFFF
                self.packets += 1
                for datagram in protocol.fragment(header, payload, c.mtu):
                    if sink.send(datagram):
                        self.datagrams += 1
                        self.bytes += len(datagram)

    def stats(self) -> dict:
        cap = self.capture
        return {
            "packets": self.packets, "datagrams": self.datagrams, "bytes": self.bytes,
            "send_errors": self.link.errors if self.link else 0,
            "queue_dropped": self.link.dropped if self.link else 0,
            "connected": None if self.config.transport == "udp" else int(bool(self.link and self.link.connected)),
            "dropped_frames": cap.dropped if cap else 0,
            "clipped": self.encoder.stats.get("clipped"),
            "xruns": self.jack.xruns if self.jack else 0,
            "cycles": cap.cycles if cap else 0,
        }
