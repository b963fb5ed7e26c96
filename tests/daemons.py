"""Daemons as an admin runs them, for the tests and `scripts/bench_headless.py`:
``jacknet send``/``recv`` subprocesses started from config files, the
clients around them (a known signal in, a recorder and its checker out), and
a stand-in for systemd's notification socket."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet.testing.signals import Generator
from jacknet.testing.verify import SignalChecker

RATE, PERIOD = 48000, 256


def daemon(directory: Path, role: str, body: str, env: dict | None = None,
           wait_for_jack: bool = True) -> subprocess.Popen:
    """``jacknet ROLE --config FILE`` with ``body`` as the file (no status
    socket, quiet stats); its stderr is piped for the test to read."""
    path = directory / f"{role}.toml"
    path.write_text(f'role = "{role}"\n{body}[status]\nsocket = "off"\n'
                    f'[run]\nstats-interval = 60\n')
    return subprocess.Popen([sys.executable, "-m", "jacknet", role, "--config", str(path),
                             *(["--wait-for-jack"] if wait_for_jack else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)


class Ends:
    """The test's own clients: the known signal into the sender, the
    recorder on the receiver's outputs, and a checker of what it records;
    and a tap, a client the test connects by hand."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.sig = JackClient("hl-sig", server)
        self.sig.register("out", 2, "out")
        self.sig.run(Generator(2, "noise"))
        self.tap = JackClient("hl-tap", server)
        self.tap.register("in", 1, "in")
        self.tap.run(Capture(1))
        self.start_recorder()

    def start_recorder(self) -> None:
        self.rec = JackClient("hl-rec", self.server)
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

    def tapped(self) -> bool:
        """Whether the receiver's second output reaches the tap."""
        return ("hl-recv:out_2", "hl-tap:in_1") in self.tap.connections()

    def close(self) -> None:
        for client in (self.rec, self.tap, self.sig):
            try:
                client.close()
            except Exception:
                pass


class FakeSystemd:
    """The notification socket, read by a thread: every message with the
    monotonic time it came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, list[str]]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode().split("\n")))

    def env(self, watchdog_seconds: float = 2.0) -> dict:
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(int(watchdog_seconds * 1e6))}

    def wait_for(self, predicate, timeout: float) -> tuple[float, list[str]] | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for message in list(self.messages):
                if predicate(message[1]):
                    return message
            time.sleep(0.02)
        return None

    def times(self, line: str, after: float = 0.0) -> list[float]:
        return [t for t, lines in list(self.messages) if line in lines and t >= after]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
