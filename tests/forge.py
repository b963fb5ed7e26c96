"""Forged and broken datagrams, made from real ones: every header field
lying, bit flips, truncation, replays, same-seq packets with other payloads,
NaN and Inf payloads.  For the fuzz test and the forged-stream tests."""
from __future__ import annotations

import random
import struct

import numpy as np

from jacknet.net.protocol import HEADER_SIZE

# Offsets of the header fields (protocol.HEADER: "!4sBBBBIIQIIHHBBH").
FIELDS = {"magic": (0, 4), "version": (4, 1), "codec": (5, 1), "flags": (6, 1),
          "jack_transport": (7, 1), "stream_id": (8, 4), "seq": (12, 4), "timestamp": (16, 8),
          "rate": (24, 4), "jack_transport_frame": (28, 4), "frames": (32, 2),
          "channels": (34, 2), "frag_index": (36, 1), "frag_count": (37, 1),
          "payload_len": (38, 2)}
HOUR = 3600 * 48000
NONFINITE = (struct.pack("<f", float("nan")), struct.pack("<f", float("inf")),
             struct.pack("<f", float("-inf")))


def _put(d: bytearray, name: str, value: int) -> None:
    at, size = FIELDS[name]
    d[at:at + size] = (value % (1 << (8 * size))).to_bytes(size, "big")


def _get(d: bytes, name: str) -> int:
    at, size = FIELDS[name]
    return int.from_bytes(d[at:at + size], "big")


def lie(d: bytearray, rng: random.Random) -> None:
    """One header field set to something a real sender would not send."""
    name = rng.choice(list(FIELDS))
    size = FIELDS[name][1]
    value = _get(d, name)
    choice = rng.randrange(4)
    if name == "timestamp":
        value = (rng.getrandbits(64), value + rng.choice((1, -1)) * rng.randrange(1, 100) * HOUR,
                 value + rng.randrange(-48000, 48000), 0)[choice]
    elif name == "seq":
        value = (rng.getrandbits(32), value + (1 << 31), value + rng.randrange(-5000, 5000),
                 value - 1)[choice]
    else:
        value = (rng.getrandbits(8 * size), value + 1, value - 1, 0)[choice]
    _put(d, name, value)


def nonfinite_payload(d: bytearray, rng: random.Random) -> None:
    """A float32 payload with NaN and Inf samples in it."""
    for _ in range(rng.randrange(1, 16)):
        at = HEADER_SIZE + 4 * rng.randrange(max(1, (len(d) - HEADER_SIZE) // 4))
        d[at:at + 4] = rng.choice(NONFINITE)


def mutate(real: list[bytes], k: int, rng: random.Random) -> bytes:
    """A mutant of ``real[k]``: one of the ways a datagram can lie or break."""
    d = bytearray(real[k])
    kind = rng.randrange(8)
    if kind == 0:
        for _ in range(rng.randrange(1, 3)):
            lie(d, rng)
    elif kind == 1:
        for _ in range(rng.randrange(1, 8)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
    elif kind == 2:
        d = d[:rng.randrange(len(d))]
    elif kind == 3:
        return real[rng.randrange(k + 1)]          # a replay of an earlier datagram
    elif kind == 4:                                # same seq, another packet's payload
        other = real[rng.randrange(len(real))]
        d = d[:HEADER_SIZE] + bytearray(other[HEADER_SIZE:])
        _put(d, "payload_len", len(d) - HEADER_SIZE)
    elif kind == 5:
        nonfinite_payload(d, rng)
    elif kind == 6:                                # a fragment of a packet that does not exist
        count = rng.randrange(2, 256)
        _put(d, "frag_count", count)
        _put(d, "frag_index", rng.randrange(count))
    else:
        d = d[:HEADER_SIZE] + bytearray(rng.randbytes(rng.randrange(1, 1500)))
        _put(d, "payload_len", len(d) - HEADER_SIZE)
    return bytes(d)


def header_lies(real: bytes, rng: random.Random, lies: dict | None = None) -> bytes:
    """``real`` with its timing fields lying (timestamp, sequence number,
    fragments) and perhaps NaN samples: a forgery that passes validation.
    ``lies`` (from `pick_lies`) makes every fragment of a packet lie alike."""
    lies = lies or pick_lies(rng)
    d = bytearray(real)
    ts = _get(d, "timestamp")
    _put(d, "timestamp", lies["timestamp"] if lies["timestamp_absolute"] else ts + lies["timestamp"])
    _put(d, "seq", _get(d, "seq") + lies["seq"])
    if lies["frag_count"]:
        _put(d, "frag_count", lies["frag_count"])
        _put(d, "frag_index", min(_get(d, "frag_index"), lies["frag_count"] - 1))
    if lies["nonfinite"] and _get(d, "codec") == 0:
        nonfinite_payload(d, rng)
    return bytes(d)


def pick_lies(rng: random.Random) -> dict:
    absolute = rng.random() < 0.25
    return {"timestamp_absolute": absolute,
            "timestamp": rng.getrandbits(64) if absolute else
            rng.choice((HOUR, -HOUR, rng.randrange(-24000, 24000))),
            "seq": rng.choice((rng.getrandbits(32), rng.randrange(-3000, 3000))),
            "frag_count": rng.randrange(2, 9) if rng.random() < 0.2 else 0,
            "nonfinite": rng.random() < 0.3}


class PacketForger:
    """``count`` forgeries of every datagram, the fragments of one packet
    lying alike (so forged packets complete and reach the pipeline)."""

    def __init__(self, count: int, seed: int) -> None:
        self.count, self.rng = count, random.Random(seed)
        self._lies: dict[int, list[dict]] = {}

    def __call__(self, datagram: bytes) -> list[bytes]:
        seq = _get(datagram, "seq")
        lies = self._lies.get(seq)
        if lies is None:
            if len(self._lies) > 64:
                self._lies.pop(next(iter(self._lies)))
            lies = self._lies[seq] = [pick_lies(self.rng) for _ in range(self.count)]
        return [header_lies(datagram, self.rng, lie) for lie in lies]


def peak(x: np.ndarray) -> float:
    return float(np.abs(x).max()) if x.size else 0.0
