"""Transport sync across a link, on two real dummy JACK servers: the sending
room's transport is moved (tests/transport_side.py, a process of its own)
and the receiving room's must follow, frame-aligned with the audio it plays.

The sending room plays its JACK transport as audio (channel 0: the
transport frame of each sample, channel 1: rolling or not, channel 2: a
marker that a concealed or faded sample breaks), so a recorder on the
receiving server sees, cycle by cycle, the sender frame of the audio played
beside its own server's transport state and frame.
"""
from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from jacknet import Receiver, ReceiverConfig
from jacknet.rt.binding import JackClient
from jacknet.net.protocol import PositionBlock
from jacknet.rt.engines import Capture
from jacknet.sync.follow import LEAD_CYCLES
from jacknet.stats import as_dict
from jacknet.testing.jackserver import PrivateServer
from conftest import HoldMeter
from jacknet.testing.scene import free_port
from relay import UdpRelay
from transport_side import BPM

pytestmark = pytest.mark.jack

SIDE = Path(__file__).with_name("transport_side.py")
SCALE = float(1 << 24)


class SendingRoom:
    """transport_side.py on ``server``, sending to ``port``."""

    def __init__(self, server: str, port: int, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SIDE), server, f"127.0.0.1:{port}",
                                      *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.stats: dict = {}

    def do(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().startswith("ok")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            out = self.proc.stdout.read()
            self.proc.wait(10)
            self.stats = json.loads(out.splitlines()[-1])


@dataclass
class Cycle:
    """One recorder cycle on the receiving server."""

    state: int            # its JACK transport
    frame: int
    heard_rolling: bool   # the sender's transport, for the audio played
    heard_frame: float    # in the receiving server's frames
    steady: bool          # every sample genuine and on one straight run
    off_ratio: float = 0.0  # the resampler's ratio away from the nominal one, about then


class Room:
    """The receiving room: a following receiver and a recorder of its outputs."""

    def __init__(self, server: str, port: int, period: int, ratio: float,
                 recv_options: dict) -> None:
        self.server, self.port, self.period, self.ratio = server, port, period, ratio
        self.options = recv_options
        self.cycles: list[Cycle] = []
        self.bbts: list[PositionBlock | None] = []
        self.recorder = JackClient("troom-rec", server)
        self.recorder.register("in", 3, "in")
        self.capture = Capture(3, capacity=1 << 20)
        self.recorder.run(self.capture)
        self.receiver: Receiver | None = None
        self._off_ratios = [0.0] * 3   # of the last polls

    def start_receiver(self) -> None:
        self.receiver = Receiver(ReceiverConfig("127.0.0.1", self.port, 3, "troom-recv",
                                                "troom-rec:in_.*", 5.0, self.server,
                                                **self.options)).start()
        self.capture.skip()

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()
        self.recorder.close()

    def poll(self) -> None:
        # The cycles read now were resampled since the last poll or so: each
        # is given the largest deviation of the ratio seen around it.
        ratio = self.receiver.stats().ratio if self.receiver is not None else None
        self._off_ratios = self._off_ratios[1:] + [
            0.0 if ratio is None else abs(ratio * self.ratio - 1)]
        off_ratio = max(self._off_ratios)
        block = np.zeros((3, self.period), np.float32)
        while (pos := self.capture.read_into(block)) >= 0:
            state, frame = self.capture.jack_transport_at(pos)
            genuine = bool(np.all(np.abs(block[2] - 0.75) < 1e-3))
            rolling = block[1] > 0.25
            sent = block[0].astype(np.float64) * SCALE
            # A resampled ramp is off by a few parts per million of its value.
            slack = 0.05 + 4e-6 * float(sent[0])
            step = 1 / self.ratio if rolling[0] else 0.0
            straight = genuine and bool(np.all(rolling == rolling[0])) and \
                bool(np.all(np.abs(np.diff(sent) - step) < slack))
            self.cycles.append(Cycle(state, frame, bool(rolling[0]), sent[0] * self.ratio,
                                     straight, off_ratio))
            self.bbts.append(self.capture.position_at(pos))

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.02)
            self.poll()
        self.poll()


