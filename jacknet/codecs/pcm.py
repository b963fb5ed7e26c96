"""Uncompressed PCM: float32 (exact) and int16 (clipped, optionally dithered).

Samples are little-endian and planar (all of channel 1, then channel 2 ...):
every machine that runs JACK today is little-endian, so neither side swaps.
"""
from __future__ import annotations

import math

import numpy as np

from jacknet.net.protocol import CODEC_FLOAT32, CODEC_INT16

_F32 = np.dtype("<f4")
_I16 = np.dtype("<i2")
_SCALE = 32768.0


def _check_size(payload: bytes, channels: int, frames: int, itemsize: int) -> None:
    want = channels * frames * itemsize
    if len(payload) != want:
        raise ValueError(f"payload is {len(payload)} bytes, {channels} x {frames} samples need {want}")


class Float32Encoder:
    codec_id = CODEC_FLOAT32
    frames = None

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}

    def encode(self, block: np.ndarray) -> bytes:
        return block.astype(_F32, copy=False).tobytes()


class _Concealing:
    """What a PCM decoder needs when a stream is decoded in order (for the
    resampler): a lost block continues the last sample with a 2 ms
    exponential decay, and the audio after it is cross-faded in over 2 ms,
    as the playout does for gaps.  Decoding that never concealed is untouched."""

    stateful = False
    FADE_SECONDS = 0.002

    def __init__(self) -> None:
        self._hold: np.ndarray | None = None
        self._fade = 0

    def _decay(self, rate: int, n: int) -> np.ndarray:
        return np.exp(-np.arange(1, n + 1) / (self.FADE_SECONDS * rate)).astype(np.float32)

    def conceal(self, channels: int, frames: int, rate: int) -> np.ndarray:
        hold = self._hold if self._hold is not None and len(self._hold) == channels \
            else np.zeros(channels, np.float32)
        out = hold[:, None] * self._decay(rate, frames)
        self._hold = out[:, -1].copy()
        self._fade = math.ceil(self.FADE_SECONDS * rate)
        return out

    def _after(self, block: np.ndarray, rate: int) -> np.ndarray:
        if self._fade and self._hold is not None and len(self._hold) == block.shape[0]:
            total = math.ceil(self.FADE_SECONDS * rate)
            n = min(self._fade, block.shape[1])
            done = total - self._fade
            gain = (np.arange(done + 1, done + n + 1) / total).astype(np.float32)
            tail = self._hold[:, None] * self._decay(rate, n)
            block[:, :n] = gain * block[:, :n] + (1 - gain) * tail
            self._hold = tail[:, -1]
            self._fade -= n
        if block.shape[1]:
            self._hold = block[:, -1].copy()
        return block

    def recover(self, following: bytes, channels: int, frames: int, rate: int) -> None:
        return None  # PCM has no forward error correction; copies are revived by the sequencer

    def reset(self) -> None:
        self._hold, self._fade = None, 0


class Float32Decoder(_Concealing):
    codec_id = CODEC_FLOAT32
    # float32 carries any level; +12 dBFS is beyond any mix's headroom, so
    # past it a sender (or a forged packet) is broken, not loud.
    ceiling = 4.0

    def validate(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> None:
        _check_size(payload, channels, frames, 4)

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        _check_size(payload, channels, frames, 4)
        block = np.frombuffer(payload, _F32).reshape(channels, frames).astype(np.float32)
        return self._after(block, rate)


class Int16Encoder:
    """Scales by 32768, rounds, clips to the int16 range (never wraps).

    ``stats["clipped"]`` counts clipped samples.  With ``dither`` a TPDF
    dither of +-1 LSB is added before rounding, which trades 1 LSB of
    noise for freedom from distortion on quiet signals.
    """

    codec_id = CODEC_INT16
    frames = None

    def __init__(self, dither: bool = False, seed: int | None = None) -> None:
        self.dither = dither
        self._rng = np.random.default_rng(seed)
        self.stats = {"clipped": 0}

    def encode(self, block: np.ndarray) -> bytes:
        # float32 is exact here: scaling by a power of two only moves the
        # exponent, and every int16 value is representable.
        scaled = block.astype(np.float32) * np.float32(_SCALE)
        if self.dither:
            scaled += (self._rng.random(scaled.shape, np.float32)
                       - self._rng.random(scaled.shape, np.float32))
        np.rint(scaled, out=scaled)
        if np.isnan(scaled.max()):  # a broken client's NaN: silence, not whatever int16 it casts to
            np.nan_to_num(scaled, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
        if scaled.max() > 32767 or scaled.min() < -32768:
            self.stats["clipped"] += int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
            np.clip(scaled, -32768, 32767, out=scaled)
        return scaled.astype(_I16).tobytes()


class Int16Decoder(_Concealing):
    codec_id = CODEC_INT16
    ceiling = 1.0

    def validate(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> None:
        _check_size(payload, channels, frames, 2)

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        _check_size(payload, channels, frames, 2)
        samples = np.frombuffer(payload, _I16).reshape(channels, frames)
        return self._after(samples.astype(np.float32) * np.float32(1.0 / _SCALE), rate)
