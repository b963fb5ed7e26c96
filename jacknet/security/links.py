"""Link ends that seal and open (``security = psk``): a `SealedSink` around
any sink, a `SealedSource` around any source, so UDP unicast, multicast and
TCP are sealed alike.  What they refuse they count and never answer; the
first failure to authenticate is logged, then one a minute at most.  Both
run on the node's worker thread, never on JACK's."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

from jacknet.net import protocol
from jacknet.net.address import show_address
from jacknet.net.link import Sink, SinkStats, Source, SourceStats
from jacknet.security import seal
from jacknet.stats import RateLimitedLog

log = logging.getLogger(__name__)

# A stream announces itself when it starts and soon after (a receiver that
# missed the first hears it within a third of a second), then every second
# (a receiver that starts later joins within one).
ANNOUNCE_AFTER = (0.0, 0.1, 0.3)
ANNOUNCE_EVERY = 1.0


class SealedSink:
    """Seals every datagram of the stream it carries, and announces the
    stream; a new stream id (a rebuilt sender) gets a new key."""

    def __init__(self, inner: Sink, psk: bytes, clock=time.monotonic) -> None:
        self.inner = inner
        self._psk, self._clock = psk, clock
        self._sealer: seal.Sealer | None = None
        self._started = self._next = 0.0
        self._announced = 0  # of this stream
        self.announcements = 0
        self._lock = threading.Lock()  # rekey (a reload) against send (the worker)
        self._pending: bytes | None = None

    def rekey(self, psk: bytes) -> bool:
        """Seal with ``psk`` from the next datagram on: the stream is
        announced again under it at once (a receiver holding both keys
        follows without a dropout).  Any thread; the sending one applies it.
        True if it is another key than the one in use."""
        with self._lock:
            new = psk != (self._pending or self._psk)
            self._pending = psk
        return new

    def send(self, datagram: bytes) -> bool:
        if self._pending is not None:
            with self._lock:
                psk, self._pending = self._pending, None
            if psk != self._psk:
                self._psk, self._sealer = psk, None
        now = self._clock()
        stream_id = seal.stream_id_of(datagram)
        if self._sealer is None or self._sealer.stream_id != stream_id:
            self._sealer = seal.Sealer(self._psk, stream_id)
            self._started = self._next = now
            self._announced = 0
        if now >= self._next:
            self.inner.send(self._sealer.announcement())
            self.announcements += 1
            self._announced += 1
            self._next = (self._started + ANNOUNCE_AFTER[self._announced]
                          if self._announced < len(ANNOUNCE_AFTER) else now + ANNOUNCE_EVERY)
        return self.inner.send(self._sealer.seal(datagram))

    def auto_mtu(self) -> int:
        return self.inner.auto_mtu()

    def stats(self) -> SinkStats:
        return dataclasses.replace(self.inner.stats(), announcements=self.announcements)

    def close(self) -> None:
        self.inner.close()


class SealedSource:
    """Opens what the source receives: announcements make streams known,
    sealed datagrams come out as the sender made them, and everything
    else is dropped and counted (`seal.OpenStats`)."""

    def __init__(self, inner: Source, keys: list[bytes]) -> None:
        self.inner = inner
        self.opener = seal.Opener(keys)
        self._raw = bytearray(protocol.MAX_DATAGRAM)
        self._said = RateLimitedLog(log, 60.0)  # the first, then one a minute at most
        self._lock = threading.Lock()  # rekey (a reload) against receive (the worker)
        self._pending: list[bytes] | None = None

    @property
    def on_new_peer(self):
        return self.inner.on_new_peer

    @on_new_peer.setter
    def on_new_peer(self, callback) -> None:
        self.inner.on_new_peer = callback

    @property
    def address(self) -> tuple[str, int]:
        return self.inner.address

    def receive(self, buf: bytearray, timeout: float = 0.1) -> tuple[int, tuple | None]:
        if self._pending is not None:
            with self._lock:
                keys, self._pending = self._pending, None
            self.opener.set_keys(keys)
        deadline = time.monotonic() + timeout
        while True:
            n, peer = self.inner.receive(self._raw, timeout)
            if n:
                view = memoryview(self._raw)[:n]
                if seal.is_announcement(view):
                    # Not vouched for: an announcement may be a recorded one.
                    self.opener.announce(view)
                else:
                    failed = self.opener.stats.auth_failures
                    plain = self.opener.open(view)
                    if plain is not None:
                        self.inner.vouch()
                        buf[:len(plain)] = plain
                        return len(plain), peer
                    if self.opener.stats.auth_failures != failed:
                        self._said("auth", "dropping datagrams from %s that do not "
                                   "authenticate (another key, unsealed, or forged)",
                                   show_address(peer))
            timeout = deadline - time.monotonic()
            if not n or timeout <= 0:
                return 0, None

    def rekey(self, keys: list[bytes]) -> bool:
        """Take these keys from now on (`seal.Opener.set_keys`).  Any
        thread; the receiving one applies it.  True if they are not the
        ones in use."""
        with self._lock:
            new = keys != (self._pending or self.opener.keys)
            self._pending = keys
        return new

    def vouch(self) -> None:
        self.inner.vouch()

    def drain(self) -> None:
        self.inner.drain()

    def stats(self) -> SourceStats:
        s = self.opener.stats
        return dataclasses.replace(self.inner.stats(), auth_failures=s.auth_failures,
                                   replays=s.replays, unannounced=s.unannounced,
                                   announcements=s.announcements)

    def close(self) -> None:
        self.inner.close()
