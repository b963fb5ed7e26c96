"""The sender's C path sends, byte for byte, the datagrams the Python path
would: same captures (missed cycles, JACK transport starts, stops and
locates, position blocks, int16 rounding, clipping and a NaN) through both,
no jackd, real UDP sockets on 127.0.0.1."""
from __future__ import annotations

import socket

import numpy as np
import pytest

from jacknet.codecs import make_encoder
from jacknet.net import protocol
from jacknet.packetizer import Packetizer
from jacknet.rt.engines import Capture
from jacknet.rt.sendpath import SendPath
from jacknet.sender import cut
from jacknet.sync.watch import TransportWatch

RATE = 48000
STOPPED, ROLLING, STARTING = 0, 1, 3


def cycles(period: int, channels: int, count: int, seed: int = 1):
    """(frame_time, audio, transport state, transport frame) of each cycle
    JACK runs: a transport that starts, rolls, is located, stops and starts
    again, cycles missed now and then, and audio with int16 rounding ties
    and samples past full scale."""
    rng = np.random.default_rng(seed)
    frame_time, tframe, state = 1000, 0, STOPPED
    for n in range(count):
        if n % 37 == 36:
            frame_time += period * (1 + n % 3)  # cycles JACK did not run us in
        state = {10: STARTING, 11: ROLLING, 60: ROLLING, 90: STOPPED, 120: ROLLING}.get(n, state)
        if n == 60:
            tframe = 5_000_000  # a locate while rolling
        audio = rng.uniform(-1.1, 1.1, (channels, period)).astype(np.float32)
        audio[:, ::7] = (np.round(audio[:, ::7] * 32768) + 0.5) / 32768  # ties
        if n == 40:
            audio[0, 3] = np.nan  # a broken client
        yield frame_time, audio, state, tframe
        frame_time += period
        if state == ROLLING:
            tframe += period


def stream(codec: str, channels: int, frames: int, share: bool):
    encoder = make_encoder(codec, channels, RATE)
    packetizer = Packetizer(encoder, channels, RATE, frames, 1400, stream_id=0x1234ABCD)
    return packetizer, TransportWatch(RATE, RATE, share)


def python_packet(cap, packetizer, watch, pos, block) -> list[bytes]:
    """What `Sender._send` makes of one block."""
    if cap.filled_in(pos, block.shape[1]):
        packetizer.skip()
        return []
    said = watch.packet(pos, *cap.jack_transport_at(pos), lambda: cap.position_at(pos))
    return packetizer.packet(pos, block, said)


def capture(channels: int) -> Capture:
    cap = Capture(channels, 8192)
    cap.fill_missed_cycles(4096)
    return cap


@pytest.fixture
def wire():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    yield tx, rx
    tx.close()
    rx.close()


def drain(rx: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(rx.recv(65536))
        except BlockingIOError:
            return out


@pytest.mark.parametrize("codec,channels,period,frames,share", [
    ("float32", 2, 128, 128, True),
    ("int16", 2, 128, 128, True),
    ("float32", 16, 128, 128, True),   # 7 fragments a packet
    ("int16", 16, 64, 128, True),      # a packet of two cycles
    ("float32", 2, 256, 64, True),     # four packets a cycle
    ("int16", 6, 128, 128, False),     # --no-transport
])
def test_the_c_path_sends_what_python_would(wire, codec, channels, period, frames, share):
    tx, rx = wire
    ref_cap, fast_cap = capture(channels), capture(channels)
    ref_pk, ref_watch = stream(codec, channels, frames, share)
    pk, watch = stream(codec, channels, frames, share)
    fast = SendPath(fast_cap, tx, pk, watch)
    block = np.zeros((channels, frames), np.float32)
    want: list[bytes] = []
    got: list[bytes] = []
    by_python = by_c = errors = clipped = 0
    for n, (frame_time, audio, state, tframe) in enumerate(cycles(period, channels, 160)):
        for cap in (ref_cap, fast_cap):
            cap.push(frame_time, audio, state, tframe)
        for pos, _ in cut(ref_cap, block):
            want += python_packet(ref_cap, ref_pk, ref_watch, pos, block)
        if n % 3 == 2 or n == 159:  # a few cycles per turn, as a busy worker sees them
            while True:
                pos, sent = fast.pump(0)
                by_c += sent.packets
                errors += sent.send_errors
                clipped += sent.clipped
                got += drain(rx)
                if pos is None:
                    break
                by_python += 1
                for datagram in python_packet(fast_cap, pk, watch, pos, fast.block):
                    tx.send(datagram)
                got += drain(rx)
    assert errors == 0
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"datagram {i}: {protocol.parse(g)} against {protocol.parse(w)}"
    assert (pk.seq, pk.packets, pk.missed) == (ref_pk.seq, ref_pk.packets, ref_pk.missed)
    assert watch.said == ref_watch.said and watch.epoch == ref_watch.epoch
    # The C path did the steady state; Python only the packets that needed it.
    assert by_c > by_python
    if codec == "int16":
        assert clipped == ref_pk.encoder.stats["clipped"] - pk.encoder.stats["clipped"] > 0


def test_the_c_path_refuses_what_it_cannot_carry(wire):
    tx, _ = wire
    cap = capture(2)
    for codec, redundancy, dither in (("float32", 1, False), ("opus", 0, False),
                                      ("int16", 0, True)):
        encoder = make_encoder(codec, 2, RATE, dither=dither)
        pk = Packetizer(encoder, 2, RATE, encoder.frames or 128, 1400, redundancy)
        with pytest.raises(ValueError):
            SendPath(cap, tx, pk, TransportWatch(RATE, RATE))
