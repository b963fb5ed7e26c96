"""Opus codec round trips (SNR after the codec delay) and PLC continuity."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.codecs.opus import OpusDecoder, OpusEncoder
from jacknet.errors import JacknetError

RATE = 48000
DELAY = 120  # libopus's lookahead at 48 kHz: 2.5 ms


def music(channels: int, seconds: float = 1.0) -> np.ndarray:
    """Several tones plus a little noise per channel: music-like, not periodic."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(1)
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t)
                     + 0.2 * np.sin(2 * np.pi * 1375.3 * t + c)
                     + 0.02 * rng.standard_normal(len(t)) for c in range(channels)]).astype(np.float32)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))


def run(enc: OpusEncoder, dec: OpusDecoder, sig: np.ndarray, lose=()) -> np.ndarray:
    n, ch = enc.frames, sig.shape[0]
    packets = [enc.encode(sig[:, i:i + n]) for i in range(0, sig.shape[1] - n + 1, n)]
    blocks = []
    for k, p in enumerate(packets):
        blocks.append(dec.conceal(ch, n) if k in lose else dec.decode(p, ch, n))
    return np.concatenate(blocks, axis=1)


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("frame_ms", [2.5, 5, 10, 20])
def test_round_trip_snr(channels, frame_ms):
    sig = music(channels)
    out = run(OpusEncoder(channels, RATE, frame_ms), OpusDecoder(), sig)
    ref, got = sig[:, 4800:out.shape[1] - DELAY], out[:, 4800 + DELAY:]
    assert snr_db(ref, got) >= 18.0   # measured 22-27 dB at 96 kbit/s per channel


def test_plc_stays_bounded_and_continuous():
    sig = music(2)
    enc = OpusEncoder(2, RATE, 5)
    out = run(enc, OpusDecoder(), sig, lose={100})
    lost = slice(100 * enc.frames + DELAY - 10, 101 * enc.frames + DELAY + 10)
    assert np.abs(out[:, lost]).max() <= np.abs(sig).max()
    own_step = np.abs(np.diff(sig, axis=1)).max()
    assert np.abs(np.diff(out[:, lost], axis=1)).max() <= own_step


def test_a_foreign_payload_is_refused():
    with pytest.raises(ValueError):
        OpusDecoder().decode(b"\xff" * 3, 2, 240)


def test_missing_libopus_names_the_packages(monkeypatch):
    import pyogg
    monkeypatch.setattr(pyogg, "PYOGG_OPUS_AVAIL", False)
    with pytest.raises(JacknetError, match="libopus0 libopusfile0"):
        OpusEncoder(2)
