"""From validated packets to decoded blocks: revival, ordering and concealment.

Between the packet parser and the jitter buffer.  Each packet may carry
copies of the ones before it (``--redundancy``); a copy revives a packet the
network lost.

* A **stateless** codec (PCM) decodes whatever arrives, at once; the jitter
  buffer orders by timestamp and the playout fades over what stays missing.
* A **stateful** codec (Opus) must decode in sequence order and be told of
  every loss.  Packets that overtake a missing one wait; the missing one
  waits until its *deadline* (shortly before the playout needs it) for the
  packet itself, a copy of it, or the next packet's in-band FEC, and is
  concealed by the decoder's PLC if none came.  The waiting costs no latency:
  everything is decoded before its own deadline.
* A stateless codec goes the ordered way too when a resampler follows
  (``ordered``, see `jacknet.clock.bridge`): PCM then conceals like the playout does.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from jacknet.codecs import Decoder
from jacknet.recv.outcome import Outcome

# Beyond this much missing audio the decoder's guesses are worth nothing: it
# starts afresh and the playout fades over the hole.
MAX_CONCEAL_SECONDS = 0.1
MAX_HELD = 128  # packets waiting for a missing one (a forged far-ahead seq cannot grow this)
SEEN = 1024     # sequence numbers remembered per stream (to tell revivals from duplicates)


def seq_ahead(a: int, b: int) -> int:
    """How far sequence number ``a`` is after ``b`` (negative: before), mod 2**32."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


@dataclass
class _Held:
    timestamp: int
    payload: bytes
    arrival: int
    copy: bool


@dataclass
class SequencerStats:
    revived: int = 0
    """Lost packets replaced by a copy from a later one."""
    fec_recovered: int = 0
    """Lost Opus frames rebuilt from the next packet's in-band FEC."""
    plc_concealed: int = 0
    """Lost Opus frames guessed by the decoder."""
    decoder_restarts: int = 0
    """Gaps too long to conceal: the decoder started afresh."""


# sink(timestamp, block, arrival, measured) -> what became of the block
Sink = Callable[[int, np.ndarray, int, bool], Outcome]


