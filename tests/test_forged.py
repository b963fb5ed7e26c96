"""Forged and broken datagrams against the stream pipeline, on a simulated
clock: from the sender's own address, with its stream id, lying about their
place (timestamps hours away, sequence numbers from nowhere, fragment counts)
and carrying NaN samples.  The receiver must never play a non-finite sample
or a louder one, never count nonsense, stay where it locked, and be exact
again once the forgeries stop.  Then a million mutants through parser and
pipeline: nothing escapes, memory stays bounded."""
from __future__ import annotations

import random
import resource

import numpy as np
import pytest

from forge import header_lies, mutate, peak
from jacknet.testing.pipesim import PEER, RATE, Arrival, PipeSim, Stream, signal

N = 128
SECONDS = 8
FORGE_FROM, FORGE_TO = 2 * RATE, 4 * RATE   # receiver clock, frames


def forged_run(codec: str, per_packet: int, seed: int = 7) -> tuple[PipeSim, Stream, int]:
    stream = Stream(codec, 2, N).build(SECONDS * RATE // N if codec != "opus" else SECONDS * 200)
    real = stream.arrivals()
    rng = random.Random(seed)
    forged = [Arrival(a.at + rng.randrange(stream.frames), header_lies(a.datagram, rng))
              for a in real if FORGE_FROM <= a.at < FORGE_TO for _ in range(per_packet)]
    sim = PipeSim(2, N, 96)
    sim.run(real + forged, (len(stream.packets) * stream.frames - 4 * N) // N)
    return sim, stream, len(forged)


@pytest.mark.parametrize("codec", ["float32", "int16", "opus"])
def test_forged_datagrams_from_the_senders_address_do_not_capture_it(codec):
    clean = PipeSim(2, N, 96)
    stream = Stream(codec, 2, N).build(SECONDS * RATE // N if codec != "opus" else SECONDS * 200)
    clean.run(stream.arrivals(), (len(stream.packets) * stream.frames - 4 * N) // N)
    sim, stream, forged = forged_run(codec, per_packet=3)
    s = sim.stats()
    # Most are strays; the rest claim fragments of packets that never come.
    assert s.internal_errors == 0 and s.strays > forged // 2, (forged, s)
    assert np.isfinite(sim.out).all()
    sent = peak(signal(codec, 2, 0, len(stream.packets) * stream.frames))
    # Opus may overshoot as the codec itself does; int16 by its 1 LSB.
    ceiling = {"opus": 1.5 * sent, "int16": sent + 2 ** -15}.get(codec, sent)
    assert peak(sim.out) <= ceiling, (peak(sim.out), sent)
    # Counters that mean something: nothing was lost, the buffer holds what
    # its ring can, and the stream was never left behind where it locked.
    assert s.lost == 0 and s.fill_ms < 1000 * sim.playout.capacity / RATE, s
    assert sim.delay() == clean.delay(), (sim.delay(), clean.delay(), s)
    # Exact (PCM) or as clean as the clean run (Opus) from 1 s after the end.
    start, stop = FORGE_TO + RATE, sim.out.shape[1]
    if codec == "opus":
        err = sim.out[:, start:stop] - clean.out[:, start:stop]
        snr = 10 * np.log10((clean.out[:, start:stop] ** 2).sum() / max((err ** 2).sum(), 1e-30))
        assert snr > 40, snr
    else:
        lsb = 2 ** -15 if codec == "int16" else 0
        err = np.abs(sim.out[:, start:stop] - sim.expected(codec, start, stop)).max()
        assert err <= lsb, (err, s)


def test_a_sender_whose_clock_really_jumps_is_followed():
    # Its packets from 3 s on carry timestamps an hour later, and nothing
    # lands on the old line: after a quarter second the timeline leaps, and
    # the stream plays exactly again.
    stream = Stream("float32", 2, N).build(6 * RATE // N)
    jump = 3 * RATE // N
    arrivals = []
    for a in stream.arrivals():
        k = (a.at - stream.transit) // N - 1
        d = bytearray(a.datagram)
        if k >= jump:
            ts = int.from_bytes(d[16:24], "big") + 3600 * RATE
            d[16:24] = ts.to_bytes(8, "big")
        arrivals.append(Arrival(a.at, bytes(d)))
    sim = PipeSim(2, N, 96).run(arrivals, (len(stream.packets) - 4) * 1)
    s = sim.stats()
    assert s.leaps == 1 and s.internal_errors == 0 and s.lost == 0, s
    start = (jump + 250) * N  # a quarter second quiet, then a first lock's quarter second
    expected = signal("float32", 2, start - sim.delay() - 3600 * RATE, sim.out.shape[1] - start)
    assert np.array_equal(sim.out[:, start:], expected)


def restamped(datagram: bytes, lap: int, packets: int, frames: int) -> bytes:
    """A datagram of a stream's ``lap``-th run through its packets, as if
    the stream went on: sequence number and timestamp moved on by the laps."""
    d = bytearray(datagram)
    seq = (int.from_bytes(d[12:16], "big") + lap * packets) & 0xFFFFFFFF
    d[12:16] = seq.to_bytes(4, "big")
    d[16:24] = (int.from_bytes(d[16:24], "big") + lap * packets * frames).to_bytes(8, "big")
    return bytes(d)


@pytest.mark.slow
@pytest.mark.parametrize("codec, channels, redundancy", [("float32", 2, 0), ("int16", 6, 1),
                                                         ("opus", 2, 1)])
def test_a_third_of_a_million_mutants_escape_nothing_and_hold_no_memory(codec, channels, redundancy):
    # Every real datagram of a live stream, and four mutants of each beside
    # it: 333 334 datagrams per codec, a million over the three.
    rng = random.Random(1)
    stream = Stream(codec, channels, N, redundancy=redundancy).build(200)
    sim = PipeSim(channels, N, 96)
    feed, tick, play = sim.pipeline.feed, sim.pipeline.tick, sim.playout.run
    out = np.zeros((channels, N), np.float32)
    loudest, now, fed, rss = 0.0, 0, 0, []
    lap = 0
    while fed < 333_334:
        real = [restamped(d, lap, len(stream.packets), stream.frames)
                for packet in stream.packets for d in packet]
        per = len(real) // len(stream.packets)
        for j, d in enumerate(real):
            at = (lap * len(stream.packets) + j // per + 1) * stream.frames + stream.transit
            while now + N <= at:
                tick(now)
                play(now, out)
                loudest = max(loudest, peak(out))
                assert np.isfinite(out).all()
                now += N
            feed(d, PEER, at)
            for _ in range(4):
                feed(mutate(real, j, rng), PEER, at)
            fed += 5
        lap += 1
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    s = sim.stats()
    assert s.internal_errors == 0, s
    assert sum(s.malformed.values()) + s.strays + s.duplicate > fed // 4, s
    # Lies about sequence numbers cannot make up losses.  What is lost is
    # real: a forged fragment that claims the index of one still to come,
    # and comes first, spoils its packet (the first copy of a fragment
    # stands); only a sealed link can tell it apart.
    packets = lap * len(stream.packets)
    assert s.lost <= 0.02 * packets, str(s)
    sent = peak(signal(codec, channels, 0, len(stream.packets) * stream.frames))
    # NaN payloads that are on the line play as silence; other lies in a
    # float32 payload may be as loud as the ceiling (no authentication yet).
    assert loudest <= {"float32": 4.0, "int16": 1.0, "opus": 1.0}[codec], (loudest, sent)
    assert rss[-1] - rss[len(rss) // 4] < 50_000, rss   # kB: bounded once warm
