"""The sending room of the transport sync tests, in a process of its own
(libjack must not hold clients on two servers in one process): the JACK
transport as audio (three channels, `Generator` mode "transport") and a
float32 sender on JACK server SERVER, and the JACK transport moved by
commands read from stdin, one per line:

    start | stop | locate FRAME | quit

Each is answered with "ok FRAME-TIME" (JACK's frame time when it was
asked).  With ``--timebase`` a timebase master on that server gives the
transport a BBT (120 bpm, 4/4, 1920 ticks per beat from frame 0), through
the same C timebase callback a following receiver uses.  Prints "ready"
once sending, and the sender's stats as one JSON line on "quit".

    python tests/transport_side.py SERVER HOST:PORT [--timebase] [--no-transport]
"""
from __future__ import annotations

import argparse
import json
import sys

import jack

from jacknet.config import SenderConfig
from jacknet.net.protocol import PositionBlock
from jacknet.rt.binding import JackClient, _c_function
from jacknet.rt.engines import Playout
from jacknet.sender import Sender
from jacknet.stats import as_dict
from jacknet.testing.signals import Generator

BPM = 120.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("destination")
    ap.add_argument("--timebase", action="store_true")
    ap.add_argument("--no-transport", action="store_true")
    args = ap.parse_args()
    source = JackClient("tside-sig", args.server)
    source.register("out", 3, "out")
    source.run(Generator(3, "transport"))
    if args.timebase:
        master = Playout(1, 1024, source.samplerate)
        master.set_bbt(PositionBlock(source.samplerate, 0, True, 1, 1, 0, 4.0, 4.0, 1920.0, BPM),
                       0, source.samplerate)
        ptr = source._client._ptr
        callback = _c_function("jn_follow_timebase", "JackTimebaseCallback")
        arg = jack._ffi.cast("void *", master.state_address)
        assert jack._lib.jack_set_timebase_callback(ptr, 0, callback, arg) == 0
    host, port = args.destination.rsplit(":", 1)
    # A period of three float32 channels in one datagram (loopback takes it):
    # a loss test drops datagrams, and fragments would double what it drops.
    sender = Sender(SenderConfig(host, int(port), 3, "tside-send", "tside-sig:out_.*",
                                 server=args.server, no_transport=args.no_transport,
                                 mtu=4000)).start()
    ptr = source._client._ptr
    print("ready", flush=True)
    for line in sys.stdin:
        word, *rest = line.split()
        if word == "quit":
            break
        asked = source.frame_time
        if word == "start":
            jack._lib.jack_transport_start(ptr)
        elif word == "stop":
            jack._lib.jack_transport_stop(ptr)
        elif word == "locate":
            jack._lib.jack_transport_locate(ptr, int(rest[0]))
        print(f"ok {asked}", flush=True)
    print(json.dumps(as_dict(sender.stats())), flush=True)
    sender.close()
    source.close()


if __name__ == "__main__":
    sys.exit(main())
