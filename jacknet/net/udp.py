"""UDP link ends: unicast or multicast, IPv4 or IPv6."""
from __future__ import annotations

import math
import select
import socket
import struct
import time
from typing import Callable

from jacknet.errors import ConfigError
from jacknet.net.address import interface_index, is_multicast, resolve
from jacknet.net.link import MIN_MTU, SAFE_MTU, SinkStats, SourceStats
from jacknet.net.protocol import MAX_DATAGRAM
from jacknet.security.access import AllowList


# getsockopt names of <linux/in.h> and <linux/in6.h> the socket module lacks:
# the MTU of a connected socket's path as the kernel knows it.
_IP_MTU, _IPV6_MTU = 14, 24
# What IPv4 or IPv6 and UDP add to a datagram's payload on the wire.
_IP_UDP_HEADERS = {socket.AF_INET: 28, socket.AF_INET6: 48}
ETHERNET_MTU = 1500


def choose_mtu(path_mtu: int | None, family: int) -> int:
    """``--mtu auto`` for a path of ``path_mtu`` bytes (None: unknown).

    Above Ethernet's MTU (the loopback, jumbo frames) a path was set up for
    large datagrams, and a packet goes whole where it fits: one send and one
    wake-up instead of one per fragment.  At or below it, a datagram stays
    within `SAFE_MTU` and within the path."""
    if path_mtu is None:
        return SAFE_MTU
    room = path_mtu - _IP_UDP_HEADERS[family]
    return min(room, MAX_DATAGRAM) if path_mtu > ETHERNET_MTU else max(MIN_MTU, min(room, SAFE_MTU))


# More datagrams than any socket buffer holds: a drain stops there even
# under a flood.
DRAIN_MOST = 100_000


class UdpSink:
    """Datagrams to one address (unicast) or a group (multicast)."""

    def __init__(self, host: str, port: int, ttl: int = 1, interface: str | None = None) -> None:
        family, kind, proto, _, address = resolve(host, port, socket.SOCK_DGRAM, passive=False)
        self.sock = socket.socket(family, kind, proto)
        if is_multicast(host):
            if family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
                if interface:
                    self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                                         interface_index(interface))
            else:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                if interface:
                    self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                         socket.inet_aton(interface))
        self.sock.connect(address)
        self._stats = SinkStats()

    def send(self, datagram: bytes) -> bool:
        try:
            # Never wait: with the network down or slow, audio moves on.
            self.sock.send(datagram, socket.MSG_DONTWAIT)
            return True
        except OSError:
            # Nobody listening yet (ICMP refused), no route, or a full buffer.
            self._stats.send_errors += 1
            return False

    def auto_mtu(self) -> int:
        family = self.sock.family
        try:
            path = self.sock.getsockopt(*((socket.IPPROTO_IPV6, _IPV6_MTU)
                                          if family == socket.AF_INET6 else
                                          (socket.IPPROTO_IP, _IP_MTU)))
        except OSError:
            path = None
        return choose_mtu(path, family)

    def stats(self) -> SinkStats:
        return self._stats

    def close(self) -> None:
        self.sock.close()


class UdpSource:
    """Datagrams from a unicast address, or from a multicast group joined."""

    def __init__(self, host: str, port: int, interface: str | None = None,
                 allow: AllowList | None = None) -> None:
        family, kind, proto, _, address = resolve(host, port, socket.SOCK_DGRAM, passive=True)
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
        # Blocking, and never blocked on: receive() waits in poll() and reads
        # with MSG_DONTWAIT, two system calls a datagram (a socket timeout
        # costs a third, to set it, and more Python).
        self.sock.settimeout(None)
        self._poller = select.poll()
        self._poller.register(self.sock, select.POLLIN)
        self.on_new_peer: Callable[[], None] | None = None  # never: UDP has no connections
        self.allow = allow
        self._stats = SourceStats(denied=0 if allow is not None else None)

    def _join(self, family: int, group: str, interface: str | None) -> None:
        if family == socket.AF_INET6:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", interface_index(interface))
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        else:
            mreq = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]

    def receive(self, buf: bytearray, timeout: float = 0.1) -> tuple[int, tuple | None]:
        """Wait up to ``timeout`` s for one datagram: (length, sender) or (0, None).
        With ``timeout`` 0, only one already waiting."""
        deadline = None
        while True:
            if timeout > 0 and not self._poller.poll(math.ceil(timeout * 1000)):
                return 0, None
            try:
                n, peer = self.sock.recvfrom_into(buf, 0, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: nothing after all (or an ICMP error)
                return 0, None
            if self.admits(peer):
                return n, peer
            if deadline is None:
                deadline = time.monotonic() + timeout
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return 0, None

    def admits(self, peer: tuple) -> bool:
        """Whether a datagram from ``peer`` may be taken (``--allow``); one
        that may not is counted in ``denied``."""
        if self.allow is None or peer[0] in self.allow:
            return True
        self._stats.denied += 1
        return False

    def vouch(self) -> None:
        pass  # a datagram is kept or dropped on its own; there is no connection to keep

    def drain(self) -> None:
        # Only what is queued now (a socket buffer's worth at most), never
        # what keeps arriving: a datagram at a time, none waited for.
        try:
            for _ in range(DRAIN_MOST):
                self.sock.recv(1, socket.MSG_DONTWAIT)
        except OSError:  # BlockingIOError once empty
            pass

    def stats(self) -> SourceStats:
        return self._stats

    def close(self) -> None:
        self.sock.close()
