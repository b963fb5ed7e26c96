"""Opus through PyOgg's low-level libopus bindings (``pyogg.opus``).

One multistream encoder carries all channels: pairs are coupled streams
(stereo coding), an odd last channel a mono stream, so the packet is one
blob however many channels there are.  The receiver learns everything it
needs (rate, channels, frame size) from the packet header.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from jacknet.errors import ConfigError, JacknetError
from jacknet.net.protocol import CODEC_OPUS


@dataclass(frozen=True)
class OpusSettings:
    """The sender's Opus options (the receiver learns what it needs from packets).

    ``bitrate`` is bits per second *per channel*.  In-band FEC (``fec`` with
    ``expected_loss`` in percent) exists only in SILK and hybrid modes: the
    voip application, frames of 10 ms or more, about 40 kbit/s per channel or
    less, and only while the encoder hears voice; CELT-only modes ignore it.
    """

    frame_ms: float = 5.0
    bitrate: int = 96000
    complexity: int = 7
    application: str = "lowdelay"
    fec: bool = False
    expected_loss: int = 0

RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = (2.5, 5.0, 10.0, 20.0)
APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
_SET_BITRATE, _SET_COMPLEXITY, _SET_INBAND_FEC, _SET_PACKET_LOSS_PERC = 4002, 4010, 4012, 4014
_RESET_STATE = 4028
_CELT_ONLY_CONFIG = 16  # TOC configs 16..31 are CELT-only: no SILK layer, so no in-band FEC
_MAX_STREAM_BYTES = 1275  # libopus's largest packet per stream
# Told to expect this much loss, CELT leans less on the frames before
# (coarse energy coded more often intra, a weaker pitch pre-filter), so a
# decoder that lost or concealed frames no longer mis-scales the ones that
# follow: at 2.5 ms frames and a few % loss that mis-scaling was output at
# 3 to 20 times the input's peak; with it, at most 1.4 times, for at most
# 0.4 dB of SNR on a clean path (docs/codecs.md).  Without FEC the setting does nothing else;
# with FEC it is the FEC's own budget, so the user's expected loss stands.
LOSS_ROBUST_PERCENT = 50


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
        raise ConfigError(f"Opus runs at {', '.join(str(r) for r in RATES)} Hz, not at "
                          f"{rate} Hz: convert the audio first (the sender does, to 48000)")
    if frame_ms not in FRAME_MS:
        raise ConfigError(f"--opus-frame must be one of 2.5, 5, 10, 20 ms, not {frame_ms}")
    return int(rate * frame_ms / 1000)


def packet_samples(packet: bytes, rate: int) -> int:
    """Samples per channel in an Opus packet, from its TOC byte (RFC 6716 3.1);
    0 when the TOC does not describe a well-formed packet."""
    if not packet:
        return 0
    config, code = packet[0] >> 3, packet[0] & 3
    if config < 12:      # SILK-only: 10, 20, 40, 60 ms
        ms = (10, 20, 40, 60)[config & 3]
    elif config < 16:    # hybrid: 10, 20 ms
        ms = (10, 20)[config & 1]
    else:                # CELT-only: 2.5, 5, 10, 20 ms
        ms = (2.5, 5, 10, 20)[config & 3]
    if code == 3:
        if len(packet) < 2:
            return 0
        count = packet[1] & 0x3F
    else:
        count = 1 if code == 0 else 2
    return int(count * ms * rate / 1000)


def _check(result: int, what: str) -> int:
    if result < 0:
        raise RuntimeError(f"libopus {what} failed with error {result}")
    return result


class OpusEncoder:
    """Encodes blocks of exactly one Opus frame (channels x `frames`)."""

    codec_id = CODEC_OPUS

    def __init__(self, channels: int, rate: int = 48000,
                 settings: OpusSettings = OpusSettings()) -> None:
        self._opus = _libopus()
        self.frames = frame_size(rate, settings.frame_ms)
        self.channels = channels
        streams, coupled, mapping = _layout(channels)
        err = ctypes.c_int()
        self._enc = self._opus.opus_multistream_encoder_create(
            rate, channels, streams, coupled, mapping, APPLICATIONS[settings.application],
            ctypes.byref(err))
        _check(err.value, "encoder create")
        for request, value in ((_SET_BITRATE, settings.bitrate * channels),
                               (_SET_COMPLEXITY, settings.complexity),
                               (_SET_INBAND_FEC, int(settings.fec)),
                               (_SET_PACKET_LOSS_PERC, settings.expected_loss if settings.fec
                                else max(settings.expected_loss, LOSS_ROBUST_PERCENT))):
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
    """Decodes packets in sequence order; revives a lost frame from the next
    packet's in-band FEC where it has some, else conceals it (the decoder's PLC)."""

    codec_id = CODEC_OPUS
    stateful = True
    ceiling = 1.0  # what was sent was at most full scale; beyond it is the codec's overshoot

    def __init__(self) -> None:
        self._opus = _libopus()
        self._dec = None
        self._scratch = None
        self._size = 0
        self._key: tuple[int, int] | None = None

    def _decoder(self, channels: int, rate: int):
        if self._key != (channels, rate):
            self._release()
            streams, coupled, mapping = _layout(channels)
            err = ctypes.c_int()
            self._dec = self._opus.opus_multistream_decoder_create(
                rate, channels, streams, coupled, mapping, ctypes.byref(err))
            _check(err.value, "decoder create")
            self._size = self._opus.opus_multistream_decoder_get_size(streams, coupled)
            self._scratch = ctypes.create_string_buffer(self._size)
            self._key = (channels, rate)
        return self._dec

    def _run(self, dec, payload: bytes | None, channels: int, frames: int, fec: int = 0) -> np.ndarray:
        pcm = np.zeros((frames, channels), np.float32)
        out = (ctypes.c_float * pcm.size).from_buffer(pcm)
        data = (ctypes.c_ubyte * len(payload)).from_buffer_copy(payload) if payload else None
        n = self._opus.opus_multistream_decode_float(dec, data, len(payload) if payload else 0,
                                                     out, frames, fec)
        if n < 0:
            raise ValueError(f"not an Opus packet for {channels} channel(s) (libopus error {n})")
        if n != frames:
            raise ValueError(f"Opus packet holds {n} samples per channel, the header says {frames}")
        return np.ascontiguousarray(pcm.T)

    def validate(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> None:
        """Refuse (ValueError) a payload that cannot be an Opus packet of
        ``frames`` samples, before it takes a place in the decoding order."""
        if rate not in RATES:
            raise ValueError(f"Opus runs at {', '.join(str(r) for r in RATES)} Hz, not at {rate} Hz")
        if packet_samples(payload, rate) != frames:
            raise ValueError(f"not an Opus packet of {frames} samples per channel")

    def decode(self, payload: bytes, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        return self._run(self._decoder(channels, rate), payload, channels, frames)

    def conceal(self, channels: int, frames: int, rate: int = 48000) -> np.ndarray:
        """Packet loss concealment: the decoder's guess for a lost frame."""
        return self._run(self._decoder(channels, rate), None, channels, frames)

    def recover(self, following: bytes, channels: int, frames: int,
                rate: int = 48000) -> tuple[np.ndarray, bool] | None:
        """The lost frame before ``following``, from that packet's in-band FEC.

        Returns (block, True) when the packet had FEC data, (block, False)
        when it had none and the decoder concealed instead, or None, having
        done nothing, when ``following`` is CELT-only (no FEC possible).

        libopus 1.3 cannot say whether a packet holds FEC data, and decoding
        FEC from a packet without it silently runs PLC.  So the decoder's state
        is copied first (libopus states hold no pointers into themselves) and
        the copy runs PLC: identical output means there was no FEC.
        """
        if not following or following[0] >> 3 >= _CELT_ONLY_CONFIG:
            return None
        dec = self._decoder(channels, rate)
        ctypes.memmove(self._scratch, dec, self._size)
        try:
            block = self._run(dec, following, channels, frames, fec=1)
        except ValueError:
            ctypes.memmove(dec, self._scratch, self._size)
            return None
        plc = self._run(ctypes.cast(self._scratch, type(dec)), None, channels, frames)
        return block, not np.array_equal(block, plc)

    def reset(self) -> None:
        """Forget the past (after a gap too long to conceal)."""
        if self._dec:
            self._opus.opus_multistream_decoder_ctl(self._dec, _RESET_STATE)

    def _release(self) -> None:
        if self._dec:
            self._opus.opus_multistream_decoder_destroy(self._dec)
            self._dec = None

    def __del__(self) -> None:
        self._release()
