"""The follower (sync.follow) and the C side that carries its commands out
(jn_follow_cycle, jn_follow_sync in rt.c), on a simulated clock: a model of
jack2's transport timing, measured on a real server (docs/transport.md),
plays the JACK server, and the sender's transport is a line through ring
indices that may run apart at a drift."""
from __future__ import annotations

from dataclasses import dataclass

import jack
import pytest

from jacknet.rt._rt import ffi, lib
from jacknet.rt.engines import Playout
from jacknet.sync.follow import ROLL, Follower
from jacknet.net.protocol import PositionBlock
from jacknet.sync.heard import Heard

POSITION_BBT = 16  # rt.h's JN_POSITION_BBT (JackPositionBBT)

PERIOD = 128
RATE = 48000
LATENCY = 3 * PERIOD  # clock - ring index: what the playout plays
AHEAD = 2 * PERIOD    # packets tell of this far beyond what plays


def test_jn_position_is_jack_position_t():
    assert ffi.sizeof("jn_position") == jack._ffi.sizeof("jack_position_t")
    for name in ("frame", "frame_rate", "valid", "bar", "beat", "tick", "bar_start_tick",
                 "beats_per_bar", "ticks_per_beat", "beats_per_minute", "unique_2"):
        assert ffi.offsetof("jn_position", name) == jack._ffi.offsetof("jack_position_t", name)


class Jack:
    """jack2's transport as measured: a locate shows two cycles after it is
    asked for (Starting, if it was rolling); a start makes the next cycle
    Starting, and the transport rolls, from the frame it is at, in the
    cycle after all sync callbacks said ready; a stop shows in the next."""

    def __init__(self) -> None:
        self.state, self.frame = 0, 0
        self.locates: list[tuple[int, int]] = []   # (cycle it shows in, frame)
        self.start = self.stop = False
        self.cycle = 0
        self._ready = False

    def begin(self, sync) -> None:
        self.cycle += 1
        if self.state == 1:
            self.frame = (self.frame + PERIOD) & 0xFFFFFFFF
        elif self.state == 3 and self._ready:
            self.state = 1
        if self.stop:
            self.state, self.stop = 0, False
        if self.start:
            self.state, self.start = 3, False
        due = [f for c, f in self.locates if c == self.cycle]
        self.locates = [(c, f) for c, f in self.locates if c > self.cycle]
        if due:
            self.frame = due[-1]
            if self.state == 1:
                self.state = 3
        self._ready = self.state == 3 and sync(self.frame)


@dataclass
class Line:
    """The sender's transport, by ring index: rolling from ``frame`` at
    ``index`` at 1 + ``ppm`` frames per frame, or stopped at ``frame``."""

    index: int
    frame: int
    rolling: bool
    ppm: float = 0.0

    def at(self, index: int) -> float:
        return self.frame + (index - self.index) * (1 + self.ppm * 1e-6) * self.rolling


class Sim:
    def __init__(self, tolerance: int | None = None) -> None:
        self.jack = Jack()
        self.playout = Playout(1, 1 << 16, RATE)
        self.playout.follow(True)
        self.lines = [Line(0, 0, False)]
        state = self.playout.state
        state.api.transport_locate = self._locate = ffi.callback(
            "int(void *, uint32_t)", lambda c, f: self.jack.locates.append((self.jack.cycle + 2, f)) or 0)
        state.api.transport_start = self._start = ffi.callback(
            "void(void *)", lambda c: setattr(self.jack, "start", True))
        state.api.transport_stop = self._stop = ffi.callback(
            "void(void *)", lambda c: setattr(self.jack, "stop", True))
        self.follower = Follower(self.playout.command, self.heard, self.known,
                                 lambda f: round(f) & 0xFFFFFFFF, PERIOD, RATE, tolerance)
        self.now = 10 * PERIOD
        self.errors: list[tuple[int, float]] = []   # (cycle, frames) while both roll

    def heard(self, index: int) -> Heard:
        line = next(l for l in reversed(self.lines) if l.index <= index)
        return Heard(1 if line.rolling else 0, line.at(index), len(self.lines))

    def known(self) -> int:
        return self.now - LATENCY + AHEAD

    def change(self, rolling: bool, frame: int | None = None, ppm: float = 0.0) -> None:
        """The sender's transport changes with the audio that arrives now."""
        index = self.known()
        line = self.lines[-1]
        self.lines.append(Line(index, line.at(index) if frame is None else frame, rolling, ppm))

    def run(self, cycles: int) -> None:
        pos = ffi.new("jn_position *")
        for _ in range(cycles):
            def sync(frame: int) -> bool:
                pos.frame = frame
                return bool(lib.jn_follow_sync(3, pos, self.playout.state))
            self.jack.begin(sync)
            self.playout.state.now = self.now
            self.playout.state.offset = LATENCY
            lib.jn_follow_cycle(self.playout.state, self.now, PERIOD, self.jack.state,
                                self.jack.frame)
            heard = self.heard(self.now - LATENCY)
            if self.jack.state == 1 and heard.rolling:
                self.errors.append((self.jack.cycle, self.jack.frame - heard.frame))
            self.follower.step(self.playout.transport_snapshot())
            self.now += PERIOD


