"""The views' pure parts: `jacknet top`'s screen from status updates, the
probe's histogram, /metrics' text, the [status] http setting."""
from __future__ import annotations

import pytest

from jacknet.errors import ConfigError
from jacknet.monitor.history import History
from jacknet.monitor.probe import ProbeResult
from jacknet.monitor.top import Screen
from jacknet.monitor.web import http_address, metrics
from jacknet.stats import ReceiverStats, as_dict

T0 = 1_800_000_000.0


def update(peaks, clips, history, now, **stats) -> dict:
    return {"name": "far-room", "role": "recv", "state": "running",
            "summary": "running: JACK server 'default', receiving from 10.0.0.2:4477",
            "stats": as_dict(ReceiverStats(latency_ms=4.67, slack_ms=1.5, **stats)),
            "meters": {"seconds": 0.1, "peak_dbfs": peaks, "rms_dbfs": [p - 4 for p in peaks],
                       "clips": clips},
            "history": history.since()}


def test_top_fits_80_by_24_with_a_meter_a_channel_a_hold_and_a_clip_marker():
    h = History("recv")
    for k in range(40):
        h.observe(as_dict(ReceiverStats(latency_ms=4.0 + (k % 5), lost=k // 4)), T0 + k / 2)
    h.event("outage", "", T0 + 20)
    screen = Screen(unicode=False)
    screen.update(update([-3.0, -20.0], [0, 0], h, 0.0), 0.0)
    screen.update(update([-30.0, -20.0], [0, 5], h, 0.5), 0.5)
    lines = screen.lines(80, 24, 0.6)
    assert len(lines) == 24 and all(len(line) < 80 for line in lines)
    assert lines[0].startswith("far-room [recv] running") and lines[-1] == "q quits"
    ch1 = next(line for line in lines if line.startswith("  1 ["))
    ch2 = next(line for line in lines if line.startswith("  2 ["))
    # Channel 1 fell from -3 dBFS: its hold stays up at -3, right of the bar.
    assert ch1.index("|") > ch1.rindex("=") and ch1.endswith("-30.0  -34.0")
    assert "]C" in ch2 and "]C" not in ch1   # channel 2 clipped
    assert any(line.startswith("latency ms") for line in lines)
    assert any("outage" in line for line in lines)
    # Three seconds on, the hold has followed the meter down and the clip is out.
    screen.update(update([-30.0, -20.0], [0, 5], h, 3.6), 3.6)
    lines = screen.lines(80, 24, 3.6)
    assert "]C" not in next(line for line in lines if line.startswith("  2 ["))


def test_top_says_how_many_channels_a_short_terminal_leaves_out():
    screen = Screen(unicode=True)
    screen.update(update([-6.0] * 16, [0] * 16, History("recv"), 0.0), 0.0)
    lines = screen.lines(80, 24, 0.0)
    shown = [line for line in lines if line[:3].strip().isdigit()]
    assert len(lines) == 24 and 8 <= len(shown) < 16
    assert any(f"{16 - len(shown)} more channel(s)" in line for line in lines)


def test_the_probe_histogram():
    r = ProbeResult(48000, 128, 10, [237] * 7 + [238, 240])
    text = r.table()
    assert "9 of 10 pulses back, latency min 237 / median 237 / max 240 frames" in text
    assert "4.94 / 4.94 / 5.00 ms" in text and r.missing == 1
    assert "none of 4 pulses came back" in ProbeResult(48000, 128, 4, []).table()


def test_metrics_name_every_counter_and_label_channels_and_reasons():
    stats = as_dict(ReceiverStats(packets=12, lost=3, fill_ms=2.5, peak_dbfs=[-6.0, -120.0],
                                  clips=[0, 2], malformed={"short": 4}))
    text = metrics({"name": "r", "role": "recv", "state": "running", "stats": stats,
                    "reconnects": 1, "stalls": 0})
    assert '# TYPE jacknet_packets counter\njacknet_packets{name="r",role="recv"} 12\n' in text
    assert 'jacknet_fill_ms{name="r",role="recv"} 2.5' in text
    assert 'jacknet_peak_dbfs{name="r",role="recv",channel="2"} -120.0' in text
    assert 'jacknet_clips{name="r",role="recv",channel="2"} 2' in text
    assert 'jacknet_malformed{name="r",role="recv",reason="short"} 4' in text
    assert 'jacknet_up{name="r",role="recv"} 1.0' in text


@pytest.mark.parametrize("setting, address", [
    ("off", None), ("on", ("127.0.0.1", 8477)), ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("0.0.0.0", ("0.0.0.0", 8477)), ("[::1]:8000", ("::1", 8000))])
def test_the_http_setting(setting, address):
    assert http_address(setting) == address


def test_a_bad_http_setting_says_what_is_allowed():
    with pytest.raises(ConfigError, match="allowed: off, on, HOST"):
        http_address("localhost:port")


def test_top_shows_a_sender_its_own_figures():
    from jacknet.stats import SenderStats
    h = History("send")
    for k in range(10):
        h.observe(as_dict(SenderStats(packets=375 * k, kbit_s=3072.0)), T0 + k)
    screen = Screen(unicode=True)
    screen.update({"name": "studio", "role": "send", "state": "running",
                   "summary": "running: JACK server 'default', sending to 10.0.0.3:4477",
                   "stats": as_dict(SenderStats(packets=3375, kbit_s=3072.0, xruns=1)),
                   "meters": {"seconds": 0.1, "peak_dbfs": [-12.0], "rms_dbfs": [-18.0],
                              "clips": [0]},
                   "history": h.since()}, 0.0)
    text = "\n".join(screen.lines(80, 24, 0.0))
    assert "kbit_s=3072.00  packets=3375  xruns=1" in text
    assert "kbit/s" in text and "dropped /s" in text and "latency" not in text
