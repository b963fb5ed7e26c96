"""``jacknet demo``: a whole link on an embedded default.

Starts a private dummy JACK server, plays the known test signal into a
sender, sends it over UDP on 127.0.0.1 to a receiver, records the receiver's
outputs and checks them (PCM: sample by sample; Opus: by SNR against a
music-like signal), printing live stats.
"""
from __future__ import annotations

import threading
import time

from jacknet.rt.binding import JackClient
from jacknet.testing.jackserver import PrivateServer
from jacknet.rt.engines import Capture
from jacknet.testing.signals import Generator
from jacknet.config import DemoConfig, ReceiverConfig, SenderConfig
from jacknet.receiver import Receiver
from jacknet.sender import Sender
from jacknet.stats import format_line
from jacknet.testing.verify import SignalChecker, SnrChecker

INT16_LSB = 1.0 / 32768


def run_demo(args: DemoConfig, stop: threading.Event) -> int:
    """Run the demo until ``stop`` is set or ``args.seconds`` have passed; returns 0."""
    with PrivateServer(args.server_name, rate=args.rate, period=args.period, sync=True) as server:
        print(f"demo: private JACK server '{server.name}' (dummy, {args.rate} Hz, "
              f"period {args.period}); Ctrl-C stops", flush=True)
        clients: list = []
        try:
            source = JackClient("testsignal", server.name)
            clients.append(source)
            source.register("out", args.channels, "out")
            opus = args.codec == "opus"
            source.run(Generator(args.channels, "music" if opus else "noise"))

            recorder = JackClient("checker", server.name)
            clients.append(recorder)
            recorder.register("in", args.channels, "in")
            capture = Capture(args.channels)
            recorder.run(capture)

            receiver = Receiver(ReceiverConfig("127.0.0.1", args.port, args.channels,
                                               "jacknet-recv", "checker:in_.*", args.latency,
                                               server.name)).start()
            clients.append(receiver)
            port = receiver.address[1]
            sender = Sender(SenderConfig("127.0.0.1", port, args.channels, "jacknet-send",
                                         "testsignal:out_.*", args.codec,
                                         server=server.name)).start()
            clients.append(sender)
            checker = (SnrChecker(capture, args.period, args.rate) if opus else
                       SignalChecker(capture, INT16_LSB if args.codec == "int16" else 0.0,
                                     args.period, args.rate))
            stop.wait(0.5)       # ports are still being connected: not a fair check
            checker.discard()
            start = time.monotonic()
            next_print = start + args.stats_interval
            while not stop.wait(0.05):
                checker.poll()
                now = time.monotonic()
                if now >= next_print:
                    next_print += args.stats_interval
                    print(format_line("send", sender.stats()), flush=True)
                    print(format_line("recv", receiver.stats()), flush=True)
                    print(checker.summary(), flush=True)
                if args.seconds and now - start >= args.seconds:
                    break
        finally:
            for client in reversed(clients):
                client.close()
    return 0
