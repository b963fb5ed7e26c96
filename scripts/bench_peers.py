"""jacknet against zita-njbridge and JackTrip, in the same run, on one JACK server.

The loop of `bench_latency.py` (impulse source -> sender -> 127.0.0.1 ->
receiver -> detector, all on one private dummy jackd), built with each
system's own sender and receiver processes.  Rounds are interleaved (every
system once per round, the order rotating), so machine noise hits all alike;
each row is the median over rounds of latency, the worst latency, mean CPU
of each process, and the sums of xruns and glitches.  The last columns are
ratios to the best peer (zita-njbridge or JackTrip; the best clean one if
any ran without glitches) at the same channel count.  zita-njbridge
resamples, which smears the impulse as Opus does: for both, the loudest
sample of each 100 ms window is the impulse.

``--loss PCT --jitter MS`` puts the test relay between sender and receiver
(every UDP system; JackTrip's replies pass back through it, impaired alike)
and reports glitches per minute.

Long runs: ``--seconds 600 --rounds 1`` with ``--latency auto 1 ...`` (one
jacknet row per receiver ``--latency``) and ``--only`` patterns, e.g.
``--only "jacknet float32 --latency *" "JackTrip -b 16 -q 2"``.  Glitches a
second or less apart count as one event (one hiccup); ``re-syncs`` are the
receiver's relocks; ``held`` is the latency the receiver held (its
``latency_ms``, median and worst of its stats lines), which shows what
auto latency chose.  ``--log-dir`` keeps each process's log.

Not a test: it prints tables and asserts nothing.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import statistics
import sys
from pathlib import Path

from bench_latency import direct_wiring, run_case

from jacknet.rt.binding import JackClient
from jacknet.testing.jackserver import PrivateServer
from jacknet.rt.engines import Capture

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from relay import UdpRelay  # noqa: E402

PORT = 47990
JACKNET = [sys.executable, "-m", "jacknet"]


def jacknet(codec: str, transport: str = "udp", latency: str = "1", extra: tuple = (),
            code: Path | None = None, show_latency: bool = False):
    """A jacknet row; with ``code``, that checkout's jacknet (its C module
    built in place) rather than this one, labelled ``@baseline``."""
    name, _, frame = codec.partition("/")
    # Safe path: not the working directory first, so PYTHONPATH decides.
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONSAFEPATH="1") if code else None

    def build(server: str, channels: int, target: int, listen: int):
        common = ["--server", server, "--channels", str(channels), "--transport", transport]
        recv = JACKNET + ["recv", f"127.0.0.1:{listen}", *common, "--connect", "bench-det:in_.*",
                          "--latency", latency, "--stats-interval", "1"]
        send = JACKNET + ["send", f"127.0.0.1:{target}", *common, "--connect", "bench-src:out_.*",
                          "--codec", name, *(["--opus-frame", frame] if frame else []),
                          *extra, "--stats-interval", "1"]
        return [recv, send], None, env
    label = (f"jacknet {name}" + (f" {frame} ms" if frame else "") + (" tcp" if transport == "tcp" else "")
             + "".join(f" {e}" for e in extra) + (f" --latency {latency}" if show_latency else "")
             + (" @baseline" if code else ""))
    return label, build, transport == "udp"


def zita(sample: str, buff: int):
    def build(server: str, channels: int, target: int, listen: int):
        chans = ",".join(str(c) for c in range(1, channels + 1))
        recv = ["zita-n2j", "--jname", "zn2j", "--jserv", server, "--chan", chans,
                "--buff", str(buff), "127.0.0.1", str(listen)]
        send = ["zita-j2n", "--jname", "zj2n", "--jserv", server, "--chan", str(channels),
                f"--{sample}", "127.0.0.1", str(target)]
        wiring = ([(f"bench-src:out_{c}", f"zj2n:in_{c}") for c in range(1, channels + 1)]
                  + [(f"zn2j:out_{c}", f"bench-det:in_{c}") for c in range(1, channels + 1)])
        return [recv, send], wiring, None
    return f"zita-njbridge {sample} --buff {buff}", build, True


def jacktrip(queue: str):
    def build(server: str, channels: int, target: int, listen: int):
        common = ["-n", str(channels), "-q", queue, "-b", "16"]
        recv = ["jacktrip", "-s", *common, "-J", "jts", "-B", str(listen)]
        send = ["jacktrip", "-c", "127.0.0.1", *common, "-J", "jtc", "-B", "4474", "-P", str(target)]
        wiring = ([(f"bench-src:out_{c}", f"jtc:send_{c}") for c in range(1, channels + 1)]
                  + [(f"jts:receive_{c}", f"bench-det:in_{c}") for c in range(1, channels + 1)])
        # JackTrip has no server-name option; libjack reads this variable.
        return [recv, send], wiring, dict(os.environ, JACK_DEFAULT_SERVER=server)
    return f"JackTrip -b 16 -q {queue}", build, True


def smears(label: str) -> bool:
    """Opus and zita-njbridge's resampler spread an impulse over many samples;
    so does jacknet's while auto latency moves its margin by resampling."""
    return "opus" in label or label.startswith("zita") or "--latency auto" in label


