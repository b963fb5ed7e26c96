"""Every option of jacknet, declared once.

Each field of `SenderConfig`, `ReceiverConfig`, `RunConfig` and
`DemoConfig` carries its `Option` (kind, help, section, whether it may
change live) in its metadata (`jacknet.options` reads it).  From that one
declaration come the command-line flags, the reading of a mapping such as a
parsed TOML file (`from_mapping`), and the checks every config passes before
it is used (``validate``, which the library runs too, so
``Sender(SenderConfig(channels=0))`` is refused with the message the CLI
gives).

A key of a mapping is spelled like its flag without the dashes
(``frames-per-packet``); ``host`` and ``port`` are what the command line
takes as its address argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jacknet.clock.resample import DEFAULT_QUALITY, QUALITIES
from jacknet.codecs.opus import APPLICATIONS, FRAME_MS, OpusSettings
from jacknet.errors import ConfigError
from jacknet.net.address import DEFAULT_PORT, is_multicast
from jacknet.net.link import MIN_MTU, SAFE_MTU
from jacknet.net.protocol import MAX_CHANNELS, MAX_DATAGRAM, MAX_REDUNDANCY
from jacknet.monitor.web import http_address
from jacknet.node import DEFAULT_RT_PRIORITY
from jacknet.options import (AutoInt, Bitrate, Choice, Flag, Int, Latency, Networks, Regex,
                             Seconds, Text, add_arguments, check_fields, from_args, from_mapping,
                             key_of, opt, options)
from jacknet.security.keys import load_key
from jacknet.service.jackserver import DRIVERS, JackServer

__all__ = ["SenderConfig", "ReceiverConfig", "RunConfig", "DemoConfig",
           "add_arguments", "from_args", "from_mapping", "options"]

# Shared by both sides, so each is written once.

def _channels() -> Any:
    return opt(2, Int(1, MAX_CHANNELS), f"audio channels (1..{MAX_CHANNELS})", "audio")


def _name(default: str) -> Any:
    return opt(default, Text(), "JACK client name", "jack")


def _connect() -> Any:
    return opt(None, Regex("REGEX"), "connect our ports, in order, to existing ports matching "
               "REGEX", "jack", live=True)


def _server() -> Any:
    return opt(None, Text("NAME"), "JACK server name (default server if omitted)", "jack")


def _security() -> Any:
    return opt("off", Choice(["off", "psk"]), "psk: seal every datagram with the key of "
               "--key-file (authenticated and encrypted; both ends need it); off (default)",
               "link")


def _key_file() -> Any:
    return opt(None, Text("PATH"), "the pre-shared key for --security psk, made by 'jacknet "
               "keygen PATH' (default: the systemd credential jacknet.key); read again on "
               "reload", "link", live=True)


def _check_security(config) -> None:
    if config.security == "psk":
        load_key(config.key_file)  # here, so a bad key is a config error at the start
    elif config.key_file is not None:
        raise ConfigError("--key-file applies to --security psk only")


# The sender options that only Opus reads: given with another codec, they are an error.
OPUS_OPTIONS = ("opus_frame", "bitrate", "complexity", "application", "fec", "expected_loss")
_TRANSPORT = ("udp (default; unicast or multicast) or tcp (receiver listens, sender connects)")
_RT_HELP = (f"SCHED_FIFO priority of the network thread, 0 for none "
            f"(default {DEFAULT_RT_PRIORITY}; at most one below JACK's process threads)")


@dataclass
class SenderConfig:
    """What a `Sender` does: where to send, how to encode, which JACK ports.

    Every field is an option (see `jacknet.config`); `validate` checks them
    and the rules between them.
    """

    host: str = opt("127.0.0.1", Text(), "receiver host", "link", flag=False)
    port: int = opt(DEFAULT_PORT, Int(1, 65535), "receiver port", "link", flag=False)
    channels: int = _channels()
    name: str = _name("jacknet-send")
    connect: str | None = _connect()
    codec: str = opt("float32", Choice(["float32", "int16", "opus"]), "float32 (exact), "
                     "int16 or opus", "codec")
    server: str | None = _server()
    transport: str = opt("udp", Choice(["udp", "tcp"]), _TRANSPORT, "link")
    rt_priority: int = opt(DEFAULT_RT_PRIORITY, Int(0, 98, "P"), _RT_HELP, "run")
    dither: bool = opt(False, Flag(), "TPDF dither for --codec int16", "codec")
    frames_per_packet: int | None = opt(None, Int(16, 8192, "N"), "frames per packet for "
                                        "float32/int16 (default: the JACK period)", "codec")
    redundancy: int = opt(0, Int(0, MAX_REDUNDANCY, "N"), "carry the previous N packets in "
                          "each datagram, as far as they fit in --mtu (default 0)", "codec")
    opus_frame: float = opt(5.0, Choice(FRAME_MS, float), "Opus frame: 2.5, 5, 10 or 20 ms "
                            "(default 5)", "codec")
    bitrate: int = opt(96000, Bitrate(), "Opus kbit/s per channel, 6..256 (default 96)", "codec")
    complexity: int = opt(7, Int(0, 10, "0..10"), "Opus encoder effort (default 7: the SNR of "
                          "10 at less CPU, see docs/codecs.md)", "codec")
    application: str = opt("lowdelay", Choice(APPLICATIONS), "Opus mode: lowdelay (default; "
                           "CELT only), audio or voip", "codec")
    fec: bool = opt(False, Flag(), "Opus in-band FEC: needs --application voip or audio, "
                    "--opus-frame 10 or 20, and a low bitrate (see docs/codecs.md)", "codec")
    expected_loss: int | None = opt(None, Int(0, 100, "PCT"), "packet loss %% the FEC is sized "
                                    "for (default 10 with --fec)", "codec")
    mtu: int | None = opt(None, AutoInt(MIN_MTU, MAX_DATAGRAM, "BYTES|auto"), "largest datagram "
                          f"payload in bytes, {MIN_MTU}..{MAX_DATAGRAM}, or auto (default): the "
                          "path's MTU where it is above Ethernet's (loopback, jumbo frames), "
                          f"else at most {SAFE_MTU}", "link")
    ttl: int = opt(1, Int(1, 255), "multicast hops (default 1: this network only)", "link")
    interface: str | None = opt(None, Text("IF"), "multicast interface: its IPv4 address, or "
                                "an IPv6 interface name or index", "link")
    security: str = _security()
    key_file: str | None = _key_file()
    no_transport: bool = opt(False, Flag(), "share no JACK transport: receivers that follow "
                             "it leave theirs alone", "sync")

    @property
    def opus(self) -> OpusSettings:
        """The Opus encoder's settings."""
        loss = self.expected_loss if self.expected_loss is not None else 10 if self.fec else 0
        return OpusSettings(self.opus_frame, self.bitrate, self.complexity, self.application,
                            self.fec, loss)

    def validate(self) -> "SenderConfig":
        """Check every field and the rules between them; returns self.

        Raises
        ------
        ConfigError
            Naming the option and what it allows.
        """
        check_fields(self)
        _check_multicast(self.transport, self.host)
        _check_security(self)
        default = SenderConfig()
        opus_given = [f"--{key_of(f)}" for f, _ in options(SenderConfig)
                      if f.name in OPUS_OPTIONS and getattr(self, f.name) != getattr(default, f.name)]
        if self.codec != "opus":
            if opus_given:
                raise ConfigError(f"{opus_given[0]} applies to --codec opus only")
            return self
        if self.frames_per_packet is not None:
            raise ConfigError("--frames-per-packet does not apply to --codec opus: "
                              "use --opus-frame (2.5, 5, 10 or 20 ms)")
        if self.fec and self.application == "lowdelay":
            raise ConfigError("--fec needs --application voip or audio: lowdelay is CELT-only, "
                              "which has no in-band FEC (use --redundancy instead)")
        if self.fec and self.opus_frame < 10:
            raise ConfigError("--fec needs --opus-frame 10 or 20: in-band FEC lives in Opus's "
                              "SILK layer, which codes 10 ms frames at the least")
        if self.expected_loss is not None and not self.fec:
            raise ConfigError("--expected-loss sizes the in-band FEC: give --fec as well")
        return self


