"""Getting packets across: the link ends for each transport.

The sender hands whole datagrams to a `Sink`; the receiver pulls them from a
`Source`, with the address they came from (`jacknet.net.link`).  UDP
(`jacknet.net.udp`) carries them as they are, unicast or multicast; TCP
(`jacknet.net.tcp`) behind a 4-byte length prefix.  With a key, either is
wrapped in the sealing ends of `jacknet.security.links`.
"""
from __future__ import annotations

from jacknet.net.link import Sink, Source
from jacknet.net.tcp import TcpSink, TcpSource
from jacknet.net.udp import UdpSink, UdpSource
from jacknet.security.access import AllowList
from jacknet.security.links import SealedSink, SealedSource

# A sealed TCP receiver lets a connection that brought nothing authentic
# hold its one place this long: more than a sender takes to announce itself.
PROBATION_SECONDS = 2.0


def open_sink(transport: str, host: str, port: int, ttl: int = 1,
              interface: str | None = None, key: bytes | None = None) -> Sink:
    """The sender's end for ``transport`` (``udp`` or ``tcp``), sealed with
    ``key`` if given; `ConfigError` if the address cannot be used (multicast
    over TCP is refused earlier, by `SenderConfig.validate`)."""
    sink = TcpSink(host, port) if transport == "tcp" else UdpSink(host, port, ttl, interface)
    return SealedSink(sink, key) if key is not None else sink


def open_source(transport: str, host: str, port: int, interface: str | None = None,
                keys: list[bytes] | None = None, allow: list[str] | None = None) -> Source:
    """The receiver's end for ``transport``, bound (`ConfigError` if it
    cannot be); opening what any of ``keys`` sealed, if given; taking only
    addresses in ``allow`` if given."""
    gate = AllowList(allow) if allow is not None else None
    if transport == "tcp":
        source = TcpSource(host, port, gate, PROBATION_SECONDS if keys else None)
    else:
        source = UdpSource(host, port, interface, gate)
    return SealedSource(source, keys) if keys else source
