"""Smoke runs of the benchmark scripts (a few seconds, one configuration):
they keep working; their numbers are not judged here."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.jack  # the scripts run private jackd servers

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def test_bench_peers_prints_a_row_per_system():
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_peers.py"), "--seconds", "2",
                        "--rounds", "1", "--periods", "128", "--channels", "2",
                        "--server-name", "jacknet-test-peers",
                        "--only", "jacknet float32", "jacknet opus 5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| jacknet")]
    assert len(rows) == 3, r.stdout  # float32 udp, float32 tcp, opus 5 ms
    assert all(" of " in row and "ms" in row for row in rows), r.stdout


def test_bench_peers_long_run_options_give_a_row_per_latency_and_keep_logs(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_peers.py"), "--seconds", "3",
                        "--rounds", "1", "--periods", "128", "--channels", "2",
                        "--server-name", "jacknet-test-peers", "--latency", "auto", "1",
                        "--only", "jacknet float32 --latency *", "--log-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| jacknet")]
    # UDP only: the pattern must match the whole label, which the tcp rows' does not.
    assert [row.split(" | ")[0] for row in rows] == ["| jacknet float32 --latency auto",
                                                     "| jacknet float32 --latency 1"], r.stdout
    held = [row.split(" | ")[10] for row in rows]  # the latency the receiver held, median / max
    assert all("/" in h and float(h.split("/")[0]) > 0 for h in held), r.stdout
    logs = sorted(p.name for p in tmp_path.glob("*.log"))
    assert len(logs) == 4 and any("receiving on" in (tmp_path / n).read_text() for n in logs), logs
    stats = sorted(p.name for p in tmp_path.glob("*.stats"))  # every stats line, stamped
    assert len(stats) == 4 and all("latency_ms=" in (tmp_path / n).read_text()
                                   for n in stats if n.endswith(".recv.stats")), stats


def test_bench_headless_prints_every_row_measured():
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_headless.py"), "--rounds", "1",
                        "--outage-seconds", "2"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| what")]
    assert len(rows) == 6 and all(row.endswith("| 0 |") for row in rows), r.stdout


def test_bench_seal_prints_a_row_per_codec_and_channel_count():
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_seal.py"), "--packets", "50",
                        "--rounds", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sum(line.startswith("| ") for line in r.stdout.splitlines()) == 1 + 6, r.stdout  # head, rows


def test_bench_callback_prints_a_row_per_channel_count_and_the_follow_cost():
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_callback.py")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sum(line.startswith("| ") for line in r.stdout.splitlines()) == 1 + 4, r.stdout
    assert "jn_follow_cycle" in r.stdout and "jack_transport_query" in r.stdout


def test_profile_packet_prints_both_sides_for_each_codec():
    r = subprocess.run([sys.executable, str(SCRIPTS / "profile_packet.py"), "--packets", "100",
                        "--rounds", "1", "--only", "float32/2", "opus/2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| float32 | 2 ")
            or line.startswith("| opus | 2 ")]
    assert len(rows) == 4, r.stdout  # a receiver and a sender row each


def test_bench_worker_prints_a_row_per_configuration_and_code(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_worker.py"), "--seconds", "1",
                        "--rounds", "1", "--only", "float32/2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| float32 | 2 | this")]
    assert len(rows) == 1 and "-" not in rows[0].split("|")[4], r.stdout
