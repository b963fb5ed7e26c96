"""A whole receive path on a simulated clock: real packets (`Packetizer`,
real codecs) through a `StreamPipeline` into a real C `Playout`, played cycle
by cycle by the same C function a JACK cycle calls.  No jackd, no sockets,
no sleeps: an impairment (loss, duplication, reorder, jitter, a second
stream) is a list of arrival times.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from jacknet.codecs import make_encoder
from jacknet.codecs.opus import OpusSettings
from jacknet.packetizer import Packetizer
from jacknet.receiver import ring_frames
from jacknet.recv.jitter import JitterBuffer
from jacknet.recv.pipeline import StreamPipeline
from jacknet.rt.engines import Capture, Playout
from jacknet.sender import cut
from jacknet.stats import ReceiverStats
from jacknet.testing.signals import known_music, known_signal

RATE = 48000
PEER = ("127.0.0.1", 40000)


@dataclass
class Arrival:
    at: int            # receiver clock
    datagram: bytes
    peer: tuple = PEER


def signal(codec: str, channels: int, start: int, frames: int) -> np.ndarray:
    t = np.arange(start, start + frames)
    known = known_music if codec == "opus" else known_signal
    return np.stack([known(ch, t) for ch in range(channels)])


def captured(cycles: int, period: int, missed: set[int], fill: bool, channels: int = 2,
             transit: int = 20) -> tuple[list[Arrival], int]:
    """A float32 sender's packets (one per JACK cycle of ``period`` frames)
    as its real `Capture` and `cut` make them, from JACK cycle 0 at frame 0;
    JACK does not run it in the cycles in ``missed`` (its server's xruns).
    ``fill``: with `Capture.fill_missed_cycles`, as `Sender` does.  Each
    cycle's packets arrive ``transit`` frames after it ends.  Returns the
    arrivals and the packets left unsent (`Packetizer.skip`)."""
    cap = Capture(channels, capacity=32768)
    if fill:
        cap.fill_missed_cycles(RATE // 10)
    pk = Packetizer(make_encoder("float32", channels, RATE), channels, RATE, period, 1400)
    block = np.zeros((channels, period), np.float32)
    arrivals = []
    for k in range(cycles):
        if k in missed:
            continue
        cap.push(k * period, signal("float32", channels, k * period, period))
        for pos, gone in cut(cap, block):
            if gone:
                pk.skip()
                continue
            at = (k + 1) * period + transit
            arrivals.extend(Arrival(at, d) for d in pk.packet(pos, block))
    return arrivals, pk.missed


@dataclass
class Stream:
    """A sender's packets: packet k holds frames [k*frames, (k+1)*frames) of
    the known signal and nominally arrives ``transit`` frames after its end."""

    codec: str = "float32"
    channels: int = 2
    frames: int = 128
    redundancy: int = 0
    opus_frame: float = 5.0
    stream_id: int = 1
    transit: int = 20
    packets: list[list[bytes]] = field(default_factory=list)

    def build(self, count: int) -> "Stream":
        opus = OpusSettings(self.opus_frame)
        enc = make_encoder(self.codec, self.channels, RATE, opus=opus)
        self.frames = enc.frames or self.frames
        pk = Packetizer(enc, self.channels, RATE, self.frames, 1400, self.redundancy,
                        stream_id=self.stream_id)
        self.packets = [pk.packet(k * self.frames, signal(self.codec, self.channels,
                                                          k * self.frames, self.frames))
                        for k in range(count)]
        return self

    def arrivals(self, lose=(), jitter: int = 0, seed: int = 1, offset: int = 0,
                 peer: tuple = PEER) -> list[Arrival]:
        """Every datagram of every packet not in ``lose``, delayed by a uniform
        0..``jitter`` frames (which reorders), ``offset`` frames later."""
        rng = random.Random(seed)
        out = []
        for k, datagrams in enumerate(self.packets):
            if k in lose:
                continue
            at = (k + 1) * self.frames + self.transit + offset + rng.randint(0, jitter)
            out.extend(Arrival(at, d, peer) for d in datagrams)
        return out


class PipeSim:
    """A receiver: margin ``margin`` frames, period ``period``; a playout ring
    of ``ring`` frames (default: what a receiver with that margin has)."""

    def __init__(self, channels: int = 2, period: int = 128, margin: int = 96,
                 auto: bool = False, drift: bool = False, lock_sender: bool = True,
                 ring: int | None = None) -> None:
        self.channels, self.period = channels, period
        self.playout = Playout(channels, ring or ring_frames(margin, RATE), RATE)
        self.jitter = JitterBuffer(self.playout, period, margin, RATE, auto=auto)
        self.pipeline = StreamPipeline(self.jitter, channels, RATE, lock_sender=lock_sender,
                                       drift=drift)
        self.out = np.zeros((channels, 0), np.float32)
        self._pending: list[Arrival] = []
        self.skipped = 0  # frames the receiver's clock jumped ahead of its cycles (`skip`)

    def skip(self, frames: int) -> None:
        """The receiver's JACK clock jumps ``frames`` ahead, as after an xrun:
        its later cycles, and arrivals stamped from then on (those given to
        `run` already included), are that much later."""
        now = self.out.shape[1] + self.skipped
        for a in self._pending:
            if a.at > now:
                a.at += frames
        self.skipped += frames

    def storm(self, jumps: int, cycles_apart: int) -> None:
        """An xrun storm: ``jumps`` jumps of the receiver's clock, a period
        each, ``cycles_apart`` cycles apart."""
        for _ in range(jumps):
            self.skip(self.period)
            self.run([], cycles_apart)

    def latency_beside_fill(self, seconds: int) -> list[float]:
        """Play ``seconds`` more, and give the latency held less the audio
        buffered at the end of each second: on a steady stream that is
        the same every second when the latency is the audio held."""
        out = []
        for _ in range(seconds):
            self.run([], RATE // self.period)
            out.append(self.jitter.latency_frames() - self.jitter.fill_frames())
        return out

    def run(self, arrivals: list[Arrival], cycles: int) -> "PipeSim":
        """Play ``cycles`` more receiver cycles, feeding each datagram (of
        these and of earlier calls) when its time has come: the network
        thread runs between cycles."""
        self._pending = sorted(self._pending + arrivals, key=lambda a: a.at)
        events, e = self._pending, 0
        out = np.zeros((self.channels, cycles * self.period), np.float32)
        start = self.out.shape[1] // self.period
        for m in range(start, start + cycles):
            now = m * self.period + self.skipped
            while e < len(events) and events[e].at <= now:
                self.pipeline.feed(events[e].datagram, events[e].peer, events[e].at)
                e += 1
            self.pipeline.tick(now)
            i = (m - start) * self.period
            self.playout.run(now, out[:, i:i + self.period])
        self._pending = events[e:]
        self.out = np.concatenate([self.out, out], axis=1)
        return self

    def stats(self) -> ReceiverStats:
        out = ReceiverStats()
        self.pipeline.report(out)
        return out

    def delay(self) -> int:
        """Receiver frame minus sender frame, from the current lock."""
        return self.playout.offset + self.jitter.mapping.base

    def expected(self, codec: str, start: int, stop: int) -> np.ndarray:
        """What the output should hold over [start, stop), played ``delay`` late."""
        return signal(codec, self.channels, start - self.delay(), stop - start)

    def exact(self, start: int, stop: int, codec: str = "float32") -> bool:
        return np.array_equal(self.out[:, start:stop], self.expected(codec, start, stop))
