"""Sealed datagrams (security psk) without JACK: what a sender seals opens
to exactly what it was; every bit flip, truncation, wrong key, replay
inside and outside the window and an old stream replayed from its
announcement is refused and counted; keys and allow lists."""
from __future__ import annotations

import os
import socket
import stat
import time

import numpy as np
import pytest

from jacknet.codecs import make_encoder
from jacknet.errors import ConfigError, MalformedPacket
from jacknet.net import protocol
from jacknet.net.tcp import LENGTH, TcpSource
from jacknet.net.udp import UdpSource
from jacknet.packetizer import Packetizer
from jacknet.security.access import AllowList
from jacknet.security.keys import keygen, load_key, load_keys
from jacknet.security.links import SealedSink, SealedSource
from jacknet.security.seal import ANNOUNCE_SIZE, REPLAY_WINDOW, TAG, Opener, Sealer

PSK = bytes(range(32))
MTU = 1400


def stream(packets: int, channels: int = 2, frames: int = 480, redundancy: int = 0,
           stream_id: int = 0x1234) -> list[bytes]:
    """Datagrams of a float32 stream whose packets need fragments at 2 ch x 480."""
    rng = np.random.default_rng(1)
    pk = Packetizer(make_encoder("float32", channels, 48000), channels, 48000, frames,
                    MTU - TAG, redundancy, stream_id=stream_id)
    out = []
    for i in range(packets):
        out += pk.packet(i * frames, rng.standard_normal((channels, frames)).astype(np.float32))
    return out


def sealed(datagrams: list[bytes], started_ns: int = 1000) -> tuple[Sealer, list[bytes]]:
    sealer = Sealer(PSK, protocol.parse(datagrams[0]).stream_id, started_ns)
    return sealer, [sealer.seal(d) for d in datagrams]


def test_what_is_sealed_opens_to_what_it_was_and_fits_the_mtu():
    for plain in (stream(20), stream(20, 1, 64, redundancy=2)):
        sealer, wire = sealed(plain)
        assert all(len(w) == len(p) + TAG <= MTU for w, p in zip(wire, plain))
        assert all(w[:4] == b"JNET" and w[6] & protocol.FLAG_SEALED for w in wire)
        opener = Opener([PSK])
        assert opener.open(wire[0]) is None and opener.stats.unannounced == 1
        assert opener.announce(sealer.announcement()) and len(sealer.announcement()) == ANNOUNCE_SIZE
        assert [opener.open(w) for w in wire[1:]] == plain[1:]
        assert opener.stats.auth_failures == opener.stats.replays == 0


def test_an_unsealed_receiver_says_what_it_got():
    sealer, wire = sealed(stream(1))
    for datagram in (wire[0], sealer.announcement()):
        with pytest.raises(MalformedPacket) as e:
            protocol.parse(datagram)
        assert e.value.reason == "sealed"


