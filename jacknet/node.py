"""What a sender and a receiver share: a JACK client, a socket, one worker
thread, and their orderly teardown."""
from __future__ import annotations

import socket
import threading
from typing import Callable

from jacknet.binding import JackClient


class Node:
    """Base of `Sender` and `Receiver`; subclasses implement ``start`` and ``stats``."""

    def __init__(self) -> None:
        self.jack: JackClient | None = None
        self.sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
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
        if self.sock:
            self.sock.close()
            self.sock = None
