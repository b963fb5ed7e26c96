"""Packet header round trip, rejection of each malformed field, fragments."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from jacknet.net import protocol
from jacknet.errors import MalformedPacket
from jacknet.net.protocol import HEADER_SIZE, Header, Reassembler, fragment, parse

H = Header(codec=protocol.CODEC_INT16, stream_id=0xDEADBEEF, seq=7, timestamp=2**40 + 5,
           sample_rate=48000, frames=128, channels=2, payload_len=512,
           jack_transport_state=1, jack_transport_frame=12345)


def datagram(header: Header = H, payload: bytes = b"\x01" * 512) -> bytes:
    return replace(header, payload_len=len(payload)).pack() + payload


def test_round_trip():
    assert HEADER_SIZE == 40
    assert parse(datagram()) == H


def patched(offset: int, fmt_bytes: bytes) -> bytes:
    d = bytearray(datagram())
    d[offset:offset + len(fmt_bytes)] = fmt_bytes
    return bytes(d)


@pytest.mark.parametrize("data, reason", [
    (b"", "truncated"),
    (datagram()[:HEADER_SIZE - 1], "truncated"),
    (patched(0, b"XNET"), "magic"),
    (patched(4, b"\x01"), "version"),
    (patched(5, b"\x09"), "codec"),
    (patched(7, b"\x05"), "transport"),
    (patched(6, b"\x80"), "flags"),
    (datagram(replace(H, channels=0)), "channels"),
    (datagram(replace(H, channels=65)), "channels"),
    (datagram(replace(H, frames=0)), "frames"),
    (datagram(replace(H, frames=9000)), "frames"),
    (datagram(replace(H, sample_rate=7999)), "rate"),
    (datagram(replace(H, sample_rate=10**6)), "rate"),
    (replace(H, frag_index=2, frag_count=2).pack() + b"x" * 512, "fragment"),
    (replace(H, frag_count=0).pack() + b"x" * 512, "fragment"),
    (replace(H, payload_len=600).pack() + b"x" * 512, "length"),   # a length that lies
    (replace(H, payload_len=0).pack(), "length"),
    (datagram()[:-1], "length"),                                     # truncated payload
])
def test_rejects_each_malformed_field(data, reason):
    with pytest.raises(MalformedPacket) as e:
        parse(data)
    assert e.value.reason == reason


def test_random_bytes_never_crash():
    rng = random.Random(1)
    for _ in range(2000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120)))
        with pytest.raises(MalformedPacket):
            parse(data)


def test_fragments_fit_the_mtu_and_reassemble_in_any_order():
    payload = bytes(range(256)) * 40  # 10240 bytes
    parts = fragment(replace(H, payload_len=len(payload)), payload, mtu=1400)
    assert len(parts) == 8 and all(len(p) <= 1400 for p in parts)
    r = Reassembler()
    random.Random(3).shuffle(parts)
    results = [r.add(parse(p), p[HEADER_SIZE:]) for p in parts]
    assert all(x is None for x in results[:-1])
    header, whole = results[-1]
    assert whole == payload and header.frag_count == 1 and header.seq == H.seq


def test_small_packet_is_one_datagram():
    parts = fragment(H, b"abc", mtu=1400)
    assert len(parts) == 1 and parse(parts[0]).frag_count == 1


def test_incomplete_packets_are_evicted_and_counted():
    r = Reassembler(window=2)
    payload = b"z" * 3000
    for seq in range(4):
        first = fragment(replace(H, seq=seq), payload, mtu=1400)[0]
        assert r.add(parse(first), first[HEADER_SIZE:]) is None
    assert r.incomplete == 2


def test_a_fragment_that_disagrees_is_of_another_packet_and_cannot_spoil_the_real_one():
    r = Reassembler()
    a = fragment(H, b"q" * 3000, mtu=1400)
    b = fragment(replace(H, timestamp=H.timestamp + 1), b"z" * 3000, mtu=1400)
    assert r.add(parse(a[0]), a[0][HEADER_SIZE:]) is None
    assert r.add(parse(b[1]), b[1][HEADER_SIZE:]) is None   # a lie about the same seq
    assert r.add(parse(a[1]), a[1][HEADER_SIZE:]) is None
    header, whole = r.add(parse(a[2]), a[2][HEADER_SIZE:])
    assert header.timestamp == H.timestamp and whole == b"q" * 3000


def test_too_many_fragments_is_refused():
    with pytest.raises(ValueError, match="--mtu"):
        fragment(H, b"x" * 400_000, mtu=600)


def test_fragments_of_a_completed_packet_count_as_duplicates():
    r = Reassembler()
    parts = fragment(H, b"d" * 3000, mtu=1400)
    for p in parts:
        r.add(parse(p), p[HEADER_SIZE:])
    assert r.add(parse(parts[1]), parts[1][HEADER_SIZE:]) is None
    assert r.duplicate == 1 and r.incomplete == 0


def test_redundant_payload_round_trip():
    copies = [b"\x02" * 60, b"\x03" * 61, b"\x04"]
    payload = protocol.pack_redundant(b"\x01" * 59, copies)
    assert len(payload) == protocol.redundant_size(59, [60, 61, 1])
    assert protocol.split_redundant(payload) == (b"\x01" * 59, copies)
    assert protocol.split_redundant(protocol.pack_redundant(b"\x05", [])) == (b"\x05", [])


@pytest.mark.parametrize("payload", [
    b"",
    b"\x09" + bytes(100),                       # more copies than allowed
    b"\x02\x00\x05",                            # table cut short
    b"\x01\x00\x10" + bytes(16),                # the copy leaves no primary
    b"\x01\x00\x00" + bytes(16),                # an empty copy
])
def test_a_redundancy_table_that_lies_is_refused(payload):
    with pytest.raises(MalformedPacket) as e:
        protocol.split_redundant(payload)
    assert e.value.reason == "redundancy"


def test_the_state_byte_carries_the_epoch_modulo_32():
    for epoch in (0, 1, 31, 32, 33):
        h = replace(H, jack_transport_epoch=epoch)
        assert parse(datagram(h)).jack_transport_epoch == epoch % protocol.EPOCHS
        assert parse(datagram(h)).jack_transport_state == 1
    none = parse(datagram(replace(H, jack_transport_state=protocol.TRANSPORT_NONE)))
    assert none.jack_transport_state == protocol.TRANSPORT_NONE


BBT = protocol.PositionBlock(44100, 123456, True, 17, 3, 1500, 4.0, 4.0, 1920.0, 128.5, 122880.0)


def test_a_position_block_round_trips_before_the_payload():
    block, rest = protocol.split_position(BBT.pack() + b"audio")
    assert (block, rest) == (BBT, b"audio")
    plain = protocol.PositionBlock(48000, 5)
    assert protocol.split_position(plain.pack() + b"x")[0] == plain


@pytest.mark.parametrize("block", [
    replace(BBT, rate=10), replace(BBT, bpm=0.0), replace(BBT, bpm=float("nan")),
    replace(BBT, beat=5), replace(BBT, tick=1920), replace(BBT, bar=0),
    replace(BBT, beats_per_bar=float("inf")), replace(BBT, bar_start_tick=float("nan")),
    replace(BBT, ticks_per_beat=0.0)])
def test_a_position_block_no_transport_could_give_is_refused(block):
    with pytest.raises(MalformedPacket) as e:
        protocol.split_position(block.pack() + b"audio")
    assert e.value.reason == "position"


def test_a_position_flag_on_a_short_payload_is_refused():
    h = replace(H, flags=protocol.FLAG_POSITION)
    header = parse(datagram(h, b"\x00" * 20))
    with pytest.raises(MalformedPacket):
        protocol.split_position(b"\x00" * 20)
    assert header.flags == protocol.FLAG_POSITION
