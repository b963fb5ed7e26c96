"""Fixtures: private dummy JACK servers (synchronous mode, fixed names) and
a whole link wired in one process: test signal -> sender -> UDP (optionally
through a relay) -> receiver -> recorder, checked by a SignalChecker."""
from __future__ import annotations

import contextlib
import gc
import threading
import time
from typing import Callable

import pytest

from jacknet.rt.binding import JackClient
from jacknet.testing.awake import KeptAwake
from jacknet.testing.jackserver import PrivateServer
from jacknet.rt.engines import Capture
from jacknet.testing.signals import Generator
from jacknet import Receiver, ReceiverConfig
from jacknet import Sender, SenderConfig
from jacknet.testing.verify import SignalChecker, SnrChecker
from jacknet.security.keys import keygen
from jacknet.stats import as_dict

RATE = 48000
INT16_LSB = 1.0 / 32768
# Frames per check (whole cycles): a cycle at a time, the checking of the
# period-64 links fell seconds behind on a busy machine.
CHECK_FRAMES = 1024


def pytest_collection_modifyitems(items) -> None:
    """A test that starts jackd must say so (``pytest.mark.jack``), or the pure
    tier (``-m "not jack"``) would quietly start servers."""
    for item in items:
        uses = {"jack_servers", "links"} & set(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("jack") is None:
            raise pytest.UsageError(f"{item.nodeid} uses {sorted(uses)} but is not marked jack")


@pytest.fixture(scope="session", autouse=True)
def cpus_kept_awake():
    """In a VM, idle CPUs halt and wake late: JACK's cycles with them
    (`jacknet.testing.awake`)."""
    with KeptAwake():
        yield


@pytest.fixture(scope="session")
def jack_servers():
    """One synchronous dummy server per period, started on first use."""
    servers: dict[int, PrivateServer] = {}

    def get(period: int) -> PrivateServer:
        if period not in servers:
            servers[period] = PrivateServer(f"jacknet-test-p{period}", RATE, period, sync=True,
                                            realtime=True).start()
        return servers[period]

    yield get
    for server in servers.values():
        server.stop()


def sealed_options(directory) -> dict:
    """The options both ends of a sealed link take: a new key in ``directory``."""
    return {"security": "psk", "key_file": str(keygen(directory / "link.key"))}


class Listener:
    """A receiver on ``server`` whose outputs a test client records and checks."""

    def __init__(self, server: PrivateServer, tag: str, channels: int, codec: str = "float32",
                 latency_ms: float = 40.0, host: str = "127.0.0.1", port: int = 0,
                 recv_options: dict | None = None) -> None:
        self.tag = tag  # names the link in a failure's message
        self.closers = []
        recorder = self._client(JackClient(f"rec-{tag}", server.name))
        recorder.register("in", channels, "in")
        # Half the ring: what the checker may fall behind (1.4 s, as far back
        # as a period-64 capture remembers its cycles' frame times).
        self.capture = Capture(channels, capacity=1 << 17)
        recorder.run(self.capture)
        self.receiver = self._client(Receiver(ReceiverConfig(
            host, port, channels, f"recv-{tag}", f"rec-{tag}:in_.*", latency_ms,
            server.name, **(recv_options or {}))).start())
        self._new_checker = lambda: (
            SnrChecker(self.capture, server.period, RATE, keep=True) if codec == "opus"
            else SignalChecker(self.capture, INT16_LSB if codec == "int16" else 0.0,
                               server.period * max(1, CHECK_FRAMES // server.period), RATE,
                               server.period))
        self.checker = self._new_checker()

    def renew_check(self) -> None:
        """Judge from now on afresh: a new checker, counters from here."""
        self.checker = self._new_checker()
        self.mark_start()

    def mark_start(self) -> None:
        """Count and check from here: what was recorded so far is dropped."""
        self.checker.discard()
        self.stats_at_start = as_dict(self.receiver.stats())
        self._gaps_at_start = self.capture.discontinuities

    def recorder_gaps(self) -> int:
        """Cycles the recorder missed since `mark_start` (its server's xruns)."""
        return self.capture.discontinuities - self._gaps_at_start

    def stats_since_start(self) -> dict:
        """Receiver counters over the checked window (after the warm-up)."""
        now = as_dict(self.receiver.stats())
        return {k: v - self.stats_at_start[k] for k, v in now.items()
                if isinstance(v, int) and isinstance(self.stats_at_start.get(k), int)}

    def _client(self, client):
        self.closers.append(client)
        return client

    def close(self) -> None:
        for c in reversed(self.closers):
            with contextlib.suppress(Exception):
                c.close()


class Link(Listener):
    """A sender fed with the known signal by a test client, and a `Listener`;
    ``relay`` (optional) sits between them, passing a clean copy of every
    datagram to ``clean_target`` if given."""

    def __init__(self, server: PrivateServer, tag: str, channels: int, codec: str = "float32",
                 latency_ms: float = 40.0, relay=None, recv_channels: int | None = None,
                 host: str = "127.0.0.1", port: int = 0, recv_options: dict | None = None,
                 clean_target: tuple[str, int] | None = None, **sender_options) -> None:
        self.channels = channels
        super().__init__(server, tag, recv_channels or channels, codec, latency_ms, host, port,
                         recv_options)
        source = self._client(JackClient(f"sig-{tag}", server.name))
        source.register("out", channels, "out")
        source.run(Generator(channels, "music" if codec == "opus" else "noise"))
        target = self.receiver.address
        if relay is not None:
            target = relay.start(target, clean_target)
            self.closers.append(relay)
        transport = (recv_options or {}).get("transport", "udp")
        self.sender = self._client(Sender(SenderConfig(
            target[0], target[1], channels, f"send-{tag}", f"sig-{tag}:out_.*", codec,
            server=server.name, transport=transport, **sender_options)).start())

    def mark_start(self) -> None:
        super().mark_start()
        self._missed_at_start = self.sender.stats().missed_packets

    def stats_since_start(self) -> dict:
        """As `Listener.stats_since_start`, with ``sender_missed``: packets
        the sender left unsent meanwhile (cycles its server ran without it),
        which the receiver can only count lost."""
        return {**super().stats_since_start(),
                "sender_missed": self.sender.stats().missed_packets - self._missed_at_start}


WARMUP = 1.0  # ports are connected one by one while audio already flows
# Sender, receiver and checker share this process and its GIL: a hold-up of
# the whole process this long (the machine's doing: CI saw packets 40 ms
# late) can make packets miss the tests' 40 ms margin.  Quiet runs measure
# holds of 10-13 ms at most.
HOLD_LIMIT = 0.02


class HoldMeter:
    """How long this process's Python threads were held up: a thread that
    asks to sleep 2 ms and records by how much each wake-up was late."""

    TICK = 0.002

    def __init__(self) -> None:
        self.worst = 0.0
        self.gc_worst = 0.0   # the longest collection meanwhile, a cause of hold-ups
        self._gc_start = 0.0
        gc.callbacks.append(self._gc)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold-meter", daemon=True)
        self._thread.start()

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_worst = max(self.gc_worst, time.perf_counter() - self._gc_start)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.TICK):
            now = time.monotonic()
            self.worst = max(self.worst, now - last - self.TICK)
            last = now

    def close(self) -> float:
        """Stop; the worst hold-up seen, in seconds."""
        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._gc)
        return self.worst


