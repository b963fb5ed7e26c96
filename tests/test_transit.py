"""`TransitWindow`: the transit packets take now, for the latency held."""
from __future__ import annotations

from jacknet.recv.transit import TransitWindow

RATE = 48000
N = 128


def test_the_low_transit_follows_a_step_once_the_window_has_passed_it():
    """A step of the arrivals (an xrun's jump of the receiver's clock) moves
    the low transit by the step once nearly all the window is newer: one
    early estimate in 25 does not set it."""
    w = TransitWindow(2.0, RATE)
    assert w.low is None
    for k in range(RATE // N):  # one second, every 25th packet early
        w.add(k * N, 20 - 15 * (k % 25 == 0))
    assert w.low == 20
    for k in range(RATE // N, 4 * RATE // N):
        w.add(k * N, 148)
        if k * N < 2.8 * RATE:
            assert w.low == 20, k  # the old transits still make up 5 % of the window
    assert w.low == 148


def test_nothing_is_measured_before_half_a_second_and_after_a_clear():
    w = TransitWindow(2.0, RATE)
    for k in range(RATE // 2 // N):
        w.add(k * N, 30)
    assert w.low is None
    w.add(RATE // 2, 30)
    assert w.low == 30
    w.clear()
    assert w.low is None
