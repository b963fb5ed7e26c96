"""Command line: ``jacknet send | recv | demo | probe | status | top | keygen | config check``.

The flags come from the option schema (`jacknet.config`).  ``--config
FILE`` reads a TOML file (`jacknet.configfile`) first; the flags given on
the command line override it.  A bad flag, key or value prints one line and
exits with 2; a missing JACK server prints how to start one and exits with
1; SIGINT/SIGTERM stop cleanly (0).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from jacknet import __version__
from jacknet.config import (OPUS_OPTIONS, SERVER_FIELDS, DemoConfig, ProbeConfig, ReceiverConfig, RunConfig,
                            SenderConfig, add_arguments, from_args, options)
from jacknet.configfile import build, load, read, render, role_of
from jacknet.errors import ConfigError, JacknetError
from jacknet.net.address import DEFAULT_PORT, parse_address

log = logging.getLogger("jacknet")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the daemon's log stays readable.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(given_only: bool = False) -> argparse.ArgumentParser:
    """The parser; ``given_only``: one whose namespace holds only what was given."""
    parser = _Parser(prog="jacknet", description="Network audio links between JACK servers.")
    parser.add_argument("--version", action="version", version=f"jacknet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    config_help = "read options from a TOML file first (flags given here override it)"

    s = sub.add_parser("send", help="send JACK inputs to a receiver")
    s.add_argument("destination", metavar="HOST[:PORT]", nargs="?",
                   help=f"receiver address (port {DEFAULT_PORT}); or [link] host in --config")
    s.add_argument("--config", metavar="FILE", help=config_help)
    opus = s.add_argument_group("opus", "with --codec opus (the receiver needs no matching flags)")
    add_arguments(s, SenderConfig, groups={name: opus for name in OPUS_OPTIONS},
                  given_only=given_only)
    _add_run_arguments(s, given_only)

    r = sub.add_parser("recv", help="play received audio on JACK outputs")
    r.add_argument("bind", metavar="[BIND][:PORT]", nargs="?",
                   help=f"address to listen on (default 0.0.0.0:{DEFAULT_PORT})")
    r.add_argument("--config", metavar="FILE", help=config_help)
    add_arguments(r, ReceiverConfig, given_only=given_only)
    _add_run_arguments(r, given_only)

    d = sub.add_parser("demo", help="a whole link on a private dummy JACK server, with a test signal")
    add_arguments(d, DemoConfig, given_only=given_only)

    st = _daemon_parser(sub, "status", "ask running daemons how they are (their status sockets)",
                        "every daemon found")
    st.add_argument("--json", action="store_true", help="the whole answer, one JSON line each")
    st.add_argument("--watch", action="store_true", help="ask again every second until Ctrl-C")

    p = sub.add_parser("probe", help="measure a link's true latency with pulses: a histogram")
    add_arguments(p, ProbeConfig, given_only=given_only)

    _daemon_parser(sub, "top", "watch a running daemon's link in the terminal (q quits)",
                   "the one daemon running")

    k = sub.add_parser("keygen", help="write a new pre-shared key for --security psk")
    k.add_argument("file", metavar="FILE", help="where to write it (owner-only; never "
                   "overwritten); copy it to the other end the same way")
    k.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    c = sub.add_parser("config", help="check a config file and show the configuration it gives")
    c.add_argument("action", choices=["check"])
    c.add_argument("file", metavar="FILE")
    c.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _daemon_parser(sub, command: str, help: str, default: str) -> argparse.ArgumentParser:
    """A command that asks running daemons on their status sockets."""
    parser = sub.add_parser(command, help=help)
    parser.add_argument("name", metavar="NAME", nargs="?",
                        help=f"the daemon's JACK client name (default: {default})")
    parser.add_argument("--socket", metavar="PATH", help="ask the daemon at this status socket")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser, given_only: bool) -> None:
    server = parser.add_argument_group("JACK server", "a server of our own, started when none "
                                       "is running (--start if-missing)")
    add_arguments(parser, RunConfig, groups={name: server for name in ("start", *SERVER_FIELDS)},
                  given_only=given_only)


def _given(argv: list[str], names: set[str]) -> dict:
    """The options of ``names`` given on the command line (not defaults)."""
    given = vars(build_parser(given_only=True).parse_args(argv))
    return {name: value for name, value in given.items() if name in names}


def _configs(role: str, args: argparse.Namespace, argv: list[str]) -> tuple:
    """(side config, RunConfig): the file's values, then the flags given."""
    side_cls = SenderConfig if role == "send" else ReceiverConfig
    where = args.config
    file_values = load(args.config, role)[1] if args.config else {side_cls: {}, RunConfig: {}}
    layers = {cls: _given(argv, {f.name for f, _ in options(cls)}) for cls in (side_cls, RunConfig)}
    address = args.destination if role == "send" else args.bind
    if address:
        host, port = parse_address(address, "127.0.0.1" if role == "send" else "0.0.0.0")
        layers[side_cls]["host"] = host
        if address.count(":") == 1 or "]:" in address:  # a port given, not only a host
            layers[side_cls]["port"] = port
    elif role == "send" and "host" not in file_values[side_cls]:
        raise ConfigError("give the receiver's address: HOST[:PORT], or [link] host in --config")
    return (build(side_cls, file_values[side_cls], layers[side_cls], where=where),
            build(RunConfig, file_values[RunConfig], layers[RunConfig], where=where))


