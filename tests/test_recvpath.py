"""The receiver's C path plays what the Python path would: the same
datagrams (lost, duplicated, reordered, late, a stranger's, broken ones,
fragments gone missing) at the same receiver clock through a receiver that
feeds every datagram in Python and one whose C path takes the steady stream,
must give the same audio, sample for sample, and the same counters.  No
jackd; real UDP sockets on 127.0.0.1."""
from __future__ import annotations

import random
import select
import socket
import time

import numpy as np
import pytest

from jacknet.codecs import make_encoder
from jacknet.net.protocol import PositionBlock, parse
from jacknet.net.udp import UdpSource
from jacknet.packetizer import Packetizer
from jacknet.receiver import ring_frames
from jacknet.recv.jitter import JitterBuffer
from jacknet.recv.pipeline import StreamPipeline
from jacknet.rt.engines import Playout
from jacknet.rt._rt import ffi
from jacknet.rt.recvpath import RECORD, RecvPath, peer_of, sockaddr
from jacknet.stats import ReceiverStats, as_dict
from jacknet.sync.watch import TransportWatch
from jacknet.testing.pipesim import Stream, signal

RATE = 48000
PERIOD = 128


class Side:
    """One receiver: margin 2 ms, period 128, a unicast sender locked to."""

    def __init__(self, channels: int) -> None:
        margin = 96
        self.playout = Playout(channels, ring_frames(margin, RATE), RATE)
        self.jitter = JitterBuffer(self.playout, PERIOD, margin, RATE)
        self.pipeline = StreamPipeline(self.jitter, channels, RATE, lock_sender=True)
        self.out: list[np.ndarray] = []

    def cycle(self, now: int) -> None:
        self.pipeline.tick(now)
        block = np.zeros((self.playout.channels, PERIOD), np.float32)
        self.playout.run(now, block)
        self.out.append(block)

    def stats(self) -> dict:
        out = ReceiverStats()
        self.pipeline.report(out)
        heard = self.pipeline.heard
        return as_dict(out) | {"transport changes": heard.changes, "newest": heard.newest,
                               "transport": [heard.at(t) for t in range(0, 3 * RATE, 999)]}


def sent(codec: str, channels: int, count: int) -> Stream:
    """A sender's packets, with its JACK transport: it starts at packet 100,
    is located at 200, stops at 300 (position blocks a few times a second
    and after each change)."""
    pk = Packetizer(make_encoder(codec, channels, RATE), channels, RATE, PERIOD, 1400)
    watch = TransportWatch(RATE, RATE, True)
    packets, state, frame = [], 0, 0
    for k in range(count):
        state = {100: 1, 300: 0}.get(k, state)
        frame = 10_000_000 if k == 200 else frame
        said = watch.packet(k * PERIOD, state, frame, lambda: PositionBlock(RATE, frame))
        packets.append(pk.packet(k * PERIOD, signal(codec, channels, k * PERIOD, PERIOD), said))
        frame += PERIOD if state == 1 else 0
    return Stream(codec=codec, channels=channels, frames=PERIOD, packets=packets)


