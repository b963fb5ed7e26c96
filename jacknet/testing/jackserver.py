"""A private JACK server run as a child process (``jackd -d dummy``).

Used by ``jacknet demo``, the tests and the benchmarks, so they never touch
a user's own server.  jack2 holds at most 8 servers machine-wide and a server
killed hard keeps its slot until one of the same name starts again, so
servers get fixed names and are stopped with SIGTERM and a wait.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time

import jack

from jacknet.rt.binding import _quiet_libjack
from jacknet.errors import JacknetError


class PrivateServer:
    """``jackd -n NAME [-S] --no-realtime -d dummy -r RATE -p PERIOD``.

    Parameters
    ----------
    name : str
        Server name, fixed per user of the server (a test module, the demo).
    sync : bool
        Synchronous mode: the loop waits for every client each cycle, which
        makes a one-server loop deterministic (exactness tests).
    realtime : bool
        Run jackd with SCHED_FIFO (``-R``) instead of ``--no-realtime``.
    """

    def __init__(self, name: str, rate: int = 48000, period: int = 128, sync: bool = True,
                 realtime: bool = False) -> None:
        self.name = name
        self.rate = rate
        self.period = period
        self.sync = sync
        self.realtime = realtime
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        jackd = shutil.which("jackd")
        if not jackd:
            raise JacknetError("jackd not found: install it with `apt-get install jackd2`")
        cmd = [jackd, "-n", self.name]
        if self.sync:
            cmd.append("-S")
        cmd.append("-R" if self.realtime else "--no-realtime")
        cmd += ["-d", "dummy", "-r", str(self.rate), "-p", str(self.period)]
        return cmd

    def start(self, timeout: float = 10.0) -> "PrivateServer":
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        _quiet_libjack()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace").strip().splitlines()
                raise JacknetError(f"jackd -n {self.name} exited at start: "
                                   f"{err[-1] if err else 'no message'}")
            try:
                probe = jack.Client("jacknet-probe", servername=self.name, no_start_server=True)
            except jack.JackOpenError:
                time.sleep(0.05)
                continue
            probe.close()
            return self
        self.stop()
        raise JacknetError(f"jackd -n {self.name} did not come up within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()  # last resort; the slot is reclaimed on the next start
                self.process.wait()
        self.process.stderr.close()
        self.process = None

    def __enter__(self) -> "PrivateServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
