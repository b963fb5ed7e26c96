"""What a sender and a receiver share: one start/close template around a
network link, a JACK client and one worker thread.

`Node.start` opens the link, opens the JACK client, lets the subclass build
its engine (`_build`), connects the ports and starts the worker; if any step
fails, everything opened so far is closed again before the error goes up, so
a daemon retrying while JACK is down leaks nothing.  A node is also a context
manager: ``with Receiver(config) as r: ...``.
"""
from __future__ import annotations

import logging
import os
import threading

from jacknet.rt.binding import JackClient

log = logging.getLogger(__name__)

# Above every ordinary process on a busy machine, so a packet is not held
# up for a whole time slice; `network_priority` keeps it below JACK's
# process threads (jackd -R -P 10, the default, runs its clients' at 5).
DEFAULT_RT_PRIORITY = 5
# A process callback that has not run for this long while the server's clock
# moved on is stalled: many periods, but short enough that the graph it holds
# up comes back within a second or two.
STALL_SECONDS = 0.5


def network_priority(wanted: int, jack_priority: int | None) -> int:
    """The SCHED_FIFO priority the network thread takes: ``wanted`` (0:
    none), but below JACK's process threads (``jack_priority``; None: the
    server does not run realtime, and the network thread does not either).
    SCHED_FIFO does not preempt an equal: at their priority, a network
    thread busy in Python keeps a process thread that needs its CPU waiting,
    and the graph runs late."""
    if jack_priority is None:
        return 0
    return max(0, min(wanted, jack_priority - 1))


def raise_priority(priority: int) -> None:
    """Put the calling thread in SCHED_FIFO at ``priority`` (0: leave it)."""
    if priority <= 0:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as e:
        log.info("network thread stays at normal priority (%s); running as root or with "
                 "an rtprio limit (LimitRTPRIO=) lets it run SCHED_FIFO %d", e.strerror, priority)


class Node:
    """Base of `Sender` and `Receiver`.

    Subclasses set ``thread_name`` and implement `open_link` (return the
    sink or source), ``_build`` (register ports, make and run the engine),
    ``_work`` (the worker thread's loop), ``_started`` (one log line) and
    ``stats``.
    """

    thread_name = "jacknet"
    client_class = JackClient  # a test may put a JackClient that lies about its clock here

    def __init__(self, config) -> None:
        self.config = config
        self.jack: JackClient | None = None
        self.link = None  # the net.transport Sink or Source
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0  # turns of the worker's loop: the watchdog's sign of life

    def start(self, link=None):
        """Open everything and start the worker; returns self.

        Parameters
        ----------
        link : Sink or Source, optional
            An open link of this config (`open_link`, or an earlier node's
            `close` with ``keep_link``) to use instead of opening one; if
            starting fails, it is left open for the caller.

        Raises
        ------
        ServerNotRunning
            No such JACK server (nothing is left open).
        ConfigError
            The link's address cannot be used (nothing is left open).
        """
        c = self.config
        try:
            self.link = link if link is not None else self.open_link()
            self.jack = self.client_class(c.name, c.server)
            self._build()
            self.jack.connect(c.connect)
        except BaseException:
            self.close(keep_link=link is not None)
            raise
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        self._started()
        return self

    def _run(self) -> None:
        wanted = self.config.rt_priority
        jack_priority = self.jack.process_priority if self.jack else None
        priority = network_priority(wanted, jack_priority)
        if priority < wanted:
            log.info("network thread at %s: below JACK's process threads (%s)",
                     f"SCHED_FIFO {priority}" if priority else "normal priority",
                     f"SCHED_FIFO {jack_priority}" if jack_priority else "not realtime")
        raise_priority(priority)
        self._work()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def open_link(self):
        """The network end alone, bound or connected (a sink or a source): a
        daemon opens it once and hands it from node to node (`start`), so its
        socket stays bound while JACK is away.  `ConfigError` if the address
        cannot be used."""
        raise NotImplementedError

    def _build(self) -> None:
        raise NotImplementedError

    def _work(self) -> None:
        raise NotImplementedError

    def _started(self) -> None:
        pass

    @property
    def jack_lost(self) -> bool:
        """True once the JACK server has shut this client down."""
        return bool(self.jack and self.jack.lost)

    @property
    def format_changed(self) -> bool:
        """True once JACK's period or sample rate changed under us."""
        return bool(self.jack and self.jack.format_changed)

    def progress(self) -> tuple[int, int]:
        """(cycles of the process callback, turns of the worker's loop): both
        move while the node is really working."""
        return (self.jack.cycles if self.jack else 0, self.beats)

    def peer(self) -> tuple[str | None, float | None]:
        """The far end's address as text, and seconds since the last datagram
        went to it or came from it (None before the first)."""
        return None, None

    def stalled(self) -> bool:
        """True once JACK has stopped calling our process callback while its
        clock runs on (`STALL_SECONDS`): the graph waits for us."""
        return bool(self.jack and self.jack.stalled(STALL_SECONDS))

    def _quiesce(self) -> None:
        """Called before the ports go: a receiver fades its outputs out."""

    def close(self, keep_link: bool = False):
        """Stop the worker, unregister the ports, close the link.  Safe to
        call more than once, and on a node that never started.  With
        ``keep_link`` the link stays open and is returned, for the node that
        replaces this one."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
            self._thread = None
        if self.jack:
            self._quiesce()
            self.jack.close()
            self.jack = None
        link, self.link = self.link, None
        if link is not None and not keep_link:
            link.close()
            return None
        return link
