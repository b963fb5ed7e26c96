"""Codecs: one small interface for every way jacknet encodes audio.

An encoder turns a planar float32 block (channels x frames) into payload
bytes; a decoder turns payload bytes back into such a block.  Encoders may
keep state (Opus does); ``stats`` holds counters a codec wants reported.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from jacknet.errors import ConfigError
from jacknet.protocol import CODEC_FLOAT32, CODEC_INT16


class Encoder(Protocol):
    codec_id: int
    stats: dict[str, int]

    def encode(self, block: np.ndarray) -> bytes: ...


class Decoder(Protocol):
    codec_id: int

    def decode(self, payload: bytes, channels: int, frames: int) -> np.ndarray:
        """Raise ValueError when the payload cannot be this block's."""
        ...


NAMES = {"float32": CODEC_FLOAT32, "int16": CODEC_INT16}


def make_encoder(name: str, *, dither: bool = False) -> Encoder:
    from jacknet.codecs import pcm
    if name == "float32":
        return pcm.Float32Encoder()
    if name == "int16":
        return pcm.Int16Encoder(dither=dither)
    raise ConfigError(f"unknown codec {name!r}; choose one of: {', '.join(NAMES)}")


def make_decoder(codec_id: int) -> Decoder:
    from jacknet.codecs import pcm
    if codec_id == CODEC_FLOAT32:
        return pcm.Float32Decoder()
    if codec_id == CODEC_INT16:
        return pcm.Int16Decoder()
    raise ValueError(f"no decoder for codec {codec_id}")
