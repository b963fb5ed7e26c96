"""A link to look at: a private dummy JACK server, a known signal into a
``jacknet send`` daemon, and a ``jacknet recv`` daemon playing it, both real
subprocesses started from config files with their status sockets (and the
receiver's status page).  What the monitor tests and `scripts/screenshots`
watch.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from jacknet.rt.binding import JackClient
from jacknet.service.status import query
from jacknet.testing.jackserver import PrivateServer
from jacknet.testing.signals import Generator


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that nothing holds now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scene:
    """Start with ``with Scene(...) as scene``.

    Parameters
    ----------
    directory : Path
        Where the config files and status sockets go.
    server_name : str
        The private JACK server's name.
    channels : int
        Channels of the link; the signal feeds the first ``signal_channels``
        (the rest stay silent, so a meter can tell them apart).
    http : bool
        Serve the receiver's status page on a free port (``http_url``).
    via : callable, optional
        Given the receiver's UDP port, returns the port the sender is to send
        to instead (a relay of the test's that impairs the path).
    """

    def __init__(self, directory: Path, server_name: str, channels: int = 4,
                 signal_channels: int = 2, http: bool = False, period: int = 128,
                 via=None) -> None:
        self.directory = Path(directory)
        # SCHED_FIFO, as the suite's servers: a browser loading beside it on a
        # 2-core machine would otherwise make the dummy timer skip cycles.
        self.server = PrivateServer(server_name, 48000, period, sync=False, realtime=True)
        self.channels, self.signal_channels = channels, signal_channels
        self.recv_socket = self.directory / "recv.sock"
        self.send_socket = self.directory / "send.sock"
        self.http_port = free_port(socket.SOCK_STREAM) if http else None
        self.via = via
        self.procs: list[subprocess.Popen] = []
        self.signal: Generator | None = None
        self._client: JackClient | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def __enter__(self) -> Scene:
        self.server.start()
        try:
            self._client = JackClient("scene-signal", self.server.name)
            self._client.register("out", self.signal_channels, "out")
            self.signal = Generator(self.signal_channels, "noise")
            self._client.run(self.signal)
            port = free_port(socket.SOCK_DGRAM)
            http = f'http = "127.0.0.1:{self.http_port}"\n' if self.http_port else ""
            self._daemon("recv", port, "", f'socket = "{self.recv_socket}"\n{http}')
            if self.via is not None:
                port = self.via(port)
            self._daemon("send", port, 'connect = "scene-signal:out_.*"\n',
                         f'socket = "{self.send_socket}"\n')
            self.wait_running()
        except BaseException:
            self.close()
            raise
        return self

    def _daemon(self, role: str, port: int, jack: str, status: str) -> None:
        path = self.directory / f"{role}.toml"
        path.write_text(f'role = "{role}"\n'
                        f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                        f'[audio]\nchannels = {self.channels}\n'
                        f'[jack]\nname = "scene-{role}"\nserver = "{self.server.name}"\n{jack}'
                        f'[status]\n{status}[run]\nstats-interval = 60\n')
        with open(self.log(role), "w") as log:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "jacknet", role,
                                                "--config", str(path)],
                                               stdout=subprocess.DEVNULL, stderr=log))

    def log(self, role: str) -> Path:
        """Where daemon ``role`` (send, recv) logs."""
        return self.directory / f"{role}.log"

    def wait_running(self, timeout: float = 15.0) -> None:
        """Until the receiver plays packets and both answer on their sockets."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                recv, send = query(self.recv_socket), query(self.send_socket)
                if recv.get("state") == "running" and recv["stats"]["packets"] > 0 and \
                        send.get("state") == "running":
                    return
            except (OSError, ValueError, KeyError):
                pass
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a daemon exited: {self.log('recv').read_text()}"
                                       f"{self.log('send').read_text()}")
            time.sleep(0.1)
        raise RuntimeError("the scene's link did not start")

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._client is not None:
            self._client.close()
        self.server.stop()

    def __exit__(self, *exc) -> None:
        self.close()
