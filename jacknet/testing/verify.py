"""Check recorded audio against the generator's known test signals.

Used by ``jacknet demo``, the end-to-end tests and the benchmarks: a
`Capture` records the receiver's outputs.  `SignalChecker` (PCM) compares
each recorded cycle with `known_signal` at the frame times it was recorded,
minus the link's delay.  The delay is found once from the data and then
held; a change of delay (a re-sync) starts a new segment, so a test can ask
for "exact at one constant offset" over any stretch.  `SnrChecker` (Opus)
measures the signal-to-noise ratio against `known_music`, overall and per
20 ms window: a gap or a click shows as a bad window.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jacknet.rt.engines import Capture
from jacknet.testing.signals import known_music, known_signal

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
        Frames per check: whole cycles of the recorder's server.
    cycle : int, optional
        That server's period (default ``block``).  Several cycles per check
        cost less Python per frame: an 8-channel link at period 64 checked a
        cycle at a time takes most of a core, and falls behind on a busy one.
    """

    def __init__(self, capture: Capture, tolerance: float, block: int, samplerate: int,
                 cycle: int | None = None) -> None:
        self.capture = capture
        self.tolerance = tolerance
        self.samplerate = samplerate
        self.cycle = cycle or block
        if block % self.cycle:
            raise ValueError(f"a check of {block} frames is not whole cycles of {self.cycle}")
        self._ramp = np.arange(self.cycle, dtype=np.int64)
        self._buf = np.zeros((capture.channels, block), np.float32)
        self.segments: list[Segment] = []
        self._misses = 0
        self._next_search = 0  # recorder frame time before which no new search is tried
        self._first: int | None = None  # recorder frame times since the last discard
        self._end = 0

    def _frame_times(self, position: int) -> np.ndarray | None:
        # Each cycle's own: an xrun of the recorder's server makes them jump.
        starts = []
        for k in range(0, self._buf.shape[1], self.cycle):
            ft = self.capture.frame_time_at(position + k)
            if ft is None:
                return None
            starts.append(ft)
        return (np.add.outer(np.asarray(starts, np.int64), self._ramp).ravel()) & 0xFFFFFFFF

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
        self._first = None

    @property
    def served_frames(self) -> int:
        """Frames the recorder's server played since the last discard: on a
        busy machine a dummy server runs slower than the wall clock."""
        return 0 if self._first is None else (self._end - self._first) & 0xFFFFFFFF

    def poll(self) -> None:
        """Check every cycle recorded since the last call."""
        while True:
            pos = self.capture.read_into(self._buf)
            if pos < 0:
                return
            times = self._frame_times(pos)
            if times is None:
                continue
            if self._first is None:
                self._first = int(times[0])
            self._end = int(times[-1]) + 1
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


class SnrChecker:
    """Pull recorded cycles from ``capture`` and measure their SNR against
    `known_music` (a lossy codec cannot be exact).

    The delay is found by cross-correlating ``ALIGN_SECONDS`` of recording
    with the signal over ``SEARCH_SECONDS`` of delays; it is searched again
    after ``LOST_WINDOWS`` windows in a row below 0 dB (a re-sync moved it),
    and `delays` lists every delay found.  With ``keep`` every checked cycle
    is kept in `recorded` (frame time, block) so that two recordings can be
    compared sample by sample.
    """

    ALIGN_SECONDS = 0.5
    WINDOW_SECONDS = 0.02
    LOST_WINDOWS = 3

    def __init__(self, capture: Capture, block: int, samplerate: int, keep: bool = False) -> None:
        self.capture = capture
        self.samplerate = samplerate
        self.keep = keep
        self._buf = np.zeros((capture.channels, block), np.float32)
        self._pending: list[tuple[int, np.ndarray]] = []
        self.recorded: list[tuple[int, np.ndarray]] = []
        self.delay: int | None = None
        self.delays: list[int] = []
        self.frames = 0
        self._signal = self._error = 0.0
        self._win_signal = self._win_error = 0.0
        self._win_frames = 0
        self.window_db: list[float] = []

    def discard(self) -> None:
        """Drop what has been recorded so far (a warm-up)."""
        self.capture.skip()

    def poll(self) -> None:
        while (pos := self.capture.read_into(self._buf)) >= 0:
            ft = self.capture.frame_time_at(pos)
            if ft is None:
                continue
            if self.delay is None:
                self._pending.append((ft, self._buf.copy()))
                if len(self._pending) * self._buf.shape[1] >= self.ALIGN_SECONDS * self.samplerate:
                    self._align()
            else:
                self._check(ft, self._buf.copy())

    def _align(self) -> None:
        start = self._pending[0][0]
        rec = np.concatenate([b[0] for _, b in self._pending]).astype(np.float64)
        lags = int(SEARCH_SECONDS * self.samplerate)
        ref = known_music(0, np.arange(start - lags, start + len(rec), dtype=np.int64) & 0xFFFFFFFF)
        n = 1 << int(len(ref) + len(rec)).bit_length()
        corr = np.fft.irfft(np.fft.rfft(ref.astype(np.float64), n) * np.conj(np.fft.rfft(rec, n)), n)
        self.delay = lags - int(np.argmax(corr[:lags + 1]))
        self.delays.append(self.delay)
        pending, self._pending = self._pending, []
        for i, (ft, block) in enumerate(pending):
            if self.delay is None:  # lost again while catching up: align on the rest later
                self._pending = pending[i:]
                return
            self._check(ft, block)

    def _check(self, ft: int, block: np.ndarray) -> None:
        times = (np.arange(block.shape[1], dtype=np.int64) + ft - self.delay) & 0xFFFFFFFF
        expected = np.stack([known_music(ch, times) for ch in range(block.shape[0])])
        sig = float((expected.astype(np.float64) ** 2).sum())
        err = float(((expected - block).astype(np.float64) ** 2).sum())
        self.frames += block.shape[1]
        self._signal += sig
        self._error += err
        self._win_signal += sig
        self._win_error += err
        self._win_frames += block.shape[1]
        if self._win_frames >= self.WINDOW_SECONDS * self.samplerate:
            self.window_db.append(_db(self._win_signal, self._win_error))
            self._win_signal = self._win_error = 0.0
            self._win_frames = 0
            if all(db < 0 for db in self.window_db[-self.LOST_WINDOWS:]) \
                    and len(self.window_db) >= self.LOST_WINDOWS:
                self.delay = None
        if self.keep:
            self.recorded.append((ft, block))

    @property
    def snr_db(self) -> float | None:
        return _db(self._signal, self._error) if self.frames else None

    @property
    def worst_window_db(self) -> float | None:
        return min(self.window_db) if self.window_db else None

    def summary(self) -> str:
        if self.delay is None or not self.window_db:
            return "check: waiting for the test signal"
        return (f"check: delay={self.delay} frames ({1000 * self.delay / self.samplerate:.2f} ms) "
                f"checked={self.frames / self.samplerate:.1f}s snr={self.snr_db:.1f}dB "
                f"worst_20ms={self.worst_window_db:.1f}dB delays={len(self.delays)}")


def _db(signal: float, error: float) -> float:
    return 10 * float(np.log10(signal / error)) if error > 0 else float("inf")
