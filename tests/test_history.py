"""The history a daemon keeps (monitor.history) and the outages a receiver
counts (monitor.outages), on a simulated clock."""
from __future__ import annotations

import random

import pytest

from jacknet.monitor.history import History
from jacknet.monitor.outages import OUTAGE_SECONDS, Outages
from jacknet.stats import ReceiverStats, as_dict

T0 = 1_800_000_000.0


def recv_stats(**counters) -> dict:
    return as_dict(ReceiverStats(**counters))


def test_a_row_a_second_with_gauges_as_they_are_and_counters_as_their_growth():
    h = History("recv")
    lost = 0
    for k in range(4 * 30):   # 30 s, looked at four times a second
        if k % 2 == 0:
            lost += 1   # two a second
        h.observe(recv_stats(lost=lost, latency_ms=4.0 + k / 100), T0 + k / 4)
    out = h.since()
    col = out["columns"].index
    assert 28 <= len(out["rows"]) <= 30
    assert all(row[col("lost")] == 2 for row in out["rows"])
    latencies = [row[col("latency_ms")] for row in out["rows"]]
    assert latencies == sorted(latencies) and latencies[0] > 4.0
    # A reader asks only for what it has not had.
    later = h.since(out["rows_made"], out["events_made"])
    assert later["rows"] == [] and later["events"] == []


def test_ten_minutes_are_kept_and_no_more():
    h = History("send")
    for k in range(700 * 2):
        h.observe(as_dict_send(packets=k * 187), T0 + k / 2)
    rows = h.since()["rows"]
    assert len(rows) == 600 and rows[-1][0] > rows[0][0] + 598


def as_dict_send(**counters) -> dict:
    from jacknet.stats import SenderStats
    return as_dict(SenderStats(**counters))


def test_events_are_the_counters_that_matter_growing_and_what_the_supervisor_says():
    h = History("recv")
    h.observe(recv_stats(), T0)
    assert h.observe(recv_stats(), T0 + 0.25) == []
    kinds = [e.kind for e in h.observe(recv_stats(xruns=2, relocks=1, loosened=1), T0 + 0.5)]
    assert kinds == ["xrun", "relock", "loosen"]
    h.event("jack-gone", "recv", T0 + 0.7)
    # A rebuilt node counts from zero again: an xrun of the new one is one xrun.
    assert [e.kind for e in h.observe(recv_stats(xruns=1), T0 + 1.0)] == ["xrun"]
    events = h.since()["events"]
    assert [e["n"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0]["detail"] == "2 more" and events[3]["kind"] == "jack-gone"


def test_an_outage_is_marked_when_it_is_seen_and_when_it_ends():
    h = History("recv")
    h.observe(recv_stats(), T0)
    assert [e.kind for e in h.observe(recv_stats(outage_ms=300.0), T0 + 0.25)] == ["outage"]
    assert h.observe(recv_stats(outage_ms=550.0), T0 + 0.5) == []
    ended = h.observe(recv_stats(outages=1, last_outage_ms=612.0), T0 + 0.75)
    assert [(e.kind, e.detail) for e in ended] == [("outage-end", "612 ms without packets")]
    # One that came and went between two looks gets both marks at once.
    kinds = [e.kind for e in h.observe(recv_stats(outages=2, last_outage_ms=120.0), T0 + 1.0)]
    assert kinds == ["outage", "outage-end"]


def test_every_gap_of_a_tenth_of_a_second_or_more_is_an_outage_and_no_shorter_one():
    rng = random.Random(7)
    o = Outages()
    now, gaps = 0.0, []
    for _ in range(20000):
        if rng.random() < 0.002:   # a burst of loss: 40 to 400 ms without packets
            gap = rng.uniform(0.04, 0.4)
        else:
            gap = 0.00267 * rng.uniform(0.2, 3.0)   # 2.67 ms packets with jitter
        now += gap
        gaps.append(gap)
        o.arrived(now)
    assert o.count == sum(1 for g in gaps[1:] if g >= OUTAGE_SECONDS) > 10
    assert o.ongoing(now + 0.05) is None and abs(o.ongoing(now + 0.25) - 0.25) < 1e-9
    in_last_minute = sum(1 for k, g in enumerate(gaps) if k and g >= OUTAGE_SECONDS
                         and sum(gaps[:k + 1]) >= now - 60)
    assert o.last_minute(now) == in_last_minute
    assert o.last_minute(now + 0.25) == in_last_minute + 1   # the one going on


def test_a_datagram_seen_but_not_yet_told_ends_no_outage_and_starts_none():
    # The receiver's C path tells of its datagrams every 100 ms; meanwhile
    # it publishes when the newest came, and a reader asks with it.
    o = Outages()
    o.arrived(10.0)
    assert o.ongoing(10.3) == pytest.approx(0.3)
    assert o.ongoing(10.3, seen=10.25) is None
    assert o.last_minute(10.3, seen=10.25) == 0
    assert o.ongoing(10.3, seen=9.0) == pytest.approx(0.3)   # older than told: no matter
    assert o.ongoing(10.3, seen=10.15) == pytest.approx(0.15)
