"""Following the sender's JACK transport on the receiver (``--follow-transport``).

The follower compares, once per cycle, what the receiver's JACK transport
did with what the sender's did for the audio that cycle played, and says
what to do about it.  The C side (``jn_follow_cycle`` in rt.c) carries a
command out on JACK's thread, in the cycle it is due:

- **roll** at a cycle to a frame: locate and start at once, and hold the
  transport in Starting (JACK's slow-sync) until that cycle, so it rolls
  from the frame of the audio it plays then.  A locate while rolling and a
  drift beyond the tolerance are handled the same way (a *relocate*);
- **stop** at a cycle, then locate to the frame the sender stopped at;
- **locate** a stopped transport to the sender's frame.

One command at a time, and only when the two transports disagree: a change
is acted on once, whatever the packets repeat.  Pure: time is the receiver
clock in frames, so tests run it on a simulated clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from jacknet.rt._rt import lib
from jacknet.rt.engines import TransportCycle
from jacknet.sync.heard import ROLLING, STARTING, Heard
from jacknet.sync.watch import frame_delta

LOCATE, ROLL, STOP = lib.JN_FOLLOW_LOCATE, lib.JN_FOLLOW_ROLL, lib.JN_FOLLOW_STOP
LEAD_CYCLES = 5      # a roll is set this many cycles ahead: JACK needs three, one is for us
SCAN_CYCLES = 64     # how far ahead the heard transport is searched for a change
HOLD_CYCLES = 8      # a sender held in Starting this long is stopped, as far as we care
GIVE_UP_SECONDS = 1.0


@dataclass
class FollowStats:
    """What the follower did (owned by `Follower`)."""

    rolls: int = 0
    """Starts of the JACK transport, each to the frame of the audio heard then."""
    stops: int = 0
    locates: int = 0
    """Locates of a stopped transport."""
    relocates: int = 0
    """Locates of a rolling transport: the sender located, or the mapping moved."""
    drift_relocates: int = 0
    """Of those, the ones for the clocks' drift alone (the sender's epoch unchanged)."""
    gave_up: int = 0
    """Commands JACK did not carry out within a second (another client held it)."""
    error_frames: int | None = None
    """This transport's frame less the one it should be at, in the last cycle
    both rolled."""


class Follower:
    """Moves this side's JACK transport after the sender's.

    Parameters
    ----------
    post : callable
        ``post(kind, frame, at) -> number``: hand a command to the C side
        (`Playout.command`).
    heard : callable
        ``heard(ring_index) -> Heard | None``: the sender's transport for the
        audio at a ring index (carried on past the newest packet).
    known : callable
        ``known() -> ring_index | None``: the last ring index packets told of.
    to_local : callable
        A sender transport frame as this transport's frame (rates converted,
        ``--transport-offset`` added).
    period, rate : int
        This server's period and rate.
    tolerance : int, optional
        Frames the transports may drift apart while rolling (default: a period).
    """

    def __init__(self, post: Callable[[int, int, int], int],
                 heard: Callable[[int], Heard | None], known: Callable[[], int | None],
                 to_local: Callable[[float], int], period: int, rate: int,
                 tolerance: int | None = None) -> None:
        self.post, self.heard, self.known, self.to_local = post, heard, known, to_local
        self.period, self.rate = period, rate
        self.tolerance = tolerance if tolerance is not None else period
        self.stats = FollowStats()
        self._pending: tuple[int, int] | None = None   # command number, clock it is settled by
        self._aligned_epoch: int | None = None
        self._last_cycle: int | None = None

    def step(self, snap: TransportCycle | None) -> None:
        """Look at the last cycle played; post a command if one is due."""
        if snap is None or snap.now == self._last_cycle:
            return
        self._last_cycle = snap.now
        if self._pending is not None:
            number, settled = self._pending
            if snap.done != number or snap.now < settled:
                if snap.now > settled + GIVE_UP_SECONDS * self.rate:
                    self.stats.gave_up += 1
                    self._pending = None
                return
            self._pending = None
        offset = snap.now - snap.read
        now = self.heard(snap.read)
        if now is None:
            return
        if snap.state == ROLLING:
            self._rolling(snap, now, offset)
        elif snap.state != STARTING:
            self._stopped(snap, now, offset)

    # -- the cases -----------------------------------------------------------
    def _rolling(self, snap: TransportCycle, now: Heard, offset: int) -> None:
        p = self.period
        if now.rolling:
            error = frame_delta(snap.frame, self.to_local(now.frame))
            self.stats.error_frames = error
            change = self._next_change(snap.now, offset, rolling=True)
            if change is None:
                if abs(error) > self.tolerance:
                    self._relocate(snap, offset, drift=now.epoch == self._aligned_epoch)
                return
            stop_at, then = change
        else:
            stop_at, then = snap.now + p, now
        if then.state == STARTING:
            resume = self._next_change(stop_at - p, offset, rolling=False)
            if resume is not None:
                self._roll(snap, offset, resume[0], relocate=True)
                return
            if self._known_until(offset) < stop_at + HOLD_CYCLES * p:
                return   # a locate in progress on the sender: wait for where it rolls from
        self._send(STOP, self.to_local(then.frame), stop_at, settled=stop_at + 2 * p)
        self.stats.stops += 1

    def _stopped(self, snap: TransportCycle, now: Heard, offset: int) -> None:
        if now.rolling:
            self._roll(snap, offset, snap.now)
            return
        change = self._next_change(snap.now, offset, rolling=False)
        if change is not None and change[1].rolling:
            self._roll(snap, offset, change[0])
            return
        target = self.to_local(now.frame)
        if snap.frame != target:
            self._send(LOCATE, target, snap.now, settled=snap.now + 3 * self.period)
            self.stats.locates += 1

    # -- commands --------------------------------------------------------------
    def _roll(self, snap: TransportCycle, offset: int, at: int, relocate: bool = False) -> bool:
        """Roll (or relocate) so that the cycle at clock ``at`` or later plays
        with this transport at the frame its audio was sent at; False if the
        audio then is not rolling after all."""
        at = max(at, snap.now + LEAD_CYCLES * self.period)
        heard = self.heard(at - offset)
        if heard is None or not heard.rolling:
            return False
        self._send(ROLL, self.to_local(heard.frame), at, settled=at + self.period)
        self._aligned_epoch = heard.epoch
        if relocate:
            self.stats.relocates += 1
        else:
            self.stats.rolls += 1
        return True

    def _relocate(self, snap: TransportCycle, offset: int, drift: bool) -> None:
        if self._roll(snap, offset, snap.now, relocate=True):
            self.stats.drift_relocates += drift

    def _send(self, kind: int, frame: int, at: int, settled: int) -> None:
        self._pending = (self.post(kind, frame, at), settled)

    # -- what was heard ------------------------------------------------------
    def _next_change(self, after: int, offset: int,
                     rolling: bool) -> tuple[int, Heard] | None:
        """The first cycle after clock ``after`` whose audio the sender's
        transport played with ``rolling`` otherwise, as far as packets tell."""
        p = self.period
        known = self._known_until(offset)
        c = after + p
        while c <= known and c <= after + SCAN_CYCLES * p:
            h = self.heard(c - offset)
            if h is not None and h.rolling != rolling:
                return c, h
            c += p
        return None

    def _known_until(self, offset: int) -> int:
        """The last clock whose audio packets have told of."""
        known = self.known()
        return -1 if known is None else known + offset
