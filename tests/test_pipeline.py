"""The stream pipeline on a simulated clock (no jackd): real packets through
reassembly, admission, sequencing, decoding and the jitter buffer into the C
playout, under reorder, duplication, loss, late arrival, a stream switch and
a redundant Opus stream."""
from __future__ import annotations

import numpy as np

from jacknet.testing.pipesim import Arrival, PipeSim, Stream
from jacknet.stats import ReceiverStats, as_dict

N = 128
SETTLED = 110 * N     # the first lock (250 ms) and its fade-in lie before this
COUNT = 400


def counters(sim: PipeSim) -> dict:
    p, js = sim.pipeline, sim.jitter.stats
    return {"late": p.stats.late, "duplicate": p.stats.duplicate, "lost": p.loss.lost,
            "revived": p.decoding.revived, "plc": p.decoding.plc_concealed,
            "foreign": js.foreign, "relocks": js.relocks, "streams": js.streams,
            "malformed": dict(p.stats.malformed), "internal": p.stats.internal_errors,
            "concealed": sim.playout.concealed_frames}


def settled(arrivals: list[Arrival], cycles: int = COUNT) -> tuple[PipeSim, int]:
    """The simulation run, and how many frames it concealed before SETTLED
    (the fade-in of the first lock; what comes after is what a test judges).
    It stops before the last packets are due: the fade after a stream's end
    is not what these tests are about."""
    sim = PipeSim().run(arrivals, SETTLED // N)
    before = sim.playout.concealed_frames
    return sim.run([], cycles - SETTLED // N), before


def test_a_clean_stream_is_exact():
    sim, before = settled(Stream().build(COUNT).arrivals())
    assert sim.exact(SETTLED, sim.out.shape[1])
    c = counters(sim)
    assert c["late"] == c["duplicate"] == c["lost"] == c["internal"] == 0, c
    assert c["concealed"] == before, c


def test_reordered_and_duplicated_packets_are_exact():
    stream = Stream().build(COUNT)
    arrivals = stream.arrivals(jitter=80) + stream.arrivals(jitter=80, seed=2)  # all twice
    sim, before = settled(arrivals)
    assert sim.exact(SETTLED, sim.out.shape[1])
    c = counters(sim)
    fed = [a.datagram for a in arrivals if a.at <= sim.out.shape[1] - N]
    assert c["duplicate"] == len(fed) - len(set(fed)) > COUNT * 0.9, c
    assert c["lost"] == 0 and c["concealed"] == before, c


def test_loss_is_counted_and_faded_over_never_louder():
    lose = {150, 151, 260}
    stream = Stream().build(COUNT)
    sim = PipeSim().run(stream.arrivals(lose=lose), COUNT + 10)
    c = counters(sim)
    assert c["lost"] == 3 and c["concealed"] >= 3 * N, c
    d = sim.delay()
    assert sim.exact(SETTLED, 150 * N + d) and sim.exact(152 * N + d + 200, 260 * N + d)
    assert sim.exact(261 * N + d + 200, COUNT * N)
    assert np.abs(sim.out).max() <= 0.5  # the known signal's peak: concealment only fades


def test_a_packet_after_its_playout_is_late_and_concealed():
    stream = Stream().build(COUNT)
    arrivals = stream.arrivals()
    late = [a for a in arrivals if a.at == 201 * N + stream.transit][0]
    late.at += 2000  # long after its cycle
    sim = PipeSim().run(arrivals, COUNT + 10)
    c = counters(sim)
    assert c["late"] == 1 and c["lost"] == 0 and c["concealed"] >= N and c["relocks"] == 0, c
    d = sim.delay()
    assert sim.exact(SETTLED, 200 * N + d) and sim.exact(201 * N + d + 200, COUNT * N)


def test_a_new_stream_takes_over_only_once_the_old_one_is_quiet():
    first = Stream(stream_id=1).build(COUNT)
    second = Stream(stream_id=2).build(COUNT)
    # The second sender starts while the first plays (refused), and plays on
    # once the first has stopped for more than 250 ms.
    gap = 0.3 * 48000
    arrivals = first.arrivals(lose=set(range(200, COUNT)))
    arrivals += second.arrivals(offset=150 * N)
    sim = PipeSim().run(arrivals, COUNT + 250)
    c = counters(sim)
    assert c["streams"] == 2 and c["foreign"] > 0 and c["internal"] == 0, c
    # Played exactly again once the second stream has locked.
    takeover = 200 * N + int(gap)
    assert sim.exact(takeover + SETTLED, (COUNT + 150) * N)


def test_a_redundant_opus_stream_revives_every_lone_loss_exactly():
    lose = set(range(120, 340, 17))
    stream = Stream("opus", redundancy=1, frames=240).build(COUNT)
    cycles = COUNT * 240 // N - 10  # before the end of the stream, which PLC would fill
    clean = PipeSim().run(stream.arrivals(), cycles)
    lossy = PipeSim().run(stream.arrivals(lose=lose), cycles)
    c = counters(lossy)
    assert c["lost"] == len(lose) and c["revived"] == len(lose) and c["plc"] == 0, c
    assert clean.delay() == lossy.delay()
    start = SETTLED + 2400
    assert np.array_equal(lossy.out[:, start:], clean.out[:, start:])


def test_garbage_and_foreign_sources_are_counted_not_played():
    stream = Stream().build(COUNT)
    arrivals = stream.arrivals()
    rng = np.random.default_rng(3)
    for k in range(150, 250):
        good = bytearray(arrivals[k].datagram)
        junk = bytes(rng.integers(0, 256, len(good), dtype=np.uint8))
        arrivals.append(Arrival(arrivals[k].at, junk))                      # not a packet
        arrivals.append(Arrival(arrivals[k].at, bytes(good[:30])))          # truncated
        arrivals.append(Arrival(arrivals[k].at, bytes(good), ("10.9.9.9", 1)))  # another source
    sim = PipeSim().run(arrivals, COUNT + 10)
    c = counters(sim)
    assert sum(c["malformed"].values()) == 200 and c["internal"] == 0, c
    assert sim.pipeline.stats.foreign_sources == 100 and c["duplicate"] == 0, c
    assert sim.exact(SETTLED, COUNT * N)


def test_reading_the_stats_changes_nothing():
    sim = PipeSim().run(Stream().build(COUNT).arrivals(jitter=40), COUNT)
    first, second = ReceiverStats(), ReceiverStats()
    sim.pipeline.report(first)
    sim.pipeline.report(second)
    assert first == second and first.slack_ms is not None and first.packets > 0
    assert as_dict(first)["margin_ms"] == first.slack_ms
