"""Running a sender or receiver as a daemon: start it, print its stats,
rebuild it when the JACK server goes away, changes its period or rate, or
stops running its process callback; stop on SIGINT/SIGTERM.

The command line calls `Supervisor.run`; systemd notification and a status
socket hook in at `on_ready` and `on_tick`.
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from typing import Callable

from jacknet.errors import ServerNotRunning
from jacknet.node import STALL_SECONDS, Node
from jacknet.stats import format_line

log = logging.getLogger("jacknet")

REBUILD_SECONDS = 1.0  # how often to look for a JACK server that went away
HEALTH_SECONDS = 0.25  # how often to look at the node's health (server gone, format, stall)


def stop_on_signals() -> threading.Event:
    """An event that SIGINT and SIGTERM set (call from the main thread)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


class Supervisor:
    """Keeps one node running until stopped.

    Parameters
    ----------
    make : callable
        Makes a new, unstarted node (a `Sender` or `Receiver`).
    side : str
        ``send`` or ``recv``: the stats line's prefix.
    interval : float
        Seconds between stats ticks.
    seconds : float, optional
        Stop after this long.
    stop : threading.Event, optional
        Set to stop (default: SIGINT or SIGTERM).
    on_tick : callable, optional
        Called with each stats snapshot (default: print the stats line).
    on_ready : callable, optional
        Called with the node each time it has (re)started.
    retry : float
        Seconds between attempts to rebuild while no JACK server runs.
    """

    def __init__(self, make: Callable[[], Node], side: str, interval: float,
                 seconds: float | None = None, stop: threading.Event | None = None,
                 on_tick: Callable | None = None, on_ready: Callable[[Node], None] | None = None,
                 retry: float = REBUILD_SECONDS) -> None:
        self.make, self.side, self.interval, self.seconds = make, side, interval, seconds
        self.stop = stop
        self.on_tick = on_tick or (lambda stats: print(format_line(side, stats), flush=True))
        self.on_ready = on_ready or (lambda node: None)
        self.retry = retry
        self.reconnects = 0
        self.stalls = 0
        self.node: Node | None = None

    def run(self) -> int:
        """Run until stopped; returns the exit code (0).  The first start's
        errors (no JACK server, a bad address) go up to the caller."""
        stop = self.stop or stop_on_signals()
        start = time.monotonic()
        deadline = start + self.seconds if self.seconds else None
        next_tick = start + self.interval
        self.node = self.make().start()
        self.on_ready(self.node)
        try:
            while True:
                now = time.monotonic()
                wait = min(HEALTH_SECONDS, max(0.0, next_tick - now))
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                if stop.wait(wait):
                    break
                now = time.monotonic()
                if now >= next_tick:
                    next_tick += self.interval * (int((now - next_tick) / self.interval) + 1)
                    stats = self.node.stats()
                    if self.reconnects:
                        stats = dataclasses.replace(stats, reconnects=self.reconnects)
                    self.on_tick(stats)
                why = self._trouble()
                if why is not None and not self._rebuild(why, stop):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            if self.node is not None:
                self.node.close()
        return 0

    def _trouble(self) -> str | None:
        """Why the node must be rebuilt now, or None while it is well."""
        node = self.node
        if node.jack_lost:
            return "lost"
        if node.format_changed:
            return "format"
        if node.stalled():
            return "stalled"
        return None

    def _rebuild(self, why: str, stop: threading.Event) -> bool:
        """Close the node and start a new one (with the connections the old
        one had, when JACK itself is still there); False if stopped first."""
        node = self.node
        old_name = node.jack.name
        if why == "lost":
            log.warning("the JACK server went away (%s); waiting for it to come back",
                        node.jack.shutdown_reason or "no reason given")
        elif why == "format":
            # Buffers, packet size and jitter-buffer timing all follow from
            # the period and rate: rebuild rather than patch.
            log.info("JACK's period or sample rate changed; rebuilding the link")
        else:
            # JACK no longer runs our callback and waits for it, so every
            # client on the server is held up; closing ours lets it go on.
            log.warning("JACK stopped running client '%s' (no cycle for %.1f s while the "
                        "server's clock ran on); closing and reopening it", old_name,
                        STALL_SECONDS)
            self.stalls += 1
        keep = node.jack.connections() if why != "lost" else []
        node.close()
        self.node = self.restart(stop)
        if self.node is None:
            return False
        if keep:
            made = self.node.jack.restore(keep, old_name)
            log.info("restored %d of %d connection(s)", made, len(keep))
        self.reconnects += 1
        self.on_ready(self.node)
        return True

    def restart(self, stop: threading.Event) -> Node | None:
        """A new node, started; retried while no JACK server runs.  None if
        stopped first.  A failed attempt leaves nothing open (`Node.start`)."""
        while True:
            try:
                node = self.make().start()
                log.info("link restored on the JACK server")
                return node
            except ServerNotRunning:
                if stop.wait(self.retry):
                    return None
