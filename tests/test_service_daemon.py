"""The daemon as systemd runs it, on real dummy JACK servers: READY=1,
STATUS= and WATCHDOG=1 on a notification socket the test provides (and no
WATCHDOG=1 once the worker is stuck), waiting for a JACK server that is not
there yet, and ``jacknet status`` asking a daemon started from its config
file."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from jacknet import Receiver, ReceiverConfig, Sender, SenderConfig, Supervisor
from jacknet.daemon import PROGRESS_SECONDS
from jacknet.service.notify import Notifier
from jacknet.service.status import query
from jacknet.testing.jackserver import PrivateServer
from conftest import wait_for
from daemons import FakeSystemd

pytestmark = pytest.mark.jack  # each test runs a private jackd


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(tmp_path / "notify")
    yield fake
    fake.close()


def supervise(make, side: str, notifier: Notifier, **options):
    stop = threading.Event()
    supervisor = Supervisor(make, side, 60, stop=stop, notifier=notifier,
                            on_tick=lambda stats: None, **options)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    return supervisor, stop, thread


class StuckSender(Sender):
    """A sender whose worker, once ``stuck`` is set, hangs in its next send."""

    stuck = threading.Event()

    def _send(self, *args) -> None:
        if self.stuck.is_set():
            self._stop.wait()
        super()._send(*args)


def test_ready_status_and_the_watchdog_and_a_stuck_worker_starves_the_watchdog(systemd):
    with PrivateServer("jacknet-test-notify", 48000, 128, sync=False) as server:
        config = SenderConfig("127.0.0.1", 9, 1, "notify-send", server=server.name)
        StuckSender.stuck.clear()
        started = time.monotonic()
        supervisor, stop, thread = supervise(lambda: StuckSender(config), "send",
                                             Notifier(systemd.env(2.0)))
        try:
            ready = systemd.wait_for(lambda m: "READY=1" in m, 10)
            assert ready is not None, systemd.messages
            status = [line for line in ready[1] if line.startswith("STATUS=")]
            assert status == [f"STATUS=running: JACK server '{server.name}', "
                              "sending to 127.0.0.1:9"], ready
            print(f"start to READY=1 with JACK: {ready[0] - started:.2f} s")
            # Fed every 0.5 s (a quarter of the 2 s timeout).
            assert wait_for(lambda: len(systemd.times("WATCHDOG=1", after=ready[0])) >= 3, 5), \
                systemd.messages
            StuckSender.stuck.set()
            stuck_at = time.monotonic()
            # The worker's last turn comes within 0.1 s of this, the
            # supervisor looks every 0.25 s: no feeding after a second more.
            time.sleep(PROGRESS_SECONDS + 3)
            late = systemd.times("WATCHDOG=1", after=stuck_at + PROGRESS_SECONDS + 1)
            assert late == [], (stuck_at, systemd.messages[-5:])
        finally:
            stop.set()
            thread.join(10)
        assert systemd.wait_for(lambda m: m == ["STOPPING=1"], 2), systemd.messages[-3:]


def test_with_no_jack_server_it_is_ready_and_waiting_then_links_when_one_comes(systemd):
    name = "jacknet-test-later"
    config = ReceiverConfig("127.0.0.1", 0, 1, "later-recv", server=name)
    started = time.monotonic()
    supervisor, stop, thread = supervise(lambda: Receiver(config), "recv",
                                         Notifier(systemd.env(2.0)), wait_for_jack=True,
                                         retry=0.25)
    try:
        ready = systemd.wait_for(lambda m: "READY=1" in m, 5)
        assert ready is not None, systemd.messages
        # Bound all the while, so a sender's datagrams meet a socket, not a refusal.
        waiting = f"STATUS=waiting: no JACK server '{name}', trying every 0.25 s; listening on"
        assert any(line.startswith(waiting) for line in ready[1]), ready
        print(f"start to READY=1 without JACK: {ready[0] - started:.2f} s")
        assert wait_for(lambda: len(systemd.times("WATCHDOG=1")) >= 2, 5), \
            systemd.messages  # waiting is as it should be
        assert supervisor.status()["state"] == "waiting"
        with PrivateServer(name, 48000, 128, sync=False):
            up = time.monotonic()
            running = systemd.wait_for(lambda m: any(line.startswith("STATUS=running:")
                                                     for line in m), 10)
            assert running is not None, systemd.messages
            print(f"JACK up to running: {running[0] - up:.2f} s")
            status = supervisor.status()
            assert status["state"] == "running" and status["jack"]["state"] == "connected"
            assert "nothing received yet" in status["summary"]
            stop.set()
            thread.join(10)
    finally:
        stop.set()
        thread.join(10)


def test_jacknet_status_asks_a_daemon_started_from_its_config_file(systemd, tmp_path):
    sock = tmp_path / "status" / "status-recv.sock"
    config = tmp_path / "recv.toml"
    with PrivateServer("jacknet-test-status", 48000, 128, sync=False) as server:
        config.write_text(f'role = "recv"\n[link]\nhost = "127.0.0.1"\nport = 0\n'
                          f'[jack]\nname = "status-recv"\nserver = "{server.name}"\n'
                          f'[status]\nsocket = "{sock}"\n[run]\nstats-interval = 0.2\n')
        env = {**os.environ, **systemd.env(5.0)}
        daemon = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "--config", str(config)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert systemd.wait_for(lambda m: "READY=1" in m, 10), systemd.messages
            lines_before = [daemon.stdout.readline() for _ in range(3)]
            answers = []
            for _ in range(20):  # many readers, as fast as they come
                out = subprocess.run([sys.executable, "-m", "jacknet", "status", "--socket",
                                      str(sock), "--json"], capture_output=True, text=True,
                                     timeout=20)
                assert out.returncode == 0, out.stderr
                answers.append(json.loads(out.stdout))
            lines_after = [daemon.stdout.readline() for _ in range(3)]
            human = subprocess.run([sys.executable, "-m", "jacknet", "status", "--socket",
                                    str(sock)], capture_output=True, text=True, timeout=20)
        finally:
            daemon.terminate()
            out, err = daemon.communicate(timeout=10)
    answer = answers[-1]
    assert answer["schema"] == 1 and answer["role"] == "recv" and answer["state"] == "running"
    assert answer["name"] == "status-recv" and answer["jack"]["server"] == server.name
    assert answer["link"]["bind"].startswith("127.0.0.1:")
    assert answer["connections"] == {"wanted": None, "made": []}
    assert {"packets", "lost", "late", "underruns", "xruns"} <= set(answer["stats"])
    assert human.stdout.startswith("status-recv [recv] running: JACK server")
    assert "recv: datagrams=0" in human.stdout
    assert answer["jack_transport"] == {"follow": False,
                                        "sender": {"state": None, "frame": None},
                                        "here": {"state": None, "frame": None},
                                        "offset_frames": None}
    assert "JACK transport: nothing heard of a sender's JACK transport; not followed here" \
        in human.stdout
    # Reading the status changes nothing the stats line prints: the same
    # fields, and the counters go on as they were.
    keys = [[kv.split("=")[0] for kv in line.split()] for line in lines_before + lines_after]
    assert all(k == keys[0] for k in keys), lines_before + lines_after
    assert daemon.returncode == 0, err
    assert not sock.exists()


def test_sighup_changes_the_latency_live_and_names_what_needs_a_restart(systemd, tmp_path):
    sock = tmp_path / "hup.sock"
    config = tmp_path / "recv.toml"

    def write(latency: float, channels: int) -> None:
        config.write_text(f'role = "recv"\n[link]\nhost = "127.0.0.1"\nport = 0\n'
                          f'[audio]\nchannels = {channels}\n'
                          f'[jack]\nname = "hup-recv"\nserver = "jacknet-test-hup"\n'
                          f'[receive]\nlatency = {latency}\n'
                          f'[status]\nsocket = "{sock}"\n[run]\nstats-interval = 0.5\n')

    write(5, 1)
    with PrivateServer("jacknet-test-hup", 48000, 128, sync=False) as server:
        env = {**os.environ, **systemd.env(5.0)}
        daemon = subprocess.Popen([sys.executable, "-m", "jacknet", "recv", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=env)
        try:
            assert systemd.wait_for(lambda m: "READY=1" in m, 10), systemd.messages
            port = int(query(sock)["link"]["bind"].rsplit(":", 1)[1])
            sender = Sender(SenderConfig("127.0.0.1", port, 1, "hup-send", server=server.name))
            with sender:
                # A second of packets first: a fresh clone's run reloaded 0.3 s
                # in, as the 5 ms link still settled, and it relocked meanwhile.
                assert wait_for(lambda: query(sock)["stats"]["latency_ms"] is not None
                                and query(sock)["stats"]["packets"] >= 400, 5)
                before = query(sock)["stats"]
                write(20, 2)
                hup_at = time.monotonic()
                daemon.send_signal(signal.SIGHUP)
                assert systemd.wait_for(lambda m: "RELOADING=1" in m, 5), systemd.messages
                assert wait_for(lambda: any("READY=1" in lines for t, lines in systemd.messages
                                              if t > hup_at), 5)
                assert wait_for(lambda: abs(query(sock)["stats"]["latency_ms"]
                                              - before["latency_ms"] - 15) < 1, 5), \
                    _moves(before, query(sock)["stats"])
                after = query(sock)["stats"]
                missed = sender.stats().missed_packets
        finally:
            daemon.terminate()
            _, err = daemon.communicate(timeout=10)
    assert after["target_ms"] == pytest.approx(before["target_ms"] + 15, abs=0.1), (before, after)
    assert "reload: changed latency 5.0 -> 20.0" in err, err
    assert "reload: kept as they were" in err and "channels (needs a restart)" in err, err
    # Same stream, same lock: the move was no re-sync and lost nothing.
    shown = {k: (before[k], after[k]) for k in ("packets", "relocks", "lost", "late", "xruns")}
    assert after["relocks"] == before["relocks"], shown
    assert after["lost"] <= missed, (shown, missed)  # only packets the sender never had


def test_the_status_says_when_packets_stop_and_when_they_come_back(systemd, caplog):
    caplog.set_level(logging.INFO)
    with PrivateServer("jacknet-test-quiet", 48000, 128, sync=False) as server:
        config = ReceiverConfig("127.0.0.1", 0, 1, "quiet-recv", server=server.name)
        supervisor, stop, thread = supervise(lambda: Receiver(config), "recv",
                                             Notifier(systemd.env(5.0)))
        try:
            assert wait_for(lambda: supervisor.node is not None, 10)
            port = supervisor.node.address[1]
            send = SenderConfig("127.0.0.1", port, 1, "quiet-send", server=server.name)
            for _ in range(2):  # packets, none, packets again
                with Sender(send):
                    assert wait_for(lambda: "receiving from" in supervisor.summary(), 5), \
                        supervisor.summary()
                assert wait_for(lambda: "playing silence" in supervisor.summary(), 5), \
                    supervisor.summary()
        finally:
            stop.set()
            thread.join(10)
    assert systemd.wait_for(lambda m: any("playing silence" in line for line in m), 1)
    said = [r.getMessage() for r in caplog.records]
    assert sum("the outputs faded to silence" in m for m in said) == 2, said  # once per outage
    assert sum("again, after" in m for m in said) == 1, said


def _moves(before: dict, after: dict) -> dict:
    """What can move the latency, before and after, for a failure's message."""
    keys = ("latency_ms", "target_ms", "slack_ms", "loosened", "tightened", "relocks", "late",
            "lost", "underruns", "xruns", "packets")
    return {k: (before.get(k), after.get(k)) for k in keys}