def impaired(stream: Stream, seed: int) -> list[tuple[int, bytes, str]]:
    """(arrival, datagram, who) in arrival order: 3 % of datagrams lost, 3 %
    sent twice, a jitter of up to 1.5 packets (which reorders), a burst
    held up 30 ms (late packets, a loosen), a stranger's packets, and
    garbage from the sender."""
    rng = random.Random(seed)
    out = []
    held_at = len(stream.packets) // 2 * stream.frames
    for k, datagrams in enumerate(stream.packets):
        at = (k + 1) * stream.frames + 20 + rng.randint(0, 3 * stream.frames // 2)
        if held_at <= at < held_at + 1440:
            at = held_at + 1440
        for d in datagrams:
            if rng.random() < 0.03:
                continue
            out.append((at, d, "sender"))
            if rng.random() < 0.03:
                out.append((at + rng.randint(0, 200), d, "sender"))
        if k % 97 == 50:
            out.append((at, datagrams[0], "stranger"))
        if k % 89 == 40:
            out.append((at, bytes(rng.getrandbits(8) for _ in range(60)), "sender"))
        if k % 83 == 30:
            out.append((at, datagrams[-1][:-3], "sender"))  # truncated
    return sorted(out, key=lambda a: a[0])


@pytest.fixture
def sockets():
    source = UdpSource("127.0.0.1", 0)
    source.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    senders = {}
    for who in ("sender", "stranger"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.connect(source.address)
        senders[who] = s
    yield source, senders
    for s in senders.values():
        s.close()
    source.close()


def played(arrivals, cycles: int, channels: int, sockets=None) -> tuple[Side, int]:
    """Play the arrivals, by Python alone or (``sockets``) through the C path.
    Returns the receiver and the packets C placed."""
    side = Side(channels)
    pipeline = side.pipeline
    buf = bytearray(65536)
    if sockets is not None:
        source, senders = sockets
        path = RecvPath(source, side.playout)
        peers = {who: s.getsockname() for who, s in senders.items()}
    else:
        peers = {"sender": ("127.0.0.1", 40000), "stranger": ("127.0.0.1", 40001)}
    by_c = e = 0
    for m in range(cycles):
        now = m * PERIOD
        group = []
        while e < len(arrivals) and arrivals[e][0] <= now:
            group.append(arrivals[e])
            e += 1
        if sockets is None:
            for at, d, who in group:
                pipeline.feed(d, peers[who], at)
        else:
            # One receiver clock for all (C stamps a pump's packets alike):
            # the Python side's arrivals are made the same.
            for at, d, who in group:
                senders[who].send(d)
            taken = lambda: pipeline.stats.datagrams + pipeline.stats.foreign_sources  # noqa: E731
            want = taken() + len(group)
            while taken() < want:
                got = path.pump(pipeline, 0.0, arrival=group[-1][0])
                if got is None:
                    n, peer = source.receive(buf, 1.0)
                    assert n, "a datagram sent did not arrive"
                    pipeline.feed(memoryview(buf)[:n], peer, group[-1][0])
                    continue
                placed, datagrams = got
                by_c += len(placed)
                for d, peer in datagrams:
                    pipeline.feed(d, peer, group[-1][0])
                if taken() < want:
                    select.select([source.sock], [], [], 1.0)
        side.cycle(now)
    return side, by_c


def same_clock(arrivals):
    """The arrivals of one cycle stamped alike, as the C side stamps them."""
    out, i = [], 0
    while i < len(arrivals):
        cycle = -(-arrivals[i][0] // PERIOD)
        j = i
        while j < len(arrivals) and -(-arrivals[j][0] // PERIOD) == cycle:
            j += 1
        last = arrivals[j - 1][0]
        out.extend((last, d, who) for _, d, who in arrivals[i:j])
        i = j
    return out


@pytest.mark.parametrize("codec, channels", [("float32", 2), ("int16", 2), ("float32", 16),
                                             ("int16", 6)])
def test_the_c_path_plays_and_counts_what_python_does(codec, channels, sockets):
    stream = sent(codec, channels, 3 * RATE // PERIOD)
    arrivals = same_clock(impaired(stream, seed=channels))
    cycles = len(stream.packets) + 20
    python, _ = played(arrivals, cycles, channels)
    c, by_c = played(arrivals, cycles, channels, sockets)
    # Not a vacuous test: C took a good share (with many fragments a packet,
    # the loss and the reordering make more of them Python's).
    assert by_c > 0.4 * len(stream.packets), (by_c, len(stream.packets))
    ps, cs = python.stats(), c.stats()
    assert ps["late"] > 0 and ps["lost"] > 0 and ps["duplicate"] > 0, ps
    assert ps["loosened"] + ps["relocks"] > 0, ps  # the policies moved the playout
    assert ps["foreign_sources"] > 0 and sum(ps["malformed"].values()) > 0, ps
    assert ps["transport changes"] >= 3, ps
    assert cs == ps
    assert np.array_equal(np.concatenate(c.out, axis=1), np.concatenate(python.out, axis=1))


def mutant(d: bytes, rng: random.Random) -> bytes:
    """A datagram broken or forged the ways a fuzzer would: a byte of the
    header or the payload changed, cut short, made longer."""
    b = bytearray(d)
    kind = rng.randrange(4)
    if kind == 0:
        b[rng.randrange(40)] = rng.getrandbits(8)
    elif kind == 1:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 2:
        del b[rng.randrange(1, len(b)):]
    else:
        b += bytes(rng.randrange(1, 9))
    return bytes(b)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("codec, channels", [("float32", 2), ("int16", 6), ("float32", 16)])
def test_forged_and_broken_datagrams_take_both_paths_alike(codec, channels, seed, sockets):
    """Loss, reordering, and after one datagram in five a mutant of one up
    to 4 before or 7 after it, mostly from the sender's own address: what
    the C path places of it all is what the Python path stores, nothing
    more.  (This found two differences the test above did not: a packet's
    JACK transport is its first fragment's, and a packet gathered by C
    still takes its place among the reassembler's pending ones.)"""
    rng = random.Random(seed)
    stream = sent(codec, channels, 400)
    flat = [d for datagrams in stream.packets for d in datagrams]
    where = {d: i for i, d in enumerate(flat)}
    arrivals = []
    for k, datagrams in enumerate(stream.packets):
        at = (k + 1) * PERIOD + 20 + rng.randint(0, 200)
        for d in datagrams:
            if rng.random() < 0.05:
                continue
            arrivals.append((at, d, "sender"))
            if rng.random() < 0.2:
                other = flat[min(len(flat) - 1, max(0, where[d] + rng.randrange(-4, 8)))]
                who = "stranger" if rng.random() < 0.2 else "sender"
                arrivals.append((at + rng.randint(0, 300), mutant(other, rng), who))
    arrivals = same_clock(sorted(arrivals, key=lambda a: a[0]))
    cycles = len(stream.packets) + 20
    python, _ = played(arrivals, cycles, channels)
    c, by_c = played(arrivals, cycles, channels, sockets)
    ps, cs = python.stats(), c.stats()
    assert by_c > 0.05 * len(stream.packets) and sum(ps["malformed"].values()) > 0, (by_c, ps)
    assert cs == ps
    out = np.concatenate(c.out, axis=1)
    assert np.array_equal(out, np.concatenate(python.out, axis=1))
    assert np.isfinite(out).all() and np.abs(out).max() <= 4.0  # float32's ceiling


def test_c_tells_when_the_newest_datagram_of_the_sender_came(sockets):
    # Read by the status thread during a call, so that 100 ms between
    # returns to Python are not taken for an outage.
    source, senders = sockets
    side = Side(2)
    path = RecvPath(source, side.playout)
    assert path.heard_at is None
    stream = sent("float32", 2, 300)
    sender = senders["sender"].getsockname()
    k = 0
    while side.pipeline.in_line(2, 0) is None:  # locked by Python first
        side.pipeline.feed(stream.packets[k][0], sender, (k + 1) * PERIOD)
        side.cycle(k * PERIOD)
        k += 1
    while parse(stream.packets[k][0]).flags or parse(stream.packets[k + 1][0]).flags:
        side.pipeline.feed(stream.packets[k][0], sender, (k + 1) * PERIOD)
        side.cycle(k * PERIOD)
        k += 1
    before = time.monotonic()
    senders["sender"].send(stream.packets[k][0])
    placed, _ = path.pump(side.pipeline, 0.5, arrival=(k + 1) * PERIOD)
    assert len(placed) == 1 and before <= path.heard_at <= time.monotonic()
    heard = path.heard_at
    senders["stranger"].send(stream.packets[k + 1][0])
    path.pump(side.pipeline, 0.5, arrival=(k + 2) * PERIOD)
    assert path.heard_at == heard  # a stranger's datagram is no sign of the sender


def test_sockaddrs_round_trip():
    for peer in [("127.0.0.1", 4464), ("::1", 4464, 0, 0), ("2001:db8::7", 1, 5, 0)]:
        assert peer_of(sockaddr(peer)) == peer
    assert sockaddr(("fe80::1%lo", 1, 0, 1)) is None


def test_the_c_paths_speak_the_protocols_constants():
    from jacknet.net import protocol
    from jacknet.rt._rt import lib
    assert (lib.JN_CODEC_FLOAT32, lib.JN_CODEC_INT16) == (protocol.CODEC_FLOAT32,
                                                          protocol.CODEC_INT16)
    assert (lib.JN_TRANSPORT_NONE, lib.JN_TRANSPORT_EPOCHS) == (protocol.TRANSPORT_NONE,
                                                                protocol.EPOCHS)
    assert lib.JN_MAX_DATAGRAM == protocol.MAX_DATAGRAM
    assert (lib.JN_HEADER_SIZE, lib.JN_PROTOCOL_VERSION) == (protocol.HEADER_SIZE,
                                                            protocol.VERSION)


def test_the_records_unpack_as_c_lays_them_out():
    values = {"seq": 0xFFFFFFFE, "timestamp": 1 << 40, "arrival": (1 << 50) + 3, "at": 12.5,
              "read_end": (1 << 45) + 7, "tbyte": 0x1F, "tframe": 0xFFFFFFF0, "datagrams": 3,
              "bytes": 4000}
    rec = ffi.new("jn_recvrecord *", values)
    assert RECORD.size == ffi.sizeof("jn_recvrecord")
    assert RECORD.unpack(ffi.buffer(rec)) == tuple(values.values())
