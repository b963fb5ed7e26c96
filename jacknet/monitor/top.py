"""``jacknet top``: a daemon's link in a terminal, live.

A meter per channel (the last tenth of a second, with a peak hold and a
clip marker), sparklines of latency, slack and loss over the last minutes,
the counters that matter, and the latest events.  It reads the daemon's
status socket (``subscribe``), so it works wherever the socket does, over
ssh too, and costs the daemon one more reader.  Fits 80x24; ``q`` quits.

`Screen` is the pure part: updates in, lines of text out (tested without a
terminal); `run_top` is the curses loop around it.
"""
from __future__ import annotations

import contextlib
import curses
import locale
import sys
import threading
import time
from collections import deque
from pathlib import Path

from jacknet.monitor.levels import FLOOR_DBFS

METER_FLOOR_DBFS = -60.0  # the left end of a meter
HOLD_SECONDS = 2.0  # a peak hold stays this long, then follows the meter down
CLIP_SECONDS = 3.0  # a clip marker stays lit this long after the last clip
SPARK = " ▁▂▃▄▅▆▇█"
SPARK_ASCII = " .:-=+*#%@"
EVENTS_KEPT = 50


class Screen:
    """What `jacknet top` shows, from the daemon's updates.

    Parameters
    ----------
    unicode : bool
        Draw sparklines with block characters (else ASCII).
    """

    def __init__(self, unicode: bool = True) -> None:
        self.spark = SPARK if unicode else SPARK_ASCII
        self.status: dict = {}
        self.columns: list[str] = []
        self.rows: deque[list] = deque(maxlen=600)
        self.events: deque[dict] = deque(maxlen=EVENTS_KEPT)
        self.hold: list[tuple[float, float]] = []  # (level, until) per channel
        self.clip_until: list[float] = []
        self._clips: list[int] = []
        self.gone: str | None = None  # why there are no more updates

    def update(self, update: dict, now: float) -> None:
        """Take one update from the status socket (at ``now``, monotonic seconds)."""
        self.status = update
        h = update.get("history")
        if h:
            self.columns = h["columns"]
            self.rows.extend(h["rows"])
            self.events.extend(h["events"])
        meters = update.get("meters")
        if meters:
            self._meters(meters, now)

    def _meters(self, meters: dict, now: float) -> None:
        peaks, clips = meters["peak_dbfs"], meters["clips"]
        if len(self.hold) != len(peaks):
            self.hold = [(FLOOR_DBFS, 0.0)] * len(peaks)
            self.clip_until = [0.0] * len(peaks)
            self._clips = list(clips)
        for ch, peak in enumerate(peaks):
            held, until = self.hold[ch]
            if peak >= held or now >= until:
                self.hold[ch] = (peak, now + HOLD_SECONDS)
            if clips[ch] > self._clips[ch]:
                self.clip_until[ch] = now + CLIP_SECONDS
        self._clips = list(clips)

    def lines(self, width: int, height: int, now: float) -> list[str]:
        """The screen, ``height`` lines of at most ``width`` characters."""
        s = self.status
        stats = s.get("stats") or {}
        out = [f"{s.get('name') or '?'} [{s.get('role', '?')}] {s.get('summary', 'waiting')}"]
        if self.gone:
            out.append(f"no updates: {self.gone}")
        out.append(_figures(s.get("role"), stats))
        meters = s.get("meters")
        spark_rows = self._sparks(s.get("role"), width)
        counters = _counters(s.get("role"), stats)
        least_events = 3
        room = height - len(out) - 1 - len(spark_rows) - len(counters) - 1 - least_events - 1
        out += self._meter_lines(meters, width, max(1, room), now)
        out += spark_rows
        out += counters
        out.append("events:" + ("" if self.events else " none yet"))
        n_events = max(least_events, height - 1 - len(out))  # the newest, as many as fit
        for e in list(self.events)[-n_events:][::-1]:
            out.append(f"  {time.strftime('%H:%M:%S', time.localtime(e['t']))} {e['kind']}"
                       + (f": {e['detail']}" if e["detail"] else ""))
        while len(out) < height - 1:
            out.append("")
        out = out[:height - 1]
        out.append("q quits")
        return [line[:width - 1] for line in out]

    def _meter_lines(self, meters: dict | None, width: int, room: int, now: float) -> list[str]:
        if not meters:
            return ["levels: none yet (the first tenth of a second is being metered)"]
        peaks, rms = meters["peak_dbfs"], meters["rms_dbfs"]
        n = len(peaks)
        shown = n if n <= room else room - 1
        bar = max(10, width - 30)
        out = []
        for ch in range(shown):
            held = self.hold[ch][0] if ch < len(self.hold) else peaks[ch]
            clip = ch < len(self.clip_until) and now < self.clip_until[ch]
            out.append(f"{ch + 1:3d} {_bar(peaks[ch], rms[ch], held, bar)}"
                       f"{'C' if clip else ' '} {_db(peaks[ch])} {_db(rms[ch])}")
        if shown < n:
            out.append(f"    ... {n - shown} more channel(s); a taller terminal shows them")
        return out

    def _sparks(self, role: str | None, width: int) -> list[str]:
        names = (("latency_ms", "latency ms"), ("slack_ms", "slack ms"), ("lost", "lost /s")) \
            if role == "recv" else (("kbit_s", "kbit/s"), ("dropped_frames", "dropped /s"))
        out = []
        span = width - 30
        for column, label in names:
            if column not in self.columns:
                continue
            k = self.columns.index(column)
            values = [row[k] for row in list(self.rows)[-span:]]
            known = [v for v in values if v is not None]
            lo, hi = (min(known), max(known)) if known else (0, 0)
            out.append(f"{label:<11}{_spark(values, lo, hi, self.spark):<{span}} "
                       f"{_num(lo)}..{_num(hi)}")
        return out


