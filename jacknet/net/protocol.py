"""jacknet's wire format: packet header, validation, fragmentation.

Every datagram is self-describing (see docs/protocol.md): a fixed 40-byte
header in network byte order, then payload bytes.  One packet carries one
block of frames for all channels, encoded by one codec; when the encoded
block does not fit in ``mtu`` bytes it is cut into fragments that each carry
the full header with their own fragment index.
"""
from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass, replace

from jacknet.errors import MalformedPacket

MAGIC = b"JNET"
ANNOUNCE_MAGIC = b"JNSA"  # a sealed stream's announcement (jacknet.security.seal)
VERSION = 2  # 2: the JACK transport's epoch in the state byte, position blocks
HEADER = struct.Struct("!4sBBBBIIQIIHHBBH")
HEADER_SIZE = HEADER.size  # 40

MAX_CHANNELS = 64
MAX_FRAMES = 8192
MIN_RATE, MAX_RATE = 8000, 384000
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4

CODEC_FLOAT32 = 0
CODEC_INT16 = 1
CODEC_OPUS = 2
KNOWN_CODECS = (CODEC_FLOAT32, CODEC_INT16, CODEC_OPUS)

# flags: bit 0 says the payload starts with a table of copies of earlier
# packets (--redundancy); bit 1 that the sender asked Opus for in-band FEC;
# bit 2 that the payload is sealed (security psk: jacknet.security.seal),
# which only an opened datagram has cleared; bit 3 that the payload starts
# with a position block (before any table of copies).  Other bits are
# reserved and must be 0.
FLAG_REDUNDANT = 0x01
FLAG_FEC = 0x02
FLAG_SEALED = 0x04
FLAG_POSITION = 0x08
KNOWN_FLAGS = FLAG_REDUNDANT | FLAG_FEC | FLAG_POSITION
MAX_REDUNDANCY = 8
_COPY_LEN = struct.Struct("!H")

# The state byte: the sender's JACK transport state (jack_transport_state_t:
# stopped, rolling, looping, starting, net-starting) in its low 3 bits, or
# TRANSPORT_NONE from a sender that shares no transport (--no-transport);
# the epoch, counting the sender's starts, stops and locates modulo 32, in
# its high 5 bits.
JACK_TRANSPORT_STATES = (0, 1, 2, 3, 4)
TRANSPORT_NONE = 7
EPOCHS = 32

# A position block: the sender's JACK transport frame rate and, when a
# timebase master gives it, the musical position (BBT) at transport frame
# `frame`.  Sent a few times a second and after every change of epoch.
POSITION = struct.Struct("!BBHIIiiiffddd")
POSITION_SIZE = POSITION.size  # 52
MAX_BPM = 1000.0


@dataclass(frozen=True, slots=True)
class PositionBlock:
    """The sender's JACK transport beyond state and frame (`FLAG_POSITION`)."""

    rate: int
    """The transport's frames per second (the sender's JACK rate)."""
    frame: int
    """The transport frame the BBT fields describe."""
    bbt: bool = False
    """False: no timebase master, and the fields below mean nothing."""
    bar: int = 1
    beat: int = 1
    tick: int = 0
    beats_per_bar: float = 4.0
    beat_type: float = 4.0
    ticks_per_beat: float = 1920.0
    bpm: float = 120.0
    bar_start_tick: float = 0.0

    def pack(self) -> bytes:
        return POSITION.pack(int(self.bbt), 0, 0, self.rate, self.frame, self.bar, self.beat,
                             self.tick, self.beats_per_bar, self.beat_type, self.ticks_per_beat,
                             self.bpm, self.bar_start_tick)


def split_position(payload: bytes) -> tuple[PositionBlock, bytes]:
    """The position block a payload starts with, and the rest.

    Raises
    ------
    MalformedPacket
        ``position`` when the block is short or holds what no transport can.
    """
    if len(payload) <= POSITION_SIZE:
        raise MalformedPacket("position", f"a {len(payload)}-byte payload has no room for "
                                          f"a {POSITION_SIZE}-byte position block")
    (valid, _, _, rate, frame, bar, beat, tick, bpb, beat_type, tpb, bpm,
     bar_start) = POSITION.unpack_from(payload)
    block = PositionBlock(rate, frame, bool(valid & 1), bar, beat, tick, bpb, beat_type, tpb,
                          bpm, bar_start)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise MalformedPacket("position", f"transport rate {rate} Hz")
    if block.bbt and not (1 <= bpb <= 64 and 1 <= beat_type <= 64 and 1 <= tpb <= 1e6
                          and 0 < bpm <= MAX_BPM and bar >= 1 and 1 <= beat <= bpb
                          and 0 <= tick < tpb and math.isfinite(bar_start)):
        raise MalformedPacket("position", f"BBT {bar}|{beat}|{tick} at {bpm} bpm in "
                                          f"{bpb}/{beat_type}, {tpb} ticks per beat")
    return block, payload[POSITION_SIZE:]