@contextlib.contextmanager
def rooms(send_rate: int = 48000, send_period: int = 128, recv_period: int = 128,
          side_args: tuple = (), relay: UdpRelay | None = None, receiver_later: bool = False,
          sync: bool = False, **recv_options) -> Iterator[tuple[SendingRoom, Room]]:
    """Two dummy servers, the sending room on one and the receiving room on
    the other (its receiver started by the test with ``receiver_later``);
    asynchronous, as jackd is by default, unless ``sync``."""
    recv_options = {"follow_transport": True, **recv_options}
    with contextlib.ExitStack() as stack:
        # SCHED_FIFO servers, as in test_clocks: without it a busy machine's
        # dummy timers wander by hundreds of ppm and skip cycles (at period
        # 64 the receiving one left 30 holes in 6 s).
        a = stack.enter_context(PrivateServer("jacknet-test-tsend", send_rate, send_period,
                                              sync=sync, realtime=True))
        b = stack.enter_context(PrivateServer("jacknet-test-trecv", 48000, recv_period,
                                              sync=sync, realtime=True))
        room = Room(b.name, free_port(), recv_period, 48000 / send_rate, recv_options)
        stack.callback(room.close)
        if not receiver_later:
            room.start_receiver()
        port = relay.start(("127.0.0.1", room.port))[1] if relay is not None else room.port
        side = SendingRoom(a.name, port, *side_args)
        stack.callback(side.close)
        if not receiver_later:
            time.sleep(1.0)
            room.capture.skip()
        yield side, room


@dataclass
class Verdict:
    checked: int          # genuine cycles judged
    disturbances: int     # changes of the sender's transport (or the mapping) in the audio
    mismatches: list[int]  # cycles that disagreed outside a window after a disturbance
    start_errors: list[int]  # frames off in the first rolling cycle of each start (and relocate, away from a disturbance)
    errors: list[int]     # frames off in each cycle both rolled on genuine audio, outside windows
    start_cycles: list[int] = field(default_factory=list)  # where each of start_errors was measured


def judge(cycles: list[Cycle], window: int, tolerance: int, period: int) -> Verdict:
    """Each cycle on genuine audio must agree with the sender's transport for
    that audio: rolling at its frame (within ``tolerance``), or stopped at
    it.  Only within ``window`` cycles of a disturbance may it not: a change
    of the sender's transport in the audio (found between two genuine
    cycles, whatever was concealed between them), a move of the mapping,
    or a drift near the tolerance."""
    genuine = [i for i, c in enumerate(cycles) if c.steady]
    near = np.zeros(len(cycles) + 1, bool)
    disturbances = 0
    for k, i in enumerate(genuine):
        c = cycles[i]
        before = genuine[k - 1] if k else None
        if before is None:   # the first audio: the receiver learns of the transport
            near[:i + window + 1] = True
            continue
        p = cycles[before]
        moved = (c.heard_frame - p.heard_frame) - (i - before) * period * c.heard_rolling
        changed = c.heard_rolling != p.heard_rolling or abs(moved) > 2
        drifting = c.heard_rolling and c.state == 1 and abs(c.frame - c.heard_frame) > tolerance / 2
        if changed or drifting:
            disturbances += changed
            near[max(0, before - window):i + window + 1] = True
    mismatches, errs, starts, start_cycles = [], [], [], []
    for i in genuine:
        c = cycles[i]
        if c.heard_rolling:
            ok = c.state == 1 and abs(c.frame - c.heard_frame) <= tolerance
        else:
            # Stopped at the sender's frame: exact, as the sender frame is
            # a whole number, but for the resampler's error on a constant,
            # which grows with its ratio's distance from 1:1 (sinc_fastest,
            # measured: 1.4e-6 of the value at 1:1, 8.7e-6 at 1e-3 off and
            # 1.3e-5 at 2e-3; after a stall (run 75) the loop pulls hard).
            bound = 0.5 + (4e-6 + 6e-3 * c.off_ratio) * c.heard_frame
            ok = c.state != 1 and abs(c.frame - c.heard_frame) < bound
        if not near[i]:
            if not ok:
                mismatches.append(i)
            if c.heard_rolling and c.state == 1:
                errs.append(round(c.frame - c.heard_frame))
    # The error in the first genuine cycle of each roll (within 4 cycles of
    # its start), but for a relocate's roll after a move of the mapping or
    # the sender's frame: near a disturbance, as the mismatches are judged.
    for i, c in enumerate(cycles):
        if c.state == 1 and i and cycles[i - 1].state != 1:
            first = next((k for k in range(i, min(i + 4, len(cycles)))
                          if cycles[k].steady and cycles[k].heard_rolling), None)
            before = i - 1   # what the transport did before its cycles in Starting
            while before > 0 and cycles[before].state == 3:
                before -= 1
            relocated = cycles[before].state == 1
            if first is not None and not (relocated and near[first]) \
                    and not jumped_into(cycles, genuine, first, period):
                starts.append(round(cycles[first].frame - cycles[first].heard_frame))
                start_cycles.append(first)
    return Verdict(len(genuine), disturbances, mismatches, starts, errs, start_cycles)


