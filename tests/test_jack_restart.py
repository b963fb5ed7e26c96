"""A daemon outlives its JACK server: it waits, and rebuilds the link when
the server is back (same name), without anyone touching it."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import jack

from jacknet.jackserver import PrivateServer

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


def test_receiver_survives_a_jack_restart():
    server = PrivateServer(NAME, period=256).start()
    proc = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "127.0.0.1:0", "--server",
                             NAME, "--name", "survivor", "--stats-interval", "0.5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_ports(NAME, "survivor:", 2)
        server.stop()
        time.sleep(2)
        assert proc.poll() is None, "the receiver exited when JACK went away"
        server.start()
        assert wait_for_ports(NAME, "survivor:", 2), "the receiver did not come back"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "waiting for it to come back" in err and "link restored" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


def test_receiver_rebuilds_when_the_period_changes():
    server = PrivateServer(NAME, period=256).start()
    proc = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "127.0.0.1:0", "--server",
                             NAME, "--name", "resized", "--stats-interval", "0.3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_ports(NAME, "resized:", 2)
        subprocess.run(["jack_bufsize", "128"], env={"JACK_DEFAULT_SERVER": NAME},
                       capture_output=True, timeout=10, check=True)
        time.sleep(1.5)
        assert proc.poll() is None
        assert wait_for_ports(NAME, "resized:", 2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "rebuilding the link" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
