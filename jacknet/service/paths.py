"""Where a daemon keeps its files: the status socket in the runtime
directory, remembered connections in the state directory.  Each follows
systemd's directories when it runs as a service (``RuntimeDirectory=``,
``StateDirectory=``), else the XDG ones of the user."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def socket_dir(environ=None) -> Path:
    """Where daemons put their status sockets."""
    env = os.environ if environ is None else environ
    if env.get("RUNTIME_DIRECTORY"):
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/run/jacknet")
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "jacknet"
    return Path(f"/tmp/jacknet-{os.geteuid()}")


def state_dir(environ=None) -> Path:
    """Where daemons keep state across restarts: ``$STATE_DIRECTORY``, else
    ``$XDG_STATE_HOME/jacknet``, else ``~/.local/state/jacknet``."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "jacknet"


def chosen(setting: str, directory: Callable[[], Path], filename: str) -> Path | None:
    """A path option's value: ``off`` (None), ``auto`` (``filename`` in
    ``directory()``) or a path of the user's."""
    if setting == "off":
        return None
    if setting == "auto":
        return directory() / filename
    return Path(setting)
