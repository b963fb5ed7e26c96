"""The impairment sweep: one stream through the simulated receive path
(`pipesim`), impaired for a stretch (loss, bursts, duplication, jitter and
the reordering it brings), then clean again, judged on what a listener
would notice.  `tests/test_impairment.py` asserts on every point;
`scripts/bench_impairment.py` prints the table.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from jacknet.testing.pipesim import RATE, Arrival, PipeSim, Stream, signal

IMPAIR_FROM, IMPAIR_TO = 1.0, 5.0   # seconds of the sender's stream
SECONDS = 9.0
WINDOW = 0.1                        # recovery is judged window by window
CLEAN_SNR_DB = 40.0                 # Opus against the same stream unimpaired


@dataclass(frozen=True)
class Point:
    codec: str = "float32"
    opus_frame: float = 5.0
    redundancy: int = 0
    channels: int = 2
    period: int = 128
    frames: int = 128               # PCM packet size (Opus: its frame)
    margin_ms: float = 5.0
    loss: float = 0.0               # random loss, fraction
    bursts: int = 0                 # bursts of 5..20 packets lost
    duplicate: float = 0.0          # fraction of datagrams that come twice
    jitter_ms: float = 0.0          # uniform 0..J extra delay (reorders)

    def name(self) -> str:
        codec = f"opus{self.opus_frame:g}" if self.codec == "opus" else self.codec
        return (f"{codec} r{self.redundancy} {self.channels}ch p{self.period} "
                f"loss{self.loss * 100:g}% bursts{self.bursts} dup{self.duplicate * 100:g}% "
                f"jitter{self.jitter_ms:g}ms")


@dataclass
class Result:
    point: Point
    internal_errors: int
    worst_latency_ms: float
    target_ms: float
    peak_ratio: float
    recovery_s: float | None        # after the path is clean: None if it never was again
    dropped: int                    # packets the impairment took away
    stats: dict = field(default_factory=dict)


def impaired(stream: Stream, p: Point, seed: int = 1) -> tuple[list[Arrival], int]:
    """The stream's arrivals under ``p``'s impairment, and how many packets it lost."""
    rng = random.Random(seed)
    frames = stream.frames
    first, last = round(IMPAIR_FROM * RATE / frames), round(IMPAIR_TO * RATE / frames)
    lose = {k for k in range(first, last) if rng.random() < p.loss}
    for _ in range(p.bursts):
        start = rng.randrange(first, last - 20)
        lose.update(range(start, start + rng.randint(5, 20)))
    jitter = round(p.jitter_ms * RATE / 1000)
    out = []
    for k, datagrams in enumerate(stream.packets):
        if k in lose:
            continue
        inside = first <= k < last
        for d in datagrams:
            at = (k + 1) * frames + stream.transit + (rng.randint(0, jitter) if inside else 0)
            out.append(Arrival(at, d))
            if inside and rng.random() < p.duplicate:
                out.append(Arrival(at + rng.randint(0, jitter), d))
    return out, len(lose)


def run_point(p: Point) -> Result:
    stream = Stream(p.codec, p.channels, p.frames, p.redundancy, p.opus_frame)
    stream.build(round(SECONDS * RATE / (p.frames if p.codec != "opus" else
                                          p.opus_frame * RATE / 1000)))
    margin = round(p.margin_ms * RATE / 1000)
    cycles = (len(stream.packets) * stream.frames - 4 * p.period) // p.period
    chunk = round(WINDOW * RATE / p.period)
    sim = PipeSim(p.channels, p.period, margin)
    (arrivals, dropped), worst = impaired(stream, p), 0.0
    done = 0
    while done < cycles:
        n = min(chunk, cycles - done)
        sim.run(arrivals if done == 0 else [], n)
        done += n
        latency = sim.jitter.latency_frames()
        if latency is not None and done * p.period > 0.5 * RATE:
            worst = max(worst, latency * 1000 / RATE)
    s = sim.stats()
    sent = float(np.abs(signal(p.codec, p.channels, 0, len(stream.packets) * stream.frames)).max())
    ok = _windows_ok(sim, p, stream)
    clean_from = int(IMPAIR_TO * RATE / stream.frames) * stream.frames + stream.transit
    after = [i for i, good in enumerate(ok) if i * WINDOW * RATE >= clean_from]
    recovery = None
    for i in after:
        if all(ok[i:]):
            recovery = max(0.0, i * WINDOW - clean_from / RATE)
            break
    return Result(p, s.internal_errors, worst, s.target_ms, float(np.abs(sim.out).max()) / sent,
                  recovery, dropped, {k: getattr(s, k) for k in ("lost", "late", "duplicate", "revived",
                                                        "plc_concealed", "relocks", "loosened",
                                                        "tightened", "strays")})


def _windows_ok(sim: PipeSim, p: Point, stream: Stream) -> list[bool]:
    """Per window of the output: exact (PCM, int16 within its LSB), or at
    the clean SNR against the same stream through an unimpaired path (Opus)."""
    n = round(WINDOW * RATE)
    total = sim.out.shape[1] // n * n
    if p.codec == "opus":
        clean = PipeSim(p.channels, p.period, sim.jitter.margin.wanted)
        clean.run(stream.arrivals(), sim.out.shape[1] // p.period)
        shift = sim.delay() - clean.delay()
        ref = np.zeros_like(sim.out)
        if shift >= 0:
            ref[:, shift:] = clean.out[:, :sim.out.shape[1] - shift]
        else:
            ref[:, :shift] = clean.out[:, -shift:]
    else:
        ref = sim.expected(p.codec, 0, sim.out.shape[1])
    lsb = 2 ** -15 if p.codec == "int16" else 0.0
    ok = []
    for i in range(0, total, n):
        got, want = sim.out[:, i:i + n], ref[:, i:i + n]
        if p.codec == "opus":
            err, energy = float(((got - want) ** 2).sum()), float((want ** 2).sum())
            ok.append(10 * np.log10(max(energy, 1e-30) / max(err, 1e-30)) >= CLEAN_SNR_DB)
        else:
            ok.append(float(np.abs(got - want).max()) <= lsb)
    return ok


def points() -> list[Point]:
    """The sweep: every codec, frame size, redundancy, channel count, loss,
    duplication, jitter and period in the range asked for, each value met
    several times, in about fifty points."""
    out = []
    rng = random.Random(5)
    codecs = ([("float32", 5.0), ("int16", 5.0)] +
              [("opus", f) for f in (2.5, 5.0, 10.0, 20.0)])
    for i in range(48):
        codec, frame = codecs[i % len(codecs)]
        out.append(Point(codec=codec, opus_frame=frame, redundancy=(i // 6) % 3,
                         channels=(1, 2, 6, 16)[(i // 2) % 4], period=(64, 128, 256)[i % 3],
                         loss=rng.choice((0.0, 0.01, 0.03, 0.05, 0.1)),
                         bursts=rng.choice((0, 0, 2)), duplicate=rng.choice((0.0, 0.05, 0.2)),
                         jitter_ms=rng.choice((0.0, 1.0, 3.0, 6.0, 10.0, 20.0))))
    # and the worst corners
    out.append(Point("opus", 2.5, 1, 6, 128, loss=0.04, jitter_ms=5.0))
    out.append(Point("opus", 2.5, 2, 2, 128, loss=0.1, bursts=2, jitter_ms=20.0))
    out.append(Point("float32", redundancy=2, channels=16, period=64, loss=0.1, duplicate=0.2,
                     jitter_ms=20.0))
    return out
