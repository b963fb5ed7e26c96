"""Where a packet's CPU goes, on each side of a link: microseconds per
packet, stage by stage (issue 16's profile).

Receiver: a real stream's datagrams (`Packetizer`, real codecs) go through
the receiver's `StreamPipeline` into a C `Playout` on a simulated clock
(`jacknet.testing.pipesim`), timed as a whole, then once under cProfile to
split that time into stages by the module that spent it (C calls counted
to the stage that made them).  Beside it, the network thread's own work
per datagram: the socket receive with a datagram waiting, and a wake-up
(CPU of a thread that blocks for each datagram, sent at the link's rate
from another process).  Sender: encoding and framing a packet, and sending
its datagrams.  Best of ``--rounds`` rounds; the machine is shared.

Not a test: it prints a table and asserts nothing.

    .venv/bin/python scripts/profile_packet.py [--packets 3000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import socket
import sys
import time

import numpy as np

from jacknet.codecs import make_encoder
from jacknet.codecs.opus import OpusSettings
from jacknet.net.udp import UdpSink, UdpSource
from jacknet.packetizer import Packetizer
from jacknet.testing.pipesim import RATE, PipeSim, Stream, signal

PERIOD = 128
MARGIN = 96
CONFIGS = [("float32", 2), ("float32", 16), ("int16", 2), ("int16", 16), ("opus", 2),
           ("opus", 16)]
# Stages by the module that spends the time (first match wins).
STAGES = [("parse", ("jacknet/net/protocol",)),
          ("decode", ("jacknet/codecs/",)),
          ("sequence", ("jacknet/recv/sequencer",)),
          ("place", ("jacknet/recv/jitter", "jacknet/recv/mapping", "jacknet/recv/continuity",
                     "jacknet/recv/slack", "jacknet/recv/policy", "jacknet/clock/")),
          ("transport", ("jacknet/sync/",)),
          ("intake, loss, stats", ("jacknet/recv/pipeline", "jacknet/stats", "jacknet/recv/")),
          ("encode", ("jacknet/packetizer",))]


def stage_of(filename: str) -> str | None:
    path = filename.replace("\\", "/")
    for stage, parts in STAGES:
        if any(p in path for p in parts):
            return stage
    return None


def shares(profile: cProfile.Profile) -> dict[str, float]:
    """Each stage's share of the profiled time.  Time spent in C (numpy,
    builtins) goes to the stage of the Python function that called it."""
    st = pstats.Stats(profile).stats
    spent: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, callers) in st.items():
        stage = stage_of(filename)
        if stage is not None:
            spent[stage] = spent.get(stage, 0.0) + tottime
            continue
        for (cfile, _, _), edge in callers.items():
            caller = stage_of(cfile) or "other"
            spent[caller] = spent.get(caller, 0.0) + edge[2]
    total = sum(spent.values()) or 1.0
    return {k: v / total for k, v in spent.items()}


def receive_path(codec: str, channels: int, packets: int) -> tuple[float, float, dict]:
    """µs per packet in `StreamPipeline.feed`, µs per cycle in `tick` and
    the C playout, and the stages' shares of the feed."""
    stream = Stream(codec, channels, PERIOD).build(packets)
    arrivals = stream.arrivals()
    per_packet = len(arrivals) / packets

    def run(profile: cProfile.Profile | None) -> tuple[float, float]:
        sim = PipeSim(channels, PERIOD, MARGIN)
        feed = sim.pipeline.feed
        out = np.zeros((channels, stream.frames), np.float32)
        cycles = packets * stream.frames // PERIOD
        fed = other = 0
        e = 0
        if profile:
            profile.enable()
        for m in range(cycles):
            now = m * PERIOD
            t0 = time.perf_counter_ns()
            while e < len(arrivals) and arrivals[e].at <= now:
                a = arrivals[e]
                feed(a.datagram, a.peer, a.at)
                e += 1
            t1 = time.perf_counter_ns()
            sim.pipeline.tick(now)
            sim.playout.run(now, out[:, :PERIOD])
            other += time.perf_counter_ns() - t1
            fed += t1 - t0
        if profile:
            profile.disable()
        return fed / 1e3 / (e / per_packet), other / 1e3 / cycles

    feed_us, cycle_us = run(None)
    profile = cProfile.Profile()
    run(profile)
    return feed_us, cycle_us, shares(profile)


