"""A 1 kHz tone and a float32 sender on one JACK server, in a process of its own.

libjack keeps process-wide state per server, so one process must not hold
clients on two servers at once: a test that links two servers runs its
sending side through this script.  It prints "ready" once sending and runs
until SIGTERM.

    python tests/side.py SERVER HOST:PORT [--tone-hz F]
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from jacknet.binding import JackClient
from jacknet.realtime import Generator
from jacknet.sender import Sender, SenderConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("destination")
    ap.add_argument("--tone-hz", type=int, default=1000)
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    source = JackClient("side-sig", args.server)
    source.register("out", 1, "out")
    source.run(Generator(1, "tone", tone_hz=args.tone_hz, rate=source.samplerate))
    host, port = args.destination.rsplit(":", 1)
    sender = Sender(SenderConfig(host, int(port), 1, "side-send", "side-sig:out_.*",
                                 server=args.server)).start()
    print("ready", flush=True)
    stop.wait()
    sender.close()
    source.close()


if __name__ == "__main__":
    sys.exit(main())
