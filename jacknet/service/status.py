"""The status socket: a running daemon answers ``jacknet status`` over a
local Unix socket (never a network port), one JSON line per request.

A client connects and may send one line: ``status`` (an empty line or
none means the same) or ``history``, and reads one JSON object followed by
a newline, then the daemon closes the connection; or ``subscribe``, and
reads a JSON line every `UPDATE_SECONDS` (the status, and the history
rows and events it has not had yet) until it hangs up.  Each object's
``schema`` says which version of `docs/status.md` it follows.  Answering
reads the node's counters and changes nothing.

The socket is owner- and group-only (mode 0660) in a directory only they
can enter (0750): ``$RUNTIME_DIRECTORY`` under systemd
(``RuntimeDirectory=jacknet``), else ``/run/jacknet`` for root, else
``$XDG_RUNTIME_DIR/jacknet``, named after the daemon's JACK client name.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from jacknet.errors import ConfigError
from jacknet.service.paths import chosen, socket_dir

log = logging.getLogger("jacknet")

SCHEMA = 1
MAX_REQUEST = 1024
CLIENT_SECONDS = 1.0  # a client that says nothing for this long gets its answer anyway
UPDATE_SECONDS = 0.1  # a subscriber's meters move ten times a second
MAX_CLIENTS = 16  # connections served at once; more are told to come back


def socket_path(name: str, setting: str = "auto") -> Path | None:
    """The status socket of daemon ``name``: ``setting`` is a path, ``auto``
    (`socket_dir` / NAME.sock) or ``off`` (None)."""
    return chosen(setting, socket_dir, f"{name}.sock")


class StatusServer:
    """Answers status requests on ``path`` from a thread of its own.

    Parameters
    ----------
    path : Path
        The socket to create (a stale one left by a dead daemon is replaced).
    snapshot : callable
        Returns the dict to answer with (``schema`` is added).
    history : History, optional
        The daemon's history, for ``history`` and ``subscribe``.
    """

    def __init__(self, path: Path, snapshot: Callable[[], dict], history=None) -> None:
        self.path = Path(path)
        self.snapshot = snapshot
        self.history = history
        self.requests = 0
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StatusServer:
        """Bind and listen; `ConfigError` if the path cannot be used or another
        daemon answers there already."""
        if self.path.parent != Path("."):
            try:
                self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"status socket {self.path}: cannot make its directory: "
                                  f"{e.strerror} (set [status] socket to another path, or off)")
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise ConfigError(f"status socket {self.path}: another daemon answers there "
                                  "(give this one another --name or [status] socket)")
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o117)  # never world-accessible, not even for an instant
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old)
            sock.listen(8)
        except OSError as e:
            sock.close()
            raise ConfigError(f"status socket {self.path}: {e.strerror} "
                              "(set [status] socket to another path, or off)") from None
        sock.settimeout(0.25)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="jacknet-status", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            if not self._clients.acquire(blocking=False):
                with conn, contextlib.suppress(OSError):
                    conn.sendall(_line({"schema": SCHEMA, "error": "busy: too many clients "
                                        "at once; ask again"}))
                continue
            threading.Thread(target=self._client, args=(conn,), name="jacknet-status-client",
                             daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            with conn, contextlib.suppress(OSError):
                self._answer(conn)
        finally:
            self._clients.release()

    def _status(self) -> dict:
        try:
            return {"schema": SCHEMA, **self.snapshot()}
        except Exception as e:  # a bug here must not take the daemon down
            log.exception("status snapshot failed")
            return {"schema": SCHEMA, "error": f"internal error: {e}"}

    def _subscribe(self, conn: socket.socket) -> None:
        """Stream updates until the client hangs up or the server closes."""
        rows = events = 0
        while self._sock is not None:
            update = self._status()
            if self.history is not None:
                h = self.history.since(rows, events)
                rows, events = h["rows_made"], h["events_made"]
                update["history"] = h
            conn.sendall(_line(update))  # OSError once the client has gone
            time.sleep(UPDATE_SECONDS)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_SECONDS)
        request = b""
        with contextlib.suppress(TimeoutError):
            while b"\n" not in request and len(request) < MAX_REQUEST:
                chunk = conn.recv(MAX_REQUEST)
                if not chunk:
                    break
                request += chunk
        word = request.split(b"\n", 1)[0].strip().decode("ascii", "replace")
        self.requests += 1
        if word == "subscribe" and self.history is not None:
            conn.settimeout(CLIENT_SECONDS * 5)  # a reader that stops reading is let go
            self._subscribe(conn)
            return
        if word in ("", "status"):
            answer = self._status()
        elif word == "history" and self.history is not None:
            answer = {"schema": SCHEMA, "history": self.history.since()}
        else:
            answer = {"schema": SCHEMA, "error": f"unknown request {word[:40]!r}; ask "
                      "'status', 'history' or 'subscribe'"}
        conn.sendall(_line(answer))

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            if self._thread:
                self._thread.join(2)
            with contextlib.suppress(OSError):
                self.path.unlink()


def _line(answer: dict) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode() + b"\n"


def subscribe(path: Path, timeout: float = 2.0):
    """Updates from the daemon at ``path`` (dicts, `UPDATE_SECONDS` apart)
    until it goes away; raises OSError if nothing answers there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(b"subscribe\n")
        pending = b""
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield json.loads(line)


