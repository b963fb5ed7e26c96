"""Codecs: one small interface for every way jacknet encodes audio.

An encoder turns a planar float32 block (channels x frames) into payload
bytes; a decoder turns payload bytes back into such a block.  ``stats``
holds counters a codec wants reported.  An encoder with a fixed ``frames``
(Opus) sets the packet size; one with ``frames = None`` (PCM) takes any.

A *stateful* decoder (Opus) must see packets in sequence order and be told
about each lost one (`StatefulDecoder.conceal`, or `recover` from the next
packet's in-band FEC); a stateless one (PCM) decodes whatever arrives.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from jacknet.errors import ConfigError
from jacknet.net.protocol import CODEC_FLOAT32, CODEC_INT16, CODEC_OPUS

if TYPE_CHECKING:
    from jacknet.codecs.opus import OpusSettings


class Encoder(Protocol):
    codec_id: int
    frames: int | None
    stats: dict[str, int]

    def encode(self, block: np.ndarray) -> bytes: ...


class Decoder(Protocol):
    codec_id: int
    stateful: bool
    ceiling: float
    """The largest magnitude its stream can honestly carry: the playout
    stores anything beyond it at it, counted (``limited_samples``)."""

    def decode(self, payload: bytes, channels: int, frames: int, rate: int) -> np.ndarray:
        """Raise ValueError when the payload cannot be this block's."""
        ...


class StatefulDecoder(Decoder, Protocol):
    def validate(self, payload: bytes, channels: int, frames: int, rate: int) -> None: ...

    def conceal(self, channels: int, frames: int, rate: int) -> np.ndarray: ...

    def recover(self, following: bytes, channels: int, frames: int,
                rate: int) -> tuple[np.ndarray, bool] | None: ...

    def reset(self) -> None: ...


NAMES = {"float32": CODEC_FLOAT32, "int16": CODEC_INT16, "opus": CODEC_OPUS}


def make_encoder(name: str, channels: int, rate: int, *, dither: bool = False,
                 opus: "OpusSettings | None" = None) -> Encoder:
    """The encoder for ``--codec name``; raises ConfigError for what it cannot do."""
    from jacknet.codecs import pcm
    if name == "float32":
        return pcm.Float32Encoder()
    if name == "int16":
        return pcm.Int16Encoder(dither=dither)
    if name == "opus":
        from jacknet.codecs.opus import OpusEncoder, OpusSettings
        return OpusEncoder(channels, rate, opus or OpusSettings())
    raise ConfigError(f"unknown codec {name!r}; choose one of: {', '.join(NAMES)}")


def make_decoder(codec_id: int) -> Decoder:
    from jacknet.codecs import pcm
    if codec_id == CODEC_FLOAT32:
        return pcm.Float32Decoder()
    if codec_id == CODEC_INT16:
        return pcm.Int16Decoder()
    if codec_id == CODEC_OPUS:
        from jacknet.codecs.opus import OpusDecoder
        return OpusDecoder()
    raise ValueError(f"no decoder for codec {codec_id}")
