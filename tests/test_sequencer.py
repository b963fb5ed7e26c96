"""The sequencer on plain arrays: redundancy revives every single loss
(bit-exact for PCM, frame-exact for Opus), Opus decodes in order, conceals
at the deadline, takes FEC where it exists, and refuses garbage."""
from __future__ import annotations

import numpy as np
import pytest

from jacknet.codecs import make_decoder, make_encoder
from jacknet.codecs.opus import OpusSettings
from jacknet.net.protocol import CODEC_FLOAT32, CODEC_INT16, CODEC_OPUS
from jacknet.recv.outcome import Outcome
from jacknet.recv.sequencer import Sequencer
from test_opus import music, voice

RATE = 48000


class Sink:
    """Stands in for the jitter buffer: keeps what is placed, by timestamp."""

    def __init__(self) -> None:
        self.blocks: dict[int, np.ndarray] = {}
        self.measured: list[bool] = []
        self.outcomes: list[Outcome] = []  # what `Sequencer.push` returned, packet by packet

    def __call__(self, timestamp, block, arrival, measured) -> Outcome:
        if timestamp in self.blocks:
            return Outcome.DUPLICATE
        self.blocks[timestamp] = block
        self.measured.append(measured)
        return Outcome.STORED

    def audio(self) -> np.ndarray:
        return np.concatenate([self.blocks[t] for t in sorted(self.blocks)], axis=1)


def packets(codec: str, sig: np.ndarray, frames: int | None = None, **opus) -> tuple[list[bytes], int]:
    enc = make_encoder(codec, sig.shape[0], RATE, opus=OpusSettings(**opus))
    n = enc.frames or frames
    return [enc.encode(sig[:, i:i + n]) for i in range(0, sig.shape[1] - n + 1, n)], n


def run(codec_id: int, payloads: list[bytes], n: int, channels: int, order=None, lose=(),
        redundancy: int = 0, deadline_of=lambda ts: None) -> tuple[Sink, Sequencer]:
    """Push packets (in ``order``, minus ``lose``), each with copies of the
    ``redundancy`` before it, expiring deadlines as a receiver would."""
    sink = Sink()
    seq = Sequencer(make_decoder(codec_id), channels, n, RATE, sink)
    for k in order if order is not None else range(len(payloads)):
        if k in lose:
            continue
        copies = [payloads[k - i] for i in range(1, redundancy + 1) if k - i >= 0]
        sink.outcomes.append(seq.push(k, k * n, payloads[k], copies, arrival=k * n))
        seq.expire(k * n, deadline_of)
    return sink, seq


LOSE = set(range(5, 95, 7))  # never two in a row


@pytest.mark.parametrize("codec, codec_id", [("float32", CODEC_FLOAT32), ("int16", CODEC_INT16)])
def test_redundancy_revives_every_single_loss_bit_exact_for_pcm(codec, codec_id):
    sig = music(2, 0.5)
    payloads, n = packets(codec, sig, frames=128)
    clean, _ = run(codec_id, payloads, n, 2)
    revived, seq = run(codec_id, payloads, n, 2, lose=LOSE, redundancy=1)
    assert seq.stats.revived == len(LOSE)
    assert np.array_equal(revived.audio(), clean.audio())


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_redundancy_revives_every_single_loss_frame_exact_for_opus(channels):
    payloads, n = packets("opus", music(channels, 0.5))
    clean, _ = run(CODEC_OPUS, payloads, n, channels)
    revived, seq = run(CODEC_OPUS, payloads, n, channels, lose=LOSE, redundancy=1)
    assert seq.stats.revived == len(LOSE) and seq.stats.plc_concealed == 0
    assert np.array_equal(revived.audio(), clean.audio())


def test_opus_decodes_in_sequence_order_whatever_the_arrival_order():
    payloads, n = packets("opus", music(2, 0.3))
    order = list(range(len(payloads)))
    for i in range(3, len(order) - 1, 5):
        order[i], order[i + 1] = order[i + 1], order[i]
    clean, _ = run(CODEC_OPUS, payloads, n, 2)
    swapped, seq = run(CODEC_OPUS, payloads, n, 2, order, deadline_of=lambda ts: 10**12)
    assert seq.stats.plc_concealed == 0 and "late" not in swapped.outcomes
    assert np.array_equal(swapped.audio(), clean.audio())
    # Only a packet decoded as it arrived feeds the jitter buffer's measurements.
    assert swapped.measured.count(False) == 2 * len(range(3, len(order) - 1, 5))


