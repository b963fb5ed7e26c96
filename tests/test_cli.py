"""Bad flags: one line, exit 2, no traceback.  No server: says how to start one."""
from __future__ import annotations

import subprocess
import sys

import pytest



def jacknet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jacknet", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args", [
    ["send"],                                        # missing destination
    ["send", "h:1", "--channels", "0"],
    ["send", "h:1", "--channels", "65"],
    ["send", "h:1", "--channels", "two"],
    ["send", "h:1", "--codec", "mp3"],
    ["send", "h:1", "--mtu", "100"],
    ["send", "h:1", "--mtu", "big"],
    ["send", "h:1", "--frames-per-packet", "9000"],
    ["send", "h:99999"],
    ["send", "h:"],
    ["send", "h:0"],
    ["send", "[::1"],
    ["recv", "--latency", "-3"],
    ["recv", "--latency", "5000"],
    ["recv", "--latency", "automatic"],
    ["demo", "--latency", "auto"],                  # the demo checks bit for bit: no resampling
    ["recv", "--connect", "("],                     # bad regex, found once JACK is up
    ["recv", ":70000"],
    ["frobnicate"],
    ["send", "h:1", "--no-such-flag"],
    ["send", "h:1", "--redundancy", "9"],
    ["send", "h:1", "--bitrate", "64"],                              # not with float32
    ["send", "h:1", "--codec", "opus", "--opus-frame", "3"],
    ["send", "h:1", "--codec", "opus", "--bitrate", "1000"],
    ["send", "h:1", "--codec", "opus", "--bitrate", "fast"],
    ["send", "h:1", "--codec", "opus", "--complexity", "11"],
    ["send", "h:1", "--codec", "opus", "--fec"],                     # lowdelay has no FEC
    ["send", "h:1", "--codec", "opus", "--fec", "--application", "voip"],  # 5 ms frames: no SILK
    ["send", "h:1", "--codec", "opus", "--expected-loss", "10"],     # without --fec
    ["send", "h:1", "--codec", "opus", "--frames-per-packet", "256"],
    ["recv", "--driver", "dummy"],                   # describes a server we start: needs --start
    ["recv", "--start", "if-missing", "--driver", "dummy", "--device", "hw:0"],
    ["recv", "--start", "sometimes"],
    ["recv", "--security", "tls"],
    ["recv", "--security", "psk"],                   # no key given, no credential
    ["recv", "--security", "psk", "--key-file", "/nonexistent/link.key"],
    ["send", "h:1", "--key-file", "/nonexistent/link.key"],          # without --security psk
    ["recv", "--allow", "10.0.0.0/33"],
    ["recv", "--allow", ","],
    ["recv", "--timebase"],                          # without --follow-transport
    ["recv", "--follow-transport", "--transport-tolerance", "0"],
    ["send", "h:1", "--follow-transport"],           # a receiver's option
])
def test_bad_flags_exit_2_with_one_line(args):
    r = jacknet(*args, "--server", "jacknet-test-none")
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_no_server_says_how_to_start_one():
    r = jacknet("recv", "127.0.0.1:0", "--server", "jacknet-test-none")
    assert r.returncode == 1
    assert "no JACK server named 'jacknet-test-none'" in r.stderr and "jackd" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_jack_server_that_will_not_start_is_said_in_one_line_and_exits_1():
    r = jacknet("recv", "127.0.0.1:0", "--server", "jacknet-test-none", "--start", "if-missing",
                "--driver", "alsa", "--device", "hw:jacknet-no-such-card", "--no-realtime")
    assert r.returncode == 1, r.stderr
    assert "could not start the JACK server: jackd -n jacknet-test-none exited at start" \
        in r.stderr.strip().splitlines()[-1], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.jack
def test_a_port_the_server_refuses_is_said_in_one_line_and_exits_1():
    """A server at its port limit (or shutting down) refuses a port: a clear
    line, never a traceback (a daemon tries again instead)."""
    import shutil
    import signal
    name = "jacknet-test-portmax"
    jackd = subprocess.Popen([shutil.which("jackd"), "-n", name, "--port-max", "8",
                              "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = None
        for _ in range(50):  # until the server takes clients (it says "no JACK server" before)
            r = jacknet("recv", "127.0.0.1:0", "--server", name, "--channels", "16")
            if "no JACK server" not in r.stderr:
                break
        assert r.returncode == 1, r.stderr
        assert "JACK refused a port of client" in r.stderr and "--port-max" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        jackd.send_signal(signal.SIGTERM)
        jackd.wait(10)


def test_keygen_writes_a_key_that_a_loose_mode_makes_unusable(tmp_path):
    key = tmp_path / "link.key"
    r = jacknet("keygen", str(key))
    assert r.returncode == 0 and oct(key.stat().st_mode & 0o777) == "0o600", r.stderr
    again = jacknet("keygen", str(key))
    assert again.returncode == 2 and "not overwritten" in again.stderr
    key.chmod(0o640)
    r = jacknet("recv", "127.0.0.1:0", "--security", "psk", "--key-file", str(key),
                "--server", "jacknet-test-none")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"may be read by others (mode 0640): chmod 600 {key}" in r.stderr
    assert key.read_text().strip() not in r.stderr + r.stdout


def test_probe_wants_both_ports_or_neither():
    out = subprocess.run([sys.executable, "-m", "jacknet", "probe", "--send", "a:in_1"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "give --send and --return together" in out.stderr
