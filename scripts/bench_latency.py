"""Latency benchmark: an impulse through sender -> UDP -> receiver on one JACK server.

Like jack_delay: an impulse generator client and a detector client on one
private dummy server; the link under test runs as real `jacknet send` and
`jacknet recv` processes in between.  For each configuration it reports the
round-trip latency (generator frame -> detector frame), CPU % of one core for
each process, bytes per second on the wire (UDP payload, our header
included), xruns in the window, and glitches (impulses missing, late, early
or doubled, or stray samples).  A codec is ``float32``, ``int16`` or
``opus/MS`` (Opus with --opus-frame MS); a lossy codec smears the impulse, so
there the peak of each 100 ms window is the impulse and strays are not counted.  A baseline row ("direct") wires the
generator straight to the detector, with `jack_thru` (a minimal C client)
idling beside it, in the same run: the machine's own xruns, an empty
client's CPU.

Not a test: it prints a table and asserts nothing.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from jacknet.rt.binding import JackClient
from jacknet.testing.jackserver import PrivateServer
from jacknet.rt.engines import Capture
from jacknet.security.keys import keygen
from jacknet.testing.signals import Generator

INTERVAL = 4800  # frames between impulses (100 ms at 48 kHz)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def detect(capture: Capture, buf: np.ndarray, result: dict, lossy: bool) -> None:
    """Find impulses in what was recorded since the last call."""
    while (pos := capture.read_into(buf)) >= 0:
        ft = capture.frame_time_at(pos)
        if ft is None:
            continue
        x = np.abs(buf).max(axis=0)
        if lossy:  # the loudest sample of each impulse window
            peaks = result["peaks"]
            for i in np.flatnonzero(x > 0.1):
                window = (ft + int(i)) // INTERVAL
                if x[i] > peaks.get(window, (0.0, 0))[0]:
                    peaks[window] = (float(x[i]), ft + int(i))
            continue
        for i in np.flatnonzero(x > 0.01):
            if x[i] > 0.5:
                result["times"].append(ft + int(i))
            else:
                result["stray"].append(ft + int(i))


class LastLine:
    """Keeps the latest stats line a `jacknet recv` or `send` prints (and
    every one, stamped with the time, in ``keep`` if given)."""

    def __init__(self, proc: subprocess.Popen, side: str, keep: str | None = None) -> None:
        self.line = ""
        self.side = side + ":"
        self.held_ms: list[float] = []  # latency_ms of every line: what auto latency did
        threading.Thread(target=self._read, args=(proc.stdout, keep), daemon=True).start()

    def _read(self, stream, keep: str | None) -> None:
        kept = open(keep, "w") if keep else None
        for line in stream:
            if kept:
                kept.write(f"{time.time():.3f} {line}")
                kept.flush()
            if line.startswith(self.side):
                self.line = line
                if (held := self.fields().get("latency_ms")) is not None:
                    self.held_ms.append(float(held))

    def fields(self) -> dict[str, str]:
        return dict(f.split("=", 1) for f in self.line.split()[1:] if "=" in f)

    def counters(self) -> dict[str, int]:
        fields = self.fields()
        return {k: int(fields.get(k, 0))
                for k in ("concealed_frames", "underruns", "plc_concealed", "relocks")}


def events(frames: list[int], apart: int) -> int:
    """How many separate events ``frames`` (sorted) hold: glitches closer than ``apart`` are one."""
    return sum(1 for i, f in enumerate(frames) if i == 0 or f - frames[i - 1] > apart)


def run_case(server: PrivateServer, label: str, channels: int, seconds: float,
             link: list[list[str]], jack: JackClient, lossy: bool = False,
             wiring: list[tuple[str, str]] | None = None, env: dict | None = None,
             log: str | None = None, slack: int | None = None) -> dict:
    """One loop: ``link`` is the receiver's command then the sender's (jacknet
    ones connect themselves; ``wiring`` lists port pairs to connect for others).
    With ``log``, each process's stderr goes to ``log`` + ``.recv.log`` / ``.send.log``,
    and a jacknet one's stats lines, stamped, to ``.recv.stats`` / ``.send.stats``.
    ``slack``: how many frames an impulse may move from the last one without
    counting as a glitch (default 0, or 2 if ``lossy``)."""
    src = JackClient("bench-src", server.name)
    src.register("out", channels, "out")
    gen = Generator(channels, "silence", impulse_interval=INTERVAL)
    src.run(gen)
    det = JackClient("bench-det", server.name)
    det.register("in", channels, "in")
    cap = Capture(channels, capacity=1 << 16)
    det.run(cap)
    errs = [open(f"{log}.{side}.log", "w") if log else subprocess.DEVNULL for side in ("recv", "send")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
             for cmd, err in zip(link, errs)]
    ours = "jacknet" in link[0]
    recv_stats = LastLine(procs[0], "recv", f"{log}.recv.stats" if log and ours else None)
    send_stats = LastLine(procs[1], "send", f"{log}.send.stats" if log else None) if ours else None
    try:
        time.sleep(2.0)  # let the link lock and the ports connect
        for a, b in wiring or []:
            jack.connect_ports(a, b)
        time.sleep(0.5)
        cap.skip()
        gen.set_mode("impulse")
        buf = np.zeros((channels, server.period), np.float32)
        result = {"times": [], "stray": [], "peaks": {}}
        xruns0 = jack.xruns
        recv0 = recv_stats.counters()
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.05)
            detect(cap, buf, result, lossy)
        wall = time.monotonic() - t0
        cpu = [100 * (cpu_seconds(p.pid) - c) / wall for p, c in zip(procs, cpu0)]
        xruns = jack.xruns - xruns0
        time.sleep(1.2)  # one more stats line from the receiver
        recv1 = recv_stats.counters()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        for err in errs:
            if log:
                err.close()
        src.close()
        det.close()
    times = result["times"] or [t for _, t in sorted(result["peaks"].values(), key=lambda p: p[1])]
    lat = [t % INTERVAL for t in times]
    median = statistics.median(lat) if lat else None
    # A glitch: an impulse missing or doubled (spacing off), a jump in latency
    # from the impulse before, or a stray sample.  A smeared impulse's peak may
    # wander a sample or two (a resampler's fractional delay) without anything
    # lost: that much is tolerated there.
    if slack is None:
        slack = 2 if lossy else 0
    spacing = [b for a, b in zip(times, times[1:]) if abs(b - a - INTERVAL) > slack]
    moved = [t for t, v, before in zip(times[1:], lat[1:], lat) if abs(v - before) > slack]
    glitched = sorted(spacing + moved + result["stray"])
    concealed = {k: recv1[k] - recv0[k] for k in recv0} if send_stats else {}
    return {"label": label, "channels": channels, "median": median,
            "max": max(lat) if lat else None, "cpu": cpu, "xruns": xruns,
            "glitches": len(glitched), "impulses": len(lat),
            "events": events(glitched, server.rate), "concealed": concealed,
            "held_ms": recv_stats.held_ms, "series": list(zip(times, lat)),
            "wire": float(send_stats.fields().get("kbit_s", 0)) / 8 if send_stats else None}


def direct_wiring(channels: int) -> list[tuple[str, str]]:
    return [(f"bench-src:out_{ch}", f"bench-det:in_{ch}") for ch in range(1, channels + 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--period", type=int, default=128)
    ap.add_argument("--channels", type=int, nargs="+", default=[2, 16])
    ap.add_argument("--codecs", nargs="+", default=["float32", "int16"],
                    help="float32, int16 or opus/MS (MS: --opus-frame, 2.5 5 10 20)")
    ap.add_argument("--latency", type=float, default=1.0, help="receiver --latency in ms")
    ap.add_argument("--no-realtime", action="store_true", help="run jackd without -R")
    ap.add_argument("--transports", nargs="+", default=["udp"], choices=["udp", "tcp"])
    ap.add_argument("--rt-priority", type=int, nargs="+", default=[5],
                    help="jacknet --rt-priority values to compare (one row each)")
    ap.add_argument("--security", nargs="+", default=["off"], choices=["off", "psk"],
                    help="off and/or psk (sealed, with a key made for the run): one row each")
    args = ap.parse_args()
    keys = tempfile.TemporaryDirectory(prefix="jacknet-bench-key-")
    key = str(keygen(os.path.join(keys.name, "link.key")))
    rate = 48000
    realtime = not args.no_realtime and os.geteuid() == 0
    py = [sys.executable, "-m", "jacknet"]
    rows = []
    with PrivateServer("jacknet-bench", rate, args.period, sync=False, realtime=realtime) as server:
        watcher = JackClient("bench-xruns", server.name)
        watcher.register("in", 1, "in")
        watcher.run(Capture(1))
        for channels in args.channels:
            # Baseline: the generator wired straight to the detector, and an
            # idle C client (jack_thru) beside it for an empty client's CPU.
            rows.append(run_case(server, "direct", channels, args.seconds,
                                 [["jack_thru", "bench-thru", server.name]], watcher,
                                 wiring=direct_wiring(channels)))
            for codec, transport, prio, security in itertools.product(
                    args.codecs, args.transports, args.rt_priority, args.security):
                common = ["--server", server.name, "--channels", str(channels),
                          "--rt-priority", str(prio), "--transport", transport]
                if security == "psk":
                    common += ["--security", "psk", "--key-file", key]
                name, _, frame = codec.partition("/")
                opus = ["--opus-frame", frame] if frame else []
                link = [py + ["recv", "127.0.0.1:47999", *common, "--connect", "bench-det:in_.*",
                              "--latency", str(args.latency), "--stats-interval", "1"],
                        py + ["send", "127.0.0.1:47999", *common, "--connect", "bench-src:out_.*",
                              "--codec", name, *opus, "--stats-interval", "1"]]
                label = (f"jacknet {name}" + (f" {frame} ms" if frame else "")
                         + (f" {transport}" if len(args.transports) > 1 else "")
                         + (f" prio {prio}" if len(args.rt_priority) > 1 else "")
                         + (" sealed" if security == "psk" else ""))
                rows.append(run_case(server, label, channels, args.seconds, link, watcher,
                                     lossy=name == "opus"))
        watcher.close()
    ms = 1000 / rate
    print(f"\nperiod {args.period} @ {rate} Hz, {args.seconds:.0f} s per row, jackd "
          f"{'-R' if realtime else '--no-realtime'} (async), receiver --latency {args.latency} ms\n")
    print("| loop | ch | latency median | latency max | CPU % recv / send (direct: jack_thru) "
          "| wire kB/s | xruns (whole graph) | impulse glitches "
          "| receiver underruns / concealed frames / PLC packets |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        med = "-" if r["median"] is None else f"{r['median']:.0f} fr = {r['median'] * ms:.2f} ms"
        mx = "-" if r["max"] is None else f"{r['max']} fr = {r['max'] * ms:.2f} ms"
        cpu = " / ".join(f"{c:.1f}" for c in r["cpu"])
        c = r["concealed"]
        conceal = f"{c['underruns']} / {c['concealed_frames']} / {c['plc_concealed']}" if c else "-"
        wire = "-" if r["wire"] is None else f"{r['wire']:.1f}"
        print(f"| {r['label']} | {r['channels']} | {med} | {mx} | {cpu} | {wire} | {r['xruns']} "
              f"| {r['glitches']} of {r['impulses']} | {conceal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