def query(path: Path, timeout: float = 2.0, request: str = "status") -> dict:
    """Ask the daemon at ``path`` for its status.

    Raises
    ------
    OSError
        Nothing answers there.
    ValueError
        The answer is not one JSON object.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(request.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    return answer


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
        return True
    except OSError:
        return False


def sockets(name: str | None = None, socket: str | None = None) -> list[Path]:
    """The status sockets to ask: the one at ``socket``, daemon ``name``'s,
    or every one in the runtime directory."""
    if socket:
        return [Path(socket)]
    if name:
        return [socket_path(name)]
    return sorted(socket_dir().glob("*.sock"))


def _none_found() -> str:
    return (f"no daemon's socket in {socket_dir()} (is one running? is its [status] socket "
            "elsewhere? then give --socket PATH)")


def show_top(name: str | None = None, socket: str | None = None) -> int:
    """``jacknet top``: the one daemon found (or named) in a terminal."""
    from jacknet.monitor.top import run_top
    paths = sockets(name, socket)
    if len(paths) != 1:
        found = ", ".join(p.stem for p in paths)
        print(f"jacknet top: {_none_found() if not paths else 'several daemons: ' + found}"
              f"{'; name one' if paths else ''}", file=sys.stderr)
        return 2 if paths else 1
    try:
        return run_top(paths[0])
    except KeyboardInterrupt:
        return 0


def show_status(name: str | None = None, as_json: bool = False, watch: bool = False,
                socket: str | None = None) -> int:
    """``jacknet status``: ask the daemon ``name`` (or every one found, or
    the one at ``socket``) and print its answer; 1 if none answers."""
    paths = sockets(name, socket)
    if not paths:
        print(f"jacknet status: {_none_found()}", file=sys.stderr)
        return 1
    try:
        return _ask(paths, as_json, watch)
    except KeyboardInterrupt:  # the way out of --watch
        return 0


def _ask(paths: list[Path], as_json: bool, watch: bool) -> int:
    from jacknet.stats import format_line

    while True:
        answered = 0
        for path in paths:
            try:
                answer = query(path)
            except (OSError, ValueError) as e:
                print(f"jacknet status: {path}: no answer ({getattr(e, 'strerror', None) or e})",
                      file=sys.stderr)
                continue
            answered += 1
            if as_json:
                print(json.dumps(answer, separators=(",", ":")), flush=True)
                continue
            print(f"{answer.get('name') or path.stem} [{answer.get('role')}] "
                  f"{answer.get('summary')}", flush=True)
            if "stats" in answer:
                print("  " + format_line(answer["role"], answer["stats"]), flush=True)
            line = transport_line(answer.get("jack_transport"))
            if line:
                print("  " + line, flush=True)
        if not watch:
            return 0 if answered else 1
        time.sleep(1.0)


def transport_line(t: dict | None) -> str | None:
    """One line on the JACK transports, for people (None when there is none to tell of)."""
    if not t:
        return None
    if "shared" in t:
        if not t["shared"]:
            return "JACK transport: not shared (--no-transport)"
        return t["state"] and f"JACK transport: {t['state']} at {t['frame']}, sent with every packet"
    sender = t["sender"]
    said = (f"sender {sender['state']} at {sender['frame']}" if sender["state"]
            else "nothing heard of a sender's JACK transport")
    if not t["follow"]:
        return f"JACK transport: {said}; not followed here (--follow-transport)"
    here = t["here"]
    apart = f", {t['offset_frames']} frames apart" if t["offset_frames"] is not None else ""
    return f"JACK transport: {said}, here {here['state']} at {here['frame']}{apart}"
