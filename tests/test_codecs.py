"""float32 is exact; int16 is within quantisation, clips (never wraps) and counts."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.codecs import make_decoder, make_encoder
from jacknet.errors import ConfigError

LSB = 1 / 32768
rng = np.random.default_rng(0)
BLOCK = (rng.standard_normal((6, 256)) * 0.3).astype(np.float32)


def round_trip(name, block, **kw):
    enc = make_encoder(name, block.shape[0], 48000, **kw)
    out = make_decoder(enc.codec_id).decode(enc.encode(block), *block.shape)
    return enc, out


def test_float32_is_bit_exact():
    block = np.concatenate([BLOCK, [[np.float32(1e-38), -0.0, 3.5] + [0] * 253]]).astype(np.float32)
    _, out = round_trip("float32", block)
    assert out.dtype == np.float32 and np.array_equal(out.view(np.uint32), block.view(np.uint32))


def test_int16_within_half_an_lsb():
    enc, out = round_trip("int16", np.clip(BLOCK, -0.99, 0.99))
    assert np.max(np.abs(out - np.clip(BLOCK, -0.99, 0.99))) <= LSB / 2 + 1e-9
    assert enc.stats["clipped"] == 0


def test_int16_clips_and_counts_never_wraps():
    block = np.array([[1.5, -1.5, 1.0, -1.0, 0.999]], np.float32)
    enc, out = round_trip("int16", block)
    assert out[0, 0] == pytest.approx(32767 / 32768) and out[0, 1] == -1.0
    assert out[0, 2] == pytest.approx(32767 / 32768)  # +1.0 does not fit either
    assert enc.stats["clipped"] == 2 + 1


def test_int16_dither_is_tpdf_within_one_and_a_half_lsb():
    quiet = np.full((1, 20000), 0.3 * LSB, np.float32)
    enc, out = round_trip("int16", quiet, dither=True)
    err = out - quiet
    assert np.max(np.abs(err)) <= 1.5 * LSB + 1e-9
    assert abs(float(err.mean())) < 0.05 * LSB      # unbiased, unlike plain rounding
    _, plain = round_trip("int16", quiet)
    assert not plain.any()                          # without dither the signal vanishes


@pytest.mark.parametrize("name", ["float32", "int16"])
def test_wrong_payload_size_is_refused(name):
    enc = make_encoder(name, 2, 48000)
    payload = enc.encode(BLOCK)
    with pytest.raises(ValueError):
        make_decoder(enc.codec_id).decode(payload[:-2], *BLOCK.shape)


def test_unknown_codec_is_a_config_error():
    with pytest.raises(ConfigError, match="float32"):
        make_encoder("mp3", 2, 48000)