def slack(label: str) -> int:
    """Frames an impulse may move from the one before without a glitch: auto
    latency moves its margin by up to 1000 ppm (GROW_PPM), 4.8 frames per
    100 ms; a smeared peak wanders a sample or two."""
    return 6 if "--latency auto" in label else 2 if smears(label) else 0


def summarise(runs: list[dict], seconds: float) -> dict:
    lat = [r["median"] for r in runs if r["median"] is not None]
    return {
        "median": statistics.median(lat) if lat else None,
        "max": max((r["max"] for r in runs if r["max"] is not None), default=None),
        "cpu": [statistics.mean(c) for c in zip(*(r["cpu"] for r in runs))],
        "xruns": sum(r["xruns"] for r in runs),
        "glitches": sum(r["glitches"] for r in runs),
        "per_minute": 60 * sum(r["glitches"] for r in runs) / (seconds * len(runs)),
        "impulses": sum(r["impulses"] for r in runs),
        "events": sum(r["events"] for r in runs),
        "relocks": (sum(r["concealed"]["relocks"] for r in runs)
                    if all(r["concealed"] for r in runs) else None),
        "held_ms": [h for r in runs for h in r["held_ms"]],
    }


def chosen(label: str, patterns: list[str] | None) -> bool:
    """``--only``: a pattern with a wildcard (``*?[``) must match the whole
    label; one without is looked for inside it."""
    return not patterns or any(fnmatch.fnmatchcase(label, p) if any(c in p for c in "*?[")
                               else p in label for p in patterns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20, help="per row and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--periods", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--channels", type=int, nargs="+", default=[2, 16])
    ap.add_argument("--zita-buff", type=int, nargs="+", default=[4],
                    help="zita-n2j --buff values in ms (one row each)")
    ap.add_argument("--jacktrip-queue", nargs="+", default=["2", "auto"])
    ap.add_argument("--loss", type=float, default=0.0, help="percent of datagrams the relay drops")
    ap.add_argument("--jitter", type=float, default=0.0, help="ms of uniform delay jitter")
    ap.add_argument("--server-name", default="jacknet-peers", help="name of the private jackd")
    ap.add_argument("--only", metavar="TEXT", nargs="+",
                    help="run only the systems whose label contains one of these")
    ap.add_argument("--latency", nargs="+", default=["1"], metavar="MS|auto",
                    help="receiver --latency of the jacknet rows, one row each (default 1)")
    ap.add_argument("--log-dir", type=Path, metavar="DIR",
                    help="keep each process's stderr there, one file per row, round and side")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="another jacknet checkout (C module built in place: python setup.py "
                         "build_ext --inplace): its PCM rows too, '@baseline', for a before/after")
    args = ap.parse_args()
    impaired = args.loss > 0 or args.jitter > 0
    show = args.latency != ["1"]
    systems = [jacknet(codec, transport, latency, show_latency=show)
               for codec, transport in (("float32", "udp"), ("int16", "udp"), ("opus/5", "udp"),
                                        ("opus/2.5", "udp"), ("float32", "tcp"))
               for latency in args.latency]
    systems += [zita(sample, buff) for buff in args.zita_buff for sample in ("float", "16bit")]
    systems += [jacktrip(q) for q in args.jacktrip_queue]
    if args.baseline:
        systems += [jacknet(codec, code=args.baseline.resolve()) for codec in ("float32", "int16")]
    if impaired:  # what copies of earlier packets buy, beside the plain rows
        systems = [s for s in systems if s[2]] + [jacknet("opus/5", extra=("--redundancy", "1")),
                                                  jacknet("int16", extra=("--redundancy", "1"))]
    if args.only:
        every = systems
        systems = [s for s in systems if chosen(s[0], args.only)]
        if not systems and not chosen("direct", args.only):
            ap.error(f"--only {' '.join(args.only)}: no system is labelled so; the labels are "
                     f"{', '.join(repr(s[0]) for s in every)}")
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    realtime = os.geteuid() == 0
    ms = 1000 / 48000
    for period in args.periods:
        results: dict[tuple[str, int], list[dict]] = {}
        with PrivateServer(args.server_name, 48000, period, sync=False, realtime=realtime) as server:
            watcher = JackClient("bench-xruns", server.name)
            watcher.register("in", 1, "in")
            watcher.run(Capture(1))
            for rnd in range(args.rounds):
                for channels in args.channels:
                    turn = rnd % max(1, len(systems))
                    order = systems[turn:] + systems[:turn]
                    if chosen("direct", args.only):
                        results.setdefault(("direct", channels), []).append(run_case(
                            server, "direct", channels, args.seconds,
                            [["jack_thru", "bench-thru", server.name]], watcher,
                            wiring=direct_wiring(channels)))
                    for label, build, relayable in order:
                        relay = None
                        target = listen = PORT
                        if impaired:
                            relay = UdpRelay(seed=rnd)
                            target = relay.start(("127.0.0.1", PORT))[1]
                            relay.impair(loss=args.loss / 100, jitter=args.jitter / 1000)
                        link, wiring, env = build(server.name, channels, target, listen)
                        log = (str(args.log_dir / f"{period}-{channels}ch-r{rnd}-"
                                                   f"{label.replace(' ', '_').replace('/', '_')}")
                               if args.log_dir else None)
                        try:
                            results.setdefault((label, channels), []).append(run_case(
                                server, label, channels, args.seconds, link, watcher,
                                lossy=smears(label), wiring=wiring, env=env, log=log,
                                slack=slack(label)))
                        finally:
                            if relay:
                                relay.close()
            watcher.close()
        print(f"\nperiod {period} @ 48000 Hz, {args.rounds} interleaved rounds of {args.seconds:.0f} s, "
              f"jackd {'-R' if realtime else '--no-realtime'}"
              + (f", relay: {args.loss:g} % loss, {args.jitter:g} ms jitter" if impaired else "")
              + "\n")
        print("| system | ch | latency median | latency max | CPU % recv / send | xruns | glitches "
              "| glitch events | glitches/min | re-syncs | held ms, median / max "
              "| latency ÷ best peer | CPU ÷ best peer |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for channels in args.channels:
            rows = {label: summarise(runs, args.seconds)
                    for (label, ch), runs in results.items() if ch == channels}
            peers = [r for label, r in rows.items()
                     if label.startswith(("zita", "JackTrip")) and r["median"] is not None]
            # The best *clean* peer, where one ran clean: a fast setting that glitches is no rival.
            peers = [r for r in peers if r["glitches"] == 0] or peers
            best_lat = min((p["median"] for p in peers), default=None)
            best_cpu = min((sum(p["cpu"]) for p in peers), default=None)
            for label, r in rows.items():
                med = "-" if r["median"] is None else f"{r['median']:.0f} fr = {r['median'] * ms:.2f} ms"
                mx = "-" if r["max"] is None else f"{r['max']} fr = {r['max'] * ms:.2f} ms"
                cpu = " / ".join(f"{c:.1f}" for c in r["cpu"])
                lat_ratio = (f"{r['median'] / best_lat:.2f}" if best_lat and r["median"] is not None
                             and label != "direct" else "-")
                cpu_ratio = f"{sum(r['cpu']) / best_cpu:.2f}" if best_cpu and label != "direct" else "-"
                held = (f"{statistics.median(r['held_ms']):.2f} / {max(r['held_ms']):.2f}"
                        if r["held_ms"] else "-")
                relocks = "-" if r["relocks"] is None else r["relocks"]
                print(f"| {label} | {channels} | {med} | {mx} | {cpu} | {r['xruns']} "
                      f"| {r['glitches']} of {r['impulses']} | {r['events']} | {r['per_minute']:.1f} "
                      f"| {relocks} | {held} | {lat_ratio} | {cpu_ratio} |")
        if args.seconds >= 120:
            print_minutes(results, ms)
    return 0


def print_minutes(results: dict, ms: float) -> None:
    """Long runs: each row's latency minute by minute (median, and the worst
    in brackets, over its rounds), where a hiccup, a re-sync or auto
    latency's moves show up."""
    print("\n| system | ch | latency by minute, ms: median (max) |")
    print("|---|---:|---|")
    for (label, channels), runs in results.items():
        minutes: dict[int, list[int]] = {}
        for r in runs:
            if r["series"]:
                start = r["series"][0][0]
                for t, lat in r["series"]:
                    minutes.setdefault(int((t - start) // (60 * 48000)), []).append(lat)
        cells = " · ".join(f"{statistics.median(v) * ms:.2f} ({max(v) * ms:.2f})"
                           for _, v in sorted(minutes.items()))
        print(f"| {label} | {channels} | {cells} |")
        held = [r["held_ms"] for r in runs if r["held_ms"]]
        if held:  # one stats line a second: minute m is lines 60m..60m+59 of each run
            cells = " · ".join(
                f"{statistics.median(v):.2f} ({max(v):.2f})"
                for m in range(max(len(h) for h in held) // 60 + 1)
                if (v := [x for h in held for x in h[60 * m:60 * (m + 1)]]))
            print(f"| ... held by the receiver | {channels} | {cells} |")


if __name__ == "__main__":
    sys.exit(main())
