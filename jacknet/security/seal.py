"""Sealing datagrams with a pre-shared key (``security = psk``).  No I/O:
the link ends in `jacknet.security.links` call these.

Each stream (one sender's life, one stream id) seals with its own key,
derived with HKDF from the pre-shared key and a random salt the sender
draws, so a restarted sender never meets a nonce it used before.  A data
datagram keeps its 40-byte header readable, with `protocol.FLAG_SEALED`
set and ``payload_len`` counting the tag; the header is authenticated as
associated data, the payload encrypted with ChaCha20-Poly1305.  The nonce
is made of what every datagram already carries (sequence, fragment index,
the low 56 bits of the timestamp), so the only overhead is the 16-byte tag.

The salt travels in an *announcement*, a small datagram of its own sealed
with a key also derived from the pre-shared key, which the sender repeats
so a receiver may join at any moment.  A receiver accepts a stream it does
not know only if the stream started after the newest one it accepted, so a
recorded old stream cannot be replayed; within a stream a sliding window
over (sequence, fragment) refuses every datagram seen before.  A sender
given a new key re-announces its stream under it (a new salt, a later
start), so a receiver that holds both keys follows without a dropout.
"""
from __future__ import annotations

import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jacknet.net import protocol

TAG = 16
SALT = 16
ANNOUNCE_MAGIC = protocol.ANNOUNCE_MAGIC
ANNOUNCE_VERSION = 1
# magic, version, 3 reserved bytes, stream id, the stream's start (ns since
# the epoch, the sender's wall clock), salt, nonce; then the tag.
ANNOUNCE = struct.Struct("!4sB3xIQ16s12s")
ANNOUNCE_SIZE = ANNOUNCE.size + TAG  # 64
# Where the header fields the nonce and the seal need are (protocol.HEADER).
_FLAGS_AT, _STREAM_AT, _SEQ_AT, _TS_AT, _FRAG_AT, _LEN_AT = 6, 8, 12, 16, 36, 38
_U32, _U16 = struct.Struct("!I"), struct.Struct("!H")
# Packets behind the newest one seen that may still come (reordering,
# fragments): 2048 as WireGuard's window, seconds of audio at any packet size.
REPLAY_WINDOW = 2048
STREAMS_KEPT = 8  # streams a receiver holds keys for (senders sharing a key, restarts)


