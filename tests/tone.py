"""A tone recorded off a JACK port, and measured: its frequency, its SNR
window by window, and the longest stretch without a hole in the recording."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet.testing.signals import Generator
from jacknet import Receiver, ReceiverConfig
from jacknet import Sender, SenderConfig

TONE = 1000
SIDE = Path(__file__).resolve().parent / "side.py"


@contextlib.contextmanager
def listening(server: str, tag: str, latency_ms: float | None = 5.0,
              **recv_options) -> Iterator[tuple[Capture, Receiver]]:
    """A one-channel receiver on JACK ``server`` whose output a recorder
    captures: yields the recorder's capture and the receiver."""
    with contextlib.ExitStack() as stack:
        rec = JackClient(f"{tag}-rec", server)
        stack.callback(rec.close)
        rec.register("in", 1, "in")
        cap = Capture(1, capacity=1 << 20)
        rec.run(cap)
        recv = Receiver(ReceiverConfig("127.0.0.1", 0, 1, f"{tag}-recv", f"{tag}-rec:in_.*",
                                       latency_ms, server, **recv_options)).start()
        stack.callback(recv.close)
        yield cap, recv


@contextlib.contextmanager
def tone_link(server: str, tag: str, relay=None, latency_ms: float | None = 5.0,
              **sender_options) -> Iterator[tuple[Capture, Receiver]]:
    """A 1 kHz tone -> sender -> (``relay``) -> receiver -> recorder, all on
    one JACK ``server``: yields the recorder's capture and the receiver."""
    with contextlib.ExitStack() as stack:
        cap, recv = stack.enter_context(listening(server, tag, latency_ms))
        target = recv.address
        if relay is not None:
            target = relay.start(target)
            stack.callback(relay.close)
        sig = JackClient(f"{tag}-sig", server)
        stack.callback(sig.close)
        sig.register("out", 1, "out")
        sig.run(Generator(1, "tone", tone_hz=TONE, rate=sig.samplerate))
        sender = Sender(SenderConfig(target[0], target[1], 1, f"{tag}-send", f"{tag}-sig:out_.*",
                                     server=server, **sender_options)).start()
        stack.callback(sender.close)
        yield cap, recv


@contextlib.contextmanager
def side_sender(server: str, port: int, *args: str) -> Iterator[dict]:
    """The tone and a sender on JACK ``server`` in a process of their own
    (`side.py`: one process must not hold clients on two servers), sending
    to 127.0.0.1:``port``.  Yields a dict that holds the sender's stats once
    the block is left."""
    side = subprocess.Popen([sys.executable, str(SIDE), server, f"127.0.0.1:{port}",
                             "--tone-hz", str(TONE), *args], stdout=subprocess.PIPE, text=True)
    stats: dict = {}
    try:
        assert side.stdout.readline().strip() == "ready"
        yield stats
    finally:
        side.terminate()
        try:
            out, _ = side.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # a side that ignores SIGTERM fails the test, not the suite
            side.kill()
            side.communicate()
            raise AssertionError("side.py did not stop within 15 s of SIGTERM") from None
    stats.update(json.loads(out.splitlines()[-1]))


def record(cap: Capture, period: int, seconds: float,
           during: Callable[[], None] | None = None) -> list[np.ndarray]:
    """``seconds`` of a one-channel capture, as the stretches between its
    holes (a cycle the recorder missed: an xrun of its own server, which
    the receiver on it counts too); ``during()`` is called at every poll."""
    cap.skip()
    buf = np.zeros((1, period), np.float32)
    stretches: list[list[np.ndarray]] = [[]]
    start, expected = time.monotonic(), None
    while time.monotonic() - start < seconds:
        time.sleep(0.05)
        if during:
            during()
        while (pos := cap.read_into(buf)) >= 0:
            ft = cap.frame_time_at(pos)
            if expected is not None and ft != expected:
                stretches.append([])
            expected = (ft + period) & 0xFFFFFFFF
            stretches[-1].append(buf[0].copy())
    return [np.concatenate(s) for s in stretches if s]


def frames_per_second(samples: list[tuple[float, int]], start: float = -np.inf,
                      end: float = np.inf) -> float:
    """How fast a JACK server's frames really ran between ``start`` and
    ``end`` (monotonic seconds): the slope of a line through ``samples`` of
    (``time.monotonic()``, its ``frame_time``), the 32-bit wrap undone.  Two
    dummy servers on one busy machine drift apart by hundreds of ppm; a
    test of two clocks compares what the link did with what they did."""
    t = np.array([s[0] for s in samples if start <= s[0] <= end])
    f = np.array([s[1] for s in samples if start <= s[0] <= end], np.int64)
    assert len(t) >= 10, len(t)
    f = f[0] + np.concatenate([[0], np.cumsum(np.diff(f) % (1 << 32))])
    return float(np.polyfit(t - t[0], f - f[0], 1)[0])


def measure(stretches: list[np.ndarray], rate: int, seconds: float,
            window: float = 0.1, hop: float | None = None) -> tuple[float, np.ndarray]:
    """The tone's frequency (over the longest stretch) and the SNR of every
    window of every stretch, once most of ``seconds`` is known to be there."""
    recorded = sum(len(s) for s in stretches)
    assert recorded >= 0.8 * seconds * rate, [len(s) for s in stretches]
    freq = tone_frequency(max(stretches, key=len), rate)
    return freq, np.concatenate([window_snrs_db(s, rate, freq, window, hop) for s in stretches])


def skipped_sample_snr_db(rate: int, freq: float, window: float, hop: float) -> float:
    """The worst window SNR of a clean tone with one sample skipped (about
    30 dB whatever the window): a recording whose windows all stay well above
    it has no skipped or repeated sample."""
    t = np.arange(round(20 * window * rate) + 1)
    x = np.delete(np.sin(2 * np.pi * freq * t / rate), len(t) // 2 + round(0.3 * window * rate))
    return float(window_snrs_db(x, rate, freq, window, hop).min())


def tone_frequency(x: np.ndarray, rate: int) -> float:
    """The tone's frequency, to a small fraction of a bin (Hann window, parabolic peak)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x)


def window_snrs_db(x: np.ndarray, rate: int, freq: float, window: float = 0.1,
                   hop: float | None = None) -> np.ndarray:
    """Each window (of ``window`` seconds, one every ``hop``, by default
    side by side) fitted with a sinusoid near ``freq``: its SNR.
    The t·sin and t·cos terms let the fit follow the small, slow frequency
    wobble of the drift loop; a gap, a click or a skipped sample still shows
    as a bad window.  Short windows follow the wobble more closely, and
    overlapping ones put every sample in the middle of one of them."""
    n = int(window * rate)
    step = int((hop or window) * rate)
    t = np.arange(n) / rate
    s, c = np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)
    basis = np.stack([s, c, t * s, t * c], axis=1)
    out = []
    for i in range(0, len(x) - n + 1, step):
        seg = x[i:i + n].astype(np.float64)
        coef, *_ = np.linalg.lstsq(basis, seg, rcond=None)
        residual = seg - basis @ coef
        out.append(10 * np.log10((seg ** 2).sum() / max((residual ** 2).sum(), 1e-30)))
    return np.array(out)
