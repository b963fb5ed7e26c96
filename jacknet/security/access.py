"""Who may send to a receiver: ``allow = ["10.0.0.0/8", "192.168.1.20"]``.
Checked on the source address before anything of a datagram is read, for
sealed links and unsealed ones alike."""
from __future__ import annotations

import ipaddress
from typing import Iterable


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One entry: an address or a network in CIDR form (ValueError saying why not)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address or a network such as 10.0.0.0/8 "
                         "or fd00::/8") from None


class AllowList:
    """Addresses a receiver takes datagrams and connections from."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [parse_network(e) for e in entries]

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 sender
        return any(ip in net for net in self.networks)

    def __str__(self) -> str:
        return ", ".join(map(str, self.networks))
