"""Sealing cost (security psk): microseconds per datagram to seal and to
open, and what that is as a share of one core at the link's datagram rate.

Builds real streams with the `Packetizer` (float32, int16 and Opus 5 ms at
48 kHz, 128-frame packets for PCM) at each channel count, seals every
datagram with a `Sealer` and opens it with an `Opener` (tag check, replay
window, header rewrite), the same calls the link ends make.  The best of
``--rounds`` rounds is reported, as the machine is shared.

Not a test: it prints a table and asserts nothing.

    .venv/bin/python scripts/bench_seal.py [--packets 2000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from jacknet.codecs import make_encoder
from jacknet.codecs.opus import OpusSettings
from jacknet.packetizer import Packetizer
from jacknet.security.seal import TAG, Opener, Sealer
from jacknet.testing.signals import known_music

RATE = 48000
MTU = 1400


def datagrams(codec: str, channels: int, packets: int) -> tuple[list[bytes], float]:
    """A stream's datagrams, and how many the link sends per second."""
    enc = make_encoder(codec, channels, RATE, opus=OpusSettings())  # 5 ms, 96 kbit/s a channel
    frames = enc.frames or 128
    pk = Packetizer(enc, channels, RATE, frames, MTU - TAG, stream_id=7)
    t = np.arange(packets * frames, dtype=np.int64)
    sig = np.stack([known_music(ch, t) for ch in range(channels)])
    out = []
    for i in range(packets):
        out += pk.packet(i * frames, np.ascontiguousarray(sig[:, i * frames:(i + 1) * frames]))
    return out, len(out) / packets * RATE / frames


def measure(plain: list[bytes], rounds: int) -> tuple[float, float]:
    """Best microseconds per datagram: (seal, open)."""
    psk = bytes(32)
    best_seal = best_open = float("inf")
    for _ in range(rounds):
        sealer = Sealer(psk, 7)
        t0 = time.perf_counter()
        wire = [sealer.seal(d) for d in plain]
        t1 = time.perf_counter()
        opener = Opener([psk])
        opener.announce(sealer.announcement())
        t2 = time.perf_counter()
        opened = [opener.open(w) for w in wire]
        t3 = time.perf_counter()
        assert opened == plain
        best_seal = min(best_seal, 1e6 * (t1 - t0) / len(plain))
        best_open = min(best_open, 1e6 * (t3 - t2) / len(plain))
    return best_seal, best_open


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--channels", type=int, nargs="+", default=[2, 16])
    args = ap.parse_args()
    print("| codec | ch | datagram bytes (sealed) | datagrams/s | seal µs | open µs "
          "| CPU % sender / receiver |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for codec in ("float32", "int16", "opus"):
        for channels in args.channels:
            plain, rate = datagrams(codec, channels, args.packets)
            seal_us, open_us = measure(plain, args.rounds)
            size = max(len(d) for d in plain) + TAG
            print(f"| {codec} | {channels} | {size} | {rate:.0f} | {seal_us:.1f} | {open_us:.1f} "
                  f"| {seal_us * rate / 1e4:.2f} / {open_us * rate / 1e4:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