def run_links(links: list[Link], seconds: float, during=None, warmup: float = WARMUP) -> float:
    """Let audio flow for ``seconds`` after a warm-up, checking as it goes;
    ``during(t)`` is called every poll with the elapsed time.  Returns the
    worst hold-up of this process seen meanwhile (`HoldMeter`), in seconds."""
    time.sleep(warmup)
    for link in links:
        link.mark_start()
    meter = HoldMeter()
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        time.sleep(0.05)
        if during:
            during(elapsed)
        for link in links:
            link.checker.poll()
    hold = meter.close()
    print(f"window of {seconds:g} s: worst hold-up {1000 * hold:.1f} ms, "
          f"longest GC pause {1000 * meter.gc_worst:.1f} ms")
    return hold


def judge_links(links: list[Link], seconds: float, check: Callable[[], None],
                tries: int = 3) -> None:
    """Run ``links`` for ``seconds`` and ``check()`` what they played.  A
    check that fails in a window where this process was held up past
    `HOLD_LIMIT`, where the JACK server missed cycles (an xrun a receiver
    counted: the machine's doing, not the link's), or where a receiver came
    down from a lock made in such a disturbance before the window (a
    tightening: a fresh-clone run's receiver, locked on a backlog as its
    busy process started, came down by 614 frames 0.4 s into the window),
    does not count, and a fresh window is judged (up to ``tries``); one
    that fails without any of these fails the test."""
    holds, failure = [], None
    for n in range(tries):
        if n:
            for link in links:
                link.renew_check()
        holds.append(run_links(links, seconds, warmup=WARMUP if n == 0 else 0.0))
        try:
            check()
            return
        except AssertionError as e:
            counts = [link.stats_since_start() for link in links]
            xruns = max(c.get("xruns", 0) for c in counts)
            tightened = max(c.get("tightened", 0) for c in counts)
            if holds[-1] < HOLD_LIMIT and xruns == 0 and tightened == 0:
                raise AssertionError(f"{e} (worst hold-up {1000 * holds[-1]:.1f} ms, "
                                     "no xrun, no tightening)") from e
            failure = f"{e} ({xruns} xruns, {tightened} tightenings)"
    raise AssertionError(f"every window was disturbed (hold-ups "
                         f"{[round(1000 * h, 1) for h in holds]} ms, xruns or tightenings), "
                         f"the last failed: {failure}")


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 50 ms for up to ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def links():
    made: list[Link] = []
    yield made
    for link in made:
        link.close()
