"""Getting packets across: address parsing, UDP (unicast and multicast,
IPv4 and IPv6) and TCP with a length prefix.

The sender hands whole datagrams to a *sink*; the receiver pulls them from a
*source*, with the address they came from.  TCP carries exactly the datagrams
UDP would, each behind a 4-byte big-endian length.
"""
from __future__ import annotations

import collections
import ipaddress
import logging
import select
import socket
import struct
import threading
import time

from jacknet.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORT = 4477
LENGTH = struct.Struct("!I")
MAX_FRAME = 65535
TCP_SILENCE = 2.0        # a connected peer that sends nothing this long is gone
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 1.0   # reconnect delays, doubling (seconds)


def parse_address(text: str, default_host: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``:PORT``, ``[V6]:PORT`` -> (host, port)."""
    host, port = text, str(DEFAULT_PORT)
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ConfigError(f"bad address {text!r}: missing ']'")
        host, rest = text[1:close], text[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad address {text!r}: expected ':PORT' after ']'")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port_number = int(port)
    except ValueError:
        raise ConfigError(f"bad port {port!r} in {text!r}") from None
    if not 0 <= port_number <= 65535:
        raise ConfigError(f"port {port_number} out of range 0..65535")
    return host or default_host, port_number


def is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False


def _resolve(host: str, port: int, kind: int, passive: bool) -> tuple:
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve {host!r}: {e.strerror}") from None
    return infos[0]


def _interface_index(interface: str | None) -> int:
    """IPv6 multicast wants an interface index; accept a name or an index."""
    if not interface:
        return 0
    if interface.isdigit():
        return int(interface)
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise ConfigError(f"--interface {interface!r}: no such network interface") from None


def _keepalive(sock: socket.socket) -> None:
    """Find a dead TCP peer within a few seconds, not hours."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in (("TCP_KEEPIDLE", 1), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 2),
                       ("TCP_USER_TIMEOUT", 2000)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


# -- sender side -----------------------------------------------------------------

class UdpSink:
    """Datagrams to one address (unicast) or a group (multicast)."""

    def __init__(self, host: str, port: int, ttl: int = 1, interface: str | None = None) -> None:
        family, kind, proto, _, address = _resolve(host, port, socket.SOCK_DGRAM, passive=False)
        self.sock = socket.socket(family, kind, proto)
        if is_multicast(host):
            if family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
                if interface:
                    self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                                         _interface_index(interface))
            else:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                if interface:
                    self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                         socket.inet_aton(interface))
        self.sock.connect(address)
        self.errors = 0
        self.dropped = 0

    def send(self, datagram: bytes) -> bool:
        try:
            self.sock.send(datagram)
            return True
        except OSError:
            # Nobody listening yet (ICMP refused) or a full buffer: audio moves on.
            self.errors += 1
            return False

    @property
    def connected(self) -> bool:
        return True

    def close(self) -> None:
        self.sock.close()


class TcpSink:
    """Length-prefixed datagrams over a TCP connection that mends itself.

    `send` never blocks: datagrams wait in a bounded queue that drops the
    oldest (counted in ``dropped``) while a writer thread connects, with
    capped exponential backoff, and writes.  A small kernel send buffer keeps
    a stalled connection from hoarding seconds of audio.
    """

    def __init__(self, host: str, port: int, queue: int = 64) -> None:
        self.address = _resolve(host, port, socket.SOCK_STREAM, passive=False)
        self.where = f"{host}:{port}"
        self.queue: collections.deque[bytes] = collections.deque()
        self.limit = queue
        self.dropped = 0
        self.errors = 0
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
            self.dropped += 1
        self._wake.set()
        return True

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _connect(self) -> socket.socket | None:
        family, kind, proto, _, address = self.address
        sock = socket.socket(family, kind, proto)
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            return None
        _keepalive(sock)
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
                self.errors += 1
                log.warning("connection to %s lost (%s); reconnecting", self.where,
                            e.strerror or e.__class__.__name__)
            finally:
                self._sock = None
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(2)