def send_path(codec: str, channels: int, packets: int) -> tuple[float, float, int]:
    """µs per packet to encode and frame it, µs per datagram to send, and
    datagrams per packet."""
    enc = make_encoder(codec, channels, RATE, opus=OpusSettings())
    frames = enc.frames or PERIOD
    pk = Packetizer(enc, channels, RATE, frames, 1400, stream_id=3)
    blocks = [np.ascontiguousarray(signal(codec, channels, k * frames, frames))
              for k in range(packets)]
    t0 = time.perf_counter_ns()
    out = [pk.packet(k * frames, b) for k, b in enumerate(blocks)]
    t1 = time.perf_counter_ns()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink_end:
        sink_end.bind(("127.0.0.1", 0))
        sink_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sink = UdpSink("127.0.0.1", sink_end.getsockname()[1])
        datagrams = [d for ds in out for d in ds]
        t2 = time.perf_counter_ns()
        for d in datagrams:
            sink.send(d)
        t3 = time.perf_counter_ns()
        sink.close()
    return (t1 - t0) / 1e3 / packets, (t3 - t2) / 1e3 / len(datagrams), \
        round(len(datagrams) / packets)


def socket_receive(size: int, count: int = 2000) -> float:
    """µs per `UdpSource.receive` with a datagram already waiting."""
    source = UdpSource("127.0.0.1", 0)
    source.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        payload = bytes(size)
        for _ in range(count):
            s.sendto(payload, source.address)
        buf = bytearray(65536)
        t0 = time.perf_counter_ns()
        got = sum(source.receive(buf, 0.1)[0] > 0 for _ in range(count))
        t1 = time.perf_counter_ns()
    source.close()
    return (t1 - t0) / 1e3 / max(got, 1)


def _pace(port: int, size: int, rate: float, seconds: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        payload, start, k = bytes(size), time.monotonic(), 0
        while (due := start + k / rate) < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            s.sendto(payload, ("127.0.0.1", port))
            k += 1


def wake_up(size: int, rate: float, seconds: float = 3.0) -> float:
    """CPU µs of this thread per datagram when it sleeps in `receive` for
    each one, sent ``rate`` times a second by another process."""
    source = UdpSource("127.0.0.1", 0)
    pacer = multiprocessing.Process(target=_pace, args=(source.address[1], size, rate, seconds))
    buf, got = bytearray(65536), 0
    pacer.start()
    source.receive(buf, 5.0)  # the first one: the pacer has started
    c0 = time.thread_time_ns()
    while source.receive(buf, 0.5)[0]:
        got += 1
    c1 = time.thread_time_ns()
    pacer.join()
    source.close()
    return (c1 - c0) / 1e3 / max(got, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, metavar="CODEC/CH",
                    help="e.g. float32/2 opus/16 (default: all)")
    args = ap.parse_args(argv)
    configs = [c for c in CONFIGS if args.only is None or f"{c[0]}/{c[1]}" in args.only]
    stage_names = [s for s, _ in STAGES if s != "encode"] + ["other"]
    print(f"Receiver, µs per packet (period {PERIOD}, best of {args.rounds}); the stages split "
          "`feed` by cProfile's shares\n")
    print("| codec | ch | datagram bytes | packets/s | socket receive | wake-up (thread CPU) | "
          "feed | " + " | ".join(stage_names) + " | tick + C playout per cycle |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(stage_names) + "---:|")
    send_rows = []
    for codec, ch in configs:
        best = None
        for _ in range(args.rounds):
            r = receive_path(codec, ch, args.packets)
            best = r if best is None or r[0] < best[0] else best
        feed_us, cycle_us, split = best
        enc_us, send_us, per = min(send_path(codec, ch, args.packets) for _ in range(args.rounds))
        stream = Stream(codec, ch, PERIOD).build(2)
        size = len(stream.packets[0][0])
        rate = RATE / stream.frames
        recv_us = min(socket_receive(size) for _ in range(args.rounds))
        wake_us = wake_up(size, rate * per)
        cells = " | ".join(f"{feed_us * split.get(s, 0.0):.1f}" for s in stage_names)
        print(f"| {codec} | {ch} | {size} | {rate:.0f} | {recv_us:.1f} | {wake_us:.1f} | "
              f"{feed_us:.1f} | {cells} | {cycle_us:.1f} |")
        send_rows.append((codec, ch, rate, enc_us, send_us, per))
    print("\nSender, µs per packet (best of rounds)\n")
    print("| codec | ch | packets/s | encode and frame | send, per datagram | datagrams per packet |")
    print("|---|---:|---:|---:|---:|---:|")
    for codec, ch, rate, enc_us, send_us, per in send_rows:
        print(f"| {codec} | {ch} | {rate:.0f} | {enc_us:.1f} | {send_us:.1f} | {per} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