def test_a_loss_is_concealed_at_its_deadline_then_the_stream_goes_on():
    payloads, n = packets("opus", music(2, 0.3))
    sink = Sink()
    seq = Sequencer(make_decoder(CODEC_OPUS), 2, n, RATE, sink)
    deadline_of = lambda ts: ts + 500  # noqa: E731
    for k in range(10):
        seq.push(k, k * n, payloads[k], [], k * n)
    assert seq.next_deadline(deadline_of) == 10 * n + 500
    seq.expire(10 * n + 499, deadline_of)
    assert 10 * n not in sink.blocks
    seq.expire(10 * n + 500, deadline_of)  # packet 10 never came: PLC fills it in time
    assert seq.stats.plc_concealed == 1 and 10 * n in sink.blocks
    assert seq.push(10, 10 * n, payloads[10], [], 11 * n) == "late"
    assert seq.push(11, 11 * n, payloads[11], [], 11 * n) == "stored"
    out = sink.audio()
    assert np.abs(np.diff(out, axis=1)).max() <= np.abs(np.diff(music(2, 0.3), axis=1)).max()


def test_a_silent_sender_is_concealed_for_a_while_only():
    payloads, n = packets("opus", music(1, 0.1))
    sink = Sink()
    seq = Sequencer(make_decoder(CODEC_OPUS), 1, n, RATE, sink)
    seq.push(0, 0, payloads[0], [], 0)
    for now in range(0, RATE, n):  # a whole second without packets
        seq.expire(now, lambda ts: ts)
    assert seq.stats.plc_concealed == round(0.1 * RATE / n)  # 100 ms of PLC, then the fade's turn
    assert seq.next_deadline(lambda ts: ts) is None


def test_a_long_gap_restarts_the_decoder_at_the_next_packet():
    payloads, n = packets("opus", music(1, 1.0))
    sink, seq = run(CODEC_OPUS, payloads, n, 1, lose=set(range(10, 100)))
    assert seq.stats.decoder_restarts == 1 and seq.stats.plc_concealed == 0
    assert 100 * n in sink.blocks and 50 * n not in sink.blocks


def test_fec_revives_from_the_next_packet_when_it_has_some():
    sig = voice(2, 1.0)
    payloads, n = packets("opus", sig, frame_ms=20, bitrate=24000, application="voip",
                          fec=True, expected_loss=20)
    _, seq = run(CODEC_OPUS, payloads, n, 2, lose={20, 30})
    assert seq.stats.fec_recovered == 2 and seq.stats.plc_concealed == 0


def test_garbage_and_duplicates_take_no_place_in_the_order():
    payloads, n = packets("opus", music(2, 0.2))
    sink = Sink()
    seq = Sequencer(make_decoder(CODEC_OPUS), 2, n, RATE, sink)
    seq.push(0, 0, payloads[0], [], 0)
    with pytest.raises(ValueError):
        seq.push(1, n, bytes(50), [], n)    # not an Opus packet of n samples
    assert seq.push(1, n, payloads[1], [], n) == "stored"
    assert seq.push(1, n, payloads[1], [], n) == "duplicate"
    assert len(sink.blocks) == 2


@pytest.mark.parametrize("codec, codec_id", [("float32", CODEC_FLOAT32), ("int16", CODEC_INT16)])
def test_ordered_pcm_conceals_without_a_step(codec, codec_id):
    """Decoded in order (for the resampler), a lost PCM packet fades out and
    the audio after it fades back in; every other packet is untouched."""
    sig = music(2, 0.3)
    payloads, n = packets(codec, sig, frames=128)
    sink = Sink()
    seq = Sequencer(make_decoder(codec_id), 2, n, RATE, sink, ordered=True)
    for k in range(len(payloads)):
        if k != 40:
            seq.push(k, k * n, payloads[k], [], k * n)
        seq.expire(k * n, lambda ts: ts)  # a frame is due as soon as the next one arrives
    out, clean = sink.audio(), run(codec_id, payloads, n, 2)[0].audio()
    assert seq.stats.plc_concealed == 1
    own_step = np.abs(np.diff(clean, axis=1)).max()
    assert np.abs(np.diff(out, axis=1)).max() <= own_step
    assert np.array_equal(out[:, :40 * n], clean[:, :40 * n])
    assert np.array_equal(out[:, 41 * n + 96:], clean[:, 41 * n + 96:])  # after the 2 ms fade-in
