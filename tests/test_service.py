"""The daemon's service face without JACK: systemd notifications on a socket
the test provides, the status socket, journald log lines."""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from jacknet.errors import ConfigError
from jacknet.service.logs import JournalFormatter, to_journal
from jacknet.service.notify import Notifier
from jacknet.service.remember import ConnectionMemory, state_path
from jacknet.service.status import SCHEMA, StatusServer, query, socket_path


@pytest.fixture
def systemd(tmp_path):
    """A datagram socket standing in for systemd's: yields (environment, read)."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)

    def read() -> list[str]:
        return sock.recv(4096).decode().split("\n")

    yield {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, read
    sock.close()


def test_notifications_reach_the_socket_and_an_unchanged_status_is_not_repeated(systemd):
    env, read = systemd
    n = Notifier(env)
    assert n.enabled and n.watchdog_seconds == 2.0
    n.ready("running: a")
    assert read() == ["READY=1", "STATUS=running: a"]
    n.status("running: a")
    n.status("waiting: b")
    assert read() == ["STATUS=waiting: b"]
    n.watchdog()
    assert read() == ["WATCHDOG=1"]
    n.reloading()
    lines = read()
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
    n.stopping()
    assert read() == ["STOPPING=1"]


def test_an_abstract_socket_name_is_understood():
    name = f"jacknet-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(1.0)
        Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_outside_systemd_nothing_is_sent_and_a_watchdog_for_another_process_is_ignored():
    assert not Notifier({}).enabled
    Notifier({}).ready("x")  # does nothing, raises nothing
    n = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert n.watchdog_seconds is None


def test_a_vanished_systemd_socket_is_logged_once_and_never_raised(tmp_path, caplog):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    n.watchdog()
    n.watchdog()
    assert not n.enabled
    assert len([r for r in caplog.records if "cannot notify" in r.message]) == 1


def test_the_status_socket_answers_one_json_line_and_only_its_owner_and_group_may_ask(tmp_path):
    path = tmp_path / "run" / "recv-a.sock"
    calls = []
    server = StatusServer(path, lambda: calls.append(1) or {"state": "running"}).start()
    try:
        assert query(path) == {"schema": SCHEMA, "state": "running"}
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(b"reboot\n")
            answer = json.loads(sock.makefile().readline())
        assert "unknown request" in answer["error"] and len(calls) == 1
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # says nothing at all
            sock.connect(str(path))
            sock.shutdown(socket.SHUT_WR)
            assert json.loads(sock.makefile().readline())["state"] == "running"
        with pytest.raises(ConfigError, match="another daemon answers there"):
            StatusServer(path, dict).start()
    finally:
        server.close()
    assert not path.exists()


def test_a_stale_socket_of_a_dead_daemon_is_replaced(tmp_path):
    path = tmp_path / "old.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening: nobody answers
    server = StatusServer(path, lambda: {"state": "x"}).start()
    try:
        assert query(path)["state"] == "x"
    finally:
        server.close()


def test_a_failing_snapshot_answers_an_error_and_the_server_goes_on(tmp_path):
    path = tmp_path / "s.sock"
    server = StatusServer(path, lambda: 1 / 0).start()
    try:
        assert "internal error" in query(path)["error"]
        assert "internal error" in query(path)["error"]
    finally:
        server.close()


def test_socket_paths():
    assert socket_path("a", "off") is None
    assert socket_path("a", "/x/y.sock").as_posix() == "/x/y.sock"
    assert socket_path("recv-a").name == "recv-a.sock"


def test_journal_lines_carry_a_priority_prefix_and_no_timestamp():
    fmt = JournalFormatter("%(message)s")
    record = logging.LogRecord("jacknet", logging.WARNING, "f", 1, "two\nlines", None, None)
    assert fmt.format(record) == "<4>jacknet: two | lines"
    record.levelno = logging.DEBUG
    assert fmt.format(record).startswith("<7>")


def test_the_journal_is_recognised_by_the_device_and_inode_of_stderr():
    st = os.fstat(2)
    assert to_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not to_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not to_journal({})


class FarPorts:
    """Other clients' ports as a daemon polling JACK sees them: port name ->
    the id of the client that owns it (a restarted client gets a new id)."""

    def __init__(self, **ports: str) -> None:
        self.ids = {name.replace("__", ":"): client for name, client in ports.items()}

    def __call__(self, port: str) -> str | None:
        return self.ids.get(port)


def test_remembered_connections_come_back_with_their_client_and_only_a_deliberate_cut_forgets(
        tmp_path):
    path = tmp_path / "state" / "recv.connections.json"
    memory = ConnectionMemory(path)
    far = FarPorts(rec__in_1="1", rec__in_2="1", meter__in_1="2")
    hand = [("out_1", "rec:in_1"), ("out_2", "rec:in_2")]
    pattern = {("out_1", "meter:in_1")}
    # Made by hand: remembered; made by --connect: not (the pattern makes it anyway).
    assert memory.observe(hand + sorted(pattern), pattern, far) == []
    assert memory.pairs == set(hand)
    assert json.loads(path.read_text())["connections"] == [list(p) for p in hand]
    # The recorder goes away: kept; it comes back as a new client: made again.
    assert memory.observe([], pattern, FarPorts(meter__in_1="2")) == []
    assert memory.observe([], pattern, FarPorts(rec__in_1="3", rec__in_2="3")) == hand
    # Restarted between two looks (gone and back unseen): the new id tells.
    assert memory.observe(hand, pattern, FarPorts(rec__in_1="3", rec__in_2="3")) == []
    assert memory.observe([], pattern, FarPorts(rec__in_1="4", rec__in_2="4")) == hand
    memory.observe(hand, pattern, FarPorts(rec__in_1="4", rec__in_2="4"))
    # Someone takes out_2 down while both ends stay: forgotten, for good.
    assert memory.observe(hand[:1], pattern, FarPorts(rec__in_1="4", rec__in_2="4")) == []
    assert memory.pairs == {hand[0]}
    # Our own client rebuilt: its new ports lack every connection, none cut on purpose.
    memory.new_client()
    assert memory.observe([], pattern, FarPorts(rec__in_1="4")) == [hand[0]]
    # The next daemon reads what this one left.
    assert ConnectionMemory(path).observe([], set(), FarPorts(rec__in_1="5")) == [hand[0]]


def test_a_broken_state_file_is_set_aside_with_a_warning(tmp_path, caplog):
    path = tmp_path / "recv.connections.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        memory = ConnectionMemory(path)
    assert memory.pairs == set() and "ignoring the remembered connections" in caplog.text
    memory.observe([("out_1", "rec:in_1")], set(), FarPorts(rec__in_1="1"))
    assert json.loads(path.read_text())["connections"] == [["out_1", "rec:in_1"]]


def test_state_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "lib"))
    assert state_path("recv", "auto") == tmp_path / "lib" / "recv.connections.json"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_path("recv", "auto") == tmp_path / "xdg" / "jacknet" / "recv.connections.json"
    assert state_path("recv", "off") is None
    assert state_path("recv", "/x/y.json") == Path("/x/y.json")


def test_the_status_says_both_jack_transports_in_one_line():
    from jacknet.service.status import transport_line
    follow = {"follow": True, "sender": {"state": "rolling", "frame": 48000},
              "here": {"state": "rolling", "frame": 48002}, "offset_frames": 2}
    assert transport_line(follow) == ("JACK transport: sender rolling at 48000, here rolling "
                                      "at 48002, 2 frames apart")
    assert transport_line({"shared": False}) == "JACK transport: not shared (--no-transport)"
    assert transport_line({"shared": True, "state": "stopped", "frame": 0, "changes": 0}) == \
        "JACK transport: stopped at 0, sent with every packet"
