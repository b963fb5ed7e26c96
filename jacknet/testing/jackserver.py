"""A private dummy JACK server for ``jacknet demo``, the tests and the
benchmarks, so they never touch a user's own server."""
from __future__ import annotations

from jacknet.service.jackserver import JackServer


class PrivateServer(JackServer):
    """``jackd -n NAME [-S] --no-realtime -d dummy -r RATE -p PERIOD``, whose
    messages are kept to say why it failed to start.

    Parameters
    ----------
    name : str
        Server name, fixed per user of the server (a test module, the demo).
    sync : bool
        Synchronous mode (see `JackServer`), on by default: exactness tests.
    realtime : bool
        Run jackd with SCHED_FIFO (``-R``) instead of ``--no-realtime``.
    """

    def __init__(self, name: str, rate: int = 48000, period: int = 128, sync: bool = True,
                 realtime: bool = False) -> None:
        super().__init__(name, "dummy", rate=rate, period=period, realtime=realtime, sync=sync,
                         capture_output=True)
