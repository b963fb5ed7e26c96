"""Seeing the link, against real daemons on a private jackd (jacknet.testing.scene):
the history and its subscription over the status socket, an outage counted
and logged once, ``jacknet top`` in a real terminal (tmux), the status page
in a real browser (headless Chromium), and /metrics."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for
from relay import UdpRelay
from jacknet.monitor.levels import FLOOR_DBFS
from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet.service.status import query, subscribe
from jacknet.testing.jackserver import PrivateServer
from jacknet.testing.scene import Scene
from jacknet.testing.verify import SignalChecker

pytestmark = pytest.mark.jack

ARTIFACTS = Path(os.environ.get("JACKNET_ARTIFACTS", Path(__file__).parent.parent / "artifacts"))
CUT_SECONDS = 0.4


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 4-channel link, the signal on its first two channels, through a relay."""
    relay = UdpRelay()
    directory = tmp_path_factory.mktemp("scene")
    with Scene(directory, "jacknet-test-monitor", http=True,
               via=lambda port: relay.start(("127.0.0.1", port))[1]) as s:
        s.relay = relay
        yield s
    relay.close()


SIGNAL = [-6.0, -6.0, FLOOR_DBFS, FLOOR_DBFS]   # the known signal on channels 1 and 2


def playing(scene) -> bool:
    """The receiver plays the signal again (after an earlier test's outage)."""
    return wait_for(lambda: (query(scene.recv_socket)["meters"] or {}).get("peak_dbfs") == SIGNAL,
                    5)


def test_an_outage_is_counted_marked_and_logged_once(scene):
    before = query(scene.recv_socket)["stats"]["outages"]
    time.sleep(1.0)
    cut = time.monotonic()
    scene.relay.impair(loss=1.0)
    time.sleep(CUT_SECONDS)
    scene.relay.impair(loss=0.0)
    cut = time.monotonic() - cut
    assert wait_for(lambda: query(scene.recv_socket)["stats"]["outages"] == before + 1, 5)
    stats = query(scene.recv_socket)["stats"]
    # The gap the receiver measured is the cut, give or take a packet either
    # side and what the relay and this process were held up by.
    assert CUT_SECONDS - 0.01 <= stats["last_outage_ms"] / 1000 <= cut + 0.2, (stats, cut)
    assert stats["outages_last_minute"] >= 1 and stats["outage_ms"] is None
    def kinds() -> list[str]:
        return [e["kind"] for e in query(scene.recv_socket, request="history")["history"]["events"]]
    assert wait_for(lambda: "outage-end" in kinds(), 2), kinds()
    assert kinds().index("outage") < kinds().index("outage-end")
    said = [line for line in scene.log("recv").read_text().splitlines() if "outage:" in line]
    assert len(said) == 1 and "ms without packets from 127.0.0.1:" in said[0], said


def test_the_subscription_streams_history_and_meters_that_move_with_the_signal(scene):
    assert playing(scene)
    updates = subscribe(scene.recv_socket)
    first = next(updates)
    h = first["history"]
    assert h["columns"][:2] == ["t", "latency_ms"] and len(h["rows"]) >= 1
    assert first["meters"]["peak_dbfs"] == SIGNAL
    scene.signal.set_mode("silence")
    try:
        seen = []
        start = time.monotonic()
        for update in updates:
            seen.append(update)
            if update["meters"]["peak_dbfs"] == [FLOOR_DBFS] * 4 or time.monotonic() - start > 5:
                break
        assert seen[-1]["meters"]["peak_dbfs"] == [FLOOR_DBFS] * 4
        # Updates after the first carry only rows and events not sent before.
        later_rows = [r[0] for u in seen for r in u["history"]["rows"]]
        assert later_rows == sorted(set(later_rows))
        assert all(t > h["rows"][-1][0] for t in later_rows)
    finally:
        scene.signal.set_mode("noise")
        updates.close()


