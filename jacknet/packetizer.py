"""The sender's half of the wire: encoded blocks -> datagrams.

`Packetizer` encodes one block, adds as many copies of the packets before it
as fit in one datagram (``redundancy``), stamps the header (stream id,
sequence, timestamp, what `TransportWatch` says of the JACK transport) and cuts fragments where a
packet exceeds the MTU.  No I/O: the `Sender` hands the datagrams to its
link, and tests build real streams with it.
"""
from __future__ import annotations

import secrets
from collections import deque

import numpy as np

from jacknet.codecs import Encoder
from jacknet.net import protocol
from jacknet.sync.watch import NO_TRANSPORT, Said


class Packetizer:
    """One stream's packets.

    Parameters
    ----------
    encoder : Encoder
        Turns a block into a payload.
    channels, rate, frames : int
        The stream's format (``frames`` per packet).
    mtu : int
        Largest datagram, header included.
    redundancy : int
        Earlier packets to carry in each datagram, as far as they fit.
    fec : bool
        Set the header's FEC flag (Opus in-band FEC).
    stream_id : int, optional
        Random if not given (a restarted sender is a new stream).
    """

    def __init__(self, encoder: Encoder, channels: int, rate: int, frames: int, mtu: int,
                 redundancy: int = 0, fec: bool = False, stream_id: int | None = None) -> None:
        self.encoder = encoder
        self.channels, self.rate, self.frames, self.mtu = channels, rate, frames, mtu
        self.redundancy = redundancy
        self.flags = protocol.FLAG_FEC if fec else 0
        self.stream_id = secrets.randbits(32) if stream_id is None else stream_id
        self.packets = 0
        self.missed = 0
        self.copies_left_out = 0
        self.seq = 0
        """The next packet's sequence number."""
        self._history: deque[bytes] = deque(maxlen=redundancy)  # newest first

    def gap(self) -> None:
        """The audio does not follow on from the last packet: carry no copies
        across (a copy must be of the packet right before)."""
        self._history.clear()

    def skip(self) -> None:
        """Send nothing for the next packet: its audio was never captured (a
        cycle JACK did not run the sender in).  Its sequence number goes
        unused, so sequence numbers keep in step with timestamps and the
        receiver counts it lost and fades over it; no copy crosses the hole."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.missed += 1
        self._history.clear()

    def packet(self, timestamp: int, block: np.ndarray, said: Said = NO_TRANSPORT) -> list[bytes]:
        """Encode ``block`` (channels x frames) of sender frame ``timestamp``,
        with what ``said`` says of the JACK transport; returns its datagrams."""
        encoded = self.encoder.encode(block)
        payload, more = self._with_copies(
            encoded, protocol.POSITION_SIZE if said.position is not None else 0)
        if said.position is not None:
            payload = said.position.pack() + payload
            more |= protocol.FLAG_POSITION
        header = protocol.Header(self.encoder.codec_id, self.stream_id, self.seq, timestamp,
                                 self.rate, self.frames, self.channels, flags=self.flags | more,
                                 jack_transport_state=said.state,
                                 jack_transport_frame=said.frame & 0xFFFFFFFF,
                                 jack_transport_epoch=said.epoch)
        if self.redundancy:
            self._history.appendleft(encoded)
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.packets += 1
        return protocol.fragment(header, payload, self.mtu)

    def _with_copies(self, encoded: bytes, reserved: int) -> tuple[bytes, int]:
        """The payload with as many earlier packets as fit in one datagram,
        and the flag that says so.  A packet that needs fragments goes alone:
        a bigger datagram would make loss worse, not better."""
        history = self._history
        if not self.redundancy:
            return encoded, 0
        room = self.mtu - protocol.HEADER_SIZE - reserved
        if protocol.redundant_size(len(encoded), []) > room:
            self.copies_left_out += len(history)
            return encoded, 0
        sizes: list[int] = []
        for copy in history:
            if protocol.redundant_size(len(encoded), sizes + [len(copy)]) > room:
                break
            sizes.append(len(copy))
        self.copies_left_out += len(history) - len(sizes)
        return protocol.pack_redundant(encoded, list(history)[:len(sizes)]), protocol.FLAG_REDUNDANT
