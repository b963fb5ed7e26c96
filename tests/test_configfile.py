"""Config files: TOML in sections, read against the option schema.  Every
key means what its flag means, the command line overrides the file, and
whatever is wrong names the file, the section, the key and what is allowed,
in one line, with exit code 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jacknet.cli import build_parser, _configs
from jacknet.configfile import ROLES, build, load
from jacknet.options import key_of, options
from test_config import NEEDS, as_text, other_value

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write(tmp_path: Path, text: str, name: str = "jacknet.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def configs_of(argv: list[str]):
    role = argv[0]
    return _configs(role, build_parser().parse_args(argv), argv)


@pytest.mark.parametrize("role", ["send", "recv"])
def test_every_key_means_what_its_flag_means(tmp_path, role):
    side_cls = ROLES[role][0]
    address = "h:9" if role == "send" else ":9"
    for cls in ROLES[role]:
        for f, option in options(cls):
            if not option.flag:
                continue
            value = other_value(f, option.kind)
            needs = {n: v for n, v in NEEDS.get(f.name, {}).items()}
            flags = [f"--{key_of(f)}", *as_text(option.kind, value)]
            lines = {option.section: [f"{key_of(f)} = {toml_value(value)}"]}
            for name, v in needs.items():
                nf, no = next((x, o) for x, o in options(cls) if x.name == name)
                flags += [f"--{key_of(nf)}", *as_text(no.kind, v)]
                lines.setdefault(no.section, []).append(f"{key_of(nf)} = {toml_value(v)}")
            text = f'role = "{role}"\n' + "".join(
                f"[{section}]\n" + "\n".join(keys) + "\n" for section, keys in lines.items())
            path = write(tmp_path, text)
            from_flags = configs_of([role, address, *flags])
            from_file = configs_of([role, address, "--config", str(path)])
            assert from_flags == from_file, f.name
            config = from_file[0] if cls is side_cls else from_file[1]
            assert getattr(config, f.name) == value != f.default, f.name


def test_the_command_line_overrides_the_file(tmp_path):
    path = write(tmp_path, 'role = "send"\n[link]\nhost = "10.0.0.1"\nport = 5000\n'
                           '[audio]\nchannels = 4\n[run]\nstats-interval = 2\n')
    config, run = configs_of(["send", "--config", str(path), "--channels", "6"])
    assert (config.host, config.port, config.channels, run.stats_interval) == \
        ("10.0.0.1", 5000, 6, 2.0)
    config, _ = configs_of(["send", "10.0.0.9", "--config", str(path)])
    assert (config.host, config.port) == ("10.0.0.9", 5000)   # a host alone keeps the file's port
    config, _ = configs_of(["send", "10.0.0.9:6000", "--config", str(path)])
    assert (config.host, config.port) == ("10.0.0.9", 6000)


def test_the_examples_load_and_config_check_prints_a_file_that_gives_the_same(tmp_path):
    for name in ("send.toml", "recv.toml"):
        out = subprocess.run([sys.executable, "-m", "jacknet", "config", "check",
                              str(EXAMPLES / name)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        shown = write(tmp_path, out.stdout, name)
        role, first = load(EXAMPLES / name)
        _, second = load(shown)
        built = lambda values: {cls: build(cls, v) for cls, v in values.items()}  # noqa: E731
        assert built(first) == built(second)


@pytest.mark.parametrize("text, message", [
    ('role = "send"\n[link]\nhost = "h"\n[audio]\nchanels = 2\n',
     "[audio] has no key 'chanels'; keys of [audio]: channels"),
    ('role = "send"\n[link]\nhost = "h"\n[audio]\ncodec = "opus"\n',
     "[audio] has no key 'codec'; it belongs in [codec]"),
    ('role = "send"\n[links]\nhost = "h"\n', "unknown section [links]; sections: link"),
    ('role = "send"\n[link]\nhost = "h"\n[audio]\nchannels = "two"\n',
     "[audio] channels: 'two' is not a whole number"),
    ('role = "send"\n[link]\nhost = "h"\n[audio]\nchannels = 65\n',
     "[audio] channels: 65 is outside 1..64"),
    ('role = "send"\n[link]\nhost = "h"\n[codec]\nbitrate = 64000\n',
     "--bitrate applies to --codec opus only"),
    ('role = "recv"\n[receive]\nlatency = 5\n', "the file is for 'jacknet recv', not 'jacknet send'"),
    ('role = "sender"\n', "role must be one of send, recv, not 'sender'"),
    ('role = "send"\n[link\n', "not valid TOML"),
    ('role = "send"\n[audio]\nchannels = 2\n', "[link] host in --config"),
])
def test_a_bad_file_is_one_line_naming_file_key_and_what_is_allowed_exit_2(tmp_path, text, message):
    path = write(tmp_path, text)
    out = subprocess.run([sys.executable, "-m", "jacknet", "send", "--config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr, out.stderr
    if "[link] host in --config" not in message:
        assert str(path) in out.stderr


def test_a_file_that_cannot_be_read_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "jacknet", "recv", "--config",
                          str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert out.returncode == 2 and "cannot read it" in out.stderr, out.stderr
