"""Running a sender or receiver as a daemon: start it, print its stats,
rebuild it when the JACK server goes away, changes its period or rate, or
stops running its process callback; stop on SIGINT/SIGTERM.

The `Supervisor` owns the daemon's state (`STATES`): it tells systemd of
every change (``STATUS=``), pings the watchdog only while the node really
makes progress (or waits for JACK, as it should), keeps the link's
`History` (ten minutes, and its events), and gives the status socket its
snapshot (`Supervisor.status`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from typing import Callable

from jacknet.errors import ConfigError, JacknetError, ServerNotRunning
from jacknet.monitor.history import History
from jacknet.monitor.levels import METER_SECONDS
from jacknet.net.address import show_address
from jacknet.node import STALL_SECONDS, Node
from jacknet.options import key_of, options
from jacknet.service.jackserver import JackServer
from jacknet.service.notify import Notifier
from jacknet.service.remember import ConnectionMemory
from jacknet.stats import RateLimitedLog, as_dict, format_line

log = logging.getLogger("jacknet")

REBUILD_SECONDS = 1.0  # how often to look for a JACK server that went away
# A server that refuses a starting daemon is asked this many times, this
# far apart: one shutting down is gone by then (and waited for), one at its
# port limit still refuses (and the start fails with its reason).
FIRST_REFUSALS = 3
REFUSED_SECONDS = 0.5
HEALTH_SECONDS = 0.25  # how often to look at the node's health (server gone, format, stall)
# The worker loops at least every 0.1 s and the process callback runs every
# period: a node whose either stood still this long is not making progress,
# and the watchdog goes unfed.
PROGRESS_SECONDS = 1.0
QUIET_SECONDS = 1.0  # a receiver with no packet for this long says so
# How often to look for ports that match --connect and are not connected
# (a recording client started or restarted after us).  Polled from this
# thread: a JACK port-registration callback would run Python on JACK's.
CONNECT_SECONDS = 1.0

# starting: opening the node; waiting: no JACK server yet (or again);
# running: audio flows through JACK and the link; rebuilding: closing and
# reopening after trouble; stopping: shutting down.
STATES = ("starting", "waiting", "running", "rebuilding", "stopping")


def stop_on_signals(reload: threading.Event | None = None) -> threading.Event:
    """An event that SIGINT and SIGTERM set (call from the main thread); SIGHUP
    sets ``reload``, if given."""
    stop = threading.Event()
    handlers = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set}
    if reload is not None:
        handlers[signal.SIGHUP] = reload.set
    for sig, handler in handlers.items():
        signal.signal(sig, lambda *_, handler=handler: handler())
        # Python makes a handled signal interrupt system calls; libjack
        # does not retry all of them, so a SIGTERM that lands while a
        # client activates would fail the activation.  Restart them.
        signal.siginterrupt(sig, False)
    return stop


def changes(old, new) -> list[tuple[str, object, object, bool]]:
    """(key, old value, new value, live) for each option that differs
    between two configs of one class."""
    return [(key_of(f), getattr(old, f.name), getattr(new, f.name), option.live)
            for f, option in options(type(old))
            if getattr(old, f.name) != getattr(new, f.name)]


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
    wait_for_jack : bool
        With no JACK server at the start, wait for one (else the error goes
        up to the caller).
    notifier : Notifier, optional
        systemd's notification socket (default: from the environment; does
        nothing outside systemd).
    reread : callable, optional
        Reads the configuration again: returns (side config, `RunConfig`).
        With it, SIGHUP reloads (`reload`).
    server : JackServer, optional
        A JACK server to start whenever none is running (``start =
        "if-missing"``); the daemon stops it on its way out, and never a
        server it did not start.
    memory : ConnectionMemory, optional
        Connections made by hand to our ports, made again whenever their far
        port comes back (``remember-connections``).
    """

    def __init__(self, make: Callable[[], Node], side: str, interval: float,
                 seconds: float | None = None, stop: threading.Event | None = None,
                 on_tick: Callable | None = None, on_ready: Callable[[Node], None] | None = None,
                 retry: float = REBUILD_SECONDS, wait_for_jack: bool = False,
                 notifier: Notifier | None = None, reread: Callable[[], tuple] | None = None,
                 run_config=None, server: JackServer | None = None,
                 memory: ConnectionMemory | None = None) -> None:
        self.make, self.side, self.interval, self.seconds = make, side, interval, seconds
        self.stop = stop
        self.on_tick = on_tick or (lambda stats: print(format_line(side, stats), flush=True))
        self.on_ready = on_ready or (lambda node: None)
        self.retry = retry
        self.wait_for_jack = wait_for_jack
        self.notifier = notifier or Notifier()
        self.reread, self.run_config = reread, run_config
        self.server, self.memory = server, memory
        self._server_error: str | None = None  # the last failure to start it, said once
        self.reload_requested = threading.Event()
        self.reconnects = 0
        self.stalls = 0
        self.node: Node | None = None
        self.state, self.detail, self._since = "starting", "", time.monotonic()
        self._connected_at = time.monotonic()
        self._marks: list[tuple] = []  # (value, when it last moved) per progress counter
        self._fed_at = -float("inf")
        self._quiet_from: float | None = None  # when the last packet came, in an outage
        self.history = History(side)
        self._peer: str | None = None  # the far end the history last heard of
        self._said_outage = RateLimitedLog(log, interval=60.0)

    def _enter(self, state: str, detail: str = "") -> None:
        """Change state; systemd hears of it in one line."""
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail, self._since = state, detail, time.monotonic()
        self.notifier.status(self.summary())

    def summary(self) -> str:
        """One line: the state and what it is about."""
        return f"{self.state}: {self.detail}" if self.detail else self.state

    def _running(self) -> None:
        """The running state, with where JACK and the link stand."""
        node = self.node
        peer, age = node.peer()
        if self.side == "send":
            link = f"sending to {peer}"
        elif age is None:
            link = f"listening on {show_address(node.address)}, nothing received yet"
        elif age > QUIET_SECONDS:
            link = f"no packets from {peer} for over {QUIET_SECONDS:g} s, playing silence"
            if self._quiet_from is None:
                self._quiet_from = time.monotonic() - age
                log.warning("no packets from %s for %g s: the outputs faded to silence; "
                            "they come back when packets do", peer, QUIET_SECONDS)
        else:
            link = f"receiving from {peer}"
            if self._quiet_from is not None:
                log.info("packets from %s again, after %.1f s without", peer,
                         time.monotonic() - age - self._quiet_from)
                self._quiet_from = None
        if node.config.security == "psk":
            link += ", sealed"
            if self.side == "recv" and (age is None or age > QUIET_SECONDS):
                failed = node.stats().auth_failures
                if failed:
                    link += f"; {failed} datagram(s) did not authenticate (another key?)"
        self._enter("running", f"JACK server '{node.config.server or 'default'}', {link}")

    def _keep_connected(self) -> None:
        """Connect ports that match ``connect`` and have appeared since, and
        the remembered connections whose far port has come back."""
        now = time.monotonic()
        node = self.node
        if now - self._connected_at < CONNECT_SECONDS or node.jack is None or node.jack.lost:
            return
        self._connected_at = now
        jack, pattern = node.jack, node.config.connect
        for source, destination in jack.connect_missing(pattern):
            log.info("connected %s -> %s (the port appeared)", source, destination)
        if self.memory is not None:
            for short, other in self.memory.observe(jack.own_connections(), jack.matching(pattern),
                                                    jack.client_id):
                if jack.connect_own(short, other):
                    log.info("connected %s:%s and %s again (remembered)", jack.name, short, other)

    def _observe(self) -> None:
        """Hand the history this moment's stats; say each outage once."""
        node, now = self.node, time.time()
        peer, _ = node.peer()
        if peer is not None and peer != self._peer:
            if self._peer is not None:
                self.history.event("sender" if self.side == "recv" else "peer",
                                   f"{self._peer} -> {peer}", now)
            self._peer = peer
        stats = as_dict(self._stats(node))
        for e in self.history.observe(stats, now):
            if e.kind == "outage-end":
                self._said_outage("outage", "outage: %s from %s (%d in the last minute)",
                                  e.detail, peer, stats["outages_last_minute"])

    def _stats(self, node: Node):
        """``node``'s stats snapshot, with what the Supervisor counts."""
        stats = node.stats()
        if self.reconnects:
            stats = dataclasses.replace(stats, reconnects=self.reconnects)
        return stats

    def _feed_watchdog(self, waiting: bool = False) -> None:
        """WATCHDOG=1 when due, if the node is making progress: its process
        callback and its worker both moved within `PROGRESS_SECONDS` (or
        there is no JACK server, and the daemon waits for one as it should)."""
        n = self.notifier
        if n.watchdog_seconds is None:
            return
        now = time.monotonic()
        if not waiting:
            progress = self.node.progress()
            if len(self._marks) != len(progress):
                self._marks = [(None, now)] * len(progress)
            self._marks = [(v, now) if v != old else (old, t)
                           for v, (old, t) in zip(progress, self._marks)]
            if now - min(t for _, t in self._marks) > PROGRESS_SECONDS:
                return
        if now - self._fed_at >= min(n.watchdog_seconds / 4, 1.0):
            self._fed_at = now
            n.watchdog()

    def status(self) -> dict:
        """The status socket's answer (`docs/status.md`); changes nothing."""
        node = self.node
        out = {"name": None, "role": self.side, "state": self.state, "summary": self.summary(),
               "state_seconds": round(time.monotonic() - self._since, 3),
               "reconnects": self.reconnects, "stalls": self.stalls}
        if node is None:
            return out
        config = node.config
        peer, age = node.peer()
        jack = node.jack
        out.update(name=config.name, pid=os.getpid())
        out["jack"] = {"server": config.server or "default",
                       "state": "connected" if jack is not None and not jack.lost else "absent",
                       "client": jack.name if jack is not None else None,
                       "started": self.server is not None and self.server.running}
        out["link"] = {"transport": config.transport, "security": config.security,
                       "peer": peer,
                       "last_packet_seconds": None if age is None else round(age, 3)}
        if getattr(config, "allow", None) is not None:
            out["link"]["allow"] = config.allow
        if self.side == "recv" and node.address is not None:
            out["link"]["bind"] = show_address(node.address)
        made = []
        if jack is not None and not jack.lost:
            made = [list(pair) for pair in jack.connections()]
        out["connections"] = {"wanted": config.connect, "made": made}
        if self.memory is not None:
            out["connections"]["remembered"] = [list(pair) for pair in sorted(self.memory.pairs)]
        stats = self._stats(node)
        out["stats"] = as_dict(stats)
        out["jack_transport"] = _jack_transport(self.side, config, stats)
        out["meters"] = _meters(node)
        return out

    def run(self) -> int:
        """Run until stopped; returns the exit code (0).  The first start's
        errors (no JACK server unless ``wait_for_jack``, a bad address) go up
        to the caller."""
        stop = self.stop or stop_on_signals(self.reload_requested if self.reread else None)
        start = time.monotonic()
        deadline = start + self.seconds if self.seconds else None
        next_tick = start + self.interval
        try:
            self.node = self.restart(stop, first=True)
            if self.node is None:
                return 0
            self.on_ready(self.node)
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
                    self.on_tick(self._stats(self.node))
                why = self._trouble()
                if why is not None and not self._rebuild(why, stop):
                    break
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
                self._keep_connected()
                self._running()
                self._observe()
                self._feed_watchdog()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self._enter("stopping")
            self.notifier.stopping()
            if self.node is not None:
                self.node.close()
            if self.server is not None and self.server.running:
                log.info("stopping the JACK server we started")
                self.server.stop()
        return 0

    def reload(self) -> list[str]:
        """Read the configuration again and apply what can change live
        (options marked ``live``: the latency, connections, the stats
        interval, the log level) without a dropout; list in one log line
        what changed, and in another what needs a restart and so was kept.
        A configuration that no longer reads right keeps the running one.
        Returns the keys applied."""
        self.notifier.reloading()
        self.history.event("reload", "", time.time())
        try:
            side, run = self.reread()
        except ConfigError as e:
            log.error("reload: %s; the running configuration stays", e)
            self.notifier.ready(self.summary())
            return []
        node = self.node
        found = changes(node.config, side) + changes(self.run_config, run)
        applied, kept = [], []
        for key, old, new, live in found:
            try:
                if not live:
                    raise ConfigError("needs a restart")
                self._apply(key, new)
                applied.append(f"{key} {old} -> {new}")
            except ConfigError as e:
                kept.append(f"{key} ({e})")
        if node.config.security == "psk":
            try:
                if node.rekey():
                    applied.append("key-file read again: its keys are in use now")
            except ConfigError as e:
                kept.append(f"key-file ({e})")
        if applied:
            log.info("reload: changed %s", "; ".join(applied))
        if kept:
            log.warning("reload: kept as they were, a restart applies them: %s", "; ".join(kept))
        if not applied and not kept:
            log.info("reload: nothing changed")
        self.notifier.ready(self.summary())
        return applied

    def _apply(self, key: str, value) -> None:
        """One live option: into the running node (and the config its rebuilds use)."""
        node, run = self.node, self.run_config
        if key == "latency":
            node.set_latency(value)
        elif key == "connect":
            node.config.connect = value
            made = node.jack.connect(value) if node.jack is not None else []
            log.info("connected %d port(s) to '%s'", len(made), value)
        elif key == "key-file":
            node.config.key_file = value  # read by the rekey that follows
        elif key == "stats-interval":
            self.interval = run.stats_interval = value
        elif key == "verbose":
            run.verbose = value
            logging.getLogger().setLevel(logging.DEBUG if value else logging.INFO)
        else:
            raise ConfigError("needs a restart")

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
        self.history.event({"lost": "jack-gone", "format": "jack-format",
                            "stalled": "stall"}[why], old_name, time.time())
        self._enter("rebuilding", {"lost": "the JACK server went away", "format":
                                   "JACK's period or rate changed",
                                   "stalled": "JACK stopped running our client"}[why])
        link = node.close(keep_link=True)  # bound or connected all the while
        self.node = None  # the status socket says so meanwhile
        self.node = self.restart(stop, link=link)
        if self.node is None:
            return False
        if keep:
            made = self.node.jack.restore(keep, old_name)
            log.info("restored %d of %d connection(s)", made, len(keep))
        self.reconnects += 1
        self.on_ready(self.node)
        return True

    def restart(self, stop: threading.Event, first: bool = False, link=None) -> Node | None:
        """A new node, started; retried while no JACK server runs (the
        watchdog fed meanwhile: waiting is what the daemon should do).
        None if stopped first.  The network end (``link``, else opened
        first) stays open across attempts, so a receiver's port stays bound
        and a sender's TCP connection up while JACK is away.  A failed
        attempt leaves nothing else open (`Node.start`).  ``first``: the
        daemon's start, where systemd hears READY=1 at the first attempt,
        JACK or not.  Only a start that never reached a server gives up
        (without ``wait_for_jack``): one that was there and refused us is
        asked again, and if it went away meanwhile (stopped while we
        started) it is waited for, as if it had gone a moment later."""
        refusals = 0
        while True:
            node = self.make()
            if link is None:
                link = node.open_link()  # a bad address goes up: the config is wrong
            try:
                node.start(link)
            except ConfigError:
                link.close()
                raise
            except JacknetError as e:
                if stop.is_set():  # told to stop while starting: not a failure
                    link.close()
                    return None
                # Refused: the server is there but would not take us (it is
                # shutting down, or still starting): retried like no server.
                refused = not isinstance(e, ServerNotRunning)
                refusals += refused
                failed = self._server_error
                if not refused and self._start_server():
                    continue
                may_give_up = first and not self.wait_for_jack
                if may_give_up and refused and refusals < FIRST_REFUSALS:
                    if stop.wait(REFUSED_SECONDS):
                        link.close()
                        return None
                    continue
                gone = refusals > 0 and not refused  # there a moment ago, refused us, gone now
                if may_give_up and not gone:
                    link.close()
                    if not refused and self._server_error:
                        raise JacknetError(f"could not start the JACK server: "
                                           f"{self._server_error}") from None
                    raise
                if refused:
                    log.warning("%s; trying again in %g s", e, self.retry)
                    self._enter("waiting", f"{e}, trying every {self.retry:g} s")
                elif gone and first:
                    log.warning("JACK server '%s' went away while we started; waiting for it "
                                "to come back", node.config.server or "default")
                    self._waiting(node, link, False, said=failed)
                else:
                    self._waiting(node, link, first, said=failed)
                if first:
                    self.notifier.ready(self.summary())
                    first = False
                if not self._pause(stop):
                    link.close()
                    return None
                continue
            if not first or self.state == "waiting":
                log.info("link restored on the JACK server")
                self.history.event("jack-back", node.config.server or "default", time.time())
            if self.memory is not None:
                self.memory.new_client()
            self.node = node
            self._running()
            if first:
                self.notifier.ready(self.summary())
            return node

    def _waiting(self, node: Node, link, first: bool, said: str | None) -> None:
        """The waiting state, and a log line when there is news: the first
        wait, or a failure to start our server other than the one ``said``."""
        server = self._server_error
        if server and server != said:
            log.error("could not start the JACK server: %s; trying again every %g s",
                      server, self.retry)
        elif first and self.state != "waiting":
            log.warning("no JACK server '%s' is running; waiting for it",
                        node.config.server or "default")
        why = (f"could not start JACK server '{self.server.name or 'default'}'" if server
               else f"no JACK server '{node.config.server or 'default'}'")
        where = f"; listening on {show_address(link.address)}" if self.side == "recv" else ""
        self._enter("waiting", f"{why}, trying every {self.retry:g} s{where}")

    def _pause(self, stop: threading.Event) -> bool:
        """Wait out one retry interval, feeding the watchdog (waiting is what
        the daemon should do); False if stopped meanwhile."""
        until = time.monotonic() + self.retry
        while (left := until - time.monotonic()) > 0:
            self._feed_watchdog(waiting=True)
            if stop.wait(min(HEALTH_SECONDS, left)):
                return False
        return True

    def _start_server(self) -> bool:
        """Start our own JACK server if we have one to start and it is not
        running; True if it now runs.  Why it failed is kept in
        ``_server_error`` (for the caller to say once)."""
        server = self.server
        if server is None or server.running:
            return False
        try:
            if self._server_error is None:  # else said already: it stays "waiting"
                self._enter("starting", f"JACK server '{server.name or 'default'}' "
                            f"({server.driver})")
                log.info("no JACK server '%s' is running: starting one (%s)",
                         server.name or "default", " ".join(server.command()))
            server.start()
        except JacknetError as e:
            self._server_error = str(e)
            return False
        self._server_error = None
        return True


def _meters(node: Node) -> dict | None:
    """The status's ``meters``: the last tenth of a second per channel (None before one)."""
    levels = node.levels
    meter = levels.meter if levels is not None else None
    if meter is None:
        return None
    return {"seconds": METER_SECONDS, "peak_dbfs": list(meter.peak_dbfs),
            "rms_dbfs": list(meter.rms_dbfs), "clips": list(levels.clips)}


def _jack_transport(side: str, config, stats) -> dict:
    """The status's ``jack_transport``: both transports and how far apart."""
    if side == "send":
        return {"shared": not config.no_transport, "state": stats.jack_transport,
                "frame": stats.jack_transport_frame, "changes": stats.transport_changes}
    return {"follow": config.follow_transport,
            "sender": {"state": stats.sender_transport, "frame": stats.sender_transport_frame},
            "here": {"state": stats.jack_transport, "frame": stats.jack_transport_frame},
            "offset_frames": stats.transport_error_frames}