def test_metrics_are_prometheus_text_with_every_counter(scene):
    def scrape() -> dict:
        with urllib.request.urlopen(scene.http_url + "metrics", timeout=5) as answer:
            text = answer.read().decode()
        samples = {}
        for line in text.splitlines():
            if line.startswith("#"):
                assert re.fullmatch(r"# TYPE jacknet_\w+ (counter|gauge)", line), line
                continue
            m = re.fullmatch(r'(jacknet_\w+)\{name="scene-recv",role="recv"(,\w+="[^"]*")?\} '
                             r'(-?[0-9.e+-]+|nan|inf)', line)
            assert m, line
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return samples
    assert playing(scene)
    a = scrape()
    time.sleep(0.5)
    b = scrape()
    assert b["jacknet_packets"] > a["jacknet_packets"] and b["jacknet_up"] == 1
    assert b['jacknet_peak_dbfs,channel="1"'] == -6.0
    assert b['jacknet_peak_dbfs,channel="4"'] == FLOOR_DBFS
    post = urllib.request.Request(scene.http_url + "metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=5)
    refused.value.close()
    assert refused.value.code == 501   # read-only: GET and HEAD only


def test_probe_measures_a_live_link_pair_pulse_by_pulse(scene):
    """On a silent channel of the running link: a pulse into the sender's
    input comes back on the receiver's output, at the delay the known
    signal on channel 1 has (found by content, not by pulses) meanwhile."""
    assert playing(scene)
    rec = JackClient("probe-check", scene.server.name)
    try:
        rec.register("in", 1, "in")
        recorded = Capture(1, capacity=1 << 17)
        rec.run(recorded)
        assert rec.connect_own("in_1", "scene-recv:out_1")
        checker = SignalChecker(recorded, 0.0, 128, 48000)
        before = query(scene.recv_socket)["stats"]
        probe = subprocess.Popen([sys.executable, "-m", "jacknet", "probe", "--server",
                                  scene.server.name, "--send", "scene-send:in_3", "--return",
                                  "scene-recv:out_3", "--seconds", "3"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        while probe.poll() is None:
            time.sleep(0.05)
            checker.poll()
        out, err = probe.communicate()
        checker.poll()
        after = query(scene.recv_socket)["stats"]
    finally:
        rec.close()
    assert probe.returncode == 0, (out, err, checker.summary())
    m = re.search(r"probe: (\d+) of (\d+) pulses back, latency min (\d+) / median (\d+) / "
                  r"max (\d+) frames", out)
    assert m, out
    back, sent, lo, median, hi = map(int, m.groups())
    assert sent >= 5 and (back == sent or after["xruns"] > before["xruns"]), out
    delays = {seg.delay for seg in checker.segments if seg.delay is not None}
    moved = {k: after[k] - before[k] for k in ("xruns", "relocks") if after[k] != before[k]}
    # A link that xruns and relocks meanwhile plays some pulses at delays it
    # held too briefly for the content checker to see (a run with 140 xruns
    # and 19 segments: a pulse at 78 frames); its usual delay is still the
    # probe's median.
    measured = {median} if moved else {lo, median, hi}
    assert measured <= delays, (out, checker.summary(), delays, moved)


@pytest.mark.skipif(not shutil.which("tmux"), reason="scripts/test installs tmux")
def test_top_in_a_real_terminal_of_80_by_24(scene):
    assert playing(scene)
    session = f"jacknet-top-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"{sys.executable} -m jacknet top --socket {scene.recv_socket}; sleep 30"],
                   check=True, env={**os.environ, "LANG": "C.UTF-8"})
    try:
        def screen() -> list[str]:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout.splitlines()

        def meters_of(lines: list[str]) -> dict[int, str]:
            return {int(line[:3]): line for line in lines if re.match(r"  \d \[", line)}

        def steady(lines: list[str]) -> bool:
            """Channels 1 and 2 show the tone's levels (a tenth that held a
            gap, an outage or a relock as in run 21, reads quieter), and the
            history has a second to draw."""
            meters = meters_of(lines)
            return all(ch in meters and meters[ch].split()[-2:] in (
                ["-6.0", "-10.8"], ["-6.0", "-10.9"], ["-6.0", "-10.7"]) for ch in (1, 2)) \
                and any(re.match(r"latency ms .* \d+\.\d\d\.\.\d+\.\d\d$", line)
                        for line in lines)

        lines: list[str] = []

        def steady_now() -> bool:
            lines[:] = screen()
            return steady(lines)

        assert wait_for(steady_now, 10), "\n".join(lines)
        text = "\n".join(lines)
        assert lines[0].startswith("scene-recv [recv] running: JACK server")
        meters = meters_of(lines)
        assert set(meters) == {1, 2, 3, 4}, text
        for ch in (1, 2):
            assert "#" in meters[ch] and "|" in meters[ch]
        for ch in (3, 4):
            assert meters[ch].split()[-2:] == ["-inf", "-inf"] and "#" not in meters[ch]
        assert re.search(r"\bpackets=\d+ lost=\d+", text) and "outages=" in text
        assert "events:" in text and lines[-1] == "q quits"
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "top.txt").write_text(text + "\n")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        # q ends jacknet top; the shell then runs the sleep, an empty screen.
        assert wait_for(lambda: not any("q quits" in line for line in screen()), 5), screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


CHROMIUM = shutil.which("chromium")


def chromium(url: str, profile: Path, *args: str) -> str:
    """Load ``url`` in headless Chromium for a few seconds of its own time."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-quic", "--no-first-run", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={profile}", "--virtual-time-budget=3000", *args,
                          url], capture_output=True, text=True, timeout=60)
    return out.stdout


def page_meters(dom: str) -> dict[int, float]:
    """Channel -> the peak the page shows (its own DOM, as its script drew it)."""
    return {int(ch): float(db) for ch, db in
            re.findall(r'id="meter-(\d+)"[^>]*data-peak-dbfs="(-?[\d.]+)"', dom)}


DISTURBANCES = ("underruns", "relocks", "late", "xruns")


def page_while_undisturbed(scene, tmp_path: Path, peaks: list[float]) -> str:
    """Load the page until it shows ``peaks`` (dBFS per channel); a load
    during which the receiver counted a disturbance (the browser starting
    beside it on this 2-core machine) is tried again, up to three times.
    Returns the page as its script left it."""
    for _ in range(3):
        assert wait_for(lambda: query(scene.recv_socket)["meters"]["peak_dbfs"] == peaks, 5)
        before = query(scene.recv_socket)["stats"]
        dom = chromium(scene.http_url, tmp_path / "profile", "--dump-dom")
        after = query(scene.recv_socket)["stats"]
        shown = page_meters(dom)
        if shown == dict(enumerate(peaks, 1)):
            return dom
        if all(after[k] == before[k] for k in DISTURBANCES):
            break   # an undisturbed link, and the page shows something else
    raise AssertionError((shown, peaks, dom[:2000]))


@pytest.mark.skipif(not CHROMIUM, reason="scripts/test installs chromium")
def test_the_status_page_in_a_real_browser_shows_meters_that_move_with_the_signal(scene,
                                                                                  tmp_path):
    dom = page_while_undisturbed(scene, tmp_path, SIGNAL)
    assert "scene-recv [recv]" in dom and 'id="stat-packets"' in dom
    scene.signal.set_mode("silence")
    try:
        assert wait_for(lambda: query(scene.recv_socket)["meters"]["peak_dbfs"][0] == FLOOR_DBFS,
                        5)
        page_while_undisturbed(scene, tmp_path, [FLOOR_DBFS] * 4)
    finally:
        scene.signal.set_mode("noise")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "page.png"
    time.sleep(1.0)
    chromium(scene.http_url, tmp_path / "profile", f"--screenshot={shot}",
             "--window-size=1100,820")
    assert shot.exists() and shot.stat().st_size > 10_000