def open_sink(transport: str, host: str, port: int, ttl: int = 1,
              interface: str | None = None) -> UdpSink | TcpSink:
    if transport == "tcp":
        if is_multicast(host):
            raise ConfigError("multicast needs --transport udp")
        return TcpSink(host, port)
    return UdpSink(host, port, ttl, interface)


# -- receiver side ---------------------------------------------------------------

class UdpSource:
    """Datagrams from a unicast address, or from a multicast group joined."""

    def __init__(self, host: str, port: int, interface: str | None = None) -> None:
        family, kind, proto, _, address = _resolve(host, port, socket.SOCK_DGRAM, passive=True)
        self.sock = socket.socket(family, kind, proto)
        self.multicast = is_multicast(host)
        try:
            if self.multicast:
                # Several receivers on one machine may join the same group.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if hasattr(socket, "SO_REUSEPORT"):
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.sock.bind(address)
            if self.multicast:
                self._join(family, host, interface)
        except OSError as e:
            self.sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        self.sock.settimeout(0.1)

    def _join(self, family: int, group: str, interface: str | None) -> None:
        if family == socket.AF_INET6:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", _interface_index(interface))
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        else:
            mreq = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]

    def receive(self, buf: bytearray, timeout: float = 0.1) -> tuple[int, tuple | None]:
        """Wait up to ``timeout`` s for one datagram: (length, sender) or (0, None)."""
        self.sock.settimeout(timeout)
        try:
            n, peer = self.sock.recvfrom_into(buf)
        except (socket.timeout, OSError):
            return 0, None
        return n, peer

    def close(self) -> None:
        self.sock.close()


class TcpSource:
    """Listens for one sender at a time; a second is refused while one plays.

    ``new_peer`` is set whenever a connection is taken, so the receiver can
    re-sync its jitter buffer after a reconnect.
    """

    def __init__(self, host: str, port: int) -> None:
        family, kind, proto, _, address = _resolve(host, port, socket.SOCK_STREAM, passive=True)
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
        self.new_peer = False
        self.refused = 0
        self.malformed = 0
        self._pending = bytearray()
        self._last_data = 0.0

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]

    def _drop(self, why: str) -> None:
        log.warning("sender %s disconnected (%s); waiting for it to come back",
                    _show(self.peer), why)
        self.conn.close()
        self.conn, self.peer = None, None
        self._pending.clear()

    def _accept(self) -> None:
        conn, peer = self.listener.accept()
        if self.conn is not None:
            self.refused += 1
            log.warning("refused a second sender from %s: busy playing %s", _show(peer), _show(self.peer))
            conn.close()
            return
        _keepalive(conn)
        conn.setblocking(False)
        self.conn, self.peer, self.new_peer = conn, peer, True
        self._last_data = time.monotonic()
        log.info("sender %s connected", _show(peer))

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

    def _frame(self) -> bytes | None:
        if self.conn is None or len(self._pending) < LENGTH.size:
            return None
        (length,) = LENGTH.unpack_from(self._pending)
        if not 0 < length <= MAX_FRAME:
            # The byte stream has lost its framing: nothing after this can be trusted.
            self.malformed += 1
            self._drop(f"bad frame length {length}")
            return None
        if len(self._pending) < LENGTH.size + length:
            return None
        frame = bytes(self._pending[LENGTH.size:LENGTH.size + length])
        del self._pending[:LENGTH.size + length]
        return frame

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.listener.close()


def open_source(transport: str, host: str, port: int,
                interface: str | None = None) -> UdpSource | TcpSource:
    if transport == "tcp":
        if is_multicast(host):
            raise ConfigError("multicast needs --transport udp")
        return TcpSource(host, port)
    return UdpSource(host, port, interface)


def _show(peer: tuple | None) -> str:
    if not peer:
        return "?"
    host, port = peer[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
