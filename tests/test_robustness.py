"""The link under a bad network, under garbage, and its clean shutdown."""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time

import jack
import numpy as np
import pytest

from conftest import RATE, Link, run_links
from jacknet.net import protocol
from jacknet.rt.binding import JackClient
from jacknet.receiver import CLOSE_FADE_SECONDS
from jacknet.rt.engines import Capture
from jacknet.testing.signals import known_signal
from jacknet.stats import as_dict
from forge import PacketForger
from relay import UdpRelay

pytestmark = pytest.mark.jack  # each test runs a private jackd


def test_impaired_network_is_concealed_then_exact_again(jack_servers, links):
    relay = UdpRelay(seed=7)
    link = Link(jack_servers(256), "relay", 2, latency_ms=20, relay=relay)
    links.append(link)

    def phases(t: float) -> None:
        if 1 <= t < 5:
            relay.impair(loss=0.05, duplicate=0.05, jitter=0.030)
        elif t >= 5:
            relay.impair()

    run_links(links, 12, during=phases)
    stats = as_dict(link.receiver.stats())
    assert relay.dropped > 0 and relay.duplicated > 0
    assert stats["lost"] > 0 and stats["duplicate"] > 0
    assert stats["concealed_frames"] > 0 and stats["underruns"] > 0
    seg = link.checker.current
    assert seg.delay is not None and seg.clean_tail >= 5 * RATE, (link.checker.summary(), stats)