def _derive(psk: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(psk)


def _announce_cipher(psk: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(_derive(psk, None, b"jacknet/1 announce"))


def _stream_cipher(psk: bytes, salt: bytes, stream_id: int) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(_derive(psk, salt, b"jacknet/1 data" + _U32.pack(stream_id)))


def _nonce(header: bytes | bytearray | memoryview) -> bytes:
    """seq (4) | fragment index (1) | timestamp's low 56 bits (7): unique
    per datagram of a stream, even after the sequence wraps."""
    return (bytes(header[_SEQ_AT:_SEQ_AT + 4]) + bytes(header[_FRAG_AT:_FRAG_AT + 1])
            + bytes(header[_TS_AT + 1:_TS_AT + 8]))


def stream_id_of(datagram: bytes | memoryview) -> int:
    """The stream id of a datagram at least a header long."""
    return _U32.unpack_from(datagram, _STREAM_AT)[0]


class Sealer:
    """One stream's sealing, on the sender.

    Parameters
    ----------
    psk : bytes
        The pre-shared key.
    stream_id : int
        The stream's id (`Packetizer.stream_id`).
    """

    def __init__(self, psk: bytes, stream_id: int, started_ns: int | None = None) -> None:
        self.stream_id = stream_id
        self.salt = os.urandom(SALT)
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self._cipher = _stream_cipher(psk, self.salt, stream_id)
        self._announcer = _announce_cipher(psk)

    def seal(self, datagram: bytes) -> bytes:
        """A datagram of this stream (`protocol.fragment`'s), sealed: 16 bytes longer."""
        header = bytearray(datagram[:protocol.HEADER_SIZE])
        header[_FLAGS_AT] |= protocol.FLAG_SEALED
        _U16.pack_into(header, _LEN_AT, len(datagram) - protocol.HEADER_SIZE + TAG)
        return bytes(header) + self._cipher.encrypt(_nonce(header),
                                                     datagram[protocol.HEADER_SIZE:],
                                                     bytes(header))

    def announcement(self) -> bytes:
        """The datagram that tells a receiver this stream's salt."""
        body = ANNOUNCE.pack(ANNOUNCE_MAGIC, ANNOUNCE_VERSION, self.stream_id,
                             self.started_ns, self.salt, os.urandom(12))
        return body + self._announcer.encrypt(body[-12:], b"", body)


def is_announcement(datagram: bytes | memoryview) -> bool:
    """Whether a datagram claims to be an announcement (`Opener.announce` checks it)."""
    return bytes(datagram[:4]) == ANNOUNCE_MAGIC


@dataclass
class OpenStats:
    auth_failures: int = 0
    """Datagrams whose tag did not verify (a wrong key, forged, broken, unsealed) (security.seal.Opener)."""
    replays: int = 0
    """Authentic datagrams seen before, or announcements of a stream older than one accepted (security.seal.Opener)."""
    unannounced: int = 0
    """Datagrams of a stream whose announcement has not come yet (security.seal.Opener)."""
    announcements: int = 0
    """New streams accepted (security.seal.Opener)."""


class ReplayWindow:
    """Which (sequence, fragment) pairs of one stream came already, over the
    last `REPLAY_WINDOW` sequence numbers; older ones are refused too."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.top: int | None = None  # newest sequence seen, unwrapped to 64 bits
        self._slots: list[tuple[int, int] | None] = [None] * size  # (seq, fragment bits)

    def _unwrap(self, seq: int) -> int:
        if self.top is None:
            return seq
        delta = (seq - self.top) & 0xFFFFFFFF
        return self.top + (delta - (1 << 32) if delta >= 1 << 31 else delta)

    def check(self, seq: int, frag: int) -> bool:
        """True if (seq, frag) is new and within the window; then it is marked seen."""
        full = self._unwrap(seq)
        if self.top is not None and full <= self.top - self.size:
            return False
        index = full % self.size
        slot = self._slots[index]
        bits = slot[1] if slot is not None and slot[0] == full else 0
        if bits >> frag & 1:
            return False
        self._slots[index] = (full, bits | 1 << frag)
        if self.top is None or full > self.top:
            self.top = full
        return True


@dataclass
class _Stream:
    psk: bytes  # the key that announced it
    salt: bytes
    started_ns: int
    cipher: ChaCha20Poly1305
    window: ReplayWindow


class Opener:
    """The receiver's side: announcements in, sealed datagrams opened.

    ``keys``: the pre-shared keys taken (more than one while a key is
    rotated).  Every datagram it refuses is counted in `stats` (one owner
    for these counters), never logged here: a flood must not flood the log.
    """

    def __init__(self, keys: list[bytes]) -> None:
        self._streams: OrderedDict[int, _Stream] = OrderedDict()
        self.newest_ns = 0  # the start of the newest stream accepted
        self.stats = OpenStats()
        self.set_keys(keys)

    def set_keys(self, keys: list[bytes]) -> None:
        """Take these keys from now on; streams of a key no longer among
        them are forgotten (a key rotated out opens nothing more)."""
        self.keys = list(keys)
        self._announcers = [(psk, _announce_cipher(psk)) for psk in keys]
        for stream_id in [i for i, s in self._streams.items() if s.psk not in keys]:
            del self._streams[stream_id]

    def _verify(self, body: bytes, tag: bytes) -> bytes | None:
        """The key whose announcement this is, or None."""
        for psk, cipher in self._announcers:
            try:
                cipher.decrypt(body[-12:], tag, body)
                return psk
            except InvalidTag:
                continue
        return None

    def announce(self, datagram: bytes | memoryview) -> bool:
        """Take an announcement; True if it made a stream known."""
        if len(datagram) != ANNOUNCE_SIZE:
            self.stats.auth_failures += 1
            return False
        body = bytes(datagram[:ANNOUNCE.size])
        psk = self._verify(body, bytes(datagram[ANNOUNCE.size:]))
        if psk is None:
            self.stats.auth_failures += 1
            return False
        _, version, stream_id, started_ns, salt, _ = ANNOUNCE.unpack(body)
        known = self._streams.get(stream_id)
        if known is not None and known.salt == salt and known.started_ns == started_ns:
            self._streams.move_to_end(stream_id)
            return False  # a repeat
        if version != ANNOUNCE_VERSION or started_ns <= self.newest_ns:
            # An old stream replayed (or a sender whose clock went back).
            self.stats.replays += 1
            return False
        self._streams[stream_id] = _Stream(psk, salt, started_ns,
                                           _stream_cipher(psk, salt, stream_id), ReplayWindow())
        self._streams.move_to_end(stream_id)
        while len(self._streams) > STREAMS_KEPT:
            self._streams.popitem(last=False)
        self.newest_ns = started_ns
        self.stats.announcements += 1
        return True

    def open(self, datagram: bytes | memoryview) -> bytes | None:
        """The datagram as the sender made it before sealing (header with
        `protocol.FLAG_SEALED` cleared, ``payload_len`` without the tag), or
        None if it is refused (and counted)."""
        if (len(datagram) < protocol.HEADER_SIZE + TAG + 1
                or bytes(datagram[:4]) != protocol.MAGIC
                or not datagram[_FLAGS_AT] & protocol.FLAG_SEALED):
            self.stats.auth_failures += 1
            return None
        stream = self._streams.get(stream_id_of(datagram))
        if stream is None:
            self.stats.unannounced += 1
            return None
        header = bytes(datagram[:protocol.HEADER_SIZE])
        try:
            payload = stream.cipher.decrypt(_nonce(header), bytes(datagram[protocol.HEADER_SIZE:]),
                                            header)
        except InvalidTag:
            self.stats.auth_failures += 1
            return None
        # Only now is anything past the fixed header trusted.
        if not stream.window.check(_U32.unpack_from(header, _SEQ_AT)[0], header[_FRAG_AT]):
            self.stats.replays += 1
            return None
        plain = bytearray(header)
        plain[_FLAGS_AT] &= ~protocol.FLAG_SEALED & 0xFF
        _U16.pack_into(plain, _LEN_AT, len(payload))
        return bytes(plain) + payload