@dataclass(frozen=True, slots=True)
class Header:
    """One datagram's header.  ``timestamp`` is the sender's capture position
    (frame index) of the packet's first frame."""

    codec: int
    stream_id: int
    seq: int
    timestamp: int
    sample_rate: int
    frames: int
    channels: int
    frag_index: int = 0
    frag_count: int = 1
    payload_len: int = 0
    flags: int = 0
    jack_transport_state: int = 0
    jack_transport_frame: int = 0
    jack_transport_epoch: int = 0

    def pack(self) -> bytes:
        tbyte = self.jack_transport_state | (self.jack_transport_epoch % EPOCHS) << 3
        return HEADER.pack(MAGIC, VERSION, self.codec, self.flags, tbyte,
                           self.stream_id, self.seq, self.timestamp, self.sample_rate,
                           self.jack_transport_frame, self.frames, self.channels,
                           self.frag_index, self.frag_count, self.payload_len)


def parse(datagram: bytes | memoryview) -> Header:
    """Parse and validate a datagram's header.

    Raises
    ------
    MalformedPacket
        With ``reason`` naming the first field that is wrong.
    """
    if len(datagram) < HEADER_SIZE:
        raise MalformedPacket("truncated", f"{len(datagram)} bytes, header needs {HEADER_SIZE}")
    (magic, version, codec, flags, tstate, stream_id, seq, timestamp, rate, tframe,
     frames, channels, frag_index, frag_count, payload_len) = HEADER.unpack_from(datagram)
    if magic == ANNOUNCE_MAGIC:
        raise MalformedPacket("sealed", "a sealed stream's announcement, and this receiver "
                                        "has no key (security psk)")
    if magic != MAGIC:
        raise MalformedPacket("magic", repr(magic))
    if version != VERSION:
        raise MalformedPacket("version", f"version {version}, this receiver speaks {VERSION}")
    if codec not in KNOWN_CODECS:
        raise MalformedPacket("codec", f"codec {codec}")
    if flags & FLAG_SEALED:
        raise MalformedPacket("sealed", "a sealed datagram, and this receiver has no key "
                                        "(security psk)")
    if flags & ~KNOWN_FLAGS:
        raise MalformedPacket("flags", f"unknown flag bits {flags:#04x}")
    epoch, tstate = tstate >> 3, tstate & 7
    if tstate not in JACK_TRANSPORT_STATES and tstate != TRANSPORT_NONE:
        raise MalformedPacket("transport", f"transport state {tstate}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise MalformedPacket("channels", f"{channels} channels")
    if not 1 <= frames <= MAX_FRAMES:
        raise MalformedPacket("frames", f"{frames} frames")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise MalformedPacket("rate", f"{rate} Hz")
    if frag_count == 0 or frag_index >= frag_count:
        raise MalformedPacket("fragment", f"fragment {frag_index} of {frag_count}")
    if payload_len == 0 or payload_len != len(datagram) - HEADER_SIZE:
        raise MalformedPacket("length", f"says {payload_len} bytes, carries {len(datagram) - HEADER_SIZE}")
    return Header(codec, stream_id, seq, timestamp, rate, frames, channels, frag_index,
                  frag_count, payload_len, flags, tstate, tframe, epoch)


def fragment(header: Header, payload: bytes, mtu: int) -> list[bytes]:
    """Cut one packet into datagrams of at most ``mtu`` bytes each."""
    room = mtu - HEADER_SIZE
    count = max(1, -(-len(payload) // room))
    if count > 255:
        raise ValueError(f"a packet of {len(payload)} bytes needs {count} fragments at --mtu {mtu}; "
                         "send fewer frames per packet or raise --mtu")
    out = []
    for i in range(count):
        part = payload[i * room:(i + 1) * room]
        out.append(replace(header, frag_index=i, frag_count=count, payload_len=len(part)).pack() + part)
    return out


def pack_redundant(primary: bytes, copies: list[bytes]) -> bytes:
    """A payload of ``primary`` followed by ``copies`` of the previous
    packets' payloads, newest first (send it with `FLAG_REDUNDANT`)."""
    table = bytes([len(copies)]) + b"".join(_COPY_LEN.pack(len(c)) for c in copies)
    return table + primary + b"".join(copies)


def redundant_size(primary: int, copies: list[int]) -> int:
    """Bytes `pack_redundant` makes of payloads of these sizes."""
    return 1 + 2 * len(copies) + primary + sum(copies)


def split_redundant(payload: bytes) -> tuple[bytes, list[bytes]]:
    """Undo `pack_redundant`: (primary, copies newest first).

    Raises
    ------
    MalformedPacket
        ``redundancy`` when the table does not describe the payload.
    """
    count = payload[0] if payload else 0
    table_end = 1 + 2 * count
    if not payload or count > MAX_REDUNDANCY or len(payload) < table_end:
        raise MalformedPacket("redundancy", f"{count} copies in a {len(payload)}-byte payload")
    sizes = [_COPY_LEN.unpack_from(payload, 1 + 2 * i)[0] for i in range(count)]
    primary = len(payload) - table_end - sum(sizes)
    if primary <= 0 or 0 in sizes:
        raise MalformedPacket("redundancy", f"copies of {sizes} bytes do not fit a "
                                            f"{len(payload)}-byte payload")
    pos = table_end + primary
    copies = []
    for size in sizes:
        copies.append(payload[pos:pos + size])
        pos += size
    return payload[table_end:table_end + primary], copies


class Reassembler:
    """Collects fragments into whole packets.

    Up to ``window`` packets may be incomplete at once; when a newer one
    pushes an older one out, the older one is counted in ``incomplete``.
    A fragment of a packet completed recently is counted in ``duplicate``
    (it must not start a second copy that could never complete).
    """

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self.incomplete = 0
        self.duplicate = 0
        self._pending: dict[tuple, tuple[Header, list[bytes | None]]] = {}
        self._done: deque[tuple] = deque(maxlen=4 * window)

    @staticmethod
    def key(header: Header) -> tuple:
        """What identifies a fragment's packet.  Fragments that disagree
        about their packet are of different packets (one of them forged or
        broken): each completes on its own, so a lie cannot keep the real
        packet from completing."""
        return (header.stream_id, header.seq, header.timestamp, header.frag_count,
                header.frames, header.channels)

    def seqs(self, stream_id: int) -> set[int]:
        """The packets of ``stream_id`` it holds fragments of or completed lately."""
        return {k[1] for k in (*self._pending, *self._done) if k[0] == stream_id}

    def completed(self, header: Header) -> None:
        """A packet was gathered whole elsewhere (the C receive path), as if
        its fragments had come here: it took a place among the packets
        pending while they came, and a fragment of it that comes again is
        a duplicate."""
        self._make_room()
        self._done.append(self.key(header))

    def _make_room(self) -> None:
        if len(self._pending) >= self.window:
            del self._pending[next(iter(self._pending))]
            self.incomplete += 1

    def add(self, header: Header, payload: bytes) -> tuple[Header, bytes] | None:
        """Add one fragment; return (header, payload) once its packet is whole."""
        if header.frag_count == 1:
            return header, bytes(payload)
        key = self.key(header)
        entry = self._pending.get(key)
        if entry is None and key in self._done:
            self.duplicate += 1
            return None
        if entry is None:
            self._make_room()
            entry = (header, [None] * header.frag_count)
            self._pending[key] = entry
        first, parts = entry
        if parts[header.frag_index] is not None:
            # The first copy of a fragment stands, as in IP reassembly: a
            # second one, the same or not, cannot replace it.
            self.duplicate += 1
            return None
        parts[header.frag_index] = bytes(payload)
        if any(p is None for p in parts):
            return None
        del self._pending[key]
        self._done.append(key)
        whole = b"".join(parts)  # type: ignore[arg-type]
        return replace(first, frag_index=0, frag_count=1, payload_len=len(whole)), whole