def test_an_outage_fades_to_silence_and_the_link_is_exact_again_soon_after(jack_servers, links):
    # The relay drops everything for 10 s; a tap records what the receiver
    # played, with its frame times, beside the link's own checker.
    server = jack_servers(256)
    relay = UdpRelay(seed=11)
    link = Link(server, "outage", 2, latency_ms=20, relay=relay)
    links.append(link)
    tap = Tap(server, "recv-outage", 2, link.closers)
    marks = {}

    def phases(t: float) -> None:
        if "out" not in marks and t >= 3:
            relay.impair(loss=1.0)
            marks["out"] = tap.frame_time
        if "back" not in marks and t >= 13:
            # Marked before the path clears (and the cut after it is made):
            # marked after, a hold-up of this process between the two left
            # audio that had come back inside the silence (a fresh clone's run).
            marks["back"] = tap.frame_time
            relay.impair()
        tap.poll()

    run_links(links, 17, during=phases)
    first = next(seg for seg in link.checker.segments if seg.delay is not None)
    final = link.checker.current
    stats = as_dict(link.receiver.stats())
    ft, x = tap.recording()
    out, back = marks["out"], marks["back"]
    assert np.abs(x).max() <= 0.5  # never louder than the known signal

    # The fade: from the first frame that is not the signal, every channel
    # only decays, and from half a second in it is silence, true zeros.
    expected = np.stack([known_signal(ch, ft - first.delay) for ch in range(2)])
    gap = (ft >= out) & (ft < back)
    off = int(np.flatnonzero(gap & (x != expected).any(axis=0))[0])
    quiet = int(np.flatnonzero(ft >= out + RATE // 2)[0])
    assert np.all(np.diff(np.abs(x[:, off:quiet]), axis=1) <= 0), "the fade went up again"
    assert not x[:, quiet:int(np.flatnonzero(ft >= back)[0])].any(), "not silent"

    # Back: exact at one delay within 2 s of the path clearing, to the end.
    assert final.delay is not None and abs(final.delay - first.delay) <= RATE // 200, \
        (link.checker.summary(), first.delay)
    # The first frame from which a whole second is exact (a disturbance
    # later on is the business of the tests of a clean link).
    after = ft >= back
    expected = np.stack([known_signal(ch, ft[after] - final.delay) for ch in range(2)])
    bad = np.concatenate([[0], np.cumsum((x[:, after] != expected).any(axis=0))])
    clean = np.flatnonzero(bad[RATE:] == bad[:-RATE])
    assert len(clean), (link.checker.summary(), stats)
    took = (ft[after][clean[0]] - back) / RATE
    print(f"\noutage of 10 s: exact again {took:.2f} s after the path cleared; "
          f"delay {first.delay} -> {final.delay} frames; lost={stats['lost']} "
          f"relocks={stats['relocks']}")
    assert took <= 2.0, (took, link.checker.summary(), stats)


class Tap:
    """A client recording what a receiver plays, with the frame times."""

    def __init__(self, server, receiver: str, channels: int, closers: list) -> None:
        self.client = JackClient(f"tap-{receiver}", server.name)
        closers.append(self.client)
        self.client.register("in", channels, "in")
        self.cap = Capture(channels, capacity=1 << 18)
        self.client.run(self.cap)
        for ch in range(1, channels + 1):
            self.client.connect_ports(f"{receiver}:out_{ch}", f"{self.client.name}:in_{ch}")
        self._buf = np.zeros((channels, server.period), np.float32)
        self.blocks: list[tuple[int, np.ndarray]] = []

    @property
    def frame_time(self) -> int:
        return self.client.frame_time

    def poll(self) -> None:
        while (pos := self.cap.read_into(self._buf)) >= 0:
            self.blocks.append((self.cap.frame_time_at(pos), self._buf.copy()))

    def recording(self) -> tuple[np.ndarray, np.ndarray]:
        """(frame times, channels x frames): every cycle the tap recorded,
        each at its own frame time (an xrun leaves a hole, no error)."""
        period = self._buf.shape[1]
        ft = np.concatenate([t + np.arange(period, dtype=np.int64) for t, _ in self.blocks])
        assert self.cap.dropped == 0, "the test fell behind its own tap"
        return ft, np.concatenate([b for _, b in self.blocks], axis=1)


def test_a_closing_receiver_fades_out_before_its_ports_go(jack_servers, links):
    server = jack_servers(256)
    link = Link(server, "fadeout", 1, latency_ms=20)
    links.append(link)
    tap = Tap(server, "recv-fadeout", 1, link.closers)
    run_links(links, 2, during=lambda t: tap.poll())
    link.receiver.close()
    time.sleep(0.3)
    tap.poll()
    ft, x = tap.recording()
    expected = known_signal(0, ft - link.checker.current.delay)
    tail = slice(int(np.flatnonzero(x[0] == expected)[-1]) + 1, None)
    fade = round(CLOSE_FADE_SECONDS * RATE)
    gain = x[0, tail][:fade - 1] / expected[tail][:fade - 1]
    # A straight 10 ms ramp from the signal down to zero, then silence: no cut.
    np.testing.assert_allclose(gain, 1 - (np.arange(fade - 1) + 1) / fade, atol=1e-5)
    assert not x[0, tail][fade - 1:].any()


def _garbage(stream_id: int, rng: random.Random) -> list[bytes]:
    good = protocol.Header(protocol.CODEC_FLOAT32, stream_id, 1, 0, RATE, 256, 2,
                           payload_len=2048)
    foreign = protocol.Header(protocol.CODEC_FLOAT32, stream_id ^ 1, 1, 10**9, RATE, 256, 2,
                              payload_len=2048)
    packed = good.pack()
    return [
        bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 1400))),
        b"XNET" + packed[4:] + bytes(2048),                       # wrong magic
        packed[:4] + b"\x09" + packed[5:] + bytes(2048),          # wrong version
        packed[:rng.randrange(1, 40)],                            # truncated header
        packed + bytes(100),                                      # length that lies
        protocol.Header(0, stream_id, 1, 0, RATE, 256, 200, payload_len=8).pack() + bytes(8),
        protocol.Header(0, stream_id, 1, 0, RATE, 256, 2, payload_len=8).pack() + bytes(8),
        foreign.pack() + bytes(2048),                             # another sender's stream
        packed + bytes(2048),                                     # replay of an old packet
    ]


@pytest.mark.parametrize("allow_any_sender", [True, False])
def test_garbage_leaves_the_audio_bit_exact(jack_servers, links, allow_any_sender):
    link = Link(jack_servers(256), f"garbage{int(allow_any_sender)}", 2,
                recv_options={"allow_any_sender": allow_any_sender})
    links.append(link)
    rng = random.Random(5)
    shooter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fired = 0

    def fire(t: float) -> None:
        nonlocal fired
        for data in _garbage(link.sender.stream_id, rng):
            shooter.sendto(data, link.receiver.address)
            fired += 1

    run_links(links, 10, during=fire)
    shooter.close()
    # The last volley may still sit in the socket buffer: give the receiver a moment to read it.
    deadline = time.monotonic() + 2
    while not allow_any_sender and link.receiver.stats().foreign_sources < fired \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = as_dict(link.receiver.stats())
    assert fired > 1000
    if allow_any_sender:  # everything reaches the parser and the jitter buffer
        assert sum(stats["malformed"].values()) >= fired * 6 // 9 - 50, stats
        assert {"magic", "version", "truncated", "length", "channels"} <= set(stats["malformed"])
        # The short payload and the replay claim sequence number 1 at
        # timestamp 0, far off the stream's timeline: strays.
        assert stats["foreign"] > 0 and stats["strays"] > 0
    else:  # locked to the real sender: the garbage never gets that far
        assert stats["foreign_sources"] == fired and stats["malformed"] == {}, stats
    assert stats["relocks"] == 0
    seg = link.checker.current
    assert len(link.checker.segments) == 1 and seg.exact == seg.frames >= 9 * RATE, link.checker.summary()


