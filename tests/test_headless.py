"""Sender and receiver as an admin runs them: subprocesses started from
their config files, with a signal generator and a recorder in this process,
all on one real dummy JACK server.  ``kill -9`` the server and start it
again: both daemons live on, come back, connect again (to clients that came
back after them, too), and the recording is bit-exact again; restart the
recorder alone: the receiver connects to it again."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet.testing.jackserver import PrivateServer
from jacknet.testing.signals import Generator
from jacknet.testing.verify import SignalChecker

pytestmark = pytest.mark.jack  # each test runs a private jackd

NAME = "jacknet-test-headless"
RATE, PERIOD = 48000, 256


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon(tmp_path: Path, role: str, body: str) -> subprocess.Popen:
    path = tmp_path / f"{role}.toml"
    path.write_text(f'role = "{role}"\n{body}[status]\nsocket = "off"\n'
                    f'[run]\nstats-interval = 60\n')
    return subprocess.Popen([sys.executable, "-m", "jacknet", role, "--config", str(path),
                             "--wait-for-jack"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


class Ends:
    """The test's own clients: the known signal into the sender, the
    recorder on the receiver's outputs, and a checker of what it records."""

    def __init__(self) -> None:
        self.sig = JackClient("hl-sig", NAME)
        self.sig.register("out", 2, "out")
        self.sig.run(Generator(2, "noise"))
        self.start_recorder()

    def start_recorder(self) -> None:
        self.rec = JackClient("hl-rec", NAME)
        self.rec.register("in", 2, "in")
        self.capture = Capture(2, capacity=1 << 16)
        self.rec.run(self.capture)
        self.checker = SignalChecker(self.capture, 0.0, PERIOD, RATE)

    def exact_for(self, seconds: float, timeout: float) -> float | None:
        """Seconds until the recording's last ``seconds`` were exact at one
        delay, or None if not within ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            time.sleep(0.05)
            self.checker.poll()
            seg = self.checker.current
            if seg is not None and seg.delay is not None and seg.clean_tail >= seconds * RATE:
                return time.monotonic() - start - seconds
        return None

    def close(self) -> None:
        for client in (self.rec, self.sig):
            try:
                client.close()
            except Exception:
                pass


def test_both_daemons_outlive_a_killed_server_and_their_connections_come_back(tmp_path):
    port = free_port()
    server = PrivateServer(NAME, RATE, PERIOD, sync=True).start()
    ends = None
    procs = []
    try:
        ends = Ends()
        procs = [daemon(tmp_path, "recv", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                        f'[audio]\nchannels = 2\n[jack]\nname = "hl-recv"\nserver = "{NAME}"\n'
                        f'connect = "hl-rec:in_.*"\n[receive]\nlatency = 10\n'),
                 daemon(tmp_path, "send", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                        f'[audio]\nchannels = 2\n[jack]\nname = "hl-send"\nserver = "{NAME}"\n'
                        f'connect = "hl-sig:out_.*"\n')]
        assert ends.exact_for(2, 15) is not None, ends.checker.summary()

        server.process.kill()  # kill -9: no goodbye to any client
        server.process.wait()
        ends.close()
        time.sleep(2)
        assert [p.poll() for p in procs] == [None, None], "a daemon exited with the server"
        server.stop()
        server.start()
        ready = time.monotonic()
        # Our clients come back after the daemons may have: they connect to
        # ports that appear later as well.
        ends = Ends()
        took = ends.exact_for(1, 15)
        assert took is not None, ends.checker.summary()
        back = time.monotonic() - ready - 1
        # A measurement, not a bound (the machine is shared): the daemons
        # look every second, then the first lock and fade-in.
        print(f"\nJACK ready to exact audio: {back:.2f} s")

        ends.rec.close()  # the recorder alone restarts
        ends.start_recorder()
        again = ends.exact_for(1, 10)
        assert again is not None, ends.checker.summary()
        print(f"recorder restart to exact audio: {again:.2f} s")
    finally:
        errs = []
        for p in procs:
            p.send_signal(signal.SIGTERM)
            errs.append(p.communicate(timeout=10)[1])
        if ends is not None:
            ends.close()
        server.stop()
    assert [p.returncode for p in procs] == [0, 0], errs
    for err in errs:
        assert "the JACK server went away" in err and "link restored" in err, err
    assert "connected hl-recv:out_1 -> hl-rec:in_1 (the port appeared)" in errs[0], errs[0]
