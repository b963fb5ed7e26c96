"""The Python face of the real-time path in ``rt.c``.

Each class owns one C state that a JACK process callback works on:

- `Capture`: JACK input ports -> lock-free ring, read by a worker thread.
- `Playout`: ring indexed by stream position, written by the network thread,
  played (with click-free concealment of gaps) into JACK output ports.

None of the process callbacks runs Python, so no Python thread can delay
them.  All methods here are for non-real-time threads.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jacknet.net.protocol import PositionBlock
from jacknet.rt._rt import ffi, lib

FADE_SECONDS = 0.002  # fade-in after a gap: short enough to be inaudible as a dip, long enough to be no click
LIMIT = 4.0  # the playout's ceiling until a stream sets its own (+12 dBFS)


@dataclass(frozen=True)
class TransportCycle:
    """The JACK transport in one cycle of a following playout."""

    now: int
    """Receiver clock at the cycle's start."""
    read: int
    """Ring index the cycle played first."""
    state: int
    frame: int
    done: int
    """The number of the last command carried out (`Playout.command`)."""


def c_address(name: str) -> int:
    """The address of one of rt.c's functions, to hand to libjack."""
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class _Engine:
    """A C state plus the process callback that works on it."""

    process_name: str

    def __init__(self, state, nch: int) -> None:
        if state == ffi.NULL:
            raise MemoryError("cannot allocate the real-time buffers")
        self.state = state
        self.channels = nch

    @property
    def process_address(self) -> int:
        return c_address(self.process_name)

    @property
    def state_address(self) -> int:
        return int(ffi.cast("uintptr_t", self.state))

    def bind(self, client_address: int, api: dict[str, int], port_addresses: list[int]) -> None:
        """Point the C state at a JACK client, libjack's functions and ports."""
        if len(port_addresses) != self.channels:
            raise ValueError(f"{self.channels} ports needed, {len(port_addresses)} given")
        s = self.state
        s.client = ffi.cast("void *", client_address)
        for name, address in api.items():
            setattr(s.api, name, ffi.cast(ffi.typeof(getattr(s.api, name)), address))
        for i, address in enumerate(port_addresses):
            s.ports[i] = ffi.cast("void *", address)

    @property
    def cycles(self) -> int:
        return int(self.state.cycles)


