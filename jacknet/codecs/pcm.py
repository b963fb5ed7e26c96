"""Uncompressed PCM: float32 (exact) and int16 (clipped, optionally dithered).

Samples are little-endian and planar (all of channel 1, then channel 2 ...):
every machine that runs JACK today is little-endian, so neither side swaps.
"""
from __future__ import annotations

import numpy as np

from jacknet.protocol import CODEC_FLOAT32, CODEC_INT16

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


class Float32Decoder:
    codec_id = CODEC_FLOAT32
    stateful = False

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 0) -> np.ndarray:
        _check_size(payload, channels, frames, 4)
        return np.frombuffer(payload, _F32).reshape(channels, frames).astype(np.float32)


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
        if scaled.max() > 32767 or scaled.min() < -32768:
            self.stats["clipped"] += int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
            np.clip(scaled, -32768, 32767, out=scaled)
        return scaled.astype(_I16).tobytes()


class Int16Decoder:
    codec_id = CODEC_INT16
    stateful = False

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 0) -> np.ndarray:
        _check_size(payload, channels, frames, 2)
        samples = np.frombuffer(payload, _I16).reshape(channels, frames)
        return samples.astype(np.float32) * np.float32(1.0 / _SCALE)
