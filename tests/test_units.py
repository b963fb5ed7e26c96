"""The systemd units in systemd/ pass ``systemd-analyze verify`` (scripts/setup
installs Debian's systemd for it), with no warning, as instances, once
ExecStart names where jacknet is installed here."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
SHIPPED = "/usr/local/bin/jacknet"


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*@.service")))
def test_the_unit_verifies_without_a_warning(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/setup installs Debian's systemd"
    text = (UNITS / unit).read_text()
    if "jacknet-jackd" not in unit:
        assert f"ExecStart={SHIPPED} " in text
    here = Path(sys.executable).parent / "jacknet"
    (tmp_path / unit).write_text(text.replace(SHIPPED, str(here)))
    instance = unit.replace("@.", "@studio.")
    out = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / instance)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr


def test_the_service_units_are_notify_units_with_a_watchdog_and_no_binding_to_jack():
    for role in ("send", "recv"):
        text = "\n".join(line for line in (UNITS / f"jacknet-{role}@.service").read_text()
                         .splitlines() if not line.startswith("#"))
        assert "Type=notify" in text and "WatchdogSec=" in text and "--wait-for-jack" in text
        assert "Restart=on-failure" in text and "ExecReload=" in text
        # BindsTo= stops a client with JACK and never starts it again.
        assert "BindsTo=" not in text and "Requires=" not in text
        assert "PrivateDevices" not in text and "PrivateIPC" not in text  # JACK's /dev/shm