class Capture(_Engine):
    """JACK inputs -> ring.  The worker reads fixed-size blocks.

    Parameters
    ----------
    channels : int
        Number of input ports.
    capacity : int
        Ring size in frames (rounded up to a power of two).  When the reader
        falls behind by half of it, the oldest audio is dropped and counted.
    """

    process_name = "jn_capture_process"

    def __init__(self, channels: int, capacity: int = 32768) -> None:
        super().__init__(ffi.gc(lib.jn_capture_new(channels, _pow2_at_least(capacity)),
                                lib.jn_capture_free), channels)
        self._meta = ffi.new("jn_cycle_meta *")

    def push(self, frame_time: int, block: np.ndarray, jack_transport_state: int = 0,
             jack_transport_frame: int = 0, rate: int = 48000) -> None:
        """Append a planar block as a process callback would (for tests)."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        ptrs = ffi.new("float *[]", [ffi.from_buffer("float[]", row) for row in block])
        pos = ffi.new("jn_position *", {"frame": jack_transport_frame, "frame_rate": rate})
        lib.jn_capture_push(self.state, frame_time, block.shape[1], ptrs, pos,
                            jack_transport_state)

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (channels x frames, float32, C-contiguous).

        Returns the capture position of the first frame, or -1 when fewer
        frames than asked for are buffered.  Releases the GIL while copying.
        """
        return int(lib.jn_capture_read(self.state, ffi.from_buffer("float[]", out), out.shape[1]))

    def frame_time_at(self, position: int) -> int | None:
        """JACK frame time at which ``position`` was captured (None if forgotten)."""
        if not lib.jn_capture_meta(self.state, position, self._meta):
            return None
        return (int(self._meta.frame_time) + position - int(self._meta.wpos)) & 0xFFFFFFFF

    def jack_transport_at(self, position: int) -> tuple[int, int]:
        """(state, frame) of the JACK transport in the cycle that captured ``position``."""
        if not lib.jn_capture_meta(self.state, position, self._meta):
            return 0, 0
        m = self._meta
        rolled = position - m.wpos - m.filled  # the cycle's own audio starts after the silence
        frame = m.transport_frame + (rolled if m.transport_state == 1 else 0)
        return int(m.transport_state), int(frame) & 0xFFFFFFFF

    def fill_missed_cycles(self, frames: int) -> None:
        """Fill cycles JACK did not run this client in with silence, up to
        ``frames`` of them at a time (at most a quarter of the ring), so that
        capture positions keep counting JACK's frame clock.  Off by default:
        a recorder wants the gap to show."""
        self.state.fill_max = min(frames, self.state.capacity // 4)

    def filled_in(self, position: int, frames: int) -> bool:
        """Whether any of ``frames`` frames from ``position`` is silence that
        stands in for a missed cycle (see `fill_missed_cycles`)."""
        return bool(lib.jn_capture_filled_in(self.state, position, frames))

    @property
    def filled(self) -> int:
        """Frames of silence filled in for missed cycles so far."""
        return int(self.state.filled)

    def position_at(self, position: int) -> PositionBlock | None:
        """The JACK transport's rate and BBT in the cycle that captured
        ``position`` (None if forgotten)."""
        if not lib.jn_capture_meta(self.state, position, self._meta):
            return None
        m = self._meta
        b = m.bbt
        if not b.valid:
            return PositionBlock(int(m.transport_rate), int(m.transport_frame))
        return PositionBlock(int(m.transport_rate), int(m.transport_frame), True, int(b.bar),
                             int(b.beat), int(b.tick), float(b.beats_per_bar),
                             float(b.beat_type), float(b.ticks_per_beat),
                             float(b.beats_per_minute), float(b.bar_start_tick))

    def skip(self) -> None:
        """Drop what is buffered; the next read starts at the live position."""
        lib.jn_capture_skip(self.state)

    def wait(self, timeout: float) -> bool:
        """Sleep until the next JACK cycle (GIL released); False on timeout."""
        return lib.jn_capture_wait(self.state, timeout) == 0

    @property
    def dropped(self) -> int:
        return int(self.state.dropped)

    @property
    def discontinuities(self) -> int:
        return int(self.state.discontinuities)


class Playout(_Engine):
    """Ring indexed by stream position -> JACK outputs, with concealment.

    The network thread stores audio with `write` at ring indices and moves
    the mapping with `set_offset`; each JACK cycle starting at receiver clock
    ``now`` plays ring indices ``now - offset`` onward.
    """

    process_name = "jn_playout_process"

    def __init__(self, channels: int, capacity: int, samplerate: int) -> None:
        fade = max(1, round(FADE_SECONDS * samplerate))
        decay = float(np.exp(-1.0 / fade))
        super().__init__(ffi.gc(lib.jn_playout_new(channels, _pow2_at_least(capacity), fade, decay,
                                                   LIMIT), lib.jn_playout_free), channels)
        self.capacity = int(self.state.capacity)

    def write(self, index: int, block: np.ndarray) -> None:
        """Store a planar float32 block (its channels x frames) at ``index``."""
        lib.jn_playout_write(self.state, index, block.shape[1], block.shape[0],
                             ffi.from_buffer("float[]", block))

    def has(self, index: int) -> bool:
        return bool(lib.jn_playout_has(self.state, index))

    def set_offset(self, offset: int) -> None:
        self.state.offset = offset
        self.state.locked = 1

    def count_gaps_from(self, index: int) -> None:
        """Frames before ``index`` (before the stream began) are not counted as concealed."""
        self.state.count_from = index

    def unlock(self) -> None:
        self.state.locked = 0

    def fade_out(self, frames: int) -> None:
        """Ramp the outputs down to silence over ``frames`` and keep them
        silent (closing: nothing downstream hears a cut)."""
        self.state.fade_out = max(1, frames)

    @property
    def locked(self) -> bool:
        return bool(self.state.locked)

    @property
    def offset(self) -> int:
        return int(self.state.offset)

    @property
    def now(self) -> int:
        """Receiver clock at the start of the last cycle played."""
        return int(self.state.now)

    @property
    def read_end(self) -> int:
        """Ring index just after the last frame played."""
        return int(self.state.read_end)

    def run(self, now: int, out: np.ndarray) -> None:
        """Play one cycle into ``out`` (channels x frames) as JACK would (for tests)."""
        ptrs = ffi.new("float *[]", [ffi.from_buffer("float[]", row) for row in out])
        lib.jn_playout_run(self.state, now, out.shape[1], ptrs)

    # -- following the sender's JACK transport (jacknet.sync.follow) --------
    def follow(self, enabled: bool = True) -> None:
        """Have each cycle query the JACK transport and carry out commands."""
        self.state.follow.enabled = int(enabled)

    def command(self, kind: int, frame: int = 0, at: int = 0) -> int:
        """Post a `jacknet.sync.follow` command (``JN_FOLLOW_*``) for the next
        cycle, replacing one not yet carried out; returns its number."""
        f = self.state.follow
        f.cmd_kind, f.cmd_frame, f.cmd_at = kind, frame & 0xFFFFFFFF, at
        seq = (int(f.cmd_seq) + 1) & 0xFFFFFFFF
        f.cmd_seq = seq
        return seq

    def transport_snapshot(self) -> TransportCycle | None:
        """What the JACK transport did in the last cycle played (None before one)."""
        f = self.state.follow
        for _ in range(100):
            seq = int(f.snap_seq)
            if seq & 1:
                continue
            snap = TransportCycle(int(f.snap_now), int(f.snap_read), int(f.snap_state),
                                  int(f.snap_frame), int(f.snap_done))
            if int(f.snap_seq) == seq:
                return snap if seq else None
        return None

    def set_bbt(self, block: PositionBlock, frame: int, rate: int) -> None:
        """The BBT a timebase master (`jn_follow_timebase`) carries on: ``block``'s
        musical position, at this receiver's transport ``frame``."""
        f = self.state.follow
        f.bbt_seq = int(f.bbt_seq) + 1
        b = f.bbt
        b.valid, b.bar, b.beat, b.tick = int(block.bbt), block.bar, block.beat, block.tick
        b.bar_start_tick, b.beats_per_bar, b.beat_type = (block.bar_start_tick,
                                                          block.beats_per_bar, block.beat_type)
        b.ticks_per_beat, b.beats_per_minute = block.ticks_per_beat, block.bpm
        f.bbt_frame, f.bbt_rate = frame & 0xFFFFFFFF, rate
        f.bbt_seq = int(f.bbt_seq) + 1

    @property
    def held(self) -> int:
        """Cycles the sync callback held the JACK transport in Starting."""
        return int(self.state.follow.held)

    @property
    def concealed_frames(self) -> int:
        return int(self.state.concealed_frames)

    @property
    def underruns(self) -> int:
        return int(self.state.underruns)

    @property
    def limit(self) -> float:
        """No sample is stored louder than this (set by the writing thread)."""
        return float(self.state.limit)

    @limit.setter
    def limit(self, value: float) -> None:
        self.state.limit = value

    @property
    def nonfinite_samples(self) -> int:
        """NaN or Inf samples written, stored as silence."""
        return int(self.state.nonfinite_samples)

    @property
    def limited_samples(self) -> int:
        """Samples written beyond `limit`, stored at it."""
        return int(self.state.limited_samples)
