"""``jacknet recv``: network -> `StreamPipeline` -> JACK outputs.

One network thread receives datagrams from the link and feeds them, with the
time they arrived, to the stream pipeline (validation, reassembly, decoding,
the jitter buffer); the JACK process callback (C) plays the ring on the
receiver's own clock, fading over any gap.  This module only wires the
three together: the link, the JACK client and the thread.
"""
from __future__ import annotations

import logging
import time

from jacknet.clock.autolatency import MAX_MARGIN_SECONDS
from jacknet.config import ReceiverConfig
from jacknet.errors import ConfigError
from jacknet.net import protocol
from jacknet.net.address import is_multicast, show_address
from jacknet.net.protocol import PositionBlock
from jacknet.net.transport import open_source
from jacknet.net.udp import UdpSource
from jacknet.monitor.levels import Levels, levels_stats
from jacknet.monitor.outages import Outages
from jacknet.node import Node
from jacknet.recv.jitter import JitterBuffer
from jacknet.recv.pipeline import StreamPipeline
from jacknet.rt.engines import Playout
from jacknet.rt.recvpath import RecvPath
from jacknet.security.keys import load_keys
from jacknet.stats import TRANSPORT_STATES, ReceiverStats
from jacknet.sync.follow import Follower

log = logging.getLogger(__name__)

# Room in the ring beyond the margin: the largest packet (8192 frames) on
# either side of the read position, plus half a second for the packets a
# re-sync keeps while it measures.
RING_SPARE_FRAMES = 8192
# Datagrams taken in one turn of the network thread at most: more than a
# packet's fragments (64 KiB in 1400-byte datagrams).
BATCH_MOST = 64
# The C receive path returns to Python at least this often, to account for
# what it placed, for the meters, a reload and a stop; the packets that
# need a decision come back at once whatever this is, and C tells when the
# newest datagram came as it comes (`RecvPath.heard_at`).  Every return
# wakes Python cold (about 300 µs), so fewer is cheaper: 100 ms instead of
# 50 took the receiver from 2.8 to 2.3 % of a core at period 128.  Longer
# returns are longer bursts of Python, though, and while the network
# thread ran at the priority of JACK's process threads they cost xruns
# (254 against 3 at period 64); below it (`network_priority`), 100 ms rows
# met 52 xruns against 344 for 50 ms in the same run (docs/benchmarks.md,
# "Cold returns").
C_TURN_SECONDS = 0.1
# A closing receiver fades its outputs out over this long before the ports
# go: longer than a concealment's 2 ms, as nothing follows it.
CLOSE_FADE_SECONDS = 0.01


def ring_frames(margin: int, rate: int) -> int:
    """Frames the playout ring needs to hold ``margin`` and what surrounds it."""
    return 2 * (margin + RING_SPARE_FRAMES) + rate // 2