def jumped_into(cycles: list[Cycle], genuine: list[int], first: int, period: int) -> bool:
    """Whether the audio jumped between the last genuine cycle stopped
    before a start and ``first``, the first genuine one rolling: further
    than those cycles could play (a tenth more for a resampler).  A move
    of the mapping there (fresh-clone run 52: a tighten, 1100 frames in 3
    cycles) shifts the audio heard by the move, and the follow relocates
    to it a few cycles on; such a start cannot be judged, as one whose
    first cycles were concealed cannot."""
    last = next((k for k in reversed(genuine) if k < first), None)
    if last is None or cycles[last].heard_rolling:
        return False
    return cycles[first].heard_frame - cycles[last].heard_frame > 1.1 * (first - last + 1) * period


def around_starts(room: "Room", verdict: Verdict) -> list:
    """The cycles around each judged start, for an assertion's message: (index,
    state, frame, heard rolling, heard frame, steady, frame minus heard frame)."""
    return [[(k, c.state, c.frame, c.heard_rolling, round(c.heard_frame, 1), c.steady,
              round(c.frame - c.heard_frame)) for k, c in enumerate(room.cycles)
             if i - 8 <= k <= i + 4] for i in verdict.start_cycles]


def window_cycles(period: int, send_period: int, hold: float, rate: int = 48000) -> int:
    """Cycles the receiving transport may take to follow a change: a roll
    is set `LEAD_CYCLES` ahead of the cycle the follower learns of it in,
    learning takes up to a packet and a turn of the network thread, and the
    test process (which runs the receiver) may have been held up."""
    return LEAD_CYCLES + 4 + -(-send_period // period) + int(np.ceil(hold * rate / period))


def stretches(cycles: list[Cycle], key) -> list[tuple[int, int, object]]:
    """(first, end, value) of each run of cycles with one value of ``key``."""
    out: list[tuple[int, int, object]] = []
    for i, c in enumerate(cycles):
        v = key(c)
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], i + 1, v)
        else:
            out.append((i, i + 1, v))
    return out


def errors(cycles: list[Cycle]) -> list[int]:
    """Receiving transport frame less the sender frame played, in each cycle
    where both roll on genuine audio."""
    return [round(c.frame - c.heard_frame) for c in cycles
            if c.steady and c.heard_rolling and c.state == 1]


def run_changes(side: SendingRoom, room: Room, changes: list[tuple[str, float]]) -> float:
    """Do each (command, seconds to wait after it); returns the worst hold-up
    of this process meanwhile (`HoldMeter`)."""
    meter = HoldMeter()
    for command, wait in changes:
        side.do(command)
        room.run(wait)
    return meter.close()


def assert_followed(room: Room, hold: float, send_period: int = 128,
                    tolerance: int | None = None) -> Verdict:
    period = room.period
    tolerance = tolerance or period
    verdict = judge(room.cycles, window_cycles(period, send_period, hold), tolerance, period)
    stats = room.receiver.stats()
    summary = (f"{verdict.checked} cycles judged, {verdict.disturbances} disturbances, "
               f"start errors {verdict.start_errors}, errors {min(verdict.errors, default=None)}"
               f"..{max(verdict.errors, default=None)}, hold {1000 * hold:.0f} ms, "
               f"ratio off by up to {max((c.off_ratio for c in room.cycles), default=0):.1e}, "
               f"stats {as_dict(stats)}")
    print(summary)
    first = verdict.mismatches[0] if verdict.mismatches else 0
    shown = [(i, c.state, c.frame, c.heard_rolling, round(c.heard_frame, 1), c.steady)
             for i, c in enumerate(room.cycles[max(0, first - 30):first + 3], max(0, first - 30))]
    assert not verdict.mismatches, (verdict.mismatches[:10], shown, summary)
    assert verdict.errors and max(map(abs, verdict.errors)) <= tolerance, summary
    return verdict


