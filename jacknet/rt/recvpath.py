"""The Python face of ``recv.c``: a receiver's PCM packets placed without Python.

A Python worker woken for every datagram spends 100-150 µs of a core on it,
however little it does (docs/benchmarks.md, "Where a packet's CPU goes").
`RecvPath` lets one call into C wait on the socket and place every packet
that needs no decision, for a few milliseconds at a time: the next packet of
the stream played, from the sender locked to, in sequence, where the
`StreamPipeline` says it goes (`StreamPipeline.in_line`).  The stream's
state stays with its Python owners, which account for each packet C placed
after the call by the rules they apply to their own (`StreamPipeline.placed`);
a datagram that needs a decision comes back to Python, with the fragments of
its packet gathered before it, to be fed the usual way.
"""
from __future__ import annotations

import socket
import struct

import numpy as np

from jacknet.net import protocol
from jacknet.net.udp import UdpSource
from jacknet.recv.pipeline import StreamPipeline
from jacknet.rt._rt import ffi, lib
from jacknet.rt.engines import Playout

_INT64 = 1 << 63
# jn_recvrecord's fields in order, as laid out (test_recvpath checks it
# against cffi's): seq, timestamp, arrival, at, read_end, tbyte, tframe,
# datagrams, bytes.
RECORD = struct.Struct("=I4xQQdQIIII")


def sockaddr(peer: tuple) -> bytes | None:
    """The ``struct sockaddr`` the kernel gives for ``peer`` (a socket
    module address), or None for one C cannot compare (an IPv6 address
    with a zone)."""
    try:
        if len(peer) == 2:
            return (struct.pack("=H", socket.AF_INET) + struct.pack("!H", peer[1])
                    + socket.inet_pton(socket.AF_INET, peer[0]) + bytes(8))
        return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", peer[1], peer[2])
                + socket.inet_pton(socket.AF_INET6, peer[0]) + struct.pack("=I", peer[3]))
    except (OSError, struct.error):
        return None


def peer_of(raw: bytes) -> tuple:
    """The socket module's address for a ``struct sockaddr``."""
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET:
        (port,) = struct.unpack_from("!H", raw, 2)
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    port, flow = struct.unpack_from("!HI", raw, 2)
    (scope,) = struct.unpack_from("=I", raw, 24)
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, flow, scope


class RecvPath:
    """A unicast UDP receiver's PCM packets from ``source`` into ``playout``.

    Parameters
    ----------
    source : UdpSource
        The bound socket C reads from.
    playout : Playout
        The ring C writes into.
    """

    def __init__(self, source: UdpSource, playout: Playout) -> None:
        self.source, self.playout = source, playout
        self._datagram = bytearray(lib.JN_MAX_DATAGRAM)
        r = self._r = ffi.new("jn_recvpath *")
        r.fd = source.sock.fileno()
        self._keep = [ffi.from_buffer("uint8_t[]", self._datagram)]
        r.datagram = self._keep[0]
        self._format: tuple | None = None
        self.placed = 0
        """Packets placed by C so far."""

    @property
    def heard_at(self) -> float | None:
        """When the newest datagram from the sender played came (`time.monotonic`),
        as C saw it: ahead of what Python was told while a call runs.  Any
        thread may ask."""
        return self._r.heard_at or None

    def _buffers(self, channels: int, frames: int, width: int) -> None:
        """Room for a packet of this format (made again only when it changes)."""
        if self._format == (channels, frames, width):
            return
        self._format = (channels, frames, width)
        size = channels * frames * width
        self._packet = bytearray(size)
        self._held = bytearray(size + len(self._r.held_len) * protocol.HEADER_SIZE)
        self._block = np.zeros(channels * frames, np.float32)
        self._keep[1:] = [ffi.from_buffer("uint8_t[]", self._packet),
                          ffi.from_buffer("uint8_t[]", self._held),
                          ffi.from_buffer("float[]", self._block)]
        self._r.packet, self._r.held, self._r.block = self._keep[1:]

    def pump(self, pipeline: StreamPipeline, seconds: float,
             arrival: int = 0) -> tuple[list[float], list[tuple[bytes, tuple]]] | None:
        """Place the packets of ``pipeline``'s stream that arrive within
        ``seconds`` (GIL released), until a datagram needs Python.

        Parameters
        ----------
        pipeline : StreamPipeline
            Says where the packets go; accounts for those placed.
        seconds : float
            How long to wait at most.
        arrival : int
            The receiver clock, for a playout that runs outside JACK (tests);
            in JACK, C reads the clock at each packet.

        Returns
        -------
        None, or (placed, datagrams)
            None: the stream's next packet needs Python (nothing was read).
            Else when each packet placed came (`time.monotonic`), and the
            datagrams Python must feed in this order, each with its sender.
        """
        r = self._r
        line = pipeline.in_line(len(r.records), len(r.known))
        peer = None if line is None or line.peer is None else sockaddr(line.peer)
        if peer is None:  # an unlocked receiver: Python decides which sender to play
            return None
        ahead = line.timestamp + len(r.records) * line.frames
        if not (ahead < 1 << 64 and all(-_INT64 <= v < _INT64 for v in (line.base, line.skew))):
            return None  # a stream near the end of the 64-bit time line (forged, surely)
        self._buffers(line.channels, line.frames, 2 if line.codec == protocol.CODEC_INT16 else 4)
        r.codec, r.nch, r.frames, r.rate = line.codec, line.channels, line.frames, line.rate
        r.stream_id, r.seq, r.timestamp = line.stream_id, line.seq, line.timestamp
        r.known[0:len(line.known)] = line.known
        r.nknown = len(line.known)
        ffi.memmove(r.peer, peer, len(peer))
        r.peer_len = len(peer)
        r.base, r.guard = line.base, line.guard
        r.skew, r.window = round(line.skew), int(line.reach) - 1
        r.arrival = arrival
        why = lib.jn_recv_pump(r, self.playout.state, seconds)
        placed = r.placed
        times = []
        if placed:
            # One unpack for all, not a cffi access per field.
            records = list(RECORD.iter_unpack(ffi.buffer(r.records, placed * RECORD.size)))
            pipeline.placed([(seq, ts, arrival, read_end, tbyte & 7, tframe, tbyte >> 3, n, size)
                             for seq, ts, arrival, _, read_end, tbyte, tframe, n, size in records])
            times = [rec[3] for rec in records]
        self.placed += placed
        out: list[tuple[bytes, tuple]] = []
        if why == lib.JN_RECV_PYTHON:
            at = 0
            for i in range(r.gathered):
                n = r.held_len[i]
                out.append((bytes(self._held[at:at + n]), line.peer))
                at += n
            if r.length:
                out.append((bytes(self._datagram[:r.length]),
                            peer_of(bytes(ffi.buffer(r.sender, r.sender_len)))))
        return times, out
