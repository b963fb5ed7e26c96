"""Keep a virtual machine's CPUs awake while real-time tests run.

A virtual CPU with nothing to run halts, and the hypervisor hands its
physical core to someone else; when a timer fires, the guest waits for the
host to schedule it again.  On this project's 2-core VMs that wait was
milliseconds: 0.5 ms sleeps overshot by 0.6-2.3 ms at the 99th percentile,
and an idle `jackd -R -d dummy -p 64` with one client missed 61-108 cycles
in 15 s.  With a SCHED_IDLE process spinning on each CPU the CPUs never
halt: the overshoot fell to 0.1-0.2 ms and the same server missed 4-5.
(This is what Linux's ``idle=poll`` or the ``cpuidle-haltpoll`` driver do
for a guest that runs audio; a test cannot set those.)

A SCHED_IDLE task runs only when nothing else wants the CPU, so the
spinners take little time from the processes under test; they do keep the
cores busy (and warm) for as long as they run.

A guest whose cpuidle driver is ``haltpoll`` polls before it halts, which
does the same: there the overshoot is 0.09 ms at the median and 0.19 ms at
the 99th percentile with nothing running, and spinners only get in the way.
On such a guest with Linux 6.18, a waking thread of the test process did not
always preempt them: it waited up to 100 ms, 44 times in one run of
``tests/test_link.py -k exact``, whose windows then failed; without them, no
wait passed 60 ms and every window passed.  So a haltpoll guest gets none.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

# A spinner ends by itself once the process that started it is gone (a
# test run killed with SIGKILL leaves no spinners behind).
SPIN = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
parent = int(sys.argv[2])
while os.getppid() == parent:
    for _ in range(200000):
        pass
"""


CPUIDLE_DRIVER = Path("/sys/devices/system/cpu/cpuidle/current_driver")


def in_virtual_machine() -> bool:
    """Whether the CPU says it runs under a hypervisor (x86's flag)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def polls_before_halting() -> bool:
    """Whether the kernel's cpuidle driver is a guest's haltpoll."""
    try:
        return CPUIDLE_DRIVER.read_text().strip() == "haltpoll"
    except OSError:
        return False


def wanted() -> bool:
    """``JACKNET_KEEP_AWAKE=1`` or ``0`` decides; otherwise only in a VM
    that halts its idle CPUs without polling first."""
    setting = os.environ.get("JACKNET_KEEP_AWAKE", "")
    if setting in ("0", "1"):
        return setting == "1"
    return in_virtual_machine() and not polls_before_halting()


class KeptAwake:
    """A SCHED_IDLE spinner on each CPU this process may run on, for the
    duration of a ``with`` block (none when `wanted` says no)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> KeptAwake:
        if wanted():
            for cpu in sorted(os.sched_getaffinity(0)):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", SPIN, str(cpu), str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait()
        self.procs.clear()
