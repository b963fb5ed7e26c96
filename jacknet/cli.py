"""Command line: ``jacknet send | recv | demo``.

A bad flag or value prints one line and exits with 2; a missing JACK server
prints how to start one and exits with 1; SIGINT/SIGTERM stop cleanly (0).
"""
from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
from typing import Callable, NoReturn

from jacknet import __version__
from jacknet.net import protocol
from jacknet.codecs.opus import APPLICATIONS, OpusSettings
from jacknet.errors import ConfigError, JacknetError, ServerNotRunning
from jacknet.node import DEFAULT_RT_PRIORITY
from jacknet.clock.resample import DEFAULT_QUALITY, QUALITIES
from jacknet.stats import format_line
from jacknet.net.transport import DEFAULT_PORT, parse_address

log = logging.getLogger("jacknet")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the daemon's log stays readable.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _latency_ms(text: str) -> float:
    value = _positive_float(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"{value} ms is more than the 1000 ms the buffer holds")
    return value


def _latency(text: str) -> float | None:
    """Milliseconds, or ``auto`` (None)."""
    return None if text == "auto" else _latency_ms(text)


def _bitrate(text: str) -> int:
    """kbit/s per channel: ``96`` or ``96k``."""
    try:
        value = float(text.lower().removesuffix("k"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a bitrate in kbit/s") from None
    if not 6 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value:g} kbit/s per channel is outside 6..256")
    return round(value * 1000)


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {e}") from None
    return text


def _common(p: argparse.ArgumentParser, default_name: str) -> None:
    p.add_argument("--channels", type=_int_range(1, 64), default=2, help="audio channels (1..64)")
    p.add_argument("--name", default=default_name, help="JACK client name")
    p.add_argument("--connect", metavar="REGEX", type=_regex,
                   help="connect our ports, in order, to existing ports matching REGEX")
    p.add_argument("--server", metavar="NAME", help="JACK server name (default server if omitted)")
    p.add_argument("--stats-interval", type=_positive_float, default=5.0, metavar="S",
                   help="print stats every S seconds (default 5)")
    p.add_argument("--seconds", type=_positive_float, metavar="N", help="stop after N seconds")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp",
                   help="udp (default; unicast or multicast) or tcp (receiver listens, sender connects)")
    p.add_argument("--rt-priority", type=_int_range(0, 98), default=DEFAULT_RT_PRIORITY, metavar="P",
                   help=f"SCHED_FIFO priority of the network thread, 0 for none "
                        f"(default {DEFAULT_RT_PRIORITY}; keep it below JACK's)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jacknet", description="Network audio links between JACK servers.")
    parser.add_argument("--version", action="version", version=f"jacknet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("send", help="send JACK inputs to a receiver")
    s.add_argument("destination", metavar="HOST[:PORT]", help=f"receiver address (port {DEFAULT_PORT})")
    _common(s, "jacknet-send")
    s.add_argument("--codec", choices=["float32", "int16", "opus"], default="float32")
    s.add_argument("--dither", action="store_true", help="TPDF dither for --codec int16")
    s.add_argument("--frames-per-packet", type=_int_range(16, 8192), metavar="N",
                   help="frames per packet for float32/int16 (default: the JACK period)")
    s.add_argument("--redundancy", type=_int_range(0, protocol.MAX_REDUNDANCY), default=0,
                   metavar="N", help="carry the previous N packets in each datagram, as far "
                                     "as they fit in --mtu (default 0)")
    o = s.add_argument_group("opus", "with --codec opus (the receiver needs no matching flags)")
    o.add_argument("--opus-frame", type=float, choices=[2.5, 5, 10, 20], metavar="MS",
                   help="Opus frame: 2.5, 5, 10 or 20 ms (default 5)")
    o.add_argument("--bitrate", type=_bitrate, metavar="KBPS",
                   help="kbit/s per channel, 6..256 (default 96)")
    o.add_argument("--complexity", type=_int_range(0, 10), metavar="0..10",
                   help="encoder effort (default 10)")
    o.add_argument("--application", choices=list(APPLICATIONS),
                   help="lowdelay (default; CELT only), audio or voip")
    o.add_argument("--fec", action="store_true",
                   help="Opus in-band FEC: needs --application voip or audio, --opus-frame 10 or 20, "
                        "and a low bitrate (see docs/codecs.md)")
    o.add_argument("--expected-loss", type=_int_range(0, 100), metavar="PCT",
                   help="packet loss %% the FEC is sized for (default 10 with --fec)")
    s.add_argument("--mtu", type=_int_range(576, 65507), default=1400,
                   help="largest datagram payload in bytes (default 1400)")
    s.add_argument("--ttl", type=_int_range(1, 255), default=1,
                   help="multicast hops (default 1: this network only)")
    s.add_argument("--interface", metavar="IF",
                   help="multicast interface: its IPv4 address, or an IPv6 interface name or index")

    r = sub.add_parser("recv", help="play received audio on JACK outputs")
    r.add_argument("bind", metavar="[BIND][:PORT]", nargs="?", default="",
                   help=f"address to listen on (default 0.0.0.0:{DEFAULT_PORT})")
    _common(r, "jacknet-recv")
    r.add_argument("--latency", type=_latency, default=5.0, metavar="MS|auto",
                   help="jitter margin in ms beyond the minimum (default 5), or auto: measured "
                        "from the arrival jitter, lowered only by resampling")
    r.add_argument("--interface", metavar="IF",
                   help="multicast interface to join on: its IPv4 address, or an IPv6 interface name or index")
    r.add_argument("--allow-any-sender", action="store_true",
                   help="play packets from any source, not only the first sender heard")
    r.add_argument("--drift", action="store_true",
                   help="follow a sender whose clock runs apart by resampling (always on when "
                        "the sample rates differ)")
    r.add_argument("--resampler", choices=QUALITIES, default=DEFAULT_QUALITY,
                   help=f"converter quality when resampling (default {DEFAULT_QUALITY})")

    d = sub.add_parser("demo", help="a whole link on a private dummy JACK server, with a test signal")
    d.add_argument("--channels", type=_int_range(1, 64), default=2)
    d.add_argument("--codec", choices=["float32", "int16", "opus"], default="float32")
    d.add_argument("--period", type=_int_range(16, 4096), default=128)
    d.add_argument("--rate", type=_int_range(8000, 192000), default=48000)
    # Not auto: the demo checks float32 bit for bit, and auto resamples.
    d.add_argument("--latency", type=_latency_ms, default=2.0, metavar="MS")
    d.add_argument("--port", type=_int_range(0, 65535), default=0, help="UDP port (default: any free)")
    d.add_argument("--server-name", default="jacknet-demo", help="name of the private JACK server")
    d.add_argument("--stats-interval", type=_positive_float, default=1.0, metavar="S")
    d.add_argument("--seconds", type=_positive_float, metavar="N", help="stop after N seconds")
    d.add_argument("-v", "--verbose", action="store_true")
    return parser


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _rebuild(make: Callable[[], object], stop: threading.Event):
    """A new node, started; retried every second while no JACK server runs.
    None if stopped first."""
    while True:
        try:
            node = make()
            node.start()
            log.info("link restored on the JACK server")
            return node
        except ServerNotRunning:
            if stop.wait(1.0):
                return None


def run_node(make: Callable[[], object], side: str, interval: float,
             seconds: float | None) -> int:
    """Run a sender or receiver until stopped, printing stats.

    If the JACK server goes away the node is torn down and rebuilt once the
    server is back; the daemon itself never exits for that.
    """
    stop = _stop_event()
    deadline = time.monotonic() + seconds if seconds else None
    node = make()
    node.start()
    reconnects = 0
    try:
        while True:
            wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            if stop.wait(wait):
                break
            stats = node.stats()
            if reconnects:
                stats["reconnects"] = reconnects
            print(format_line(side, stats), flush=True)
            if node.jack_lost or node.format_changed:
                if node.jack_lost:
                    log.warning("the JACK server went away (%s); waiting for it to come back",
                                node.jack.shutdown_reason or "no reason given")
                else:
                    # Buffers, packet size and jitter-buffer timing all follow
                    # from the period and rate: rebuild rather than patch.
                    log.info("JACK's period or sample rate changed; rebuilding the link")
                node.close()
                node = _rebuild(make, stop)
                if node is None:
                    break
                reconnects += 1
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        if node is not None:
            node.close()
    return 0


def _opus_settings(args: argparse.Namespace) -> OpusSettings:
    """Opus flags checked against the codec and against each other."""
    given = [f"--{name.replace('_', '-')}" for name in
             ("opus_frame", "bitrate", "complexity", "application", "expected_loss")
             if getattr(args, name) is not None] + (["--fec"] if args.fec else [])
    if args.codec != "opus":
        if given:
            raise ConfigError(f"{given[0]} applies to --codec opus only")
        return OpusSettings()
    if args.frames_per_packet is not None:
        raise ConfigError("--frames-per-packet does not apply to --codec opus: "
                          "use --opus-frame (2.5, 5, 10 or 20 ms)")
    defaults = OpusSettings()
    settings = OpusSettings(
        frame_ms=args.opus_frame or defaults.frame_ms,
        bitrate=args.bitrate or defaults.bitrate,
        complexity=defaults.complexity if args.complexity is None else args.complexity,
        application=args.application or defaults.application,
        fec=args.fec,
        expected_loss=(args.expected_loss if args.expected_loss is not None
                       else 10 if args.fec else 0))
    if settings.fec and settings.application == "lowdelay":
        raise ConfigError("--fec needs --application voip or audio: lowdelay is CELT-only, "
                          "which has no in-band FEC (use --redundancy instead)")
    if settings.fec and settings.frame_ms < 10:
        raise ConfigError("--fec needs --opus-frame 10 or 20: in-band FEC lives in Opus's "
                          "SILK layer, which codes 10 ms frames at the least")
    if args.expected_loss is not None and not settings.fec:
        raise ConfigError("--expected-loss sizes the in-band FEC: give --fec as well")
    return settings


def _send(args: argparse.Namespace) -> int:
    from jacknet.sender import Sender, SenderConfig
    host, port = parse_address(args.destination, "127.0.0.1")
    if port == 0:
        raise ConfigError("the destination needs a port other than 0")
    config = SenderConfig(host, port, channels=args.channels, name=args.name,
                          connect=args.connect, codec=args.codec, dither=args.dither,
                          frames_per_packet=args.frames_per_packet, mtu=args.mtu,
                          server=args.server, rt_priority=args.rt_priority,
                          transport=args.transport, ttl=args.ttl, interface=args.interface,
                          redundancy=args.redundancy, opus=_opus_settings(args))
    return run_node(lambda: Sender(config), "send", args.stats_interval, args.seconds)


def _recv(args: argparse.Namespace) -> int:
    from jacknet.receiver import Receiver, ReceiverConfig
    host, port = parse_address(args.bind, "0.0.0.0")
    config = ReceiverConfig(host, port, channels=args.channels, name=args.name,
                            connect=args.connect, latency_ms=args.latency, server=args.server,
                            rt_priority=args.rt_priority, transport=args.transport,
                            interface=args.interface, allow_any_sender=args.allow_any_sender,
                            drift=args.drift, resampler=args.resampler)
    return run_node(lambda: Receiver(config), "recv", args.stats_interval, args.seconds)


def _demo(args: argparse.Namespace) -> int:
    from jacknet.testing.demo import run_demo
    return run_demo(args, _stop_event())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    commands = {"send": _send, "recv": _recv, "demo": _demo}
    try:
        return commands[args.command](args)
    except ConfigError as e:
        print(f"jacknet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except JacknetError as e:
        print(f"jacknet {args.command}: {e}", file=sys.stderr)
        return 1


def main_send() -> int:
    return main(["send", *sys.argv[1:]])


def main_recv() -> int:
    return main(["recv", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
