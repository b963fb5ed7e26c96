"""The machinery behind the option schema (`jacknet.config`): kinds of value,
the `Option` a config field carries, and what reads it (argparse, a mapping
such as a parsed TOML file, and the per-field checks).

Each kind turns command-line text (`Kind.parse`) or a typed value from a
file (`Kind.check`) into the value, or raises ValueError saying what is
allowed.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable

from jacknet.errors import ConfigError
from jacknet.security.access import parse_network

MAX_LATENCY_MS = 1000.0  # the most the receiver's ring is sized for with a fixed margin


class Kind:
    metavar: str | None = None

    def parse(self, text: str) -> Any:
        return self.check(text)

    def check(self, value: Any) -> Any:
        return value


class Int(Kind):
    def __init__(self, lo: int, hi: int, metavar: str | None = None) -> None:
        self.lo, self.hi, self.metavar = lo, hi, metavar

    def parse(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        return self.check(value)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole number")
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{value} is outside {self.lo}..{self.hi}")
        return value


class AutoInt(Int):
    """A whole number in ``lo..hi``, or ``auto`` (None): the program chooses."""

    def parse(self, text: str) -> int | None:
        if text == "auto":
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number{self._allowed}") from None
        return self.check(value)

    def check(self, value: Any) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            return super().check(value)
        except ValueError as e:
            raise ValueError(f"{e}{self._allowed}") from None

    @property
    def _allowed(self) -> str:
        return f"; give {self.lo}..{self.hi} or auto"


class Seconds(Kind):
    """A positive number of seconds (or any positive quantity)."""

    def __init__(self, metavar: str = "S", most: float = 1e6) -> None:
        self.metavar, self.most = metavar, most

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return self.check(value)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not a number")
        if not 0 < value < 1e6:
            raise ValueError(f"{value} must be positive")
        if value > self.most:
            raise ValueError(f"{value} ms is more than the {self.most:g} ms the buffer holds")
        return float(value)


class Latency(Seconds):
    """Milliseconds of margin, or ``auto`` (None)."""

    def __init__(self, allow_auto: bool = True) -> None:
        super().__init__("MS|auto" if allow_auto else "MS", MAX_LATENCY_MS)
        self.allow_auto = allow_auto

    def parse(self, text: str) -> float | None:
        if text == "auto" and self.allow_auto:
            return None
        return super().parse(text)

    def check(self, value: Any) -> float | None:
        if value is None or (value == "auto" and self.allow_auto):
            return None
        return super().check(value)


class Choice(Kind):
    def __init__(self, choices, convert: Callable[[str], Any] = str) -> None:
        self.choices, self.convert = tuple(choices), convert
        self.metavar = "{" + ",".join(f"{c:g}" if isinstance(c, float) else str(c)
                                      for c in self.choices) + "}"

    def parse(self, text: str) -> Any:
        try:
            return self.check(self.convert(text))
        except ValueError:
            raise ValueError(f"invalid choice: {text!r} (choose from "
                             f"{', '.join(map(str, self.choices))})") from None

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.choices:
            raise ValueError(f"invalid choice: {value!r} (choose from "
                             f"{', '.join(map(str, self.choices))})")
        return value


class Flag(Kind):
    """On when given (``--fec``); true or false in a file."""

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
        return value


class Text(Kind):
    def __init__(self, metavar: str | None = None) -> None:
        self.metavar = metavar

    def check(self, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        return value


class Regex(Text):
    def check(self, value: Any) -> str | None:
        value = super().check(value)
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"bad regular expression {value!r}: {e}") from None
        return value


class Networks(Kind):
    """Addresses and CIDR networks: ``10.0.0.0/8,192.168.1.20`` on the
    command line, a list of strings in a file."""

    metavar = "NET[,NET...]"

    def parse(self, text: str) -> list[str]:
        return self.check([part for part in text.split(",") if part.strip()])

    def check(self, value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{value!r} is not a list of addresses or networks")
        if not value:
            raise ValueError("an empty list would refuse every sender")
        for entry in value:
            parse_network(entry)
        return [v.strip() for v in value]


class Bitrate(Kind):
    """kbit/s per channel, ``96`` or ``96k``; the value is bits per second."""

    metavar = "KBPS"

    def parse(self, text: str) -> int:
        try:
            kbps = float(text.lower().removesuffix("k"))
        except ValueError:
            raise ValueError(f"{text!r} is not a bitrate in kbit/s") from None
        return self._check_kbps(kbps)

    def check(self, value: Any) -> int:
        """Bits per second, or text as on the command line (``"96k"``)."""
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not a bitrate in bits/s (or \"96k\")")
        return self._check_kbps(value / 1000)

    @staticmethod
    def _check_kbps(kbps: float) -> int:
        if not 6 <= kbps <= 256:
            raise ValueError(f"{kbps:g} kbit/s per channel is outside 6..256")
        return round(kbps * 1000)


@dataclass(frozen=True)
class Option:
    """How one config field is given, checked and explained."""

    kind: Kind
    help: str
    section: str
    """Where it belongs in a config file: link, jack, audio, codec, receive, run."""
    live: bool = False
    """Whether a running daemon may change it without rebuilding the link."""
    flag: bool = True
    """False for ``host`` and ``port``, which the command line takes positionally."""
    key: str | None = None
    """The flag and file key, if not the field's name with dashes."""
    short: str | None = None
    """A one-letter flag as well (``-v``)."""