def _bar(peak: float, rms: float, held: float, width: int) -> str:
    """``[####====   |   ]``: RMS solid, peak lighter, the hold a bar."""
    def at(db: float) -> int:
        x = (db - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS
        return max(0, min(width, round(x * width)))
    r, p, h = at(rms), at(peak), min(at(held), width - 1)
    cells = ["#"] * r + ["="] * (p - r) + [" "] * (width - p)
    if held > METER_FLOOR_DBFS:
        cells[h] = "|"
    return "[" + "".join(cells) + "]"


def _spark(values: list, lo: float, hi: float, glyphs: str) -> str:
    top = len(glyphs) - 1
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif hi <= lo:
            out.append(glyphs[1] if v else glyphs[0])
        else:
            out.append(glyphs[1 + round((v - lo) / (hi - lo) * (top - 1))])
    return "".join(out)


def _db(value: float) -> str:
    return "  -inf" if value <= FLOOR_DBFS else f"{value:6.1f}"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, int) else f"{value:.2f}"


def _figures(role: str | None, stats: dict) -> str:
    if role == "send":
        keys = ("kbit_s", "packets", "xruns")
    else:
        keys = ("latency_ms", "target_ms", "slack_ms", "fill_ms", "jitter_ms", "drift_ppm")
    return "  ".join(f"{k}={_num(stats[k])}" for k in keys if stats.get(k) is not None)


def _counters(role: str | None, stats: dict) -> list[str]:
    if role == "send":
        keys = ("packets", "send_errors", "queue_dropped", "dropped_frames", "xruns",
                "transport_changes")
    else:
        keys = ("packets", "lost", "late", "revived", "concealed_frames", "underruns",
                "relocks", "loosened", "outages", "outages_last_minute", "xruns", "strays")
    words = [f"{k}={stats[k]}" for k in keys if stats.get(k) is not None]
    half = (len(words) + 1) // 2
    return [" ".join(words[:half]), " ".join(words[half:])]


def run_top(path: Path) -> int:
    """The curses loop: a reader thread takes updates, the screen is drawn
    ten times a second; 0 when ``q`` is pressed, 1 if nothing answers."""
    from jacknet.service.status import subscribe
    updates = subscribe(path)
    try:
        first = next(updates)
    except (OSError, StopIteration, ValueError) as e:
        print(f"jacknet top: {path}: no answer ({getattr(e, 'strerror', None) or e})",
              file=sys.stderr)
        return 1
    locale.setlocale(locale.LC_ALL, "")
    screen = Screen(unicode=locale.getpreferredencoding(False).lower().replace("-", "") == "utf8")
    screen.update(first, time.monotonic())
    lock = threading.Lock()

    def read() -> None:
        try:
            for update in updates:
                with lock:
                    screen.update(update, time.monotonic())
            why = "the daemon closed its status socket"
        except (OSError, ValueError) as e:
            why = str(e)
        with lock:
            screen.gone = why

    threading.Thread(target=read, name="jacknet-top", daemon=True).start()
    return curses.wrapper(_draw_loop, screen, lock)


def _draw_loop(win, screen: Screen, lock: threading.Lock) -> int:
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    win.timeout(100)
    while True:
        height, width = win.getmaxyx()
        with lock:
            lines = screen.lines(width, height, time.monotonic())
        win.erase()
        for y, line in enumerate(lines):
            with contextlib.suppress(curses.error):  # the bottom-right cell
                win.addstr(y, 0, line)
        win.refresh()
        key = win.getch()
        if key in (ord("q"), ord("Q")):
            return 0
