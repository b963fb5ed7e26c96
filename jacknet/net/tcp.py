"""TCP link ends: exactly the datagrams UDP would carry, each behind a
4-byte big-endian length, over a connection that mends itself."""
from __future__ import annotations

import collections
import logging
import select
import socket
import struct
import threading
import time
from typing import Callable

from jacknet.errors import ConfigError
from jacknet.net.address import resolve, show_address
from jacknet.net.link import SAFE_MTU, SinkStats, SourceStats
from jacknet.security.access import AllowList
from jacknet.stats import RateLimitedLog

log = logging.getLogger(__name__)

LENGTH = struct.Struct("!I")
MAX_FRAME = 65535
TCP_SILENCE = 2.0        # a connected peer that sends nothing this long is gone
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 1.0   # reconnect delays, doubling (seconds)


def keepalive(sock: socket.socket) -> None:
    """Find a dead TCP peer within a few seconds, not hours."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in (("TCP_KEEPIDLE", 1), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 2),
                       ("TCP_USER_TIMEOUT", 2000)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


class TcpSink:
    """Length-prefixed datagrams over a TCP connection that mends itself.

    `send` never blocks: datagrams wait in a bounded queue that drops the
    oldest (counted in ``queue_dropped``) while a writer thread connects, with
    capped exponential backoff, and writes.  A small kernel send buffer keeps
    a stalled connection from hoarding seconds of audio.
    """

    def __init__(self, host: str, port: int, queue: int = 64) -> None:
        self.address = resolve(host, port, socket.SOCK_STREAM, passive=False)
        self.where = f"{host}:{port}"
        self.queue: collections.deque[bytes] = collections.deque()
        self.limit = queue
        self._stats = SinkStats(connected=False)
        self.connects = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="jacknet-tcp-out", daemon=True)
        self._thread.start()

    def send(self, datagram: bytes) -> bool:
        self.queue.append(datagram)
        while len(self.queue) > self.limit:
            self.queue.popleft()
            self._stats.queue_dropped += 1
        self._wake.set()
        return True

    def auto_mtu(self) -> int:
        return SAFE_MTU  # framed in a byte stream: the size only sets the framing's overhead

    def stats(self) -> SinkStats:
        self._stats.connected = self._sock is not None
        return self._stats

    def _connect(self) -> socket.socket | None:
        family, kind, proto, _, address = self.address
        sock = socket.socket(family, kind, proto)
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            return None
        keepalive(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        return sock

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        said_down = False
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                if not said_down:
                    log.warning("cannot connect to %s; retrying", self.where)
                    said_down = True
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            self.queue.clear()  # what waited during the outage is stale audio
            self._sock, self.connects, delay, said_down = sock, self.connects + 1, BACKOFF_FIRST, False
            log.info("connected to %s", self.where)
            try:
                while not self._stop.is_set():
                    self._wake.wait(0.5)
                    self._wake.clear()
                    while self.queue:
                        data = self.queue.popleft()
                        sock.sendall(LENGTH.pack(len(data)) + data)
            except OSError as e:
                self._stats.send_errors += 1
                log.warning("connection to %s lost (%s); reconnecting", self.where,
                            e.strerror or e.__class__.__name__)
            finally:
                self._sock = None
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(2)


class TcpSource:
    """Listens for one sender at a time; a second is refused while one plays.

    ``on_new_peer`` is called whenever a connection is taken, so the receiver
    can re-sync its jitter buffer after a reconnect.  With ``probation``
    (a sealed link), a connection nothing authentic came on for that many
    seconds (`vouch`) gives way to the next one, so whoever connects first
    cannot hold the one place.  ``allow``: addresses not in it are refused.
    """

    def __init__(self, host: str, port: int, allow: AllowList | None = None,
                 probation: float | None = None) -> None:
        family, kind, proto, _, address = resolve(host, port, socket.SOCK_STREAM, passive=True)
        self.listener = socket.socket(family, kind, proto)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind(address)
        except OSError as e:
            self.listener.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        self.listener.listen(4)
        self.conn: socket.socket | None = None
        self.peer: tuple | None = None
        self.on_new_peer: Callable[[], None] | None = None
        self.allow, self.probation = allow, probation
        self._stats = SourceStats(refused=0, denied=0 if allow is not None else None)
        self._pending = bytearray()
        self._last_data = 0.0
        self._since = 0.0  # when the connection was taken
        self._vouched = False
        self._noisy = RateLimitedLog(log)  # whoever connects again and again

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]

    def _drop(self, why: str) -> None:
        log.warning("sender %s disconnected (%s); waiting for it to come back",
                    show_address(self.peer), why)
        self.conn.close()
        self.conn, self.peer = None, None
        self._pending.clear()

    def _accept(self) -> None:
        conn, peer = self.listener.accept()
        if self.allow is not None and peer[0] not in self.allow:
            self._stats.denied += 1
            self._noisy("denied", "refused a connection from %s: not in allow (%s)",
                        show_address(peer), self.allow)
            conn.close()
            return
        if self.conn is not None and self._on_probation_too_long():
            self._drop(f"nothing authentic from it in {self.probation:g} s; "
                       f"{show_address(peer)} is taken instead")
        if self.conn is not None:
            self._stats.refused += 1
            self._noisy("refused", "refused a second sender from %s: busy playing %s",
                        show_address(peer), show_address(self.peer))
            conn.close()
            return
        keepalive(conn)
        conn.setblocking(False)
        self.conn, self.peer = conn, peer
        self._last_data = self._since = time.monotonic()
        self._vouched = False
        log.info("sender %s connected", show_address(peer))
        if self.on_new_peer is not None:
            self.on_new_peer()

    def receive(self, buf: bytearray, timeout: float = 0.1) -> tuple[int, tuple | None]:
        """One framed datagram copied into ``buf``: (length, sender) or (0, None)
        if none came within ``timeout`` s."""
        frame = self._frame()
        if frame:
            buf[:len(frame)] = frame
            return len(frame), self.peer
        watch = [self.listener] + ([self.conn] if self.conn else [])
        readable, _, _ = select.select(watch, [], [], timeout)
        if self.listener in readable:
            self._accept()
        if self.conn is not None and self.conn in readable:
            try:
                data = self.conn.recv(262144)
            except OSError as e:
                self._drop(e.strerror or "error")
                return 0, None
            if not data:
                self._drop("closed")
                return 0, None
            self._pending += data
            self._last_data = time.monotonic()
        elif self.conn is not None and time.monotonic() - self._last_data > TCP_SILENCE:
            self._drop(f"silent for {TCP_SILENCE:.0f} s")
        frame = self._frame()
        if frame:
            buf[:len(frame)] = frame
            return len(frame), self.peer
        return 0, None

    def _on_probation_too_long(self) -> bool:
        return (self.probation is not None and not self._vouched
                and time.monotonic() - self._since > self.probation)

    def vouch(self) -> None:
        self._vouched = True

    def drain(self) -> None:
        # A byte stream cannot skip to its newest frame: drop the connection
        # and the sender reconnects with fresh audio.
        if self.conn is not None:
            self._drop("what it sent went stale while nobody read it")

    def _frame(self) -> bytes | None:
        if self.conn is None or len(self._pending) < LENGTH.size:
            return None
        (length,) = LENGTH.unpack_from(self._pending)
        if not 0 < length <= MAX_FRAME:
            # The byte stream has lost its framing: nothing after this can be trusted.
            self._stats.framing += 1
            self._drop(f"bad frame length {length}")
            return None
        if len(self._pending) < LENGTH.size + length:
            return None
        frame = bytes(self._pending[LENGTH.size:LENGTH.size + length])
        del self._pending[:LENGTH.size + length]
        return frame

    def stats(self) -> SourceStats:
        return self._stats

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.listener.close()
