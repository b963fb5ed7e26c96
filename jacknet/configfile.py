"""Config files: TOML read against the option schema (`jacknet.config`).

A file holds one daemon: ``role = "send"`` or ``"recv"``, then one table per
section the options declare (``[link]``, ``[audio]``, ``[jack]``,
``[codec]``, ``[receive]``, ``[run]``), each key spelled like its flag
without the dashes::

    role = "send"
    [link]
    host = "192.168.1.20"
    [audio]
    channels = 2
    [jack]
    connect = "system:capture_.*"

`load` checks every key against its option and gives the field values; the
command line then overrides them (`jacknet.cli`).  Whatever is wrong names
the file, the section, the key and what is allowed.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from jacknet.config import ReceiverConfig, RunConfig, SenderConfig
from jacknet.errors import ConfigError
from jacknet.options import Flag, Latency, key_of, options

ROLES = {"send": (SenderConfig, RunConfig), "recv": (ReceiverConfig, RunConfig)}


def sections(classes) -> dict[str, dict[str, tuple]]:
    """section -> key -> (config class, field, option), for ``classes``."""
    out: dict[str, dict[str, tuple]] = {}
    for cls in classes:
        for f, option in options(cls):
            out.setdefault(option.section, {})[key_of(f)] = (cls, f, option)
    return out


def read(path: str | Path) -> dict:
    """The parsed TOML of ``path`` (`ConfigError` if it cannot be read or parsed)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def role_of(data: dict, where: str, wanted: str | None = None) -> str:
    """The file's role; ``wanted`` (the command it was given to) when it has none."""
    role = data.get("role", wanted)
    if role not in ROLES:
        raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}, not {role!r}")
    if wanted is not None and role != wanted:
        raise ConfigError(f"{where}: the file is for 'jacknet {role}', not 'jacknet {wanted}'")
    return role


def load(path: str | Path, wanted: str | None = None) -> tuple[str, dict[type, dict[str, Any]]]:
    """The role of the file at ``path`` and, per config class, the field
    values it sets (checked one by one; the rules between them are checked
    once the command line has had its say)."""
    where = str(path)
    data = read(path)
    role = role_of(data, where, wanted)
    known = sections(ROLES[role])
    values: dict[type, dict[str, Any]] = {cls: {} for cls in ROLES[role]}
    for section, table in data.items():
        if section == "role":
            continue
        if section not in known:
            raise ConfigError(f"{where}: unknown section [{section}]; sections: "
                              f"{', '.join(known)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} must be a table: [{section}]")
        for key, value in table.items():
            entry = known[section].get(key)
            if entry is None:
                home = next((s for s, keys in known.items() if key in keys), None)
                hint = (f"it belongs in [{home}]" if home else
                        f"keys of [{section}]: {', '.join(known[section])}")
                raise ConfigError(f"{where}: [{section}] has no key {key!r}; {hint}")
            cls, f, option = entry
            try:
                values[cls][f.name] = option.kind.check(value)
            except ValueError as e:
                raise ConfigError(f"{where}: [{section}] {key}: {e}") from None
    return role, values


def build(cls, *layers: dict[str, Any], where: str | None = None):
    """A config of ``cls`` from field values, later layers winning, validated
    (its errors prefixed with ``where``, the file, if given)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    config = cls(**merged)
    try:
        return config.validate() if hasattr(config, "validate") else config
    except ConfigError as e:
        if where is None:
            raise
        raise ConfigError(f"{where}: {e}") from None


def render(role: str, configs: dict[type, Any]) -> str:
    """The effective configuration as a config file (every key, defaults too)."""
    lines = [f'role = "{role}"']
    for section, keys in sections(ROLES[role]).items():
        lines.append(f"\n[{section}]")
        for key, (cls, f, option) in keys.items():
            value = getattr(configs[cls], f.name)
            if value is None and isinstance(option.kind, Latency):
                lines.append(f'{key} = "auto"')
            elif value is None:
                lines.append(f"# {key} = (not set)")
            else:
                lines.append(f"{key} = {_toml(value, option)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any, option) -> str:
    if isinstance(option.kind, Flag) or isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:g}" if not value.is_integer() else f"{value:.1f}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v, option) for v in value) + "]"
    return str(value)
