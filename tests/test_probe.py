"""jacknet probe against a client of known delay (jackd2's example
jack_latent_client); on a live link pair it is tested in test_monitor."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import wait_for
from jacknet.monitor.probe import ProbeResult
from jacknet.testing.jackserver import PrivateServer


def test_the_median_is_a_latency_some_pulse_had():
    """Pulses a period apart in even numbers: the median is one of them, not
    their mean (a CI run read 195 frames from pulses at 131 and 259)."""
    table = ProbeResult(48000, 128, 4, [131, 259, 131, 259]).table()
    assert "latency min 131 / median 131 / max 259 frames" in table, table


@pytest.mark.jack
@pytest.mark.skipif(not shutil.which("jack_latent_client"), reason="jackd2's example clients")
def test_probe_measures_a_known_delay_exactly():
    """jackd2's jack_latent_client delays its input by the frames it is
    given."""
    # Synchronous: an asynchronous server plays a client that was late a
    # cycle later (a fresh clone's run: pulses back after 1000 and 1128).
    with PrivateServer("jacknet-test-probe", 48000, 128, sync=True, realtime=True) as server:
        delay = subprocess.Popen(["jack_latent_client", "1000"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL,
                                 env={**os.environ, "JACK_DEFAULT_SERVER": server.name})
        try:
            assert wait_for(lambda: "latent:output" in subprocess.run(
                ["jack_lsp", "-s", server.name], capture_output=True, text=True).stdout, 10)
            out = subprocess.run([sys.executable, "-m", "jacknet", "probe", "--server",
                                  server.name, "--send", "latent:input", "--return",
                                  "latent:output", "--seconds", "2.5"], capture_output=True,
                                 text=True, timeout=30)
        finally:
            delay.terminate()
            delay.wait(10)
    m = re.search(r"probe: (\d+) of (\d+) pulses back, latency min 1000 / median 1000 / max 1000 "
                  r"frames = 20.83 / 20.83 / 20.83 ms", out.stdout)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) >= 4, (out.stdout, out.stderr)
