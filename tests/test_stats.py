"""The stats snapshots: every name documented once, the line and the dict
carry the same names (and the old spellings)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jacknet import ReceiverStats, SenderStats, as_dict, format_line
from jacknet.stats import ALIASES

DOCS = (Path(__file__).parent.parent / "docs" / "stats.md").read_text()


@pytest.mark.parametrize("cls", [SenderStats, ReceiverStats])
def test_every_name_is_documented_with_where_it_is_counted(cls):
    for f in dataclasses.fields(cls):
        row = next((line for line in DOCS.splitlines() if line.startswith(f"| `{f.name}` |")), None)
        assert row is not None, f.name
        assert row.rstrip(" |").split("|")[-1].strip(), f"{f.name}: no owner in docs/stats.md"


def test_the_line_and_the_dict_carry_the_same_names_and_the_old_spellings():
    stats = ReceiverStats(datagrams=3, slack_ms=1.5, malformed={"magic": 2}, refused=None)
    d = as_dict(stats)
    assert d["margin_ms"] == d["slack_ms"] == 1.5 and set(ALIASES) <= set(d)
    line = format_line("recv", stats)
    assert line.startswith("recv: datagrams=3 ") and "slack_ms=1.50" in line
    assert "margin_ms=1.50" in line and "malformed=magic:2" in line and "refused" not in line
