"""A 1 kHz tone and a float32 sender on one JACK server, in a process of its own.

libjack keeps process-wide state per server, so one process must not hold
clients on two servers at once: a test that links two servers runs its
sending side through this script.  It prints "ready" once sending and runs
until SIGTERM.

    python tests/side.py SERVER HOST:PORT [--tone-hz F] [--nominal-rate R]

``--nominal-rate`` makes the sender stamp R Hz whatever its server really
runs at: a sound card whose crystal is off (a server at 48048 Hz stamped as
48000 is a clock 1000 ppm fast).  On SIGTERM it prints the sender's stats
as one JSON line (its server's xruns explain a glitch in the audio), and
the frame-time samples under ``"clock"``: how fast its server really ran.  jack2's dummy driver cannot run fast by
itself: its ``-w`` only picks the period (JackDummyDriver.cpp sets
``buffer_size = wait * rate / 1e6``), and the cycle stays period / rate.
The tone is made at the server's true rate, so it is 1 kHz in real time.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from jacknet.rt.binding import JackClient
from jacknet.testing.signals import Generator
from jacknet.config import SenderConfig
from jacknet.sender import Sender
from jacknet.stats import as_dict


def _crystal_off(nominal: int) -> type:
    class Client(JackClient):
        @property
        def samplerate(self) -> int:
            return nominal
    return Client


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("destination")
    ap.add_argument("--tone-hz", type=int, default=1000)
    ap.add_argument("--nominal-rate", type=int)
    args = ap.parse_args()
    sender_class = Sender
    if args.nominal_rate:
        sender_class = type("CrystalOffSender", (Sender,),
                            {"client_class": _crystal_off(args.nominal_rate)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    source = JackClient("side-sig", args.server)
    source.register("out", 1, "out")
    source.run(Generator(1, "tone", tone_hz=args.tone_hz, rate=source.samplerate))
    host, port = args.destination.rsplit(":", 1)
    sender = sender_class(SenderConfig(host, int(port), 1, "side-send", "side-sig:out_.*",
                                 server=args.server)).start()
    print("ready", flush=True)
    clock = []
    while not stop.wait(0.05):
        clock.append((time.monotonic(), source.frame_time))
    print(json.dumps({**as_dict(sender.stats()), "clock": clock}), flush=True)
    sender.close()
    source.close()


if __name__ == "__main__":
    sys.exit(main())
