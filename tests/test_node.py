"""The node template: a start that fails (no JACK server) leaves nothing
open, however often a daemon retries it.  No jackd: the server named here
never runs."""
from __future__ import annotations

import os
import threading

import pytest

from jacknet import Receiver, ReceiverConfig, Sender, SenderConfig, ServerNotRunning, Supervisor

NOBODY = "jacknet-test-none"


def open_fds() -> int:
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
