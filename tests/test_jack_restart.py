"""A daemon outlives its JACK server: it waits, and rebuilds the link when
the server is back (same name), without anyone touching it."""
from __future__ import annotations

import pytest

import contextlib
import signal
import subprocess
import sys
import time

import jack

from jacknet.testing.jackserver import PrivateServer

pytestmark = pytest.mark.jack  # each test runs a private jackd

NAME = "jacknet-test-restart"


def wait_for_ports(server: str, prefix: str, count: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            probe = jack.Client("restart-probe", servername=server, no_start_server=True)
        except jack.JackOpenError:
            time.sleep(0.2)
            continue
        try:
            names = [p.name for p in probe.get_ports(prefix)]
        finally:
            probe.close()
        if len(names) == count:
            return names
        time.sleep(0.2)
    return []


@contextlib.contextmanager
def receiver_on_private_server(client: str):
    """A `jacknet recv` process on its own server; yields (server, process)
    once its ports exist, and always stops both."""
    server = PrivateServer(NAME, period=256).start()
    proc = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "127.0.0.1:0", "--server",
                             NAME, "--name", client, "--stats-interval", "0.3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_ports(NAME, f"{client}:", 2)
        yield server, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


def stop_cleanly(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return err


def test_receiver_survives_a_jack_restart():
    with receiver_on_private_server("survivor") as (server, proc):
        server.stop()
        time.sleep(2)
        if proc.poll() is not None:  # what it said is what the next look needs
            raise AssertionError(f"the receiver exited ({proc.returncode}) when JACK went "
                                 f"away: {proc.communicate(timeout=5)[1]}")
        server.start()
        assert wait_for_ports(NAME, "survivor:", 2), "the receiver did not come back"
        err = stop_cleanly(proc)
        assert "waiting for it to come back" in err and "link restored" in err


def test_receiver_rebuilds_when_the_period_changes():
    with receiver_on_private_server("resized") as (server, proc):
        subprocess.run(["jack_bufsize", "128"], env={"JACK_DEFAULT_SERVER": NAME},
                       capture_output=True, timeout=10, check=True)
        time.sleep(1.5)
        assert proc.poll() is None
        assert wait_for_ports(NAME, "resized:", 2)
        assert "rebuilding the link" in stop_cleanly(proc)
