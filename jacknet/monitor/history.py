"""The last ten minutes of a link, a row a second, and what happened in them.

The daemon's `Supervisor` owns one `History` for its whole life (nodes come
and go with JACK; the history stays) and hands it a stats snapshot a few
times a second (`History.observe`).  A row a second keeps the gauges as
they were (latency, fill, drift ...) and the counters as what they grew by
in that second (lost, xruns ...).  Events are what a person looking back
wants marked on the timeline: an xrun, a re-sync, an outage, JACK going
away.  Counter events are found here, from the counters' growth; the
Supervisor adds the ones only it sees (`History.event`).

Pure: the clock is the caller's, so it is tested on a simulated one.
Written by the Supervisor's thread; the status threads read it through
`History.since`, which copies under a lock.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass

SECONDS = 600
MAX_EVENTS = 1000

# Per side: the gauges kept as they are, and the counters kept as their growth.
GAUGES = {
    "recv": ("latency_ms", "target_ms", "slack_ms", "fill_ms", "jitter_ms", "drift_ppm",
             "outage_ms", "peak_dbfs", "rms_dbfs"),
    "send": ("kbit_s", "peak_dbfs", "rms_dbfs"),
}
COUNTERS = {
    "recv": ("packets", "lost", "late", "revived", "fec_recovered", "plc_concealed",
             "concealed_frames", "underruns", "outages", "xruns"),
    "send": ("packets", "dropped_frames", "missed_packets", "send_errors", "queue_dropped", "xruns"),
}
# Counters whose growth is an event of its own: counter -> event kind.
COUNTER_EVENTS = {"xruns": "xrun", "relocks": "relock", "loosened": "loosen",
                  "tightened": "tighten", "leaps": "leap", "transport_changes": "transport"}


@dataclass(frozen=True)
class Event:
    """One thing that happened, at ``t`` (seconds since the epoch)."""

    n: int
    """Its number: 1, 2, 3 ... for the life of the daemon."""
    t: float
    kind: str
    """From the counters: xrun, relock, loosen, tighten, leap, transport (a start,
    stop or locate), outage, outage-end.  From the Supervisor: jack-gone,
    jack-back, jack-format, stall, sender (another one is heard), peer,
    reload."""
    detail: str = ""


class History:
    """Rows of one second and events, for one side (``send`` or ``recv``)."""

    def __init__(self, side: str, seconds: int = SECONDS) -> None:
        self.side = side
        self.columns = ("t",) + GAUGES[side] + COUNTERS[side]
        self._rows: deque[tuple] = deque(maxlen=seconds)
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._rows_made = 0  # rows ever made: a reader asks for those after its last
        self._events_made = 0
        self._counted: dict[str, int] = {}  # counter values at the start of this row
        self._seen: dict[str, int] = {}  # counter values at the last observe
        self._row_end: float | None = None
        self._outage_said = False
        self._lock = threading.Lock()

    def observe(self, stats: dict, now: float) -> list[Event]:
        """Take a stats snapshot (``stats.as_dict``) at ``now`` (seconds since
        the epoch); returns the events it shows.  Call a few times a second."""
        new = []
        for counter, kind in COUNTER_EVENTS.items():
            grew = _growth(self._seen.get(counter), stats.get(counter))
            if grew:
                new.append(self.event(kind, f"{grew} more" if grew > 1 else "", now))
        new += self._outage_events(stats, now)
        self._seen = {k: v for k, v in stats.items() if isinstance(v, int)}
        if self._row_end is None:
            self._row_end = now + 1.0
            self._counted = dict(self._seen)
        elif now >= self._row_end:
            self._row(stats, now)
        return new

    def _outage_events(self, stats: dict, now: float) -> list[Event]:
        """An outage starts when one is seen going on, and ends when the count
        of ended ones grows; one that began and ended between two looks gets
        both events then."""
        out = []
        if _growth(self._seen.get("outages"), stats.get("outages")):
            if not self._outage_said:
                out.append(self.event("outage", "", now))
            ms = stats.get("last_outage_ms")
            out.append(self.event("outage-end", f"{ms:.0f} ms without packets" if ms else "",
                                  now))
            self._outage_said = False
        if not self._outage_said and stats.get("outage_ms") is not None:
            out.append(self.event("outage", "", now))
            self._outage_said = True
        return out

    def event(self, kind: str, detail: str = "", now: float = 0.0) -> Event:
        """Mark something that happened at ``now``."""
        with self._lock:
            self._events_made += 1
            e = Event(self._events_made, round(now, 3), kind, detail)
            self._events.append(e)
        return e

    def _row(self, stats: dict, now: float) -> None:
        gauges = tuple(stats.get(k) for k in GAUGES[self.side])
        grown = tuple(_growth(self._counted.get(k), stats.get(k)) for k in COUNTERS[self.side])
        with self._lock:
            self._rows.append((round(now, 3),) + gauges + grown)
            self._rows_made += 1
        self._counted = dict(self._seen)
        self._row_end = max(self._row_end + 1.0, now + 0.5)

    def since(self, rows: int = 0, events: int = 0) -> dict:
        """What a reader has not seen: the rows after the first ``rows`` ever
        made and the events numbered above ``events`` (0, 0: everything
        kept).  Its ``rows_made`` and ``events_made`` are what to ask with
        next time."""
        with self._lock:
            new_rows = min(self._rows_made - rows, len(self._rows))
            out_rows = list(self._rows)[len(self._rows) - new_rows:] if new_rows > 0 else []
            out_events = [asdict(e) for e in self._events if e.n > events]
            made = (self._rows_made, self._events_made)
        return {"columns": list(self.columns), "rows": [list(r) for r in out_rows],
                "events": out_events, "rows_made": made[0], "events_made": made[1]}


def _growth(before, after) -> int:
    """How much a counter grew; a counter that went back (a rebuilt node
    counts from zero again) grew by its new value."""
    if not isinstance(after, int) or isinstance(after, bool):
        return 0
    if before is None:
        return 0
    return after - before if after >= before else after

