"""Getting packets across: the link ends for each transport.

The sender hands whole datagrams to a `Sink`; the receiver pulls them from a
`Source`, with the address they came from (`jacknet.net.link`).  UDP
(`jacknet.net.udp`) carries them as they are, unicast or multicast; TCP
(`jacknet.net.tcp`) behind a 4-byte length prefix.
"""
from __future__ import annotations

from jacknet.net.link import Sink, Source
from jacknet.net.tcp import TcpSink, TcpSource
from jacknet.net.udp import UdpSink, UdpSource


def open_sink(transport: str, host: str, port: int, ttl: int = 1,
              interface: str | None = None) -> Sink:
    """The sender's end for ``transport`` (``udp`` or ``tcp``); `ConfigError`
    if the address cannot be used (multicast over TCP is refused earlier, by
    `SenderConfig.validate`)."""
    if transport == "tcp":
        return TcpSink(host, port)
    return UdpSink(host, port, ttl, interface)


def open_source(transport: str, host: str, port: int,
                interface: str | None = None) -> Source:
    """The receiver's end for ``transport``, bound (`ConfigError` if it cannot be)."""
    if transport == "tcp":
        return TcpSource(host, port)
    return UdpSource(host, port, interface)
