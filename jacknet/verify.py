"""Check recorded audio against the generator's known test signal.

Used by ``jacknet demo``, the end-to-end tests and the benchmarks: a
`Capture` records the receiver's outputs, and each recorded cycle is compared
with `known_signal` at the frame times it was recorded, minus the link's delay.
The delay is found once from the data and then held; a change of delay (a
re-sync) starts a new segment, so a test can ask for "exact at one constant
offset" over any stretch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jacknet.realtime import Capture, known_signal

SEARCH_SECONDS = 2.0


@dataclass
class Segment:
    """A stretch of recorded frames checked at one delay."""

    start: int              # recorder frame time of the first frame checked
    delay: int | None       # frames from generator to recorder; None: not aligned (silence/noise)
    frames: int = 0
    exact: int = 0          # frames where every channel matched within tolerance
    max_error: float = 0.0
    bad_at: list[int] = field(default_factory=list)  # frame times of the first mismatches
    clean_tail: int = 0     # frames matched since the last mismatch


class SignalChecker:
    """Pull recorded cycles from ``capture`` and compare them with the test signal.

    Parameters
    ----------
    capture : Capture
        Recorder of the receiver's outputs.
    tolerance : float
        Largest difference that still counts as a match (0 for float32,
        one int16 LSB for int16).
    block : int
        Frames per check; the JACK period, so that blocks are whole cycles.
    """

    def __init__(self, capture: Capture, tolerance: float, block: int, samplerate: int) -> None:
        self.capture = capture
        self.tolerance = tolerance
        self.samplerate = samplerate
        self._buf = np.zeros((capture.channels, block), np.float32)
        self.segments: list[Segment] = []
        self._misses = 0
        self._next_search = 0  # recorder frame time before which no new search is tried

    def _frame_times(self, position: int) -> np.ndarray | None:
        ft = self.capture.frame_time_at(position)
        if ft is None:
            return None
        return (np.arange(self._buf.shape[1], dtype=np.int64) + ft) & 0xFFFFFFFF

    def _find_delay(self, times: np.ndarray) -> int | None:
        rec = self._buf[0]
        k = int(np.argmax(np.abs(rec) > 1e-3))
        if abs(rec[k]) <= 1e-3 or k > len(rec) - 4:
            return None
        delays = np.arange(int(SEARCH_SECONDS * self.samplerate), dtype=np.int64)
        hits = delays
        for j in range(k, min(k + 4, len(rec))):
            cand = known_signal(0, times[j] - hits)
            hits = hits[np.abs(cand - rec[j]) <= self.tolerance]
            if len(hits) == 0:
                return None
        return int(hits[0]) if len(hits) == 1 else None

    def discard(self) -> None:
        """Drop what has been recorded so far (a warm-up while ports connect)."""
        self.capture.skip()

    def poll(self) -> None:
        """Check every cycle recorded since the last call."""
        while True:
            pos = self.capture.read_into(self._buf)
            if pos < 0:
                return
            times = self._frame_times(pos)
            if times is None:
                continue
            seg = self.segments[-1] if self.segments else None
            lost = seg is None or seg.delay is None or self._misses >= 2
            # The search is costly: try it at most every 50 ms of audio.
            if lost and (int(times[0]) - self._next_search) % (1 << 32) < 1 << 31:
                self._next_search = int(times[0]) + self.samplerate // 20
                delay = self._find_delay(times)
                if seg is None or delay != seg.delay:
                    seg = Segment(int(times[0]), delay)
                    self.segments.append(seg)
                self._misses = 0
            if seg is None:
                continue
            seg.frames += len(times)
            if seg.delay is None:
                continue
            expected = np.stack([known_signal(ch, times - seg.delay)
                                 for ch in range(self._buf.shape[0])])
            err = np.abs(expected - self._buf)
            ok = (err <= self.tolerance).all(axis=0)
            seg.exact += int(ok.sum())
            if len(seg.bad_at) < 8 and not ok.all():
                seg.bad_at.append(int(times[np.argmin(ok)]))
            seg.max_error = max(seg.max_error, float(err.max()))
            seg.clean_tail = seg.clean_tail + len(ok) if ok.all() else len(ok) - 1 - int(np.flatnonzero(~ok)[-1])
            self._misses = self._misses + 1 if not ok.all() else 0

    @property
    def current(self) -> Segment | None:
        return self.segments[-1] if self.segments else None

    def summary(self) -> str:
        seg = self.current
        if seg is None or seg.delay is None:
            return "check: waiting for the test signal"
        bad = seg.frames - seg.exact
        return (f"check: delay={seg.delay} frames ({1000 * seg.delay / self.samplerate:.2f} ms) "
                f"checked={seg.frames / self.samplerate:.1f}s mismatched_frames={bad} "
                f"exact_for={seg.clean_tail / self.samplerate:.1f}s segments={len(self.segments)}")