def _run(make, side: str, config, run: RunConfig, reread) -> int:
    from jacknet.daemon import Supervisor
    from jacknet.service.remember import ConnectionMemory, state_path
    from jacknet.monitor.web import WebServer, http_address
    from jacknet.service.status import StatusServer, socket_path
    remembered = state_path(config.name, run.remember_connections)
    supervisor = Supervisor(make, side, run.stats_interval, run.seconds,
                            wait_for_jack=run.wait_for_jack, reread=reread, run_config=run,
                            server=run.jack_server(config.server),
                            memory=ConnectionMemory(remembered) if remembered else None)
    path = socket_path(config.name, run.status_socket)
    status = StatusServer(path, supervisor.status, supervisor.history).start() if path else None
    address = http_address(run.status_http)
    try:
        web = WebServer(address, supervisor.status, supervisor.history).start() if address \
            else None
    except ConfigError:
        if status:
            status.close()
        raise
    try:
        return supervisor.run()
    finally:
        if status:
            status.close()
        if web:
            web.close()


def _send(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.sender import Sender
    config, run = _configs("send", args, argv)
    return _run(lambda: Sender(config), "send", config, run,
                lambda: _configs("send", args, argv))


def _recv(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.receiver import Receiver
    config, run = _configs("recv", args, argv)
    return _run(lambda: Receiver(config), "recv", config, run,
                lambda: _configs("recv", args, argv))


def _status(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.service.status import show_status
    return show_status(args.name, args.json, args.watch, args.socket)


def _probe(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.daemon import stop_on_signals
    from jacknet.monitor.probe import probe_here, probe_ports
    c = from_args(ProbeConfig, args).validate()
    stop = stop_on_signals()
    if c.send is None:
        print(f"probe: this machine's jacknet ({c.codec}, period {c.period}, margin "
              f"{c.latency:g} ms) on a private dummy JACK server, {c.seconds:g} s", flush=True)
        result = probe_here(c.codec, c.period, c.latency, c.seconds, stop)
    else:
        print(f"probe: pulses into {c.send}, back from {c.return_port}, {c.seconds:g} s",
              flush=True)
        result = probe_ports(c.server, c.send, c.return_port, c.seconds, stop)
    print(result.table())
    return 0 if result.frames else 1


def _top(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.service.status import show_top
    return show_top(args.name, args.socket)


def _demo(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.daemon import stop_on_signals
    from jacknet.testing.demo import run_demo
    return run_demo(from_args(DemoConfig, args), stop_on_signals())


def _keygen(args: argparse.Namespace, argv: list[str]) -> int:
    from jacknet.security.keys import keygen
    path = keygen(args.file)
    print(f"wrote a new key to {path} (mode 600); give both ends the same file: "
          f"key-file = \"{path.resolve()}\" and security = \"psk\" in [link]")
    return 0


def _config(args: argparse.Namespace, argv: list[str]) -> int:
    role = role_of(read(args.file), args.file)
    _, values = load(args.file, role)
    side_cls = SenderConfig if role == "send" else ReceiverConfig
    if role == "send" and "host" not in values[side_cls]:
        raise ConfigError(f"{args.file}: [link] host is missing: the receiver's address")
    configs = {cls: build(cls, values[cls], where=args.file) for cls in values}
    print(render(role, configs), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    from jacknet.service.logs import setup
    setup(args.verbose)
    commands = {"send": _send, "recv": _recv, "demo": _demo, "config": _config,
                "status": _status, "top": _top, "probe": _probe, "keygen": _keygen}
    try:
        return commands[args.command](args, argv)
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
