"""A JACK server run as a child process, for a box that has nothing else
(``[jack] start = "if-missing"``), the demo, the tests and the benchmarks.

A child ``jackd`` rather than libjackserver in our own process: a server that
crashes then takes only itself down, the daemon notices as it notices any
server going away and starts it again, and Debian's ``jackd2`` is all it
needs.  jack2 holds at most 8 servers machine-wide and a server killed hard
keeps its slot until one of the same name starts again, so a server is
stopped with SIGTERM and a wait.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time

import jack

from jacknet.errors import JacknetError
from jacknet.rt.binding import _quiet_libjack

DRIVERS = ("dummy", "alsa")


class JackServer:
    """``jackd [-n NAME] [-S] (-R | --no-realtime) -d DRIVER ...``.

    Parameters
    ----------
    name : str or None
        Server name (``jackd -n``); None for the default server.
    driver : str
        ``dummy`` (no sound card: a clock only) or ``alsa``.
    device : str, optional
        The ALSA device (``hw:0``, ``hw:USB``); the driver's default if omitted.
    rate, period, nperiods : int
        Sample rate, frames per period, and periods per buffer (ALSA only).
    realtime : bool
        Run jackd with SCHED_FIFO (``-R``) instead of ``--no-realtime``.
    sync : bool
        Synchronous mode: the loop waits for every client each cycle, which
        makes a one-server loop deterministic (exactness tests).
    capture_output : bool
        Keep jackd's messages to report why it failed to start (short-lived
        servers: the demo, tests); else they go to our stderr (the journal).
        They are kept in a file, never a pipe: jackd writes an xrun message
        from its driver thread, and once a pipe nobody empties is full that
        write blocks, and with it every cycle of every client on the server
        (seen: a test suite's server froze after its 64 KiB of xrun lines).
    """

    def __init__(self, name: str | None, driver: str = "dummy", device: str | None = None,
                 rate: int = 48000, period: int = 256, nperiods: int = 2,
                 realtime: bool = True, sync: bool = False, capture_output: bool = False) -> None:
        self.name, self.driver, self.device = name, driver, device
        self.rate, self.period, self.nperiods = rate, period, nperiods
        self.realtime, self.sync, self.capture_output = realtime, sync, capture_output
        self.process: subprocess.Popen | None = None
        self._messages = None  # the file jackd's stderr goes to, with capture_output

    def command(self) -> list[str]:
        jackd = shutil.which("jackd")
        if not jackd:
            raise JacknetError("jackd not found: install it with `apt-get install jackd2`")
        cmd = [jackd] + (["-n", self.name] if self.name else [])
        if self.sync:
            cmd.append("-S")
        cmd.append("-R" if self.realtime else "--no-realtime")
        cmd += ["-d", self.driver, "-r", str(self.rate), "-p", str(self.period)]
        if self.driver == "alsa":
            cmd += ["-n", str(self.nperiods)] + (["-d", self.device] if self.device else [])
        return cmd

    @property
    def running(self) -> bool:
        """True while the jackd we started runs."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> "JackServer":
        """Start jackd and wait until a client can open on it.

        Raises
        ------
        JacknetError
            jackd is missing, exited at start (with its last message when
            kept), or did not come up within ``timeout`` seconds.
        """
        if self.running:
            return self
        self.stop()  # one that exited since is reaped first
        if self.capture_output:
            self._messages = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=self._messages, stdin=subprocess.DEVNULL)
        _quiet_libjack()
        label = f"jackd -n {self.name}" if self.name else "jackd"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                err = self.messages()
                self.stop()
                raise JacknetError(f"{label} exited at start (code {code}): "
                                   f"{err[-1] if err else 'see its messages above'}")
            try:
                probe = jack.Client("jacknet-probe", servername=self.name, no_start_server=True)
            except jack.JackOpenError:
                time.sleep(0.05)
                continue
            probe.close()
            return self
        self.stop()
        raise JacknetError(f"{label} did not come up within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL only if it will not go); a no-op once stopped."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()  # last resort; the slot is reclaimed on the next start
                self.process.wait()
        if self._messages is not None:
            self._messages.close()
            self._messages = None
        self.process = None

    def messages(self) -> list[str]:
        """What jackd has said so far (with ``capture_output``; else nothing)."""
        if self._messages is None:
            return []
        self._messages.seek(0)
        return self._messages.read().decode(errors="replace").strip().splitlines()

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
