"""Opus through PyOgg's low-level libopus bindings (``pyogg.opus``).

One multistream encoder carries all channels: pairs are coupled streams
(stereo coding), an odd last channel a mono stream, so the packet is one
blob however many channels there are.  The receiver learns everything it
needs (rate, channels, frame size) from the packet header.
"""
from __future__ import annotations

import ctypes

import numpy as np

from jacknet.errors import ConfigError, JacknetError
from jacknet.protocol import CODEC_OPUS

RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = (2.5, 5.0, 10.0, 20.0)
APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
_SET_BITRATE, _SET_COMPLEXITY, _SET_INBAND_FEC, _SET_PACKET_LOSS_PERC = 4002, 4010, 4012, 4014
_MAX_STREAM_BYTES = 1275  # libopus's largest packet per stream


def _libopus():
    try:
        import pyogg
        from pyogg import opus
    except ImportError:
        raise JacknetError("Opus needs the PyOgg package: pip install PyOgg") from None
    if not getattr(pyogg, "PYOGG_OPUS_AVAIL", False):
        # PyOgg binds libopus only once it has found libopusfile as well.
        raise JacknetError("Opus needs libopus: apt-get install libopus0 libopusfile0")
    return opus


def _layout(channels: int) -> tuple[int, int, ctypes.Array]:
    coupled = channels // 2
    return channels - coupled, coupled, (ctypes.c_ubyte * channels)(*range(channels))


def frame_size(rate: int, frame_ms: float) -> int:
    """Samples per channel in one Opus frame; refuses what Opus cannot do."""
    if rate not in RATES:
        raise ConfigError(f"Opus runs at {', '.join(str(r) for r in RATES)} Hz, not {rate} Hz "
                          "(resampling comes later)")
    if frame_ms not in FRAME_MS:
        raise ConfigError(f"--opus-frame must be one of 2.5, 5, 10, 20 ms, not {frame_ms}")
    return int(rate * frame_ms / 1000)


def _check(result: int, what: str) -> int:
    if result < 0:
        raise RuntimeError(f"libopus {what} failed with error {result}")
    return result


class OpusEncoder:
    """Encodes blocks of exactly one Opus frame (channels x frame_size).

    Parameters
    ----------
    bitrate : int
        Bits per second *per channel*.
    fec, expected_loss : bool, int
        In-band FEC; only SILK and hybrid modes (voip application, frames of
        10 ms and more, lower bitrates) have it, CELT-only modes ignore it.
    """

    codec_id = CODEC_OPUS

    def __init__(self, channels: int, rate: int = 48000, frame_ms: float = 5.0,
                 bitrate: int = 96000, complexity: int = 10, application: str = "lowdelay",
                 fec: bool = False, expected_loss: int = 0) -> None:
        self._opus = _libopus()
        self.frames = frame_size(rate, frame_ms)
        self.channels = channels
        streams, coupled, mapping = _layout(channels)
        err = ctypes.c_int()
        self._enc = self._opus.opus_multistream_encoder_create(
            rate, channels, streams, coupled, mapping, APPLICATIONS[application], ctypes.byref(err))
        _check(err.value, "encoder create")
        for request, value in ((_SET_BITRATE, bitrate * channels), (_SET_COMPLEXITY, complexity),
                               (_SET_INBAND_FEC, int(fec)), (_SET_PACKET_LOSS_PERC, expected_loss)):
            _check(self._opus.opus_multistream_encoder_ctl(self._enc, request, ctypes.c_int(value)),
                   f"encoder ctl {request}")
        self._pcm = np.zeros((self.frames, channels), np.float32)  # interleaved
        self._out = (ctypes.c_ubyte * (_MAX_STREAM_BYTES * streams))()
        self.stats: dict[str, int] = {}

    def encode(self, block: np.ndarray) -> bytes:
        if block.shape != (self.channels, self.frames):
            raise ValueError(f"Opus encodes blocks of {self.channels} x {self.frames}, got {block.shape}")
        self._pcm[:] = block.T
        pcm = (ctypes.c_float * self._pcm.size).from_buffer(self._pcm)
        n = _check(self._opus.opus_multistream_encode_float(
            self._enc, pcm, self.frames, self._out, len(self._out)), "encode")
        return bytes(self._out[:n])

    def __del__(self) -> None:
        if getattr(self, "_enc", None):
            self._opus.opus_multistream_encoder_destroy(self._enc)


class OpusDecoder:
    """Decodes packets and conceals lost frames (the decoder's PLC)."""

    codec_id = CODEC_OPUS

    def __init__(self) -> None:
        self._opus = _libopus()
        self._dec = None
        self._key: tuple[int, int] | None = None

    def _decoder(self, channels: int, rate: int):
        if self._key != (channels, rate):
            self._release()
            streams, coupled, mapping = _layout(channels)
            err = ctypes.c_int()
            self._dec = self._opus.opus_multistream_decoder_create(
                rate, channels, streams, coupled, mapping, ctypes.byref(err))
            _check(err.value, "decoder create")
            self._key = (channels, rate)
        return self._dec

    def _run(self, payload: bytes | None, channels: int, frames: int, rate: int) -> np.ndarray:
        dec = self._decoder(channels, rate)
        pcm = np.zeros((frames, channels), np.float32)
        out = (ctypes.c_float * pcm.size).from_buffer(pcm)
        data = (ctypes.c_ubyte * len(payload)).from_buffer_copy(payload) if payload else None
        n = self._opus.opus_multistream_decode_float(dec, data, len(payload) if payload else 0,
                                                     out, frames, 0)
        if n < 0:
            raise ValueError(f"not an Opus packet for {channels} channel(s) (libopus error {n})")
        if n != frames:
            raise ValueError(f"Opus packet holds {n} samples per channel, the header says {frames}")
        return np.ascontiguousarray(pcm.T)

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        return self._run(payload, channels, frames, rate)

    def conceal(self, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        """Packet loss concealment: the decoder's guess for a lost frame."""
        return self._run(None, channels, frames, rate)

    def _release(self) -> None:
        if self._dec:
            self._opus.opus_multistream_decoder_destroy(self._dec)
            self._dec = None

    def __del__(self) -> None:
        self._release()
