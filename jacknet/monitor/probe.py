"""``jacknet probe``: the true latency of a link, pulse by pulse, as a histogram.

Like ``jack_delay``, but through jacknet: a client of its own plays a pulse
every half second into a port (a sender's input) and listens on another (a
receiver's output, or the far end's loop back), and measures, in frames,
how long each pulse took from the frame it was played to the frame it came
back.  That is the whole capture-to-playout latency, packetizing, the
network, the jitter margin and the periods included, which no counter on
either side can see alone.

With no ports named it measures this machine's jacknet: a private dummy
JACK server with a sender and a receiver on 127.0.0.1, as ``jacknet demo``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from jacknet.errors import ConfigError
from jacknet.rt.binding import JackClient
from jacknet.rt.engines import Capture
from jacknet.testing.signals import Generator

PULSE_SECONDS = 0.5  # apart: a round trip longer than this would be read short
FOUND = 0.1  # the loudest sample of a pulse window counts from this level (Opus smears it)


@dataclass
class ProbeResult:
    """What a probe measured."""

    rate: int
    period: int
    sent: int
    """Pulses played."""
    frames: list[int]
    """Each returned pulse's latency, in frames."""

    @property
    def missing(self) -> int:
        return max(0, self.sent - len(self.frames))

    def table(self, rows: int = 12, width: int = 40) -> str:
        """The histogram, a line a bin, and a summary line."""
        if not self.frames:
            return (f"probe: none of {self.sent} pulses came back (are the ports right, the "
                    "link running?)")
        ms = 1000.0 / self.rate
        lo, hi = min(self.frames), max(self.frames)
        step = max(1, -(-(hi - lo + 1) // rows))
        bins = Counter((f - lo) // step for f in self.frames)
        most = max(bins.values())
        lines = [f"{'frames':>13} {'ms':>13}  pulses"]
        for b in range(max(bins) + 1):
            a = lo + b * step
            span = f"{a}" if step == 1 else f"{a}-{a + step - 1}"
            n = bins.get(b, 0)
            lines.append(f"{span:>13} {a * ms:13.2f}  {'#' * max(n and 1, n * width // most):<{width}} {n}")
        # The lower middle, not np.median: with an even count that averages
        # two delays a period apart into one that no pulse had.
        median = sorted(self.frames)[(len(self.frames) - 1) // 2]
        lines.append(f"probe: {len(self.frames)} of {self.sent} pulses back, latency min {lo} / "
                     f"median {median} / max {hi} frames = {lo * ms:.2f} / {median * ms:.2f} / "
                     f"{hi * ms:.2f} ms (period {self.period} at {self.rate} Hz)")
        return "\n".join(lines)


def probe_ports(server: str | None, send_port: str, return_port: str, seconds: float,
                stop: threading.Event | None = None) -> ProbeResult:
    """Pulse into ``send_port``, listen on ``return_port``, for ``seconds``
    (or until ``stop`` is set).

    Raises
    ------
    ConfigError
        A port does not exist.
    """
    stop = stop or threading.Event()
    out = JackClient("jacknet-probe-out", server)
    back = JackClient("jacknet-probe-in", server)
    try:
        rate, period = out.samplerate, out.blocksize
        interval = round(PULSE_SECONDS * rate)
        out.register("out", 1, "out")
        pulses = Generator(1, "silence", impulse_interval=interval)
        out.run(pulses)
        back.register("in", 1, "in")
        heard = Capture(1, capacity=1 << 17)
        back.run(heard)
        for client, theirs, what in ((out, send_port, "send"), (back, return_port, "return")):
            ours = "out_1" if client is out else "in_1"
            if not client.connect_own(ours, theirs):
                raise ConfigError(f"--{what} {theirs!r}: no such port on JACK server "
                                  f"'{server or 'default'}' (jack_lsp lists them)")
        stop.wait(0.3)  # the connections settle
        heard.skip()
        start = out.frame_time
        pulses.set_mode("impulse")
        peaks: dict[int, tuple[float, int]] = {}  # pulse window -> (level, frame)
        buf = np.zeros((1, period), np.float32)
        until = time.monotonic() + seconds
        while not stop.wait(0.05) and time.monotonic() < until:
            _listen(heard, buf, interval, peaks)
        end = out.frame_time
        pulses.set_mode("silence")
        stop.wait(PULSE_SECONDS)  # the last pulse's way back
        _listen(heard, buf, interval, peaks)
    finally:
        back.close()
        out.close()
    # Pulses go at frame times that are multiples of the interval.
    sent = (end - 1) // interval - (start - 1) // interval
    return ProbeResult(rate, period, sent, [f % interval for _, f in sorted(peaks.values(),
                                                                          key=lambda p: p[1])])


def _listen(heard: Capture, buf: np.ndarray, interval: int, peaks: dict) -> None:
    """The loudest sample of each pulse window heard so far (a lossy codec
    smears a pulse over several)."""
    while (pos := heard.read_into(buf)) >= 0:
        ft = heard.frame_time_at(pos)
        if ft is None:
            continue
        x = np.abs(buf[0])
        for i in np.flatnonzero(x > FOUND):
            window = (ft + int(i)) // interval
            if x[i] > peaks.get(window, (0.0, 0))[0]:
                peaks[window] = (float(x[i]), ft + int(i))


def probe_here(codec: str, period: int, latency: float, seconds: float,
               stop: threading.Event | None = None) -> ProbeResult:
    """This machine's jacknet: a private dummy server, a sender and a
    receiver on 127.0.0.1, probed from the sender's input to the
    receiver's output."""
    from jacknet.config import ReceiverConfig, SenderConfig
    from jacknet.receiver import Receiver
    from jacknet.sender import Sender
    from jacknet.testing.jackserver import PrivateServer
    with PrivateServer("jacknet-probe-here", period=period, sync=True) as server:
        with Receiver(ReceiverConfig("127.0.0.1", 0, 1, "probe-recv", None, latency,
                                     server.name)) as receiver:
            with Sender(SenderConfig("127.0.0.1", receiver.address[1], 1, "probe-send",
                                     codec=codec, server=server.name)):
                return probe_ports(server.name, "probe-send:in_1", "probe-recv:out_1",
                                   seconds, stop)
