"""The systemd notification protocol (sd_notify(3)), without libsystemd.

systemd passes a datagram socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``); a service sends it
newline-separated ``KEY=value`` lines: ``READY=1``, ``STATUS=...``,
``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``.  With ``WatchdogSec=`` set,
systemd also passes ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, the process
meant) and kills a service that does not send ``WATCHDOG=1`` within it.

Outside systemd there is no socket and every call does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("jacknet")


class Notifier:
    """Sends state messages to systemd, if it asked for them.

    Parameters
    ----------
    environ : mapping, optional
        Where to find ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` (default: the
        process environment).
    """

    def __init__(self, environ=None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._last_status: str | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test standing in for it) listens."""
        return self._sock is not None

    def send(self, *lines: str) -> None:
        """Send ``KEY=value`` lines as one message; a failure is logged once
        and never raised (the daemon runs on whether systemd hears it or not)."""
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as e:
            log.warning("cannot notify systemd at %s: %s; no more notifications",
                        os.environ.get("NOTIFY_SOCKET"), e.strerror)
            self.close()

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """A one-line summary of the state; sent only when it changed."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an older one.
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):  # the abstract namespace: a leading NUL byte
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract name; not notifying", value)
    return None


def _watchdog_seconds(env) -> float | None:
    """The watchdog's timeout, if it is meant for this process."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