@dataclass
class ReceiverConfig:
    """What a `Receiver` does: where to listen, how much margin, which JACK ports.

    Every field is an option (see `jacknet.config`); `validate` checks them.
    """

    host: str = opt("0.0.0.0", Text(), "address to listen on", "link", flag=False)
    port: int = opt(DEFAULT_PORT, Int(0, 65535), "port to listen on (0: any free)", "link",
                    flag=False)
    channels: int = _channels()
    name: str = _name("jacknet-recv")
    connect: str | None = _connect()
    latency_ms: float | None = opt(5.0, Latency(), "jitter margin in ms beyond the minimum "
                                   "(default 5), or auto: measured from the arrival jitter, "
                                   "lowered only by resampling", "receive", live=True,
                                   key="latency")
    server: str | None = _server()
    rt_priority: int = opt(DEFAULT_RT_PRIORITY, Int(0, 98, "P"), _RT_HELP, "run")
    transport: str = opt("udp", Choice(["udp", "tcp"]), _TRANSPORT, "link")
    interface: str | None = opt(None, Text("IF"), "multicast interface to join on: its IPv4 "
                                "address, or an IPv6 interface name or index", "link")
    allow_any_sender: bool = opt(False, Flag(), "play packets from any source, not only the "
                                 "first sender heard", "receive")
    drift: bool = opt(False, Flag(), "follow a sender whose clock runs apart by resampling "
                      "(always on when the sample rates differ)", "receive")
    resampler: str = opt(DEFAULT_QUALITY, Choice(QUALITIES), "converter quality when "
                         f"resampling (default {DEFAULT_QUALITY})", "receive")
    security: str = _security()
    key_file: str | None = _key_file()
    allow: list[str] | None = opt(None, Networks(), "take datagrams and connections only from "
                                  "these addresses and networks (default: from any)", "link")
    follow_transport: bool = opt(False, Flag(), "move this JACK server's transport with the "
                                 "sender's: start, stop and locate, aligned with the audio "
                                 "played", "sync")
    transport_offset: int = opt(0, Int(-10**7, 10**7, "FRAMES"), "with --follow-transport: "
                                "be this many frames ahead of the sender frame heard "
                                "(default 0: aligned with the audio)", "sync")
    transport_tolerance: int | None = opt(None, Int(1, 10**6, "FRAMES"), "with "
                                          "--follow-transport: locate again when the "
                                          "transports drift this far apart (default: one "
                                          "period)", "sync")
    timebase: bool = opt(False, Flag(), "with --follow-transport: be this server's timebase "
                         "master with the sender's bar, beat and tempo", "sync")

    def validate(self) -> "ReceiverConfig":
        """Check every field; returns self (`ConfigError` naming what is wrong)."""
        check_fields(self)
        _check_multicast(self.transport, self.host)
        _check_security(self)
        if not self.follow_transport:
            given = [f"--{key_of(f)}" for f, _ in options(ReceiverConfig)
                     if f.name in ("transport_offset", "transport_tolerance", "timebase")
                     and getattr(self, f.name) != getattr(ReceiverConfig(), f.name)]
            if given:
                raise ConfigError(f"{given[0]} applies with --follow-transport only")
        return self


