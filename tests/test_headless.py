"""Sender and receiver as an admin runs them: subprocesses started from
their config files, with a signal generator and a recorder in this process,
all on one real dummy JACK server.  ``kill -9`` the server and start it
again: both daemons live on, come back, connect again (to clients that came
back after them, too, and where a connection was made by hand), and the
recording is bit-exact again; restart the recorder alone: the receiver
connects to it again.  A daemon told to start JACK if it is missing does,
starts it again when it dies, and stops only the server it started."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import jack
import pytest

from conftest import wait_for
from daemons import PERIOD, RATE, Ends, daemon
from jacknet.testing.scene import free_port
from jacknet.testing.jackserver import PrivateServer

pytestmark = pytest.mark.jack  # each test runs a private jackd

NAME = "jacknet-test-headless"


def test_both_daemons_outlive_a_killed_server_and_their_connections_come_back(tmp_path):
    port = free_port()
    state = tmp_path / "hl-recv.connections.json"
    server = PrivateServer(NAME, RATE, PERIOD, sync=True).start()
    ends = None
    procs = []
    try:
        ends = Ends(NAME)
        procs = [daemon(tmp_path, "recv", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                        f'[audio]\nchannels = 2\n[jack]\nname = "hl-recv"\nserver = "{NAME}"\n'
                        f'connect = "hl-rec:in_.*"\nremember-connections = "{state}"\n'
                        f'[receive]\nlatency = 10\n'),
                 daemon(tmp_path, "send", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                        f'[audio]\nchannels = 2\n[jack]\nname = "hl-send"\nserver = "{NAME}"\n'
                        f'connect = "hl-sig:out_.*"\n')]
        assert ends.exact_for(2, 15) is not None, ends.checker.summary()
        # A connection made by hand, which the receiver remembers.
        ends.tap.connect_ports("hl-recv:out_2", "hl-tap:in_1")
        assert wait_for(lambda: state.exists() and "hl-tap:in_1" in state.read_text(), 10)

        server.process.kill()  # kill -9: no goodbye to any client
        server.process.wait()
        ends.close()
        time.sleep(2)
        assert [p.poll() for p in procs] == [None, None], "a daemon exited with the server"
        server.stop()
        server.start()
        ready = time.monotonic()
        # Our clients come back after the daemons may have: they connect to
        # ports that appear later as well.
        ends = Ends(NAME)
        took = ends.exact_for(1, 15)
        assert took is not None, ends.checker.summary()
        back = time.monotonic() - ready - 1
        assert wait_for(ends.tapped, 10), "the hand-made connection did not come back"
        # A measurement, not a bound (the machine is shared): the daemons
        # look every second, then the first lock and fade-in.
        print(f"\nJACK ready to exact audio: {back:.2f} s")

        ends.rec.close()  # the recorder alone restarts
        ends.start_recorder()
        again = ends.exact_for(1, 10)
        assert again is not None, ends.checker.summary()
        print(f"recorder restart to exact audio: {again:.2f} s")
    finally:
        errs = []
        for p in procs:
            p.send_signal(signal.SIGTERM)
            errs.append(p.communicate(timeout=10)[1])
        if ends is not None:
            ends.close()
        server.stop()
    assert [p.returncode for p in procs] == [0, 0], errs
    for err in errs:
        assert "the JACK server went away" in err and "link restored" in err, err
    assert "connected hl-recv:out_1 -> hl-rec:in_1 (the port appeared)" in errs[0], errs[0]
    assert "connected hl-recv:out_2 and hl-tap:in_1 again (remembered)" in errs[0], errs[0]


OWN = "jacknet-test-own"  # the server a daemon starts itself


def server_runs(name: str) -> bool:
    try:
        jack.Client("hl-probe", servername=name, no_start_server=True).close()
    except jack.JackOpenError:
        return False
    return True


def test_a_daemon_starts_a_missing_server_brings_it_back_and_stops_it_on_the_way_out(tmp_path):
    port = free_port()
    own = (f'start = "if-missing"\ndriver = "dummy"\nrate = {RATE}\nperiod = {PERIOD}\n'
           'no-realtime = true\n')
    assert not server_runs(OWN)
    recv = daemon(tmp_path, "recv", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                  f'[jack]\nname = "hl-recv"\nserver = "{OWN}"\nconnect = "hl-rec:in_.*"\n'
                  f'{own}[receive]\nlatency = 10\n')
    send = ends = None
    try:
        assert wait_for(lambda: server_runs(OWN), 20), "no server came up"
        ends = Ends(OWN)
        send = daemon(tmp_path, "send", f'[link]\nhost = "127.0.0.1"\nport = {port}\n'
                      f'[jack]\nname = "hl-send"\nserver = "{OWN}"\n'
                      f'connect = "hl-sig:out_.*"\n')
        assert ends.exact_for(2, 15) is not None, ends.checker.summary()
        # Its jackd dies: the daemon starts it again, and the link comes back.
        pids = subprocess.run(["pgrep", "-f", f"jackd -n {OWN} "], capture_output=True,
                              text=True).stdout.split()
        assert len(pids) == 1, pids
        os.kill(int(pids[0]), signal.SIGKILL)
        ends.close()
        ends = None
        assert wait_for(lambda: not server_runs(OWN), 10)
        assert wait_for(lambda: server_runs(OWN), 20), "the daemon did not start it again"
        ends = Ends(OWN)
        assert ends.exact_for(1, 15) is not None, ends.checker.summary()
    finally:
        recv.send_signal(signal.SIGTERM)
        recv_err = recv.communicate(timeout=20)[1]
        if ends is not None:
            ends.close()
        if send is not None:
            send.send_signal(signal.SIGTERM)
            send.communicate(timeout=20)
    assert recv.returncode == 0, recv_err
    assert "starting one" in recv_err and "stopping the JACK server we started" in recv_err, \
        recv_err
    assert not server_runs(OWN), "the server it started outlived the daemon"


def test_a_daemon_never_stops_a_server_it_did_not_start(tmp_path):
    with PrivateServer(OWN, RATE, PERIOD, sync=False):
        recv = daemon(tmp_path, "recv", f'[link]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                      f'[jack]\nname = "hl-recv"\nserver = "{OWN}"\nstart = "if-missing"\n'
                      'driver = "dummy"\n')
        probe = jack.Client("hl-probe", servername=OWN, no_start_server=True)
        try:
            assert wait_for(lambda: len(probe.get_ports("hl-recv:")) == 2, 15)
            recv.send_signal(signal.SIGTERM)
            err = recv.communicate(timeout=20)[1]
        finally:
            probe.close()
        assert recv.returncode == 0, err
        assert "starting one" not in err and "stopping the JACK server" not in err, err
        assert server_runs(OWN)
