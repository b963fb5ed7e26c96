"""``--mtu auto``: the largest datagram a sink sends on its path."""
from __future__ import annotations

import socket

import pytest

from jacknet.net.link import SAFE_MTU
from jacknet.net.udp import UdpSink, choose_mtu


@pytest.mark.parametrize("path,family,want", [
    (65535, socket.AF_INET, 65507),    # IPv4 loopback: a packet goes whole
    (65536, socket.AF_INET6, 65488),   # IPv6 loopback
    (9000, socket.AF_INET, 8972),      # jumbo frames
    (1500, socket.AF_INET, SAFE_MTU),  # Ethernet: room for the tunnels beyond it
    (1420, socket.AF_INET, 1392),      # a WireGuard tunnel the kernel knows of
    (1280, socket.AF_INET6, 1232),     # IPv6's least
    (None, socket.AF_INET, SAFE_MTU),  # the kernel cannot say
])
def test_auto_fills_a_path_set_up_for_large_datagrams_and_stays_safe_elsewhere(path, family, want):
    assert choose_mtu(path, family) == want


def test_a_udp_sink_asks_the_kernel_for_its_path():
    sink = UdpSink("127.0.0.1", 9)
    try:
        assert sink.auto_mtu() == 65507
    finally:
        sink.close()


def test_over_ipv6_the_headers_are_larger():
    try:
        sink = UdpSink("::1", 9)
    except Exception as e:  # a machine without IPv6
        pytest.skip(str(e))
    try:
        assert sink.auto_mtu() == 65536 - 48
    finally:
        sink.close()

