"""Log lines that fit where they go.

Under systemd, stderr goes to the journal (systemd then sets
``$JOURNAL_STREAM``): each line starts with a syslog level prefix (``<3>``
error ... ``<7>`` debug, sd-daemon(3)), which journald turns into the
entry's priority, and carries no timestamp, since the journal stamps every
entry itself.  On a terminal a line has its own time and level name.
"""
from __future__ import annotations

import logging
import os

# logging level -> syslog priority (sd-daemon(3): SD_ERR .. SD_DEBUG)
PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
              logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    """``<P>name: message``, one line per event (a traceback's lines joined)."""

    def format(self, record: logging.LogRecord) -> str:
        priority = PRIORITIES.get(record.levelno, 6 if record.levelno > logging.DEBUG else 7)
        text = super().format(record).replace("\n", " | ")
        return f"<{priority}>{record.name}: {text}"


def to_journal(environ=None) -> bool:
    """True when stderr is the journal's stream (``$JOURNAL_STREAM`` names its
    device and inode)."""
    env = os.environ if environ is None else environ
    stream = env.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def setup(verbose: bool) -> None:
    """Configure the root logger for wherever stderr goes."""
    handler = logging.StreamHandler()
    handler.setFormatter(JournalFormatter("%(message)s") if to_journal()
                         else logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