SEQUENCE = [("locate 48000", 0.5), ("start", 1.5), ("locate 480000", 1.5), ("stop", 0.5),
            ("locate 96000", 0.5), ("start", 1.0), ("stop", 0.5)]


@pytest.mark.parametrize("send_rate, send_period, recv_period", [
    (48000, 128, 128), (44100, 128, 128), (48000, 256, 128)],
    ids=["same", "44k1-to-48k", "period-256-to-128"])
def test_start_stop_and_locate_are_followed_aligned_with_the_audio(send_rate, send_period,
                                                                   recv_period):
    # A start whose first cycles were concealed cannot be judged: when
    # neither start could be (run 24: 21 underruns), the run is tried again,
    # up to 3 times.
    for attempt in range(3):
        with rooms(send_rate, send_period, recv_period, drift=True) as (side, room):
            hold = run_changes(side, room, SEQUENCE)
        verdict = assert_followed(room, hold, send_period)
        stats = room.receiver.stats()
        assert (stats.transport_rolls, stats.transport_stops) == (2, 2), stats
        if verdict.start_errors:
            break
        print(f"try {attempt + 1}: no start could be judged (their first cycles were concealed)")
    # Each start rolls from the frame of the audio played then: exact but
    # for the resampler's rounding (both sides at 48 kHz: off by at most 2).
    aligned = bool(verdict.start_errors) and max(map(abs, verdict.start_errors)) <= 2
    if not aligned:
        print("around the starts:", around_starts(room, verdict))  # whole, unlike pytest's message
    assert aligned, (verdict.start_errors, around_starts(room, verdict), as_dict(stats))
    assert stats.jack_transport == "stopped" and stats.sender_transport == "stopped"