class Sequencer:
    """One stream's packets in, decoded blocks out through ``sink``.

    Parameters
    ----------
    decoder : Decoder
        This stream's decoder.
    channels, frames, rate : int
        The stream's format (from its headers).
    sink : Sink
        Places a decoded block; ``measured`` is False for blocks that did not
        arrive as themselves just now (copies, concealment, late decodes), so
        they do not skew the jitter buffer's transit estimates.
    stats : SequencerStats, optional
        Counters to add to (a receiver keeps one set across streams).
    malformed : Counter, optional
        Where a copy that does not decode is counted (as ``"payload"``).
    ordered : bool
        Decode in order even for a stateless codec (a resampler after it
        needs one continuous stream).
    """

    def __init__(self, decoder: Decoder, channels: int, frames: int, rate: int, sink: Sink,
                 stats: SequencerStats | None = None, ordered: bool = False,
                 malformed: Counter | None = None) -> None:
        self.decoder = decoder
        self.ordered = decoder.stateful or ordered
        self.channels, self.frames, self.rate = channels, frames, rate
        self.sink = sink
        self.stats = stats or SequencerStats()
        self.malformed = Counter() if malformed is None else malformed
        self._max_conceal = max(1, round(MAX_CONCEAL_SECONDS * rate / frames))
        self._first: int | None = None
        # seq -> arrived itself (else revived), oldest first.  An OrderedDict:
        # a dict's oldest key, after many deleted, is found by a scan over
        # their slots (1.1 µs a packet, against 0.3).
        self._seen: OrderedDict[int, bool] = OrderedDict()
        self._furthest: int | None = None  # the seq remembered furthest ahead
        # ordered decoding
        self._next: int | None = None
        self._next_ts = 0
        self._held: dict[int, _Held] = {}
        self._concealed_run = 0

    # -- input ----------------------------------------------------------
    def push(self, seq: int, timestamp: int, payload: bytes, copies: list[bytes],
             arrival: int) -> Outcome:
        """One packet and its copies of the packets before it (newest first).

        Returns DUPLICATE if this packet came before, REVIVED if a copy of
        it came first, LATE if its frame was already filled, HELD when it
        waits behind a missing one, else what became of it when it was
        placed at once."""
        if self._first is None:
            self._first = seq
        if self._seen.get(seq):
            return Outcome.DUPLICATE
        revived = seq in self._seen
        if not self.ordered:
            block = self._decode(payload)  # a payload that is not this block's raises here
            self._remember(seq, True)
            outcome = self.sink(timestamp, block, arrival, True)
            if revived and outcome is Outcome.DUPLICATE:
                outcome = Outcome.REVIVED
            for i, copy in enumerate(copies, 1):
                earlier = (seq - i) & 0xFFFFFFFF
                if earlier in self._seen or seq_ahead(earlier, self._first) < 0:
                    continue
                block = self._decode(copy, raises=False)
                if block is not None:
                    self._remember(earlier, False)
                    if self.sink(timestamp - i * self.frames, block, arrival,
                                 False) is Outcome.STORED:
                        self.stats.revived += 1
            return outcome
        self.decoder.validate(payload, self.channels, self.frames, self.rate)
        self._remember(seq, True)
        if self._next is None:
            self._next, self._next_ts = seq, timestamp
        if seq_ahead(seq, self._next) < 0:
            # Revived from a copy before it came itself: it is not late, and
            # must not tell the jitter buffer that the margin is too small.
            return Outcome.REVIVED if revived else Outcome.LATE
        outcome = Outcome.HELD
        if seq == self._next and not self._held:
            outcome = self._decode_next(_Held(timestamp, payload, arrival, False), measured=True)
        else:  # replaces a copy that may be held for it: the same bytes, but not a revival
            self._hold(seq, _Held(timestamp, payload, arrival, False))
        for i, copy in enumerate(copies, 1):
            earlier = (seq - i) & 0xFFFFFFFF
            if seq_ahead(earlier, self._next) < 0 or earlier in self._held:
                continue
            try:
                self.decoder.validate(copy, self.channels, self.frames, self.rate)
            except ValueError:
                self.malformed["payload"] += 1
                continue
            self._hold(earlier, _Held(timestamp - i * self.frames, copy, arrival, True))
        self._drain()
        return outcome

    def seen_of(self, first: int, count: int) -> list[int]:
        """The sequence numbers from ``first`` on (``count`` of them) that
        came before, themselves or as copies."""
        if self._furthest is None:
            return []
        count = min(count, seq_ahead(self._furthest, first) + 1)
        return [s for s in ((first + i) & 0xFFFFFFFF for i in range(count)) if s in self._seen]

    def placed(self, first: int, count: int) -> None:
        """Packets ``first`` on, ``count`` of them in sequence, arrived and
        were placed by the C receive path (a stateless codec, not
        ``ordered``): remember them, as `push` would."""
        if self._first is None:
            self._first = first
        for i in range(count):
            self._remember((first + i) & 0xFFFFFFFF, True)

    def _decode(self, payload: bytes, raises: bool = True) -> np.ndarray | None:
        try:
            return self.decoder.decode(payload, self.channels, self.frames, self.rate)
        except ValueError:
            if raises:
                raise
            self.malformed["payload"] += 1
            return None

    def _remember(self, seq: int, itself: bool) -> None:
        """``itself``: the packet arrived (not only a copy of it)."""
        self._seen[seq] = itself
        if self._furthest is None or seq_ahead(seq, self._furthest) > 0:
            self._furthest = seq
        if len(self._seen) > SEEN:
            self._seen.popitem(last=False)

    def _hold(self, seq: int, held: _Held) -> None:
        self._held[seq] = held
        if len(self._held) > MAX_HELD:
            del self._held[max(self._held, key=lambda s: seq_ahead(s, self._next))]

    # -- ordered decoding -----------------------------------------------
    def _decode_next(self, held: _Held, measured: bool) -> Outcome:
        block = self._decode(held.payload, raises=False)
        if block is None:
            return self._conceal()
        if held.copy:
            self._remember(self._next, False)
        self._advance(held.timestamp)
        self._concealed_run = 0
        outcome = self.sink(held.timestamp, block, held.arrival, measured)
        if held.copy and outcome is Outcome.STORED:
            self.stats.revived += 1
        return outcome

    def _advance(self, timestamp: int) -> None:
        self._next = (self._next + 1) & 0xFFFFFFFF
        self._next_ts = timestamp + self.frames

    def _drain(self) -> None:
        while self._next in self._held:
            self._decode_next(self._held.pop(self._next), measured=False)

    def _conceal(self, arrival: int = 0) -> Outcome:
        """Fill the frame at ``_next`` from the next packet's FEC, else by PLC."""
        following = self._held.get((self._next + 1) & 0xFFFFFFFF)
        recovered = None
        if following is not None:
            recovered = self.decoder.recover(following.payload, self.channels, self.frames, self.rate)
        if recovered is None:
            block, fec = self.decoder.conceal(self.channels, self.frames, self.rate), False
        else:
            block, fec = recovered
        if fec:
            self.stats.fec_recovered += 1
        else:
            self.stats.plc_concealed += 1
        timestamp = self._next_ts
        self._advance(timestamp)
        self._concealed_run += 1
        return self.sink(timestamp, block, arrival, False)

    def next_deadline(self, deadline_of: Callable[[int], int | None]) -> int | None:
        """Receiver clock by which the missing frame must be filled, or None
        when nothing is missing (or the stream is silent: the playout fades)."""
        if self.ordered and self._next is not None and (
                self._held or self._concealed_run < self._max_conceal):
            return deadline_of(self._next_ts)
        return None

    def expire(self, now: int, deadline_of: Callable[[int], int | None]) -> None:
        """Revive or conceal every missing frame whose deadline has come.

        ``deadline_of(timestamp)`` gives a frame's deadline on the receiver
        clock, or None while the jitter buffer is still measuring (then a gap
        is filled as soon as a later packet shows it)."""
        while self.ordered and self._next is not None:
            if self._held:
                gap = min(seq_ahead(s, self._next) for s in self._held)
                if self._concealed_run + gap > self._max_conceal:
                    # Too long to conceal (counting what was concealed of it
                    # already: the rest is past, faded over by the playout):
                    # start afresh at the first packet held.
                    self.decoder.reset()
                    self.stats.decoder_restarts += 1
                    self._next = (self._next + gap) & 0xFFFFFFFF
                    self._next_ts = self._held[self._next].timestamp
                    self._concealed_run = 0
                    self._drain()
                    continue
            elif self._concealed_run >= self._max_conceal:
                return
            deadline = deadline_of(self._next_ts)
            if deadline is None and not self._held:
                return
            if deadline is not None and now < deadline:
                return
            self._conceal(now)
            self._drain()
