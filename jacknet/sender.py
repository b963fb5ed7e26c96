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
from jacknet.transport import open_sender_socket

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
        self.send_errors = 0

    def start(self) -> "Sender":
        c = self.config
        self.sock = open_sender_socket(c.host, c.port)
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
        log.info("sending %d channel(s) of %s from JACK '%s' to %s:%d, %d frames per packet",
                 c.channels, c.codec, self.jack.name, c.host, c.port, self.frames)
        return self

    def _work(self) -> None:
        cap, sock, c = self.capture, self.sock, self.config
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
                    try:
                        sock.send(datagram)
                        self.datagrams += 1
                        self.bytes += len(datagram)
                    except OSError:
                        # Nobody listening yet (ICMP refused) or a full socket
                        # buffer: audio moves on either way.
                        self.send_errors += 1

    def stats(self) -> dict:
        cap = self.capture
        return {
            "packets": self.packets, "datagrams": self.datagrams, "bytes": self.bytes,
            "send_errors": self.send_errors,
            "dropped_frames": cap.dropped if cap else 0,
            "clipped": self.encoder.stats.get("clipped"),
            "xruns": self.jack.xruns if self.jack else 0,
            "cycles": cap.cycles if cap else 0,
        }
