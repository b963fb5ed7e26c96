"""Between two clocks: resample a stream so it plays at the receiver's rate
and at the receiver's speed.

When the sender's sample rate differs from the receiver's, or its clock runs
apart (``--drift on``), the `Sequencer` decodes in order and hands every
block to a `ClockBridge`.  The bridge feeds each packet's arrival to an
`ArrivalDll`, resamples the block at the ratio the `DriftController` sets,
and places the result into the jitter buffer as one continuous stream on the
receiver's own time line.  The jitter buffer locks on that stream as on any
other; from then on the controller holds the distance between the sender
frame arriving now (the DLL's smoothed line) and the sender frame the
playout reads, moving the ratio instead of the audio.
"""
from __future__ import annotations

import numpy as np

from jacknet.drift import ArrivalDll, DriftController
from jacknet.jitter import JitterBuffer
from jacknet.resample import DEFAULT_QUALITY, Resampler


class ClockBridge:
    """One stream's resampling into a jitter buffer.

    Parameters
    ----------
    jitter : JitterBuffer
        Where the resampled audio goes.
    stream_id : int
        The stream (the jitter buffer's key).
    channels, frames : int
        The stream's channels and frames per packet.
    sender_rate, receiver_rate : int
        The two nominal sample rates.
    quality : str
        The resampler's converter (see `jacknet.resample`).
    """

    def __init__(self, jitter: JitterBuffer, stream_id: int, channels: int, frames: int,
                 sender_rate: int, receiver_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        self.jitter = jitter
        self.stream_id = stream_id
        self.nominal = sender_rate / receiver_rate  # sender frames per receiver frame
        self.resampler = Resampler(channels, quality)
        self.dll = ArrivalDll(frames, sender_rate, nominal=self.nominal)
        self.controller = DriftController(self.dll, None, jitter.period, receiver_rate,
                                          nominal=self.nominal)
        self.ratio = self.nominal
        self._in_end: int | None = None   # sender frame after the last one resampled
        self._out_end = 0                 # receiver-time frame after the last one produced
        self._cycle: int | None = None
        self._offset: int | None = None

    def place(self, timestamp: int, block: np.ndarray, arrival: int, measured: bool) -> str:
        """A `Sequencer` sink: one decoded block, in sequence order."""
        if measured:
            self.dll.update(timestamp, arrival)
        if self._in_end is None:
            # The receiver's time line starts where the sender's is: the jitter
            # buffer took its base from this stream's first timestamp.
            self._out_end = timestamp
        out = self.resampler.process(block, 1 / self.ratio)
        self._in_end = timestamp + block.shape[1]
        start, self._out_end = self._out_end, self._out_end + out.shape[1]
        if not out.shape[1]:
            return "stored"  # the resampler's first call fills its filter
        return self.jitter.insert(self.stream_id, start, out, arrival, measured)

    def _sender_frame(self, out_time: float) -> float:
        """The sender frame that became receiver-time frame ``out_time``."""
        return self._in_end - (self._out_end - out_time) * self.ratio

    def deadline(self, timestamp: int) -> int | None:
        """When sender frame ``timestamp`` must be decoded (see `JitterBuffer.deadline`)."""
        if self._in_end is None:
            return None
        out_time = self._out_end + (timestamp - self._in_end) / self.ratio
        return self.jitter.deadline(round(out_time))

    def steer(self) -> None:
        """Once per receiver cycle: set the ratio for what comes next."""
        jb, pl = self.jitter, self.jitter.playout
        read_end = pl.read_end
        if not jb.locked or self._in_end is None or read_end == self._cycle:
            return
        self._cycle = read_end
        # The next cycle reads from read_end and starts at read_end + offset.
        # Both from the one value the playout publishes last: reading its
        # clock as well could catch a cycle in between, off by a period.
        now = read_end + pl.offset
        read = self._sender_frame(jb.timestamp_at(read_end))
        if pl.offset != self._offset:
            if self.controller.locked:  # the jitter buffer moved the playout on purpose
                self.controller.retarget(now, read)
            self._offset = pl.offset
        self.ratio, _ = self.controller.step(now, read)

    def stats(self) -> dict:
        s = self.controller.stats
        return {"drift_ppm": s.drift_ppm, "ratio": s.ratio, "loop_error_frames": s.error,
                "loop_jumps": s.jumps}
