"""Command line: ``jacknet send | recv | demo``.

The flags come from the option schema (`jacknet.config`).  A bad flag or
value prints one line and exits with 2; a missing JACK server prints how to
start one and exits with 1; SIGINT/SIGTERM stop cleanly (0).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from jacknet import __version__
from jacknet.config import (DemoConfig, ReceiverConfig, RunConfig, SenderConfig, add_arguments,
                            from_args)
from jacknet.errors import ConfigError, JacknetError
from jacknet.net.address import DEFAULT_PORT, parse_address

log = logging.getLogger("jacknet")

OPUS_OPTIONS = ("opus_frame", "bitrate", "complexity", "application", "fec", "expected_loss")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the daemon's log stays readable.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jacknet", description="Network audio links between JACK servers.")
    parser.add_argument("--version", action="version", version=f"jacknet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("send", help="send JACK inputs to a receiver")
    s.add_argument("destination", metavar="HOST[:PORT]", help=f"receiver address (port {DEFAULT_PORT})")
    opus = s.add_argument_group("opus", "with --codec opus (the receiver needs no matching flags)")
    add_arguments(s, SenderConfig, groups={name: opus for name in OPUS_OPTIONS})
    add_arguments(s, RunConfig)

    r = sub.add_parser("recv", help="play received audio on JACK outputs")
    r.add_argument("bind", metavar="[BIND][:PORT]", nargs="?", default="",
                   help=f"address to listen on (default 0.0.0.0:{DEFAULT_PORT})")
    add_arguments(r, ReceiverConfig)
    add_arguments(r, RunConfig)

    d = sub.add_parser("demo", help="a whole link on a private dummy JACK server, with a test signal")
    add_arguments(d, DemoConfig)
    return parser


def _run(make, side: str, args: argparse.Namespace) -> int:
    from jacknet.daemon import Supervisor
    run = from_args(RunConfig, args)
    return Supervisor(make, side, run.stats_interval, run.seconds).run()


def _send(args: argparse.Namespace) -> int:
    from jacknet.sender import Sender
    host, port = parse_address(args.destination, "127.0.0.1")
    config = from_args(SenderConfig, args, host=host, port=port)
    return _run(lambda: Sender(config), "send", args)


def _recv(args: argparse.Namespace) -> int:
    from jacknet.receiver import Receiver
    host, port = parse_address(args.bind, "0.0.0.0")
    config = from_args(ReceiverConfig, args, host=host, port=port)
    return _run(lambda: Receiver(config), "recv", args)


def _demo(args: argparse.Namespace) -> int:
    from jacknet.daemon import stop_on_signals
    from jacknet.testing.demo import run_demo
    return run_demo(from_args(DemoConfig, args), stop_on_signals())


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
