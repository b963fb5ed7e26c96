"""The node template: a start that fails (no JACK server) leaves nothing
open, however often a daemon retries it.  No jackd: the server named here
never runs."""
from __future__ import annotations

import gc
import os
import socket
import threading
import time

import pytest

from conftest import wait_for
from jacknet import Receiver, ReceiverConfig, Sender, SenderConfig, ServerNotRunning, Supervisor
from jacknet.errors import ConfigError, JacknetError
from jacknet.net.udp import UdpSink, UdpSource
from jacknet.node import network_priority

NOBODY = "jacknet-test-none"


def open_fds() -> int:
    gc.collect()  # what earlier tests left to the collector is not ours to count
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("make", [
    lambda: Sender(SenderConfig("127.0.0.1", 9, server=NOBODY)),
    lambda: Sender(SenderConfig("127.0.0.1", 9, server=NOBODY, transport="tcp")),
    lambda: Receiver(ReceiverConfig("127.0.0.1", 0, server=NOBODY)),
    lambda: Receiver(ReceiverConfig("127.0.0.1", 0, server=NOBODY, transport="tcp")),
], ids=["send-udp", "send-tcp", "recv-udp", "recv-tcp"])
def test_failed_starts_leak_no_socket_and_no_thread(make):
    with pytest.raises(ServerNotRunning):
        make().start()  # the first may load libraries and open what stays open for good
    fds, threads = open_fds(), threading.active_count()
    for _ in range(50):
        with pytest.raises(ServerNotRunning):
            make().start()
    assert (open_fds(), threading.active_count()) == (fds, threads)


def test_a_supervisor_waiting_for_jack_leaks_nothing():
    """A daemon whose JACK server went away retries until stopped (here every
    10 ms for 1.5 s: about 150 attempts, as many as 2.5 minutes of 1 s retries)."""
    config = SenderConfig("127.0.0.1", 9, server=NOBODY, transport="tcp")
    supervisor = Supervisor(lambda: Sender(config), "send", 1.0, retry=0.01)
    with pytest.raises(ServerNotRunning):
        Sender(config).start()
    fds, threads = open_fds(), threading.active_count()
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    assert supervisor.restart(stop) is None
    threading.Event().wait(0.05)  # the timer's own thread ends
    assert (open_fds(), threading.active_count()) == (fds, threads)


def test_a_node_is_a_context_manager_that_closes_what_it_opened():
    fds = open_fds()
    with pytest.raises(ServerNotRunning):
        with Receiver(ReceiverConfig("127.0.0.1", 0, server=NOBODY)):
            pass
    assert open_fds() == fds


def test_a_waiting_receiver_keeps_its_port_bound_across_attempts():
    """JACK away: the socket a sender sends to stays bound (no ICMP refusals,
    no other program taking the port), and is closed once stopped."""
    config = ReceiverConfig("127.0.0.1", 0, server=NOBODY)
    supervisor = Supervisor(lambda: Receiver(config), "recv", 1.0, retry=0.01,
                            wait_for_jack=True)
    stop = threading.Event()
    waiting = threading.Thread(target=lambda: supervisor.restart(stop, first=True))
    waiting.start()
    try:
        assert wait_for(lambda: supervisor.state == "waiting", 10)
        port = int(supervisor.summary().rsplit(":", 1)[1])
        threading.Event().wait(0.2)  # some 20 attempts
        assert supervisor.summary().endswith(f"listening on 127.0.0.1:{port}")
        with pytest.raises(ConfigError, match="cannot listen"):
            UdpSource("127.0.0.1", port)
    finally:
        stop.set()
        waiting.join()
    UdpSource("127.0.0.1", port).close()  # free again


class Refused(Receiver):
    """A receiver that JACK will not take (a server shutting down, or an
    activation a signal interrupted); ``stop`` is set during its start."""

    attempts = 0
    stop: threading.Event | None = None

    def start(self, link=None):
        Refused.attempts += 1
        if Refused.stop is not None:
            Refused.stop.set()
        raise JacknetError("JACK would not activate client 'x': Error activating JACK client (-1)")


def test_a_server_that_refuses_a_client_is_retried_and_a_stop_meanwhile_is_no_failure():
    config = ReceiverConfig("127.0.0.1", 0, server=NOBODY)
    Refused.attempts, Refused.stop = 0, None
    with pytest.raises(JacknetError, match="would not activate"):  # run by hand: say it
        Supervisor(lambda: Refused(config), "recv", 1.0, retry=0.01).restart(
            threading.Event(), first=True)
    supervisor = Supervisor(lambda: Refused(config), "recv", 1.0, retry=0.01,
                            wait_for_jack=True)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    assert supervisor.restart(stop, first=True) is None
    assert Refused.attempts > 5 and "would not activate" in supervisor.summary()
    Refused.attempts, Refused.stop = 0, threading.Event()
    assert Supervisor(lambda: Refused(config), "recv", 1.0).restart(
        Refused.stop, first=True) is None
    assert Refused.attempts == 1


def test_a_drain_takes_what_is_queued_and_returns_while_more_keeps_coming():
    source = UdpSource("127.0.0.1", 0)
    shooter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooding = threading.Event()

    def flood() -> None:
        while not flooding.is_set():
            shooter.sendto(b"x" * 100, source.address)
            time.sleep(0.0005)

    for _ in range(200):
        shooter.sendto(b"old", source.address)
    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        drainer = threading.Thread(target=source.drain)
        drainer.start()
        drainer.join(10)
        assert not drainer.is_alive()
        buf = bytearray(2048)
        n, _ = source.receive(buf, 1.0)
        assert n == 100  # the old ones are gone; what came after is read as usual
    finally:
        flooding.set()
        flooder.join()
        shooter.close()
        source.close()


def test_a_sink_sends_into_the_void_without_blocking_and_counts_what_did_not_go():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]  # closed again: the kernel answers with refusals
    sink = UdpSink("127.0.0.1", nobody)
    sent = []
    sender = threading.Thread(target=lambda: sent.extend(sink.send(bytes(1200))
                                                         for _ in range(5000)))
    sender.start()
    sender.join(10)
    try:
        assert not sender.is_alive()
        assert len(sent) == 5000 and sink.stats().send_errors == sent.count(False) > 0
    finally:
        sink.close()


def test_the_network_thread_stays_below_jack_s_process_threads():
    assert network_priority(5, 70) == 5
    assert network_priority(5, 5) == 4    # jackd -R's default: its clients at 5
    assert network_priority(80, 70) == 69
    assert network_priority(5, 1) == 0
    assert network_priority(5, None) == 0  # a server that is not realtime
    assert network_priority(0, 70) == 0
