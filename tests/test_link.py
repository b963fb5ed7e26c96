"""End to end on a real dummy JACK server: the known signal through sender,
UDP on 127.0.0.1 and receiver, recorded and checked sample by sample."""
from __future__ import annotations

import os

import pytest

from conftest import RATE, Link, judge_links

pytestmark = pytest.mark.jack  # each test runs a private jackd

SECONDS = 11


def assert_exact_tail(link: Link, min_seconds: float) -> None:
    """The last checked stretch is at one constant delay and has no frame
    that differs (float32: bit-exact; int16: within 1 LSB): no gaps.  It
    covers what the server played since the warm-up, but for the first
    half second (the delay is found): ``min_seconds`` of wall clock, or less
    when the busy machine's dummy server ran slower than the wall clock."""
    seg = link.checker.current
    assert seg is not None and seg.delay is not None, link.checker.segments
    served = link.checker.served_frames
    assert seg.frames >= min(min_seconds * RATE, served - RATE // 2), \
        (link.checker.summary(), served)
    assert served >= 0.5 * min_seconds * RATE, (link.checker.summary(), served)
    assert seg.exact == seg.frames, link.checker.summary()
    # The recorder misses a cycle only when its server does (an xrun the
    # receiver on the same server counts): then nothing was played either.
    assert link.recorder_gaps() <= link.stats_since_start()["xruns"], link.recorder_gaps()
    assert link.capture.dropped == 0, "the test's own recorder fell behind its checker"


@pytest.mark.parametrize("period", [64, 256])
@pytest.mark.parametrize("codec", ["float32", "int16"])
def test_link_is_exact(jack_servers, links, period, codec):
    server = jack_servers(period)
    # Every sender, receiver and checker runs in this process: at period 64
    # (750 packets a second a link) three links left its checkers seconds
    # behind on a 2-core machine, so there two run side by side.
    # Over the loopback `--mtu auto` sends a packet whole; 8 channels are
    # cut into 1400-byte fragments, the size for a path through Ethernet.
    for channels in (1, 2, 8) if period > 64 else (2, 8):
        links.append(Link(server, f"{codec}-{channels}", channels, codec,
                          mtu=1400 if channels == 8 else None))

    def check() -> None:
        for link in links:
            assert_exact_tail(link, SECONDS - 0.5)
            assert len(link.checker.segments) == 1, link.checker.segments  # one delay throughout
            stats = link.stats_since_start()  # the same window the audio was checked over
            # (A snapshot taken while the worker sends: the two counts may
            # stand a packet apart.)
            sent = link.sender.stats()
            whole = sent.mtu == 65507
            assert whole == (link.channels != 8), sent.mtu
            one = whole or link.channels * period * (4 if codec == "float32" else 2) <= 1400 - 40
            assert (sent.datagrams < 1.1 * sent.packets) == one, sent
            assert stats["lost"] <= stats["sender_missed"], stats
            assert stats["late"] == 0 and stats["underruns"] == 0, stats
            if codec == "float32":
                assert link.checker.current.max_error == 0.0
            assert link.sender.send_path is not None  # these went out by the C path
            # ... and most came in by the C path (Python took the first ones,
            # those with a position block, and any a missed cycle left behind)
            assert link.receiver.recv_path.placed > 0.8 * stats["packets"], \
                (link.receiver.recv_path.placed, stats["packets"])

    judge_links(links, SECONDS, check)


def test_fewer_receiver_channels_play_the_first_ones(jack_servers, links):
    server = jack_servers(256)
    links.append(Link(server, "map", channels=4, recv_channels=2))
    judge_links(links, 3, lambda: assert_exact_tail(links[0], 1.5))


def test_packets_need_not_match_the_period(jack_servers, links):
    # 100-frame packets on a 64-frame period: blocks straddle cycles.
    links.append(Link(jack_servers(64), "fpp", 2, frames_per_packet=100))
    judge_links(links, 4, lambda: assert_exact_tail(links[0], 3.5))
    assert links[0].sender.frames == 100


def test_the_network_threads_run_below_jack_s_process_threads(jack_servers, links):
    """SCHED_FIFO does not preempt an equal: a network thread at the
    priority of JACK's process threads, busy in Python, kept one waiting
    for its CPU (jackd -R runs its clients' at 5, once our default)."""
    link = Link(jack_servers(128), "prio", 2)
    links.append(link)
    for node in (link.sender, link.receiver):
        jack_priority = node.jack.process_priority
        assert jack_priority, "the test servers run realtime"
        tid = node._thread.native_id
        priority = os.sched_getparam(tid).sched_priority
        # Where the process may not use SCHED_FIFO, the thread stays at 0.
        assert priority in (0, min(5, jack_priority - 1)), (priority, jack_priority)
        assert os.sched_getscheduler(tid) == (os.SCHED_FIFO if priority else os.SCHED_OTHER)
