"""Opus codec: round trips (SNR after the codec delay), PLC continuity,
in-band FEC against PLC, and refusal of what is not an Opus packet."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.codecs.opus import OpusDecoder, OpusEncoder, OpusSettings, packet_samples
from jacknet.errors import ConfigError, JacknetError

RATE = 48000
DELAY = 120  # libopus's lookahead at 48 kHz: 2.5 ms


def music(channels: int, seconds: float = 1.0) -> np.ndarray:
    """Several tones plus a little noise per channel: music-like, not periodic."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(1)
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t)
                     + 0.2 * np.sin(2 * np.pi * 1375.3 * t + c)
                     + 0.02 * rng.standard_normal(len(t)) for c in range(channels)]).astype(np.float32)


def voice(channels: int, seconds: float = 2.0) -> np.ndarray:
    """A gliding, formant-shaped pulse train, loud and soft three times a
    second: what Opus's SILK layer takes for speech (and codes FEC for)."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    harmonics = sum(np.sin(k * phase) / k * np.exp(-((k * f0 - 700) / 600) ** 2) for k in range(1, 30))
    one = 0.25 * harmonics * (1 + np.sin(2 * np.pi * 3 * t))
    return np.stack([one] * channels).astype(np.float32)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))


def encode_all(enc: OpusEncoder, sig: np.ndarray) -> list[bytes]:
    n = enc.frames
    return [enc.encode(sig[:, i:i + n]) for i in range(0, sig.shape[1] - n + 1, n)]


def decode_all(packets: list[bytes], channels: int, frames: int, lose=(), fec=False):
    dec, blocks, recovered = OpusDecoder(), [], 0
    for k, p in enumerate(packets):
        if k not in lose:
            blocks.append(dec.decode(p, channels, frames))
            continue
        result = dec.recover(packets[k + 1], channels, frames) if fec else None
        recovered += bool(result and result[1])
        blocks.append(result[0] if result else dec.conceal(channels, frames))
    return np.concatenate(blocks, axis=1), recovered


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("frame_ms", [2.5, 5, 10, 20])
def test_round_trip_snr(channels, frame_ms):
    sig = music(channels)
    enc = OpusEncoder(channels, RATE, OpusSettings(frame_ms))
    out, _ = decode_all(encode_all(enc, sig), channels, enc.frames)
    ref, got = sig[:, 4800:out.shape[1] - DELAY], out[:, 4800 + DELAY:]
    assert snr_db(ref, got) >= 18.0   # measured 22-27 dB at 96 kbit/s per channel


def test_plc_stays_bounded_and_continuous():
    sig = music(2)
    enc = OpusEncoder(2, RATE)
    out, _ = decode_all(encode_all(enc, sig), 2, enc.frames, lose={100})
    lost = slice(100 * enc.frames + DELAY - 10, 101 * enc.frames + DELAY + 10)
    assert np.abs(out[:, lost]).max() <= np.abs(sig).max()
    own_step = np.abs(np.diff(sig, axis=1)).max()
    assert np.abs(np.diff(out[:, lost], axis=1)).max() <= own_step


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frame_ms, kbps", [(20, 24), (10, 24)])
def test_fec_recovers_lost_packets_better_than_plc(channels, frame_ms, kbps):
    sig = voice(channels)
    settings = OpusSettings(frame_ms, kbps * 1000, application="voip", fec=True, expected_loss=20)
    enc = OpusEncoder(channels, RATE, settings)
    packets, n = encode_all(enc, sig), enc.frames
    lose = set(range(7, len(packets) - 1, 11))  # never two in a row
    clean, _ = decode_all(packets, channels, n)
    plc, _ = decode_all(packets, channels, n, lose)
    fec, recovered = decode_all(packets, channels, n, lose, fec=True)
    # Each lost frame and the one decoded after it, against the loss-free decode.
    spans = np.concatenate([np.arange(k * n, (k + 2) * n) for k in sorted(lose)])
    fec_db, plc_db = snr_db(clean[:, spans], fec[:, spans]), snr_db(clean[:, spans], plc[:, spans])
    # SILK codes FEC for frames its VAD hears as voice: most, not all.  (At 16
    # kbit/s mono libopus 1.3 codes none at all: it cannot afford it.)
    assert recovered >= len(lose) // 2, (recovered, len(lose))
    assert fec_db >= plc_db + 3, (fec_db, plc_db)


def test_celt_only_packets_have_no_fec_to_recover():
    enc = OpusEncoder(2, RATE, OpusSettings(5, fec=True, expected_loss=20))
    packets = encode_all(enc, music(2, 0.2))
    assert packets[5][0] >> 3 >= 16  # CELT-only TOC
    assert OpusDecoder().recover(packets[5], 2, enc.frames) is None


def test_packet_samples_reads_the_toc():
    enc = OpusEncoder(2, RATE, OpusSettings(20, 24000, application="voip"))
    for p in encode_all(enc, voice(2, 0.2)):
        assert packet_samples(p, RATE) == 960
    assert packet_samples(b"", RATE) == 0


def test_a_foreign_payload_is_refused():
    with pytest.raises(ValueError):
        OpusDecoder().decode(b"\xff" * 3, 2, 240)
    with pytest.raises(ValueError):
        OpusDecoder().validate(bytes(200), 2, 240)  # TOC 0: a 10 ms SILK frame, not 5 ms


def test_rates_opus_cannot_take_are_refused():
    with pytest.raises(ConfigError, match="44100"):
        OpusEncoder(2, 44100)


def test_missing_libopus_names_the_packages(monkeypatch):
    import pyogg
    monkeypatch.setattr(pyogg, "PYOGG_OPUS_AVAIL", False)
    with pytest.raises(JacknetError, match="libopus0 libopusfile0"):
        OpusEncoder(2)
