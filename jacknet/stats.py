"""Counters and their one-line rendering; rate-limited logging of bad input."""
from __future__ import annotations

import logging
import time


def format_line(side: str, stats: dict) -> str:
    """Render a stats dict as ``side: key=value ...`` (None values left out)."""
    parts = []
    for key, value in stats.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}"
        elif isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in value.items()) or "0"
        parts.append(f"{key}={value}")
    return f"{side}: " + " ".join(parts)


class RateLimitedLog:
    """Log the first occurrence of each kind of event, then at most one
    summary per ``interval`` seconds, so a flood of garbage cannot flood the log."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._seen: set[str] = set()
        self._suppressed = 0
        self._last = 0.0

    def __call__(self, kind: str, message: str, *args) -> None:
        now = time.monotonic()
        if kind not in self._seen:
            self._seen.add(kind)
            self.logger.warning(message, *args)
        elif now - self._last >= self.interval:
            extra = f" ({self._suppressed} similar events not logged)" if self._suppressed else ""
            self.logger.warning(message + extra, *args)
            self._suppressed = 0
            self._last = now
        else:
            self._suppressed += 1