# The RunConfig fields that describe the JACK server we start.
SERVER_FIELDS = ("driver", "device", "rate", "period", "nperiods", "no_realtime")


@dataclass
class RunConfig:
    """How the daemon around a sender or receiver runs."""

    stats_interval: float = opt(5.0, Seconds(), "print stats every S seconds (default 5)", "run",
                                live=True)
    seconds: float | None = opt(None, Seconds("N"), "stop after N seconds", "run")
    verbose: bool = opt(False, Flag(), "debug logging", "run", live=True, short="v")
    wait_for_jack: bool = opt(False, Flag(), "with no JACK server at the start, wait for one "
                              "(a service does) instead of exiting", "jack")
    status_socket: str = opt("auto", Text("PATH"), "Unix socket 'jacknet status' asks: a path, "
                             "auto (the runtime directory, NAME.sock) or off", "status",
                             key="socket")
    status_http: str = opt("off", Text("ADDR"), "serve a status page and /metrics: on "
                           "(127.0.0.1:8477), HOST[:PORT] (another address: reachable from "
                           "the network, read-only) or off (default)", "status", key="http")
    remember_connections: str = opt("off", Text("PATH"), "remember connections made by hand "
                                    "to our ports, to make them again after a restart: auto "
                                    "(the state directory, NAME.connections.json), a path, or "
                                    "off (default)", "jack")
    # A JACK server of our own, for a box that has nothing else.
    start: str = opt("never", Choice(["never", "if-missing"]), "if-missing: start a JACK "
                     "server when none is running (and stop it on exit; never one we did not "
                     "start); default never", "jack")
    driver: str = opt("alsa", Choice(DRIVERS), "driver of the server we start: alsa (default) "
                      "or dummy (no sound card)", "jack")
    device: str | None = opt(None, Text("DEV"), "ALSA device of the server we start, e.g. hw:0 "
                             "(default: jackd's)", "jack")
    rate: int = opt(48000, Int(8000, 192000), "sample rate of the server we start "
                    "(default 48000)", "jack")
    period: int = opt(256, Int(16, 4096), "frames per period of the server we start "
                      "(default 256)", "jack")
    nperiods: int = opt(2, Int(2, 16), "periods per ALSA buffer of the server we start "
                        "(default 2)", "jack")
    no_realtime: bool = opt(False, Flag(), "run the server we start without SCHED_FIFO "
                            "(jackd --no-realtime)", "jack")

    def validate(self) -> "RunConfig":
        """Check every field, and that the server's settings come with
        ``start``; returns self (`ConfigError` naming what is wrong)."""
        check_fields(self)
        http_address(self.status_http)
        default = RunConfig()
        given = [f"--{key_of(f)}" for f, _ in options(RunConfig)
                 if f.name in SERVER_FIELDS and getattr(self, f.name) != getattr(default, f.name)]
        if given and self.start == "never":
            raise ConfigError(f"{given[0]} describes the JACK server we start: give "
                              "--start if-missing as well")
        if self.device is not None and self.driver != "alsa":
            raise ConfigError("--device applies to --driver alsa only")
        return self

    def jack_server(self, name: str | None) -> JackServer | None:
        """The server to start when none runs (``start = if-missing``), or None."""
        if self.start == "never":
            return None
        return JackServer(name, self.driver, self.device, self.rate, self.period, self.nperiods,
                          realtime=not self.no_realtime)