def test_a_start_rolls_from_the_frame_of_the_audio_then_and_a_stop_stops_at_the_sender_s():
    sim = Sim()
    sim.change(False, 48000)
    sim.run(20)
    assert (sim.jack.state, sim.jack.frame) == (0, 48000)
    sim.change(True)
    sim.run(40)
    errors = [e for _, e in sim.errors]
    assert errors and set(errors) == {0.0}   # from its first rolling cycle
    rolled = sim.errors[0][0]
    sim.change(False)
    stop_frame = round(sim.lines[-1].frame)
    sim.run(20)
    assert (sim.jack.state, sim.jack.frame) == (0, stop_frame)
    s = sim.follower.stats
    assert (s.rolls, s.stops, s.relocates) == (1, 1, 0)
    # The roll came within LEAD_CYCLES + 2 of the cycle the audio rolled in.
    assert rolled <= 20 + (AHEAD - LATENCY) // PERIOD + 7


def test_a_locate_while_rolling_is_one_relocate_aligned_again():
    sim = Sim()
    sim.change(True, 0)
    sim.run(40)
    sim.change(True, 10 ** 6)
    sim.run(40)
    assert sim.follower.stats.relocates == 1
    assert sim.errors[-20:] and {e for _, e in sim.errors[-20:]} == {0.0}


@pytest.mark.parametrize("ppm", [1000, -300])
def test_drift_is_relocated_only_past_the_tolerance(ppm):
    sim = Sim()
    sim.change(True, 0, ppm=ppm)
    cycles = 20000  # 53 s
    sim.run(cycles)
    s = sim.follower.stats
    drifted = abs(ppm) * 1e-6 * cycles * PERIOD
    expected = drifted / PERIOD   # one relocate per tolerance (a period) of drift
    assert abs(s.drift_relocates - expected) <= 1 + 0.05 * expected, (s, expected)
    assert s.relocates == s.drift_relocates and s.rolls == 1
    # Between relocates the error stays within the tolerance, plus what
    # drifts while a relocate is under way.
    assert max(abs(e) for _, e in sim.errors) <= PERIOD + 8 * PERIOD * abs(ppm) * 1e-6 + 1


def test_a_sender_that_does_not_change_gets_no_commands():
    sim = Sim()
    sim.change(False, 5000)
    sim.run(10)
    done = sim.playout.transport_snapshot().done
    sim.run(500)
    assert sim.playout.transport_snapshot().done == done


def test_a_roll_that_cannot_come_holds_the_transport_only_a_few_cycles():
    """Another client located elsewhere after the roll was set: the sync
    callback lets the transport go rather than hold the room."""
    sim = Sim()
    sim.run(5)
    sim.playout.command(ROLL, 99999, sim.now + 5 * PERIOD)
    sim.run(3)
    sim.jack.locates.append((sim.jack.cycle + 1, 5))      # someone else's locate
    pos = ffi.new("jn_position *", {"frame": 5})
    held = 0
    for _ in range(40):
        sim.jack.begin(lambda frame: True)
        sim.playout.state.now = sim.now
        lib.jn_follow_cycle(sim.playout.state, sim.now, PERIOD, 3, 5)
        held += not lib.jn_follow_sync(3, pos, sim.playout.state)
        sim.now += PERIOD
    assert 0 < held <= lib.JN_FOLLOW_HOLD_CYCLES + 5


def test_the_timebase_carries_on_from_the_last_whole_reference_while_one_is_written():
    """The network thread's write of a new BBT reference can be switched out
    mid-way; meanwhile each cycle's BBT is still this cycle's frame's (a
    fresh clone's run saw BBT a period behind the frame when the callback left JACK's
    last one in place)."""
    playout = Playout(1, 1 << 16, RATE)
    # 120 bpm at 48 kHz: a beat is 24000 frames; bar 2, beat 1 at frame 96000.
    playout.set_bbt(PositionBlock(RATE, 0, True, 1, 1, 0, 4.0, 4.0, 1920.0, 120.0), 0, RATE)
    pos = ffi.new("jn_position *")
    pos.frame_rate = RATE

    def bbt_at(frame: int) -> tuple[int, int, int]:
        pos.frame, pos.valid = frame, 0
        lib.jn_follow_timebase(1, 128, pos, 0, playout.state)
        return (pos.bar, pos.beat, pos.tick) if pos.valid & POSITION_BBT else None

    assert bbt_at(96000) == (2, 1, 0)
    follow = playout.state.follow
    follow.bbt_seq += 1           # a writer is half-way through
    follow.bbt.beats_per_minute = 60.0
    assert bbt_at(96000 + 12000) == (2, 1, 960)   # at 120 bpm still, for this frame
    follow.bbt_seq += 1           # done: the new tempo from here
    assert bbt_at(12000) == (1, 1, 480)