def test_every_bit_flip_and_every_truncation_is_refused_and_counted():
    sealer, wire = sealed(stream(2, 1, 64))
    opener = Opener([PSK])
    opener.announce(sealer.announcement())
    target = wire[1]
    tries = 0
    for bit in range(8 * len(target)):
        broken = bytearray(target)
        broken[bit // 8] ^= 1 << bit % 8
        assert opener.open(bytes(broken)) is None, bit
        tries += 1
    for n in range(len(target)):
        assert opener.open(target[:n]) is None
        tries += 1
    announcement = sealer.announcement()
    for bit in range(8 * len(announcement)):
        broken = bytearray(announcement)
        broken[bit // 8] ^= 1 << bit % 8
        assert not opener.announce(bytes(broken))
        tries += 1
    s = opener.stats
    # A flipped stream id names a stream nobody announced; all else fails its tag.
    assert s.auth_failures + s.unannounced == tries and s.unannounced == 32
    assert opener.open(target) == stream(2, 1, 64)[1]  # and the real one still opens


def test_a_wrong_key_opens_nothing():
    sealer, wire = sealed(stream(5))
    other = Opener([bytes(32)])
    assert not other.announce(sealer.announcement())
    assert all(other.open(w) is None for w in wire)
    assert other.stats.auth_failures == 1 and other.stats.unannounced == len(wire)


def test_replays_inside_and_outside_the_window_are_refused():
    sealer, wire = sealed(stream(REPLAY_WINDOW + 10, 1, 16))
    opener = Opener([PSK])
    opener.announce(sealer.announcement())
    assert all(opener.open(w) is not None for w in wire[100:])
    assert opener.open(wire[-5]) is None            # inside: seen
    assert opener.open(wire[5]) is None             # outside: older than the window
    assert opener.stats.replays == 2
    # Reordered but new, within the window: taken.
    sealer2, wire2 = sealed(stream(10, 1, 16, stream_id=99), started_ns=2000)
    opener.announce(sealer2.announcement())
    assert [opener.open(w) is not None for w in wire2[5:] + wire2[:5]] == [True] * 10


def test_a_fragment_seen_is_refused_but_its_siblings_are_not():
    sealer, wire = sealed(stream(1))  # 2 ch x 480 float32: fragments
    assert len(wire) > 1
    opener = Opener([PSK])
    opener.announce(sealer.announcement())
    assert opener.open(wire[1]) is not None and opener.open(wire[1]) is None
    assert opener.open(wire[0]) is not None


def test_an_old_stream_cannot_be_replayed_from_its_announcement():
    old, old_wire = sealed(stream(10, stream_id=1), started_ns=1000)
    new, new_wire = sealed(stream(10, stream_id=2), started_ns=2000)
    opener = Opener([PSK])
    opener.announce(old.announcement())
    opener.announce(new.announcement())
    for i in range(10):  # the receiver hears enough newer streams to forget the old one
        later, _ = sealed(stream(1, stream_id=100 + i), started_ns=3000 + i)
        opener.announce(later.announcement())
    assert not opener.announce(old.announcement()) and opener.stats.replays == 1
    assert all(opener.open(w) is None for w in old_wire)
    # One the receiver still holds: its datagrams were seen, so refused too.
    fresh = Opener([PSK])
    fresh.announce(new.announcement())
    assert all(fresh.open(w) is not None for w in new_wire)
    assert fresh.announce(new.announcement()) is False  # a repeat changes nothing
    assert all(fresh.open(w) is None for w in new_wire) and fresh.stats.replays == len(new_wire)


def test_a_sealed_sink_announces_each_new_stream_and_then_every_second():
    sent = []

    class Inner:
        def send(self, d):
            sent.append(d)
            return True

    now = [0.0]
    sink = SealedSink(Inner(), PSK, clock=lambda: now[0])
    plain = stream(1, 1, 64)[0]
    for t in np.arange(0, 3.0, 0.05):
        now[0] = t
        sink.send(plain)
    assert sum(d[:4] == b"JNET" for d in sent) == 60
    assert sink.announcements == len(sent) - 60 == 5  # at 0, 0.1, 0.3, then 1.3 and 2.3
    other = stream(1, 1, 64, stream_id=7)[0]
    sink.send(other)  # a rebuilt sender: a new stream, announced at once
    assert sent[-2][:4] == b"JNSA" and sink.announcements == 6


def test_a_sealed_udp_link_opens_what_it_carries_and_counts_what_it_refuses():
    source = SealedSource(UdpSource("127.0.0.1", 0), [PSK])
    from jacknet.net.udp import UdpSink
    sink = SealedSink(UdpSink(*source.address), PSK)
    shooter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        plain = stream(3, 1, 64)
        buf = bytearray(protocol.MAX_DATAGRAM)
        got = []
        for d in plain:
            sink.send(d)
            shooter.sendto(d, source.address)              # unsealed
            shooter.sendto(os.urandom(200), source.address)  # garbage
            n, _ = source.receive(buf, 2.0)
            got.append(bytes(buf[:n]))
        assert got == plain
        n, _ = source.receive(buf, 0.2)
        assert n == 0
        s = source.stats()
        assert (s.auth_failures, s.replays, s.unannounced, s.announcements) == (6, 0, 0, 1)
        assert sink.stats().announcements >= 1
    finally:
        shooter.close()
        sink.close()
        source.close()


def test_keys_are_made_owner_only_and_loose_or_broken_ones_are_refused(tmp_path, monkeypatch):
    path = keygen(tmp_path / "link.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(load_key(str(path))) == 32
    assert load_key(str(path)) != load_key(str(keygen(tmp_path / "other.key")))
    with pytest.raises(ConfigError, match="not overwritten"):
        keygen(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"may be read by others \(mode 0644\): chmod 600"):
        load_key(str(path))
    bad = tmp_path / "bad.key"
    bad.write_text("hello\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="line 1 is not a jacknet key"):
        load_key(str(bad))
    with pytest.raises(ConfigError, match="cannot read the key"):
        load_key(str(tmp_path / "missing.key"))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="needs a key: key-file = PATH"):
        load_key(None)
    creds = tmp_path / "creds"
    creds.mkdir()
    path.chmod(0o400)
    os.link(path, creds / "jacknet.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_key(None) == load_key(str(path))


def test_an_allow_list_takes_addresses_and_networks_of_both_families():
    allow = AllowList(["10.0.0.0/8", "192.168.1.20", "fd00::/8"])
    assert "10.1.2.3" in allow and "192.168.1.20" in allow and "192.168.1.21" not in allow
    assert "::ffff:10.0.0.1" in allow and "fd00::1%eth0" in allow and "fe80::1" not in allow
    assert "nonsense" not in allow


def test_a_udp_receiver_drops_and_counts_what_comes_from_outside_its_allow_list():
    source = UdpSource("127.0.0.1", 0, allow=AllowList(["10.0.0.0/8"]))
    shooter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(5):
            shooter.sendto(b"x" * 100, source.address)
        assert source.receive(bytearray(2048), 0.3) == (0, None)
        assert source.stats().denied == 5
    finally:
        shooter.close()
        source.close()


def test_a_sealed_tcp_receiver_lets_a_silent_first_comer_give_way():
    source = TcpSource("127.0.0.1", 0, probation=0.3)
    buf = bytearray(2048)
    squatter = socket.create_connection(source.address)
    try:
        while source.conn is None:
            source.receive(buf, 0.05)
        real = socket.create_connection(source.address)
        source.receive(buf, 0.05)
        assert source.stats().refused == 1  # within its probation it holds the place
        real.close()
        deadline = time.monotonic() + 5
        while source.peer[1] == squatter.getsockname()[1] and time.monotonic() < deadline:
            time.sleep(0.05)
            real = socket.create_connection(source.address)
            source.receive(buf, 0.05)
        assert source.peer[1] == real.getsockname()[1]  # taken instead of the squatter
        source.vouch()
        real.sendall(LENGTH.pack(3) + b"abc")
        third = socket.create_connection(source.address)
        n = 0
        for _ in range(20):
            n, _ = source.receive(buf, 0.05)
            if n:
                break
        assert bytes(buf[:n]) == b"abc" and source.peer[1] == real.getsockname()[1]
        for _ in range(10):
            source.receive(buf, 0.05)
        assert source.peer[1] == real.getsockname()[1]  # vouched for: it keeps its place
        third.close()
        real.close()
    finally:
        squatter.close()
        source.close()


def test_a_key_rotated_in_and_out_loses_nothing():
    """The receiver holds the old and the new key; the sender moves to the
    new one mid-stream; then the receiver lets the old one go."""
    old_key, new_key = PSK, bytes(reversed(PSK))
    sent = []

    class Inner:
        def send(self, d):
            sent.append(d)
            return True

    sink = SealedSink(Inner(), old_key)
    opener = Opener([old_key, new_key])
    plain = stream(40, 1, 64)
    opened = []
    for i, d in enumerate(plain):
        if i == 20:
            assert sink.rekey(new_key) and not sink.rekey(new_key)
        sink.send(d)
        while sent:
            w = sent.pop(0)
            if w[:4] == b"JNSA":
                opener.announce(w)
            else:
                opened.append(opener.open(w))
    assert opened == plain and opener.stats.announcements == 2
    opener.set_keys([new_key])
    assert opener.open(sink._sealer.seal(stream(41, 1, 64)[40])) is not None
    opener.set_keys([old_key])  # the stream's key rotated out: it opens no more
    assert opener.open(sink._sealer.seal(stream(42, 1, 64)[41])) is None
    assert opener.stats.unannounced == 1


def test_a_key_file_may_hold_the_keys_being_rotated(tmp_path):
    path = keygen(tmp_path / "link.key")
    first = load_key(str(path))
    other = (tmp_path / "other.key")
    keygen(other)
    path.write_text(path.read_text() + other.read_text())
    assert load_keys(str(path)) == [first, load_key(str(other))]
    assert load_key(str(path)) == first
