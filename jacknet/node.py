"""What a sender and a receiver share: a JACK client, a socket, one worker
thread, and their orderly teardown."""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from jacknet.rt.binding import JackClient

log = logging.getLogger(__name__)

# Below JACK's own real-time threads (jackd -R runs them at 10 and above by
# default), so the audio thread always wins, but above every ordinary process
# on a busy machine, so a packet is not held up for a whole time slice.
DEFAULT_RT_PRIORITY = 5


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
    """Base of `Sender` and `Receiver`; subclasses implement ``start`` and ``stats``."""

    def __init__(self, rt_priority: int = DEFAULT_RT_PRIORITY) -> None:
        self.rt_priority = rt_priority
        self.jack: JackClient | None = None
        self.link = None  # the transport's sink or source; anything with close()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            raise_priority(self.rt_priority)
            target()
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    @property
    def jack_lost(self) -> bool:
        """True once the JACK server has shut this client down."""
        return bool(self.jack and self.jack.shutdown.is_set())

    @property
    def format_changed(self) -> bool:
        """True once JACK's period or sample rate changed under us."""
        return bool(self.jack and self.jack.format_changed.is_set())

    def close(self) -> None:
        """Stop the worker, unregister the ports, close the socket."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        if self.jack:
            self.jack.close()
            self.jack = None
        if self.link:
            self.link.close()
            self.link = None