def opt(default: Any, kind: Kind, help: str, section: str, **more: Any) -> Any:
    """A dataclass field declared as an option (``default`` may be a factory's value)."""
    return dataclasses.field(default=default,
                             metadata={"option": Option(kind, help, section, **more)})


def options(cls) -> list[tuple[dataclasses.Field, Option]]:
    """The fields of a config class that are options, with their `Option`."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def key_of(f: dataclasses.Field) -> str:
    """The option's flag without its dashes, which is also its key in a file."""
    return f.metadata["option"].key or f.name.replace("_", "-")


def check_fields(config) -> None:
    """Each field against its option's kind (range, choices, type)."""
    for f, option in options(type(config)):
        value = getattr(config, f.name)
        if value is None and f.default is None:
            continue
        try:
            option.kind.check(value)
        except ValueError as e:
            raise ConfigError(f"--{key_of(f)}: {e}" if option.flag else f"{f.name}: {e}") from None


def from_mapping(cls, data: dict, where: str = "config"):
    """A config of class ``cls`` from a mapping of keys to typed values (a
    TOML table, say), validated.  ``where`` names the source in errors.

    Raises
    ------
    ConfigError
        For an unknown key (listing the known ones), a wrong type or value.
    """
    known = {key_of(f): (f, option) for f, option in options(cls)}
    values = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys: {', '.join(known)}")
        f, option = known[key]
        try:
            values[f.name] = option.kind.check(value)
        except ValueError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None
    config = cls(**values)
    try:
        return config.validate() if hasattr(config, "validate") else config
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


# -- the command line ------------------------------------------------------------

def add_arguments(parser, cls, skip: tuple[str, ...] = (), groups: dict | None = None,
                  given_only: bool = False) -> None:
    """One flag per option of ``cls`` (``--frames-per-packet`` for
    ``frames_per_packet``), whose value, once parsed, is already checked.
    ``groups`` maps a field name to the argparse group it goes in.
    ``given_only``: no defaults, so the parsed namespace holds only the
    flags given (what overrides a config file)."""
    for f, option in options(cls):
        if not option.flag or f.name in skip:
            continue
        target = (groups or {}).get(f.name, parser)
        flags = [f"-{option.short}"] if option.short else []
        flags.append("--" + key_of(f))
        default = argparse.SUPPRESS if given_only else f.default
        if isinstance(option.kind, Flag):
            target.add_argument(*flags, dest=f.name, action="store_true", help=option.help,
                                **({"default": default} if given_only else {}))
            continue

        def parse(text: str, kind: Kind = option.kind) -> Any:
            try:
                return kind.parse(text)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None

        target.add_argument(*flags, dest=f.name, type=parse, default=default,
                            metavar=option.kind.metavar, help=option.help)


def from_args(cls, args, **more: Any):
    """A config of class ``cls`` from parsed arguments (plus ``more``), validated."""
    values = {f.name: getattr(args, f.name) for f, option in options(cls)
              if option.flag and hasattr(args, f.name)}
    config = cls(**values, **more)
    return config.validate() if hasattr(config, "validate") else config
