"""A UDP relay for the tests and benchmarks that injects loss, duplication
and delay jitter (which reorders), with a seeded random generator so runs
repeat.  Replies from the target go back the same way, impaired alike, and
every datagram can also go unharmed to a second target (a clean reference).
Forgeries made from each datagram can go out beside it, from the address the
real ones come from."""
from __future__ import annotations

import heapq
import random
import select
import socket
import threading
import time


class UdpRelay:
    """Forwards datagrams to ``target``, impaired, and the target's replies
    back to whoever sent last (impaired alike), so two-way protocols such as
    JackTrip's pass too."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.loss = self.duplicate = 0.0
        self.jitter = 0.0  # seconds, uniform 0..jitter
        self.single_losses = False  # never drop two datagrams in a row
        self._dropped_last = False
        self.clean_target: tuple[str, int] | None = None
        self.forwarded = self.dropped = self.duplicated = 0
        self._queue: list[tuple[float, int, bytes, socket.socket, tuple]] = []
        self._n = 0
        self._client: tuple | None = None
        self._stop = threading.Event()
        # forge(datagram) -> forgeries sent beside it, from the same address
        self.forge = None

    def start(self, target: tuple[str, int], clean_target: tuple[str, int] | None = None
              ) -> tuple[str, int]:
        self.target, self.clean_target = target, clean_target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.bind(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self.sock.getsockname()

    def impair(self, loss: float = 0.0, duplicate: float = 0.0, jitter: float = 0.0,
               single_losses: bool = False) -> None:
        self.loss, self.duplicate, self.jitter = loss, duplicate, jitter
        self.single_losses = single_losses

    def _schedule(self, data: bytes, now: float, via: socket.socket, to: tuple) -> None:
        self._n += 1
        heapq.heappush(self._queue, (now + self.rng.uniform(0, self.jitter), self._n, data, via, to))

    def _pass(self, data: bytes, now: float, via: socket.socket, to: tuple) -> None:
        drop = self.rng.random() < self.loss and not (self.single_losses and self._dropped_last)
        self._dropped_last = drop
        if drop:
            self.dropped += 1
            return
        self._schedule(data, now, via, to)
        if self.rng.random() < self.duplicate:
            self.duplicated += 1
            self._schedule(data, now, via, to)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                _, _, data, via, to = heapq.heappop(self._queue)
                via.sendto(data, to)
                self.forwarded += 1
            wait = self._queue[0][0] - now if self._queue else 0.05
            try:
                ready, _, _ = select.select([self.sock, self.out], [], [], max(0.0002, min(wait, 0.05)))
                now = time.monotonic()  # the delay counts from receipt, not from before the wait
                for sock in ready:
                    data, sender = sock.recvfrom(65536)
                    if sock is self.sock:  # from the client, to the target
                        self._client = sender
                        if self.clean_target is not None:
                            self.out.sendto(data, self.clean_target)
                        self._pass(data, now, self.out, self.target)
                        forge = self.forge
                        for forged in forge(data) if forge else ():
                            self.out.sendto(forged, self.target)
                    elif self._client is not None:  # the target's reply
                        self._pass(data, now, self.sock, self._client)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
        self.out.close()


class TcpRelay:
    """Forwards TCP connections to a target; can cut every connection and
    refuse new ones (the port closed) until `resume`."""

    def __init__(self) -> None:
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self, target: tuple[str, int], clean_target: tuple[str, int] | None = None
              ) -> tuple[str, int]:
        self.target, self.clean_target = target, clean_target
        self._listen(0)
        return self.address

    def _listen(self, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4)
        self.address = listener.getsockname()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            # A path forwards what it gets at once.  With Nagle on, a write
            # waited for the receiver's delayed ACK (up to 40 ms): underruns
            # with no hold-up and no xrun (fresh clones' runs).
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Close every connection and stop listening: connects are refused."""
        self._listener.close()
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._conns = []

    def resume(self) -> None:
        self._listen(self.address[1])

    def close(self) -> None:
        self.cut()
