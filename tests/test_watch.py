"""What a sender says of its JACK transport (sync.watch) and what a receiver
makes of it (sync.heard), packet by packet."""
from __future__ import annotations

import numpy as np

from jacknet.codecs.pcm import Float32Encoder
from jacknet.net import protocol
from jacknet.net.protocol import TRANSPORT_NONE, PositionBlock
from jacknet.packetizer import Packetizer
from jacknet.sync.heard import HeardTransport
from jacknet.sync.watch import POSITION_AFTER_CHANGE, TransportWatch

RATE = 48000
TL = PositionBlock(RATE, 0)


def said(watch: TransportWatch, cycles: list[tuple[int, int]], frames: int = 128):
    return [watch.packet(i * frames, state, frame, lambda: TL)
            for i, (state, frame) in enumerate(cycles)]


def test_the_epoch_counts_starts_stops_and_locates_and_nothing_else():
    watch = TransportWatch(RATE, RATE)
    rolling = [(1, 1000 + 128 * k) for k in range(5)]
    out = said(watch, [(0, 0), (0, 0), (0, 1000), *rolling, (0, 1640), (0, 1640)])
    epochs = [s.epoch for s in out]
    assert epochs == [0, 0, 1, 2, 2, 2, 2, 2, 3, 3]
    assert watch.changes == 3
    # A locate while rolling is a change too; rolling on is not.
    watch2 = TransportWatch(RATE, RATE)
    out = said(watch2, [(1, 0), (1, 128), (1, 99999), (1, 99999 + 128)])
    assert [s.epoch for s in out] == [0, 0, 1, 1]


def test_where_the_rates_differ_a_rolling_transport_is_no_change():
    # Opus at 48 kHz from a 44.1 kHz server: timestamps at 48k, frames at 44.1k.
    watch = TransportWatch(48000, 44100)
    out = [watch.packet(k * 240, 1, round(k * 240 * 44100 / 48000), lambda: TL) for k in range(200)]
    assert {s.epoch for s in out} == {0}


def test_a_position_block_goes_after_each_change_and_a_few_times_a_second():
    watch = TransportWatch(RATE, RATE)
    out = said(watch, [(0, 0)] * 400)   # 400 packets of 128 frames: 1.07 s
    sent = [i for i, s in enumerate(out) if s.position is not None]
    assert sent[0] == 0 and 4 <= len(sent) <= 6
    watch = TransportWatch(RATE, RATE)
    out = said(watch, [(0, 0)] * 10 + [(1, 128 * k) for k in range(10, 20)])
    after = [s.position is not None for s in out[10:10 + POSITION_AFTER_CHANGE + 1]]
    assert after == [True] * POSITION_AFTER_CHANGE + [False]


def test_no_transport_says_so_in_every_packet():
    watch = TransportWatch(RATE, RATE, share=False)
    out = said(watch, [(1, 128 * k) for k in range(10)])
    assert {(s.state, s.position) for s in out} == {(TRANSPORT_NONE, None)}


def test_packets_carry_what_the_watch_said():
    watch = TransportWatch(RATE, RATE)
    pk = Packetizer(Float32Encoder(), 2, RATE, 128, 1400)
    block = np.zeros((2, 128), np.float32)
    grams = pk.packet(0, block, watch.packet(0, 1, 777, lambda: PositionBlock(RATE, 700)))
    header = protocol.parse(grams[0])
    assert (header.jack_transport_state, header.jack_transport_frame) == (1, 777)
    assert header.flags & protocol.FLAG_POSITION
    tl, rest = protocol.split_position(grams[0][protocol.HEADER_SIZE:])
    assert tl == PositionBlock(RATE, 700) and len(rest) == 2 * 128 * 4


def test_the_receiver_hears_the_transport_at_any_frame_and_counts_changes():
    heard = HeardTransport(RATE)
    heard.add(0, 0, 5000, 0, PositionBlock(44100, 5000))
    heard.add(256, 1, 5000, 1)
    heard.add(128, 0, 5000, 0)   # late, out of order
    assert heard.at(-1) is None
    assert heard.at(200).state == 0 and heard.at(200).frame == 5000
    at = heard.at(256 + 480)
    assert at.rolling and at.frame == 5000 + 480 * 44100 / RATE
    assert heard.changes == 1 and heard.latest.rolling
    heard.add(512, TRANSPORT_NONE, 0, 0)
    assert heard.latest is None