def test_forged_datagrams_from_the_senders_own_address_leave_it_exact(jack_servers, links):
    # Three forgeries beside every real datagram for 3 s, sent from the
    # address the real ones come from, with the stream's id: timestamps hours
    # or half a second away, sequence numbers from nowhere, fragment counts
    # that lie, NaN samples.
    relay = UdpRelay(seed=3)
    link = Link(jack_servers(256), "forged", 2, latency_ms=20, relay=relay)
    links.append(link)
    forger = PacketForger(3, seed=9)

    def phases(t: float) -> None:
        relay.forge = forger if 2 <= t < 5 else None

    run_links(links, 12, during=phases)
    stats = as_dict(link.receiver.stats())
    assert stats["strays"] > 500 and stats["internal_errors"] == 0, stats
    assert stats["nonfinite_samples"] == 0 or stats["strays"] > 0, stats
    assert stats["lost"] <= link.sender.stats().missed_packets and stats["fill_ms"] < 1000, stats
    segments, seg = link.checker.segments, link.checker.current
    # Never left behind where it locked, and exact again after the forgeries.
    first = next(s for s in segments if s.delay is not None)
    assert seg.delay is not None and abs(seg.delay - first.delay) <= RATE // 200, \
        link.checker.summary()
    assert seg.clean_tail >= 6 * RATE, (link.checker.summary(), stats)


def test_sigterm_shuts_down_cleanly(jack_servers):
    server = jack_servers(256)
    proc = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "127.0.0.1:0",
                             "--server", server.name, "--name", "sigterm-test"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    probe = jack.Client("sigterm-probe", servername=server.name, no_start_server=True)
    try:
        for line in proc.stderr:  # up and running once it says where it listens
            if "receiving on" in line:
                break
        assert len(probe.get_ports("sigterm-test:")) == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert probe.get_ports("sigterm-test:") == []
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()


def test_demo_runs_and_shows_audio_flowing():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "jacknet", "demo", "--seconds", "6",
                        "--server-name", "jacknet-test-demo"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    recv = [_fields(line) for line in lines if line.startswith("recv:")]
    send = [_fields(line) for line in lines if line.startswith("send:")]
    check = [_fields(line) for line in lines if line.startswith("check:")]
    assert recv and recv[-1]["packets"] > 0, r.stdout
    assert check and "delay" in check[-1], r.stdout
    # Every mismatch is a disturbance the demo counted: the demo's 2 ms margin on a
    # machine busy with the rest of the suite may fade over an xrun now and then
    # (one fresh-clone run: 9 xruns and 4 underruns in 6 s).  A mismatch is
    # judged against the counts printed around it, one line later included,
    # since the check polls its recording after the stats are printed.
    disturbed = [0] + [sum(rv[k] for k in DEMO_DISTURBANCES) + sd["xruns"] + sd["dropped_frames"]
                       for rv, sd in zip(recv, send)]
    mismatched = [0] + [c.get("mismatched_frames", 0) for c in check]
    for i in range(1, len(mismatched)):
        if mismatched[i] > mismatched[i - 1]:
            assert disturbed[min(i + 1, len(disturbed) - 1)] > disturbed[i - 1], r.stdout


# What the demo's receiver counts when something outside the link disturbed it.
DEMO_DISTURBANCES = ("xruns", "late", "lost", "underruns", "relocks", "concealed_frames")


def _fields(line: str) -> dict[str, float]:
    """``key=value`` pairs of one stats line, numbers only (``delay=237 frames`` too)."""
    out = {}
    for word in line.split()[1:]:
        key, _, value = word.partition("=")
        try:
            out[key] = float(value.rstrip("s"))
        except ValueError:
            continue
    return out
