"""The Python face of the real-time path in ``rt.c``.

Each class owns one C state that a JACK process callback works on:

- `Capture`: JACK input ports -> lock-free ring, read by a worker thread.
- `Playout`: ring indexed by stream position, written by the network thread,
  played (with click-free concealment of gaps) into JACK output ports.

None of the process callbacks runs Python, so no Python thread can delay
them.  All methods here are for non-real-time threads.
"""
from __future__ import annotations

import numpy as np

from jacknet.rt._rt import ffi, lib

FADE_SECONDS = 0.002  # fade-in after a gap: short enough to be inaudible as a dip, long enough to be no click
LIMIT = 4.0  # the playout's ceiling until a stream sets its own (+12 dBFS)


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
             jack_transport_frame: int = 0) -> None:
        """Append a planar block as a process callback would (for tests)."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        ptrs = ffi.new("float *[]", [ffi.from_buffer("float[]", row) for row in block])
        lib.jn_capture_push(self.state, frame_time, block.shape[1], ptrs,
                            jack_transport_state, jack_transport_frame)

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
        frame = m.transport_frame + (position - m.wpos if m.transport_state == 1 else 0)
        return int(m.transport_state), int(frame) & 0xFFFFFFFF

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
