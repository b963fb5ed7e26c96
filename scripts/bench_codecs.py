"""Codec and resampler cost: time per packet, as % of one core in real time.

Runs each codec on a music-like signal (tones plus noise) at 48 kHz and
prints a table: microseconds per packet to encode and to decode, and what
that is as a share of one core while the link runs.  For Opus it also
compares one multistream encoder (what jacknet uses) with one plain encoder
per channel pair, the alternative the libopus API offers.  A second table
gives the receiver's resampler (drift correction and rate conversion) per
128-frame block, at each converter quality, with a ratio that changes at
every call as the drift loop's does.  ``--effort`` adds a third: the Opus
encoder's complexity against its frame size at 16 channels, with the SNR
each setting keeps (the sender's defaults otherwise: 96 kbit/s per channel,
lowdelay), to choose the defaults by.

Not a test: it prints a table and asserts nothing.

    .venv/bin/python scripts/bench_codecs.py [--seconds 2] [--effort]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from jacknet.codecs import make_decoder, make_encoder
from jacknet.codecs.opus import OpusSettings
from jacknet.testing.signals import known_music

RATE = 48000


def signal(channels: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE), dtype=np.int64)
    return np.stack([known_music(ch, t) for ch in range(channels)])


def time_codec(name: str, channels: int, frames: int, sig: np.ndarray,
               settings: OpusSettings) -> tuple[float, float]:
    """Microseconds per packet: (encode, decode)."""
    enc = make_encoder(name, channels, RATE, opus=settings)
    n = enc.frames or frames
    blocks = [np.ascontiguousarray(sig[:, i:i + n]) for i in range(0, sig.shape[1] - n + 1, n)]
    t0 = time.perf_counter()
    payloads = [enc.encode(b) for b in blocks]
    t1 = time.perf_counter()
    dec = make_decoder(enc.codec_id)
    for p in payloads:
        dec.decode(p, channels, n, RATE)
    t2 = time.perf_counter()
    return 1e6 * (t1 - t0) / len(blocks), 1e6 * (t2 - t1) / len(blocks)


def time_pairs(channels: int, sig: np.ndarray, settings: OpusSettings) -> float:
    """Microseconds per packet with one plain encoder per channel pair."""
    groups = [list(range(c, min(c + 2, channels))) for c in range(0, channels, 2)]
    encs = [make_encoder("opus", len(g), RATE, opus=settings) for g in groups]
    n = encs[0].frames
    t0 = time.perf_counter()
    count = 0
    for i in range(0, sig.shape[1] - n + 1, n):
        for enc, g in zip(encs, groups):
            enc.encode(np.ascontiguousarray(sig[g, i:i + n]))
        count += 1
    return 1e6 * (time.perf_counter() - t0) / count


def snr_db(sent: np.ndarray, got: np.ndarray) -> float:
    """SNR of ``got`` against ``sent``, at the lag (the codec's look-ahead) that fits best."""
    def at(lag: int) -> float:
        err = got[:, lag:] - sent[:, :got.shape[1] - lag]
        return 10 * np.log10(np.sum(sent[:, :got.shape[1] - lag] ** 2) / max(np.sum(err ** 2), 1e-30))
    return max(at(lag) for lag in range(0, 481))


def effort(channels: int, sig: np.ndarray, frame_ms: float, complexity: int,
           rounds: int) -> tuple[float, float]:
    """(median encode µs per packet over ``rounds``, SNR dB) of one Opus encoder setting."""
    settings = OpusSettings(frame_ms, complexity=complexity)
    enc_us = statistics.median(time_codec("opus", channels, 0, sig, settings)[0] for _ in range(rounds))
    enc = make_encoder("opus", channels, RATE, opus=settings)
    n = enc.frames
    dec = make_decoder(enc.codec_id)
    got = np.concatenate([dec.decode(enc.encode(np.ascontiguousarray(sig[:, i:i + n])), channels, n, RATE)
                          for i in range(0, sig.shape[1] - n + 1, n)], axis=1)
    return enc_us, snr_db(sig, got)


def effort_table(seconds: float, rounds: int = 3, channels: int = 16) -> None:
    sig = signal(channels, seconds)
    levels = (0, 2, 4, 5, 6, 7, 8, 10)
    print(f"\n| Opus at {channels} ch: encode µs per packet (% of a core) · SNR dB | "
          + " | ".join(f"complexity {c}" for c in levels) + " |")
    print("|---|" + "---:|" * len(levels))
    for frame_ms in (2.5, 5, 10, 20):
        cells = []
        for c in levels:
            us, snr = effort(channels, sig, frame_ms, c, rounds)
            cells.append(f"{us:.0f} ({us / (10 * frame_ms):.1f} %) · {snr:.1f}")
        print(f"| {frame_ms:g} ms | " + " | ".join(cells) + " |")


def time_resampler(quality: str, channels: int, sig: np.ndarray) -> float:
    """Microseconds per 128-frame block, the ratio wobbling as drift correction's does."""
    from jacknet.clock.resample import Resampler
    r = Resampler(channels, quality)
    blocks = [np.ascontiguousarray(sig[:, i:i + 128]) for i in range(0, sig.shape[1] - 127, 128)]
    t0 = time.perf_counter()
    for k, b in enumerate(blocks):
        r.process(b, 48000 / 44100 * (1 + 1e-4 * np.sin(k / 50)))
    return 1e6 * (time.perf_counter() - t0) / len(blocks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="audio per row")
    ap.add_argument("--effort", action="store_true",
                    help="also the Opus complexity x frame size table at 16 channels")
    args = ap.parse_args()
    print("| codec | ch | packet | encode µs | decode µs | encode + decode, % of a core "
          "| Opus: per-pair encoders µs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for channels in (2, 8):
        sig = signal(channels, args.seconds)
        cases = [("float32", 128, OpusSettings()), ("int16", 128, OpusSettings())]
        cases += [("opus", 0, OpusSettings(ms)) for ms in (2.5, 5, 10, 20)]
        for name, frames, settings in cases:
            n = frames or round(settings.frame_ms * RATE / 1000)
            enc_us, dec_us = time_codec(name, channels, frames, sig, settings)
            share = 100 * (enc_us + dec_us) / (1e6 * n / RATE)
            pairs = f"{time_pairs(channels, sig, settings):.0f}" if name == "opus" else "-"
            label = f"opus {settings.frame_ms:g} ms" if name == "opus" else name
            print(f"| {label} | {channels} | {n} fr | {enc_us:.1f} | {dec_us:.1f} | {share:.2f} "
                  f"| {pairs} |")
    from jacknet.clock.resample import QUALITIES
    print("\n| resampler (44.1 -> 48 kHz, ratio moving) | ch | µs per 128 frames "
          "| µs per channel | % of a core |")
    print("|---|---:|---:|---:|---:|")
    for channels in (2, 16):
        sig = signal(channels, args.seconds)
        for quality in QUALITIES:
            us = time_resampler(quality, channels, sig)
            print(f"| {quality} | {channels} | {us:.1f} | {us / channels:.1f} "
                  f"| {100 * us / (1e6 * 128 / 48000):.2f} |")
    if args.effort:
        effort_table(args.seconds)


if __name__ == "__main__":
    main()
