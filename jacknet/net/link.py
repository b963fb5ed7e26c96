"""What every link end offers: the `Sink` a sender sends into, the `Source`
a receiver receives from, and the counters each keeps.  `jacknet.net.udp`
and `jacknet.net.tcp` implement them; a wrapper (encryption) can sit
around any of them, and nothing above this layer asks which one it has."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol


@dataclass
class SinkStats:
    send_errors: int = 0
    """Datagrams the kernel refused (UDP: nobody listening yet, a full buffer)."""
    queue_dropped: int = 0
    """TCP: datagrams dropped while the connection was stalled or down."""
    connected: bool | None = None
    """TCP: whether the connection is up (None for UDP, which has none)."""
    announcements: int | None = None
    """Sealed: announcements of our streams sent (None when unsealed)."""


@dataclass
class SourceStats:
    refused: int | None = None
    """TCP: second senders turned away (None for UDP)."""
    framing: int = 0
    """TCP: streams whose length prefixes made no sense (the connection is dropped)."""
    denied: int | None = None
    """With an allow list: datagrams and connections from other addresses, dropped."""
    auth_failures: int | None = None
    """Sealed: datagrams that did not authenticate (None when unsealed)."""
    replays: int | None = None
    """Sealed: authentic datagrams seen before, or old streams replayed."""
    unannounced: int | None = None
    """Sealed: datagrams of a stream not announced yet."""
    announcements: int | None = None
    """Sealed: new streams accepted."""


# A datagram this size crosses the tunnels and PPPoE links of the internet
# whole, which the kernel cannot see past the first hop.
SAFE_MTU = 1400
# The least datagram `--mtu` allows: what every IPv4 host must reassemble.
MIN_MTU = 576


class Sink(Protocol):
    """Where a sender's datagrams go.  `send` never blocks."""

    def send(self, datagram: bytes) -> bool: ...

    def auto_mtu(self) -> int:
        """The largest datagram payload to send, for ``--mtu auto``."""

    def stats(self) -> SinkStats: ...

    def close(self) -> None: ...


class Source(Protocol):
    """Where a receiver's datagrams come from.  ``on_new_peer`` (if set) is
    called on the receiving thread whenever a new sender connects."""

    on_new_peer: Callable[[], None] | None

    @property
    def address(self) -> tuple[str, int]: ...

    def receive(self, buf: bytearray, timeout: float = 0.1) -> tuple[int, tuple | None]: ...

    def drain(self) -> None:
        """Discard what arrived while nobody read (JACK was away): seconds-old
        audio would lock a new jitter buffer onto a transit time that long."""

    def vouch(self) -> None:
        """The datagram just received was authentic (a sealed link says so):
        TCP keeps the connection it came on.  Unsealed, nobody calls it."""

    def stats(self) -> SourceStats: ...

    def close(self) -> None: ...