class Receiver(Node):
    """A receiver: a link source, a JACK client with N output ports, and the
    network thread that feeds a `StreamPipeline`.

    Parameters
    ----------
    config : ReceiverConfig
        Validated when the receiver is made (`ConfigError` if it is not valid).

    Examples
    --------
    >>> with Receiver(ReceiverConfig(port=4477, channels=2)) as r:  # doctest: +SKIP
    ...     time.sleep(10)
    ...     print(r.stats().latency_ms)
    """

    thread_name = "jacknet-recv"

    def __init__(self, config: ReceiverConfig) -> None:
        config.validate()
        super().__init__(config)
        self.playout: Playout | None = None
        self.jitter: JitterBuffer | None = None
        self.pipeline: StreamPipeline | None = None
        self._last_datagram: tuple | None = None  # (peer, monotonic time), the worker's
        self._new_margin: int | None = None  # set_latency's, for the worker to apply
        self.follower: Follower | None = None
        self.levels: Levels | None = None
        self.outages = Outages()
        self._bbt: PositionBlock | None = None  # the position block the timebase master has
        self.recv_path: RecvPath | None = None
        """The C path the worker places the steady stream's packets by, if it can."""

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound address (useful with port 0); None while closed."""
        return self.link.address if self.link is not None else None

    def open_link(self):
        c = self.config
        keys = load_keys(c.key_file) if c.security == "psk" else None
        return open_source(c.transport, c.host, c.port, c.interface, keys, c.allow)

    def rekey(self) -> bool:
        """Read the key file again and take its keys from now on; True if
        they are not the ones in use."""
        return self.link.rekey(load_keys(self.config.key_file))

    def _build(self) -> None:
        c = self.config
        self.jack.register("out", c.channels, "out")
        rate, period = self.jack.samplerate, self.jack.blocksize
        auto = c.latency_ms is None
        # Auto starts from nothing (its first lock measures the jitter), but
        # the ring must hold the most it may ask for.
        margin = 0 if auto else round(c.latency_ms * rate / 1000)
        most = round(MAX_MARGIN_SECONDS * rate) if auto else margin
        self.playout = Playout(c.channels, capacity=ring_frames(most, rate), samplerate=rate)
        self.jitter = JitterBuffer(self.playout, period, margin, rate, auto=auto)
        self.levels = Levels(self.playout, rate)
        # Only a unicast UDP receiver can be reached by anyone at any time.
        lock = c.transport == "udp" and not is_multicast(c.host) and not c.allow_any_sender
        self.pipeline = StreamPipeline(self.jitter, c.channels, rate, lock_sender=lock,
                                       drift=c.drift, resampler=c.resampler)
        self.link.on_new_peer = lambda: self.pipeline.resync("a sender connected")
        if c.follow_transport:
            self.jack.follow_transport(self.playout, c.timebase)
            self.follower = Follower(self.playout.command, self.pipeline.heard_at,
                                     self.pipeline.heard_until, self._to_local, period, rate,
                                     c.transport_tolerance)
        self.jack.run(self.playout)

    def _to_local(self, frame: float) -> int:
        """A sender JACK transport frame as this server's transport frame."""
        heard = self.pipeline.heard
        ratio = self.jack.samplerate / heard.transport_rate if heard else 1.0
        return (round(frame * ratio) + self.config.transport_offset) & 0xFFFFFFFF

    def _follow(self) -> None:
        """Once per turn of the worker: the follower's step, and the BBT a
        timebase master carries on."""
        self.follower.step(self.playout.transport_snapshot())
        heard = self.pipeline.heard
        block = heard.position if heard else None
        if self.config.timebase and block is not None and block is not self._bbt:
            self._bbt = block
            self.playout.set_bbt(block, self._to_local(block.frame), self.jack.samplerate)

    def set_latency(self, latency_ms: float | None) -> None:
        """Change ``--latency`` while running (a reload): the worker, which
        owns the jitter buffer, moves the playout to it at its next turn.

        Raises
        ------
        ConfigError
            The change needs a restart: to or from ``auto``, or a margin
            larger than the ring built for the old one holds.
        """
        c = self.config
        if (latency_ms is None) != (c.latency_ms is None):
            raise ConfigError("latency to or from auto needs a restart")
        if latency_ms is not None and self.playout is not None:
            rate = self.jack.samplerate
            frames = round(latency_ms * rate / 1000)
            room = self.playout.capacity // 2 - RING_SPARE_FRAMES - self.jack.blocksize
            if frames > room:
                raise ConfigError(f"latency {latency_ms:g} ms is more than the ring built for "
                                  f"{c.latency_ms:g} ms holds ({1000 * room / rate:.0f} ms); "
                                  "it needs a restart")
            self._new_margin = frames
        c.latency_ms = latency_ms

    def _started(self) -> None:
        c = self.config
        log.info("receiving on %s over %s into %d channel(s) of JACK '%s', %s jitter margin",
                 show_address(self.address), c.transport, c.channels, self.jack.name,
                 "automatic" if c.latency_ms is None else f"{c.latency_ms:.1f} ms")

    def _arrival_clock(self) -> int:
        """Now, on the playout's 64-bit receiver clock."""
        ref = self.playout.now
        delta = (self.jack.frame_time - ref) & 0xFFFFFFFF
        return ref + (delta - (1 << 32) if delta >= 1 << 31 else delta)

    def _work(self) -> None:
        buf = bytearray(protocol.MAX_DATAGRAM)
        view = memoryview(buf)
        source, pipeline = self.link, self.pipeline
        source.drain()  # a daemon kept it bound while JACK was away
        self.recv_path = None
        # Only a receiver locked to one sender: it knows whose packets C may take.
        if isinstance(source, UdpSource) and pipeline.peers is not None and self.follower is None:
            self.recv_path = RecvPath(source, self.playout)
        while not self._stop.is_set():
            got = None
            if self.recv_path is not None:
                got = self.recv_path.pump(pipeline, min(C_TURN_SECONDS,
                                                        pipeline.wait(self._arrival_clock())))
            if got is None:
                now = self._turn(buf, view)
            else:
                now = self._arrival_clock()
                placed, datagrams = got
                if placed:
                    self._heard(pipeline.peers.peer, *placed)
                for datagram, peer in datagrams:
                    if source.admits(peer):
                        self._feed(datagram, peer, now)
            pipeline.tick(now)
            self.levels.poll_if_due()
            if self.follower is not None:
                self._follow()
            if self._new_margin is not None:
                margin, self._new_margin = self._new_margin, None
                self.jitter.set_margin(margin)
            self.beats += 1

    def _turn(self, buf: bytearray, view: memoryview) -> int:
        """One turn of the network thread in Python: a datagram waited for
        and fed, with the rest of its packet's fragments.  Returns now."""
        source, pipeline = self.link, self.pipeline
        n, peer = source.receive(buf, pipeline.wait(self._arrival_clock()))
        now = self._arrival_clock()
        # A packet's fragments come together: while one is incomplete, the
        # rest, already waiting, are taken in the same turn as arrived now
        # (a bounded number, so a flood still leaves room for deadlines).
        for _ in range(BATCH_MOST):
            if not n:
                break
            self._feed(view[:n], peer, now)
            if not pipeline.partial:
                break
            n, peer = source.receive(buf, 0.0)
        return now

    def _feed(self, datagram: memoryview | bytes, peer: tuple, now: int) -> None:
        pipeline = self.pipeline
        played = pipeline.stats.datagrams
        pipeline.feed(datagram, peer, now)
        if pipeline.stats.datagrams != played:  # from the sender, not a stranger
            self._heard(peer, time.monotonic())

    def _heard(self, peer: tuple, *times: float) -> None:
        """Datagrams from ``peer`` (the sender played) came at ``times`` (monotonic, in order)."""
        for at in times:
            self.outages.arrived(at)
        self._last_datagram = (peer, times[-1])

    def _quiesce(self) -> None:
        # Wait for the cycles that play the fade and one of silence; a
        # client that JACK no longer runs would only make us wait in vain.
        if self.playout is None or self.jack.lost or self.stalled():
            return
        frames = round(CLOSE_FADE_SECONDS * self.jack.samplerate)
        self.playout.fade_out(frames)
        until = self.playout.cycles + -(-frames // self.jack.blocksize) + 1
        deadline = time.monotonic() + 0.25
        while self.playout.cycles < until and time.monotonic() < deadline:
            time.sleep(0.002)

    def peer(self) -> tuple[str | None, float | None]:
        last = self._last_datagram
        if last is None:
            return None, None
        return show_address(last[0]), time.monotonic() - last[1]

    def stats(self) -> ReceiverStats:
        """A snapshot of every counter (taking it changes nothing)."""
        out = ReceiverStats()
        if self.link is not None:
            link = self.link.stats()
            out.refused = link.refused
            out.denied = link.denied
            out.auth_failures, out.replays = link.auth_failures, link.replays
            out.unannounced, out.announcements = link.unannounced, link.announcements
            if link.framing:
                out.malformed["framing"] = link.framing
        if self.pipeline is not None:
            self.pipeline.report(out)
        out.xruns = self.jack.xruns if self.jack else 0
        o, now = self.outages, time.monotonic()
        path = self.recv_path
        seen = path.heard_at if path is not None else None
        ongoing = o.ongoing(now, seen)
        out.outages, out.outages_last_minute = o.count, o.last_minute(now, seen)
        out.outage_ms = None if ongoing is None else round(ongoing * 1000, 1)
        out.last_outage_ms = None if o.last_seconds is None else round(o.last_seconds * 1000, 1)
        self._report_transport(out)
        for name, value in levels_stats(self.levels).items():
            setattr(out, name, value)
        return out

    def _report_transport(self, out: ReceiverStats) -> None:
        heard = self.pipeline.heard if self.pipeline else None
        if heard is not None and heard.latest is not None:
            out.sender_transport = TRANSPORT_STATES.get(heard.latest.state)
            out.sender_transport_frame = int(heard.latest.frame)
            out.transport_changes = heard.changes
        if self.follower is None:
            return
        snap = self.playout.transport_snapshot()
        if snap is not None:
            out.jack_transport = TRANSPORT_STATES.get(snap.state, str(snap.state))
            out.jack_transport_frame = snap.frame
        f = self.follower.stats
        out.transport_error_frames = f.error_frames
        out.transport_rolls, out.transport_stops = f.rolls, f.stops
        out.transport_locates, out.transport_relocates = f.locates, f.relocates
        out.transport_drift_relocates = f.drift_relocates
        out.transport_held = self.playout.held