@dataclass
class DemoConfig:
    """``jacknet demo``: a whole link on a private dummy JACK server."""

    channels: int = _channels()
    codec: str = opt("float32", Choice(["float32", "int16", "opus"]), "float32 (exact), "
                     "int16 or opus", "codec")
    period: int = opt(128, Int(16, 4096), "JACK period of the private server", "jack")
    rate: int = opt(48000, Int(8000, 192000), "sample rate of the private server", "jack")
    # Not auto: the demo checks float32 bit for bit, and auto resamples.
    latency: float = opt(2.0, Latency(allow_auto=False), "jitter margin in ms", "receive")
    port: int = opt(0, Int(0, 65535), "UDP port (default: any free)", "link")
    server_name: str = opt("jacknet-demo", Text(), "name of the private JACK server", "jack")
    stats_interval: float = opt(1.0, Seconds(), "print stats every S seconds", "run")
    seconds: float | None = opt(None, Seconds("N"), "stop after N seconds", "run")
    verbose: bool = opt(False, Flag(), "debug logging", "run", short="v")


@dataclass
class ProbeConfig:
    """``jacknet probe``: the true latency of a link, pulse by pulse."""

    send: str | None = opt(None, Text("PORT"), "the port to pulse into: a sender's input "
                           "(jacknet-send:in_1); none: probe this machine's jacknet on a "
                           "private dummy server", "probe")
    return_port: str | None = opt(None, Text("PORT"), "the port the pulses come back on: a "
                                  "receiver's output (jacknet-recv:out_1), or its loop back "
                                  "from the far end", "probe", key="return")
    server: str | None = _server()
    seconds: float = opt(10.0, Seconds("N"), "pulses for N seconds, two a second (default 10)",
                         "probe")
    codec: str = opt("float32", Choice(["float32", "int16", "opus"]), "without --send: the "
                     "codec of the link probed", "probe")
    period: int = opt(128, Int(16, 4096), "without --send: the private server's period", "probe")
    latency: float = opt(2.0, Latency(allow_auto=False), "without --send: the receiver's jitter "
                         "margin in ms", "probe")
    verbose: bool = opt(False, Flag(), "debug logging", "run", short="v")

    def validate(self) -> "ProbeConfig":
        check_fields(self)
        if (self.send is None) != (self.return_port is None):
            raise ConfigError("give --send and --return together (or neither: probe this "
                              "machine's jacknet)")
        return self


def _check_multicast(transport: str, host: str) -> None:
    if transport == "tcp" and is_multicast(host):
        raise ConfigError("multicast needs --transport udp")
