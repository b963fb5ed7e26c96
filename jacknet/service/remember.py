"""Connections made by hand to a daemon's ports, remembered in a state file
so they come back after the other client, the JACK server or the daemon
restarts (``[jack] remember-connections``).

The rule, applied once a second from the supervisor's thread:

- a connection of ours that nobody's ``--connect`` pattern made is remembered;
- a remembered connection whose far port has gone stays remembered: its
  client may come back;
- one whose far port is back, under a new client (a new JACK client id: it
  restarted, or the server did), is made again;
- one whose far port stayed, in the same client, but is no longer connected
  was taken down by someone on purpose, and is forgotten.

`ConnectionMemory` holds that rule and the file, apart from JACK: the
supervisor hands it what it sees.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from jacknet.service.paths import chosen, state_dir

log = logging.getLogger(__name__)

SCHEMA = 1

Pair = tuple[str, str]  # (our port's short name, the far port's full name)


def state_path(name: str, setting: str) -> Path | None:
    """The file for the daemon ``name``: ``setting`` is ``off`` (None),
    ``auto`` (`state_dir`/NAME.connections.json) or a path."""
    return chosen(setting, state_dir, f"{name}.connections.json")


class ConnectionMemory:
    """The remembered connections of one daemon, and the rule above.

    Parameters
    ----------
    path : Path
        The state file: read now if it exists (a broken one is set aside
        with a warning, never fatal), written whenever the set changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pairs: set[Pair] = set()
        self._seen: dict[Pair, str | None] = {}  # far client's id when last seen connected
        self._failed = False  # a write failed, and was said
        try:
            data = json.loads(path.read_text())
            self.pairs = {(str(a), str(b)) for a, b in data["connections"]}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring the remembered connections in %s (%s); starting afresh",
                        path, e)

    def new_client(self) -> None:
        """Our JACK client is new (a rebuild): its ports have no connections
        yet, and none was taken down on purpose."""
        self._seen.clear()

    def observe(self, connected: list[Pair], made_by_pattern: set[Pair],
                client_of: Callable[[str], str | None]) -> list[Pair]:
        """One look at our ports: ``connected`` is every connection they have
        now, ``made_by_pattern`` those ``--connect`` accounts for, and
        ``client_of(port)`` the id of the client a port belongs to (None if
        there is no such port).  Returns the remembered pairs to make again."""
        now = set(connected)
        before = set(self.pairs)
        self.pairs |= now - made_by_pattern
        again = []
        for pair in sorted(self.pairs):
            client = client_of(pair[1])
            if pair in now:
                self._seen[pair] = client
            elif client is None:
                self._seen[pair] = None  # its client is away; it may come back
            elif self._seen.get(pair) == client:
                self.pairs.discard(pair)  # taken down on purpose: both ends stayed
                self._seen.pop(pair)
            else:
                again.append(pair)
        if self.pairs != before:
            self._save()
        return again

    def _save(self) -> None:
        body = json.dumps({"schema": SCHEMA, "connections": sorted(self.pairs)}, indent=1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(body + "\n")
            os.replace(tmp, self.path)  # never a half-written file after a crash
            self._failed = False
        except OSError as e:
            if not self._failed:
                log.warning("cannot remember connections in %s: %s (they are kept in memory)",
                            self.path, e.strerror)
            self._failed = True
