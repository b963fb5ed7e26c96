"""A test signal and a sender on one JACK server, in a process of its own.

libjack keeps process-wide state per server, so one process must not hold
clients on two servers at once: a test that links two servers runs its
sending side through this script.  It prints "ready" once sending and runs
until SIGTERM.

    python tests/side.py SERVER HOST:PORT [--mode tone|music|noise] [--channels N]
                         [--tone-hz F] [--codec C] [--opus-frame MS]
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from jacknet.binding import JackClient
from jacknet.codecs.opus import OpusSettings
from jacknet.realtime import Generator
from jacknet.sender import Sender, SenderConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("destination")
    ap.add_argument("--mode", default="tone")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--tone-hz", type=int, default=1000)
    ap.add_argument("--codec", default="float32")
    ap.add_argument("--opus-frame", type=float, default=5.0)
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    source = JackClient("side-sig", args.server)
    source.register("out", args.channels, "out")
    source.run(Generator(args.channels, args.mode, tone_hz=args.tone_hz, rate=source.samplerate))
    host, port = args.destination.rsplit(":", 1)
    sender = Sender(SenderConfig(host, int(port), args.channels, "side-send", "side-sig:out_.*",
                                 args.codec, server=args.server,
                                 opus=OpusSettings(args.opus_frame))).start()
    print("ready", flush=True)
    stop.wait()
    sender.close()
    source.close()


if __name__ == "__main__":
    sys.exit(main())
