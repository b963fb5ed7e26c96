"""The status socket: a running daemon answers ``jacknet status`` over a
local Unix socket (never a network port), one JSON line per request.

A client connects, may send one line (``status``, the only request so far;
an empty line or none means the same), and reads one JSON object followed
by a newline, then the daemon closes the connection.  The object's
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
from pathlib import Path
from typing import Callable

from jacknet.errors import ConfigError
from jacknet.service.paths import chosen, socket_dir

log = logging.getLogger("jacknet")

SCHEMA = 1
MAX_REQUEST = 1024
CLIENT_SECONDS = 1.0  # a client that says nothing for this long gets its answer anyway


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
    """

    def __init__(self, path: Path, snapshot: Callable[[], dict]) -> None:
        self.path = Path(path)
        self.snapshot = snapshot
        self.requests = 0
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
            with conn:
                with contextlib.suppress(OSError):
                    self._answer(conn)

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
        if word in ("", "status"):
            try:
                answer = {"schema": SCHEMA, **self.snapshot()}
            except Exception as e:  # a bug here must not take the daemon down
                log.exception("status snapshot failed")
                answer = {"schema": SCHEMA, "error": f"internal error: {e}"}
        else:
            answer = {"schema": SCHEMA, "error": f"unknown request {word[:40]!r}; ask 'status'"}
        self.requests += 1
        conn.sendall(json.dumps(answer, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            if self._thread:
                self._thread.join(2)
            with contextlib.suppress(OSError):
                self.path.unlink()


def query(path: Path, timeout: float = 2.0) -> dict:
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
        sock.sendall(b"status\n")
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


def show_status(name: str | None = None, as_json: bool = False, watch: bool = False,
                socket: str | None = None) -> int:
    """``jacknet status``: ask the daemon ``name`` (or every one found, or
    the one at ``socket``) and print its answer; 1 if none answers."""
    if socket:
        paths = [Path(socket)]
    elif name:
        paths = [socket_path(name)]
    else:
        paths = sorted(socket_dir().glob("*.sock"))
    if not paths:
        print(f"jacknet status: no daemon's socket in {socket_dir()} (is one running? "
              "is its [status] socket elsewhere?)", file=sys.stderr)
        return 1
    try:
        return _ask(paths, as_json, watch)
    except KeyboardInterrupt:  # the way out of --watch
        return 0


def _ask(paths: list[Path], as_json: bool, watch: bool) -> int:
    import time

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
