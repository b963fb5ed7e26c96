"""Network addresses: parsing ``HOST[:PORT]``, resolving, multicast, and
showing a peer in a log line."""
from __future__ import annotations

import ipaddress
import socket

from jacknet.errors import ConfigError

DEFAULT_PORT = 4477


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


def resolve(host: str, port: int, kind: int, passive: bool) -> tuple:
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve {host!r}: {e.strerror}") from None
    return infos[0]


def interface_index(interface: str | None) -> int:
    """IPv6 multicast wants an interface index; accept a name or an index."""
    if not interface:
        return 0
    if interface.isdigit():
        return int(interface)
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise ConfigError(f"--interface {interface!r}: no such network interface") from None


def show_address(peer: tuple | None) -> str:
    """``host:port``, or ``[v6]:port``, for a log line."""
    if not peer:
        return "?"
    host, port = peer[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
