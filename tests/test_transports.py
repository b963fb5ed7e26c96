"""TCP that mends itself, UDP multicast to several receivers (both also
sealed), IPv6, and the unicast receiver's lock on its first sender: all end
to end on a real JACK server."""
from __future__ import annotations

import random
import socket
import time

import pytest

from conftest import HOLD_LIMIT, RATE, Link, judge_links, run_links, sealed_options
from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet import Receiver, ReceiverConfig
from jacknet.testing.verify import SignalChecker
from jacknet.stats import as_dict
from relay import TcpRelay
from test_link import assert_exact_tail

pytestmark = pytest.mark.jack  # each test runs a private jackd

TCP = {"transport": "tcp"}


def test_tcp_is_bit_exact(jack_servers, links):
    links.append(Link(jack_servers(256), "tcp", 2, recv_options=TCP))
    run_links(links, 8)
    assert_exact_tail(links[0], 7.5)
    assert links[0].stats_since_start()["underruns"] == 0


@pytest.fixture(params=["off", "psk"])
def security(request, tmp_path) -> dict:
    """Both ends' options: unsealed, or sealed with a new key (docs/security.md)."""
    return sealed_options(tmp_path) if request.param == "psk" else {}


def test_tcp_survives_a_cut_and_a_refusing_peer(jack_servers, links, security):
    relay = TcpRelay()
    link = Link(jack_servers(256), "tcpcut", 2, recv_options={**TCP, **security}, relay=relay,
                **security)
    links.append(link)
    resumed = {}

    def outage(t: float) -> None:
        if 3 <= t < 5 and "cut" not in resumed:
            relay.cut()
            resumed["cut"] = t
        elif t >= 5 and "at" not in resumed:
            relay.resume()
            resumed["at"] = t
        seg = link.checker.current
        if ("at" in resumed and "exact" not in resumed and t - resumed["at"] >= 0.5
                and seg is not None and seg.delay is not None and seg.clean_tail >= RATE // 2):
            resumed["exact"] = t - 0.5  # when that half second of exact audio began

    seconds = 12
    hold = run_links(links, seconds, during=outage)
    stats = as_dict(link.receiver.stats())
    assert link.sender._thread.is_alive() and link.receiver._thread.is_alive()
    sink = getattr(link.sender.link, "inner", link.sender.link)  # sealed: the TCP sink inside
    assert sink.connects >= 2, "the sender never reconnected"
    assert stats["concealed_frames"] > 0 and stats["relocks"] >= 1
    assert not security or stats["auth_failures"] == stats["replays"] == 0, stats
    # Audio back, and exact at a constant delay, within 2 s of the relay
    # accepting again; and exact from then on.
    assert resumed.get("exact", seconds) - resumed["at"] <= 2.0, (link.checker.summary(), stats)
    seg = link.checker.current
    assert seg.delay is not None
    if seg.clean_tail < (seconds - resumed["at"] - 2.0) * RATE:
        # Only where this process (sender, receiver and relay share its GIL)
        # was held up, as a TCP sender's queue then drops, or where the
        # JACK server missed cycles: a fresh window must be exact.
        xruns = link.stats_since_start()["xruns"]
        counters = {k: stats[k] for k in ("late", "lost", "underruns", "relocks", "xruns")}
        assert hold >= HOLD_LIMIT or xruns, (link.checker.summary(), counters,
                                             link.sender.stats().queue_dropped, hold)
        judge_links(links, 3, lambda: assert_exact_tail(link, 2.5))


def test_a_second_tcp_sender_is_refused_and_the_first_plays_on(jack_servers, links):
    link = Link(jack_servers(256), "tcpbusy", 2, recv_options=TCP)
    links.append(link)

    def intruder(t: float) -> None:
        if 1 <= t and not link.receiver.stats().refused:
            s = socket.create_connection(link.receiver.address)
            s.settimeout(2)
            assert s.recv(10) == b""      # closed on us
            s.close()

    run_links(links, 4, during=intruder)
    assert link.receiver.stats().refused >= 1
    assert_exact_tail(link, 3.5)
    assert len(link.checker.segments) == 1


def test_multicast_reaches_two_receivers_bit_exact(jack_servers, links, security):
    server = jack_servers(256)
    group, port = f"239.255.{random.randrange(1, 250)}.{random.randrange(1, 250)}", random.randrange(40000, 50000)
    join = {"interface": "127.0.0.1", **security}
    link = Link(server, "mc", 2, host=group, port=port, recv_options=join, interface="127.0.0.1",
                **security)
    links.append(link)
    # A second receiver on the same group, with its own recorder and check.
    rec = JackClient("rec-mc2", server.name)
    rec.register("in", 2, "in")
    cap = Capture(2, capacity=1 << 16)
    rec.run(cap)
    second = Receiver(ReceiverConfig(group, port, 2, "recv-mc2", "rec-mc2:in_.*", 40.0, server.name,
                                     interface="127.0.0.1", **security)).start()
    link.closers += [rec, second]
    checker = SignalChecker(cap, 0.0, server.period, RATE)
    time.sleep(1.0)
    checker.discard()
    run_links(links, 6, during=lambda t: checker.poll())
    checker.poll()
    assert_exact_tail(link, 5)
    seg = checker.current
    assert seg.delay is not None and seg.exact == seg.frames >= 5 * RATE, checker.summary()
    if security:
        assert second.stats().auth_failures == 0 and second.stats().announcements == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ipv6_loopback(jack_servers, links, transport):
    links.append(Link(jack_servers(256), f"v6{transport}", 2, host="::1",
                      recv_options={"transport": transport}))
    run_links(links, 4)
    assert_exact_tail(links[0], 3.5)


def test_unicast_receiver_ignores_a_second_source_while_its_sender_plays(jack_servers, links):
    link = Link(jack_servers(256), "lock", 2)
    links.append(link)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A well-formed packet from another source: ignored before it is even parsed.
    from jacknet.net import protocol
    packet = protocol.Header(protocol.CODEC_FLOAT32, 1234, 0, 0, RATE, 4, 1, payload_len=16).pack() + bytes(16)
    run_links(links, 3, during=lambda t: other.sendto(packet, link.receiver.address))
    other.close()
    stats = as_dict(link.receiver.stats())
    assert stats["foreign_sources"] > 0 and stats["packets"] > 0 and stats["foreign"] == 0
    assert_exact_tail(link, 2.5)
