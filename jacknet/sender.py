"""``jacknet send``: JACK inputs -> encoded packets -> network.

The JACK process callback (C) copies each period into a `Capture` ring and
wakes the worker thread, which cuts the ring into blocks of
``frames_per_packet`` (for Opus: one Opus frame, whatever the JACK period;
at a JACK rate Opus does not run at, converted to 48 kHz first), encodes
them and sends them as one or more datagrams (`Packetizer`: with ``redundancy`` each
datagram also carries the previous packets' payloads, as many as fit in the
MTU).  A PCM stream over plain UDP is cut, encoded and sent by C on the
worker's thread (`SendPath`), Python sending only the packets that need a
decision.  If the worker falls behind, the ring drops the oldest audio and
counts it; the process callback never waits.
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import Iterator

import numpy as np

from jacknet.codecs import Encoder, make_encoder
from jacknet.codecs.opus import RATES as OPUS_RATES
from jacknet.config import SenderConfig
from jacknet.net.address import show_address
from jacknet.net.transport import open_sink
from jacknet.net.udp import UdpSink
from jacknet.monitor.levels import Levels, levels_stats
from jacknet.node import Node
from jacknet.packetizer import Packetizer
from jacknet.reframe import RateConverter
from jacknet.rt.engines import Capture
from jacknet.rt.sendpath import SendPath
from jacknet.security.keys import load_key
from jacknet.security.seal import TAG
from jacknet.stats import TRANSPORT_STATES, SenderStats
from jacknet.sync.watch import TransportWatch

log = logging.getLogger(__name__)

# Cycles JACK did not run the sender in, up to this long, are filled (and
# their packets left unsent) rather than closed up; longer, the stream jumps.
MISSED_FILL_SECONDS = 0.1
# The C send path comes back to Python at least this often, for the meters
# and a stop; what needs a decision comes back at once.  A return wakes
# Python cold (~100 µs), so fewer is cheaper: 100 ms instead of 20 took
# the sender from 3.0 to 2.4 % of a core at period 128.  The meters'
# slots hold 1024 cycles (0.34 s at period 16), and their tenths now span
# 0.1-0.2 s.  With the network thread at the priority of JACK's process
# threads, 100 ms glitched more at period 64; below it (`network_priority`)
# it did not (docs/benchmarks.md, "Cold returns").
SEND_TURN_SECONDS = 0.1


def cut(cap: Capture, block: np.ndarray) -> Iterator[tuple[int, bool]]:
    """Read the whole blocks ``cap`` holds into ``block``, one at a time.

    Yields
    ------
    position : int
        The capture position of the block's first frame.
    missed : bool
        Whether any of its frames is silence standing in for a cycle JACK
        did not run the sender in (`Capture.fill_missed_cycles`).
    """
    while (pos := cap.read_into(block)) >= 0:
        yield pos, cap.filled_in(pos, block.shape[1])


class Sender(Node):
    """A sender: a JACK client with N input ports, the worker that encodes
    what they capture, and a link sink.

    Parameters
    ----------
    config : SenderConfig
        Validated when the sender is made (`ConfigError` if it is not valid).

    Examples
    --------
    >>> with Sender(SenderConfig("192.168.1.20", channels=2)) as s:  # doctest: +SKIP
    ...     time.sleep(10)
    ...     print(s.stats().packets)
    """

    thread_name = "jacknet-send"
    capture_class = Capture  # a test may put one whose process callback stalls here

    def __init__(self, config: SenderConfig) -> None:
        config.validate()
        super().__init__(config)
        self.stream_id = secrets.randbits(32)
        self.encoder: Encoder | None = None
        self.packetizer: Packetizer | None = None
        self.capture: Capture | None = None
        self.watch: TransportWatch | None = None
        self.levels: Levels | None = None
        self.send_path: SendPath | None = None
        """The C path sending this stream's packets, if it can (`SendPath`)."""
        self.datagrams = 0
        self.bytes = 0
        self._sealing = 0  # bytes the link adds to each datagram (the seal's tag)
        self._last_sent: float | None = None  # monotonic time, the worker's
        self.frames = self.rate = self.mtu = 0
        self.converter: RateConverter | None = None

    def open_link(self):
        c = self.config
        key = load_key(c.key_file) if c.security == "psk" else None
        return open_sink(c.transport, c.host, c.port, c.ttl, c.interface, key)

    def rekey(self) -> bool:
        """Read the key file again and seal with its first key from now on;
        True if that is another key."""
        return self.link.rekey(load_key(self.config.key_file))

    def _build(self) -> None:
        c = self.config
        jack_rate = self.jack.samplerate
        self.rate = 48000 if c.codec == "opus" and jack_rate not in OPUS_RATES else jack_rate
        self.encoder = make_encoder(c.codec, c.channels, self.rate, dither=c.dither, opus=c.opus)
        self.jack.register("in", c.channels, "in")
        self.frames = self.encoder.frames or c.frames_per_packet or self.jack.blocksize
        if self.rate != jack_rate:
            log.info("JACK runs at %d Hz: converting to %d Hz for Opus", jack_rate, self.rate)
            self.converter = RateConverter(c.channels, jack_rate, self.rate, self.frames)
        # One stream id for the life of this sender: a rebuild is a new Sender.
        # A sealed datagram is a tag longer than the packetizer's.
        self._sealing = TAG if c.security == "psk" else 0
        self.mtu = c.mtu if c.mtu is not None else self.link.auto_mtu()
        mtu = self.mtu - self._sealing
        self.packetizer = Packetizer(self.encoder, c.channels, self.rate, self.frames, mtu,
                                     c.redundancy, fec=c.codec == "opus" and c.fec,
                                     stream_id=self.stream_id)
        self.watch = TransportWatch(self.rate, jack_rate, share=not c.no_transport)
        self.capture = self.capture_class(c.channels, capacity=max(32768, 8 * self.frames))
        if self.converter is None:
            # Packets are stamped with capture positions: with a missed cycle
            # filled, they keep counting JACK's clock, and an xrun here is a
            # hole the receiver fades over, not a step of every later arrival.
            self.capture.fill_missed_cycles(round(MISSED_FILL_SECONDS * jack_rate))
        self.levels = Levels(self.capture, jack_rate)
        self.jack.run(self.capture)

    def _started(self) -> None:
        c = self.config
        log.info("sending %d channel(s) of %s from JACK '%s' to %s:%d over %s, %d frames per "
                 "packet in datagrams of at most %d bytes%s%s", c.channels, c.codec,
                 self.jack.name, c.host, c.port, c.transport, self.frames, self.mtu,
                 " (--mtu auto)" if c.mtu is None else "",
                 f", {c.redundancy} earlier packet(s) in each" if c.redundancy else "")

    def _work(self) -> None:
        cap = self.capture
        # Audio captured before this thread ran would go out as a burst of
        # stale packets and make the receiver lock on a wrong transit time.
        cap.skip()
        self.send_path = self._send_path()
        if self.send_path is not None:
            return self._work_in_c(self.send_path)
        # With a converter the ring is read a JACK period at a time and the
        # converter cuts codec frames; else a packet at a time.
        block = np.zeros((self.config.channels, self.jack.blocksize if self.converter
                          else self.frames), np.float32)
        expected = None
        while not self._stop.is_set():
            cap.wait(0.1)
            self.beats += 1
            self.levels.poll_if_due()
            for pos, missed in cut(cap, block):
                if pos != expected:
                    self.packetizer.gap()
                expected = pos + block.shape[1]
                if missed:
                    self.packetizer.skip()
                elif self.converter is None:
                    self._send(pos, block, pos)
                else:
                    for stamp, frame in self.converter.push(pos, block):
                        self._send(stamp, frame, round(stamp * self.jack.samplerate / self.rate))

    def _send_path(self) -> SendPath | None:
        """The C path for this stream, if it can carry it: PCM without
        dither or redundancy, unsealed, over UDP, at the JACK rate."""
        if not isinstance(self.link, UdpSink) or self.converter is not None:
            return None
        try:
            return SendPath(self.capture, self.link.sock, self.packetizer, self.watch)
        except ValueError:  # what SendPath does not carry
            return None

    def _work_in_c(self, fast: SendPath) -> None:
        """The worker's loop with packets sent by C, a few milliseconds of
        them per turn; the packets that need a decision are sent here."""
        cap, frames = self.capture, self.packetizer.frames
        while not self._stop.is_set():
            pos, sent = fast.pump(SEND_TURN_SECONDS)
            self.beats += 1
            if sent.packets:
                self.datagrams += sent.datagrams
                self.bytes += sent.bytes
                self.link.stats().send_errors += sent.send_errors
                if sent.clipped:
                    self.encoder.stats["clipped"] += sent.clipped
                if sent.datagrams:
                    self._last_sent = time.monotonic()
            self.levels.poll_if_due()
            if pos is None:
                continue
            if cap.filled_in(pos, frames):
                self.packetizer.skip()
            else:
                self._send(pos, fast.block, pos)

    def _send(self, timestamp: int, block: np.ndarray, position: int) -> None:
        """Encode one packet's audio (its first frame captured at ``position``)
        and send it, with its copies and the JACK transport then."""
        cap = self.capture
        said = self.watch.packet(timestamp, *cap.jack_transport_at(position),
                                 lambda: cap.position_at(position))
        for datagram in self.packetizer.packet(timestamp, block, said):
            if self.link.send(datagram):
                self.datagrams += 1
                self.bytes += len(datagram) + self._sealing
                self._last_sent = time.monotonic()

    def peer(self) -> tuple[str | None, float | None]:
        c = self.config
        return (show_address((c.host, c.port)),
                None if self._last_sent is None else time.monotonic() - self._last_sent)

    def stats(self) -> SenderStats:
        """A snapshot of every counter (taking it changes nothing)."""
        cap, c, pk = self.capture, self.config, self.packetizer
        packets = pk.packets if pk else 0
        audio_seconds = packets * self.frames / self.rate if self.rate else 0.0
        link = self.link.stats() if self.link else None
        return SenderStats(
            packets=packets, datagrams=self.datagrams, bytes=self.bytes,
            kbit_s=8 * self.bytes / audio_seconds / 1000 if audio_seconds else 0.0,
            mtu=self.mtu,
            copies_left_out=pk.copies_left_out if pk and c.redundancy else None,
            send_errors=link.send_errors if link else 0,
            queue_dropped=link.queue_dropped if link else 0,
            announcements=link.announcements if link else None,
            connected=None if c.transport == "udp" else int(bool(link and link.connected)),
            dropped_frames=cap.dropped if cap else 0,
            missed_packets=pk.missed if pk else 0,
            clipped=self.encoder.stats.get("clipped") if self.encoder else None,
            xruns=self.jack.xruns if self.jack else 0,
            cycles=cap.cycles if cap else 0,
            **self._transport(), **levels_stats(self.levels))

    def _transport(self) -> dict:
        watch = self.watch
        if watch is None or not watch.share or watch.said is None:
            return {}
        state, frame, _ = watch.said
        return {"jack_transport": TRANSPORT_STATES.get(state, str(state)),
                "jack_transport_frame": frame, "transport_changes": watch.changes}
