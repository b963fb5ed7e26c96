"""Sockets: address parsing and UDP endpoints."""
from __future__ import annotations

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


def _resolve(host: str, port: int, passive: bool) -> tuple:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM,
                                   flags=socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve {host!r}: {e.strerror}") from None
    return infos[0]


def open_sender_socket(host: str, port: int) -> socket.socket:
    family, type_, proto, _, address = _resolve(host, port, passive=False)
    sock = socket.socket(family, type_, proto)
    sock.connect(address)
    return sock


def open_receiver_socket(host: str, port: int) -> socket.socket:
    family, type_, proto, _, address = _resolve(host, port, passive=True)
    sock = socket.socket(family, type_, proto)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock
