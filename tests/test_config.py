"""The option schema: each option declared once gives its flag, its key in a
file and its checks, and the library refuses what the command line refuses."""
from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import pytest

from jacknet import ConfigError, Receiver, ReceiverConfig, Sender, SenderConfig
from jacknet.cli import build_parser
from jacknet.config import SERVER_FIELDS
from jacknet.options import (Bitrate, Choice, Flag, Int, Latency, Networks, Regex, Seconds, Text,
                             from_args, from_mapping, key_of, options)
from jacknet.security.keys import keygen

# A key the security options can name (a real one: it is read when checked).
_KEYS = tempfile.TemporaryDirectory(prefix="jacknet-test-key-")  # gone when the run ends
KEY_FILE = str(keygen(Path(_KEYS.name) / "link.key"))
# What some options need beside them to be valid at all.
NEEDS = {"security": {"key_file": KEY_FILE}, "key_file": {"security": "psk"},
         "opus_frame": {"codec": "opus"}, "bitrate": {"codec": "opus"},
         "complexity": {"codec": "opus"}, "application": {"codec": "opus"},
         "fec": {"codec": "opus", "application": "voip", "opus_frame": 10.0},
         "expected_loss": {"codec": "opus", "application": "voip", "opus_frame": 10.0,
                           "fec": True},
         # Transport sync's settings come with --follow-transport.
         **{name: {"follow_transport": True}
            for name in ("transport_offset", "transport_tolerance", "timebase")},
         # The JACK server we start: its settings come with --start.
         **{name: {"start": "if-missing"} for name in SERVER_FIELDS}}


def other_value(f, kind):
    """A valid value of the option that is not its default."""
    if isinstance(kind, Flag):
        return True
    if isinstance(kind, Choice):
        return next(c for c in kind.choices if c != f.default)
    if isinstance(kind, Int):
        return kind.lo if f.default != kind.lo else kind.hi
    if isinstance(kind, Bitrate):
        return 64000
    if isinstance(kind, Latency):
        return 7.5
    if isinstance(kind, Seconds):
        return 2.5
    if isinstance(kind, Regex):
        return "system:.*"
    if f.name == "key_file":
        return KEY_FILE
    if isinstance(kind, Text):
        return "somewhere"
    if isinstance(kind, Networks):
        return ["10.0.0.0/8", "192.168.1.20"]
    raise AssertionError(kind)


def as_text(kind, value) -> list[str]:
    if isinstance(kind, Flag):
        return []
    if isinstance(kind, Bitrate):
        return [f"{value // 1000}"]
    if isinstance(value, float) and value.is_integer():
        return [f"{value:g}"]
    if isinstance(kind, Networks):
        return [",".join(value)]
    return [str(value)]


def flag_options(cls):
    return [(f, o) for f, o in options(cls) if o.flag]


@pytest.mark.parametrize("side, cls, address", [("send", SenderConfig, "h:9"),
                                                ("recv", ReceiverConfig, ":9")])
def test_every_option_means_the_same_as_a_flag_and_as_a_key(side, cls, address):
    parser = build_parser()
    for f, option in flag_options(cls):
        value = other_value(f, option.kind)
        extra = NEEDS.get(f.name, {})
        argv = [side, address, f"--{key_of(f)}", *as_text(option.kind, value)]
        for name, v in extra.items():
            ef = next(x for x, _ in options(cls) if x.name == name)
            eo = ef.metadata["option"]
            argv += [f"--{key_of(ef)}", *as_text(eo.kind, v)]
        from_cli = from_args(cls, parser.parse_args(argv), host="h", port=9)
        file = {key_of(f): value, "host": "h", "port": 9,
                **{key_of(next(x for x, _ in options(cls) if x.name == n)): v
                   for n, v in extra.items()}}
        from_file = from_mapping(cls, file)
        assert from_cli == from_file, f.name
        assert getattr(from_cli, f.name) == value != f.default, f.name


def test_a_toml_file_reads_against_the_schema():
    text = """
    host = "192.168.1.20"
    channels = 8
    codec = "opus"
    opus-frame = 10
    bitrate = 64000
    connect = "system:capture_.*"
    """
    config = from_mapping(SenderConfig, tomllib.loads(text), "send.toml")
    assert (config.channels, config.opus.frame_ms, config.opus.bitrate) == (8, 10.0, 64000)
    recv = from_mapping(ReceiverConfig, tomllib.loads('latency = "auto"\nport = 5000'))
    assert recv.latency_ms is None and recv.port == 5000


@pytest.mark.parametrize("data, message", [
    ({"chanels": 2}, "unknown key 'chanels'; known keys: host, port, channels"),
    ({"channels": "two"}, "channels: 'two' is not a whole number"),
    ({"channels": 65}, "channels: 65 is outside 1..64"),
    ({"channels": True}, "channels: True is not a whole number"),
    ({"codec": "mp3"}, "codec: invalid choice: 'mp3' (choose from float32, int16, opus)"),
    ({"connect": "("}, "connect: bad regular expression '('"),
    ({"bitrate": 64000}, "--bitrate applies to --codec opus only"),
    ({"codec": "opus", "fec": True}, "--fec needs --application voip or audio"),
    ({"port": 0}, "port: 0 is outside 1..65535"),
])
def test_a_bad_key_or_value_names_the_file_the_key_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError) as e:
        from_mapping(SenderConfig, data, "/etc/jacknet/send.toml")
    assert str(e.value).startswith("/etc/jacknet/send.toml: ") and message in str(e.value)


@pytest.mark.parametrize("make, message", [
    (lambda: Sender(SenderConfig(channels=0)), "--channels: 0 is outside 1..64"),
    (lambda: Sender(SenderConfig(codec="float32", complexity=3)),
     "--complexity applies to --codec opus only"),
    (lambda: Sender(SenderConfig(codec="opus", frames_per_packet=256)),
     "--frames-per-packet does not apply to --codec opus"),
    (lambda: Sender(SenderConfig("239.1.2.3", transport="tcp")), "multicast needs --transport udp"),
    (lambda: Receiver(ReceiverConfig(latency_ms=5000)), "--latency: 5000 ms is more than"),
    (lambda: Receiver(ReceiverConfig(resampler="best")), "--resampler: invalid choice: 'best'"),
    (lambda: Receiver(ReceiverConfig(connect="(")), "--connect: bad regular expression"),
])
def test_the_library_refuses_what_the_command_line_refuses(make, message):
    with pytest.raises(ConfigError, match=None) as e:
        make()
    assert message in str(e.value)


def test_defaults_are_the_documented_ones():
    s, r = SenderConfig(), ReceiverConfig()
    assert (s.port, s.codec, s.mtu, s.redundancy, s.opus.frame_ms, s.opus.bitrate) == \
        (4477, "float32", None, 0, 5.0, 96000)
    assert (r.host, r.port, r.latency_ms, r.drift, r.resampler) == \
        ("0.0.0.0", 4477, 5.0, False, "sinc_fastest")
