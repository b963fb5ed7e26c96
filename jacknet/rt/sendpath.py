"""The Python face of ``send.c``: a sender's PCM packets sent without Python.

A woken Python worker spends ~100 µs of a core per packet, however little it
does (docs/benchmarks.md, "Where a packet's CPU goes").  `SendPath` lets one
call into C wait for the capture, cut, encode, stamp and send every packet
that needs no decision, for a few milliseconds at a time.  The stream's state
stays with its Python owners (`Packetizer`'s sequence and count,
`TransportWatch`'s last packet and position schedule): each call reads it
from them and writes it back, and a packet that needs a decision (a missed
cycle, a change of the JACK transport, a position block due) comes back to
Python to be sent the usual way.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

import numpy as np

from jacknet.net import protocol
from jacknet.packetizer import Packetizer
from jacknet.rt._rt import ffi, lib
from jacknet.rt.engines import Capture
from jacknet.sync.watch import TransportWatch

CODECS = (protocol.CODEC_FLOAT32, protocol.CODEC_INT16)


@dataclass
class Sent:
    """What one `SendPath.pump` sent."""

    packets: int
    datagrams: int
    bytes: int
    send_errors: int
    clipped: int


class SendPath:
    """One stream's PCM packets from ``capture`` to a connected UDP socket.

    Parameters
    ----------
    capture : Capture
        Read a packet (``packetizer.frames``) at a time; what C reads is
        stamped with its capture position, as `Sender` stamps it.
    sock : socket.socket
        Connected UDP socket (`UdpSink.sock`).
    packetizer : Packetizer
        A float32 or undithered int16 stream without redundancy: its format,
        and the owner of its sequence and packet count.
    watch : TransportWatch
        Owner of what the packets say of the JACK transport (equal rates).
    """

    def __init__(self, capture: Capture, sock: socket.socket, packetizer: Packetizer,
                 watch: TransportWatch) -> None:
        encoder = packetizer.encoder
        if encoder.codec_id not in CODECS or getattr(encoder, "dither", False) \
                or packetizer.redundancy:
            raise ValueError("the C send path carries float32 or undithered int16 "
                             "without redundancy")
        self.capture, self.packetizer, self.watch = capture, packetizer, watch
        pk = packetizer
        self.block = np.zeros((pk.channels, pk.frames), np.float32)
        """The packet C handed back (`pump` returned its position)."""
        self._payload = bytearray(pk.channels * pk.frames * 2)
        self._datagram = bytearray(pk.mtu)
        self._sock = sock  # kept open as long as C sends on its descriptor
        s = self._s = ffi.new("jn_sendpath *")
        self._buffers = (ffi.from_buffer("float[]", self.block),
                         ffi.from_buffer("uint8_t[]", self._payload),
                         ffi.from_buffer("uint8_t[]", self._datagram))
        s.block, s.payload, s.datagram = self._buffers
        s.fd = sock.fileno()
        s.codec = pk.encoder.codec_id
        s.nch, s.frames, s.rate, s.mtu = pk.channels, pk.frames, pk.rate, pk.mtu
        s.stream_id, s.flags = pk.stream_id, pk.flags
        s.share = int(watch.share)

    def pump(self, seconds: float) -> tuple[int | None, Sent]:
        """Send what the capture holds and brings within ``seconds`` (GIL
        released), until a packet needs Python.

        Returns
        -------
        position : int or None
            The capture position of the packet in `block` that Python must
            send (its sequence number not yet used), or None when time was up.
        sent : Sent
            What this call sent.
        """
        s, pk, watch = self._s, self.packetizer, self.watch
        s.seq, s.epoch = pk.seq, watch.epoch
        said = watch.said
        s.have_last = said is not None
        if said is not None:
            s.last_state, s.last_frame, s.last_ts = said
        s.position_due, s.next_position = watch.position_due, watch.next_position
        s.packets = s.datagrams = s.bytes = s.send_errors = s.clipped = 0
        why = lib.jn_send_pump(s, self.capture.state, seconds)
        sent = Sent(int(s.packets), int(s.datagrams), int(s.bytes), int(s.send_errors),
                    int(s.clipped))
        if sent.packets:
            pk.seq = int(s.seq)
            pk.packets += sent.packets
            if watch.share:
                watch.said = (int(s.last_state), int(s.last_frame), int(s.last_ts))
        return (int(s.position) if why == lib.JN_SEND_PYTHON else None), sent