def test_no_change_is_missed_under_ten_percent_loss():
    """A few hundred starts, stops and locates, 60 to 200 ms apart, through
    a relay that drops one datagram in ten at random: the state rides in
    every packet, so the next one after a loss tells of a change."""
    rng = random.Random(14)
    changes, rolling = [], False
    for _ in range(240):
        kind = rng.choice(["locate", "toggle", "toggle"])
        if kind == "locate":
            changes.append((f"locate {rng.randrange(10**6)}", rng.uniform(0.06, 0.2)))
        else:
            changes.append(("stop" if rolling else "start", rng.uniform(0.06, 0.2)))
            rolling = not rolling
    relay = UdpRelay(seed=14)
    relay.impair(loss=0.1)
    with rooms(drift=True, relay=relay) as (side, room):
        hold = run_changes(side, room, changes)
    relay.close()
    verdict = assert_followed(room, hold)
    stats = room.receiver.stats()
    # Every change made shows in the audio as a disturbance, but for two in
    # one stretch of concealed audio, or a locate to where the transport was.
    # A stretch of concealed audio holds one change more for every 60 ms
    # (the least time between two) it lasts: how many the concealment this
    # run measured could have swallowed (a fresh-clone run, loaded: 574
    # underruns and 194 of 240 changes seen).
    genuine = [i for i, c in enumerate(room.cycles) if c.steady]
    apart = round(0.06 * 48000)
    swallowed = sum((j - i) * room.period // apart for i, j in zip(genuine, genuine[1:]))
    assert verdict.disturbances >= 0.95 * (len(changes) - swallowed), \
        (verdict.disturbances, swallowed, stats.underruns)
    assert stats.lost > 0.05 * stats.packets, stats.lost


def test_a_receiver_that_starts_while_the_sender_rolls_catches_up():
    # A start whose first cycles were concealed cannot be judged (a CI run:
    # the receiver, started on a busy machine, concealed 29 packets as it
    # found its latency); such a try is made again, up to three times.
    for attempt in range(3):
        with rooms(drift=True, receiver_later=True) as (side, room):
            side.do("locate 240000")
            side.do("start")
            room.start_receiver()
            room.run(2.0)
        verdict = assert_followed(room, 0.0)
        # It rolled once, and from the frame of the audio it played then.
        assert room.receiver.stats().transport_rolls == 1
        if verdict.start_errors:
            break
        print(f"try {attempt + 1}: the start's first cycles were concealed")
    assert verdict.start_errors and abs(verdict.start_errors[0]) <= 2, verdict.start_errors


@pytest.mark.parametrize("who", ["receiver", "sender"])
def test_a_transport_nobody_asked_to_follow_never_moves(who):
    """Without --follow-transport the receiving transport stays where it
    is; nor does it move for a sender run with --no-transport."""
    options = {"follow_transport": who == "sender"}
    side_args = ("--no-transport",) if who == "sender" else ()
    with rooms(drift=True, side_args=side_args, **options) as (side, room):
        run_changes(side, room, SEQUENCE)
    stats = room.receiver.stats()
    print(len(room.cycles), sum(c.steady for c in room.cycles), as_dict(stats))
    assert {(c.state, c.frame) for c in room.cycles} == {(0, 0)}
    # Not a vacuous pass: the link played the sender's audio (of the run's
    # ~2200 cycles; a fresh clone's run that concealed much of it had 617).
    assert sum(c.steady for c in room.cycles) > 200
    assert stats.sender_transport is (None if who == "sender" else "stopped")


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_the_sender_s_bar_beat_and_tempo_are_served(sync):
    with rooms(drift=True, side_args=("--timebase",), timebase=True, sync=sync) as (side, room):
        run_changes(side, room, [("locate 100000", 0.5), ("start", 2.0)])
        stats = as_dict(room.receiver.stats())
    xruns = stats["xruns"]
    said = {k: v for k, v in stats.items() if k.startswith("transport_") or k == "xruns"}
    rolled = [(i, c, b) for i, (c, b) in enumerate(zip(room.cycles, room.bbts))
              if c.state == 1 and b is not None]
    assert len(rolled) > 300
    behind = []
    for i, c, b in rolled:
        assert b.bbt and b.bpm == BPM and (b.beats_per_bar, b.ticks_per_beat) == (4.0, 1920.0)
        bar, beat, tick = bbt_of(c.frame)
        # Ticks are 12.5 frames long: the same position, give or take a
        # tick (across a beat's or a bar's edge too).
        if abs(ticks_of(b.bar, b.beat, b.tick) - ticks_of(bar, beat, tick)) <= 1:
            continue
        # An asynchronous server does not wait for its clients: when the
        # receiver (its timebase master) ends a cycle late, the server has
        # already published the position for the next one, so other clients
        # see the BBT the master wrote a cycle before, for the frame a
        # period earlier, or two (docs/transport.md).  Measured: 0 such
        # cycles in 29 801 on synchronous servers, 17 in 29 840 on
        # asynchronous ones (at most 2 in a run of 750), with no xrun.
        shown = ticks_of(b.bar, b.beat, b.tick)
        late = [k for k in (1, 2)
                if abs(shown - ticks_of(*bbt_of(c.frame - k * room.period))) <= 1]
        # The frames around it say whether the transport jumped there.
        assert late, (c.frame, b, (bar, beat, tick), said,
                      [x.frame for x in room.cycles[max(0, i - 3):i + 3]])
        behind.append(c.frame)
    print(f"BBT published late in {len(behind)} of {len(rolled)} cycles: {behind}")
    if sync and not xruns:
        assert not behind
    assert len(behind) <= len(rolled) // 100, behind


def ticks_of(bar: int, beat: int, tick: float) -> float:
    """Ticks from the start of bar 1 (4 beats a bar, 1920 ticks a beat)."""
    return ((bar - 1) * 4 + beat - 1) * 1920 + tick


def bbt_of(frame: int, rate: int = 48000) -> tuple[int, int, int]:
    """The BBT transport_side.py's timebase master gives ``frame``."""
    ticks = frame / (60 * rate / BPM) * 1920
    beats, tick = divmod(ticks, 1920)
    bar, beat = divmod(int(beats), 4)
    return bar + 1, beat + 1, int(tick)
