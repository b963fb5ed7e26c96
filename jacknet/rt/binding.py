"""jacknet's binding layer on top of JACK-Client.

One `JackClient` serves both daemons and the test tools: open a client on a
named or default server, register N ports with predictable names, connect
them to ports matching a regular expression, count xruns, notice shutdown,
sample-rate and buffer-size changes, and run a C process callback from
`jacknet.rt.engines` (which is where the real-time work happens).
"""
from __future__ import annotations

import logging
import re
import threading

import jack

from jacknet.errors import ConfigError, JacknetError, ServerNotRunning
from jacknet.rt.engines import _Engine

log = logging.getLogger(__name__)

# libjack functions the C process callbacks call, by jn_jack_api field.
_API = {
    "port_get_buffer": "jack_port_get_buffer",
    "last_frame_time": "jack_last_frame_time",
    "transport_query": "jack_transport_query",
    "get_current_transport_frame": "jack_get_current_transport_frame",
}


def _address(cdata) -> int:
    return int(jack._ffi.cast("uintptr_t", cdata))


def _quiet_libjack() -> None:
    # libjack prints every failed connection attempt to stderr; route it to
    # the log instead, where -v shows it.
    jack.set_error_function(lambda msg: log.debug("libjack: %s", msg))
    jack.set_info_function(lambda msg: log.debug("libjack: %s", msg))


def how_to_start(server: str | None) -> str:
    name = f" -n {server}" if server else ""
    return (f"start one first, e.g. `jackd{name} -d alsa` (or `jackd{name} -d dummy` "
            "with no sound card), or try `jacknet demo`")


class JackClient:
    """A JACK client with N ports and a C process callback.

    Parameters
    ----------
    name : str
        Client name; JACK may append a suffix if it is taken.
    server : str, optional
        JACK server name (``jackd -n NAME``); None for the default server.

    Raises
    ------
    ServerNotRunning
        If no such server is running; the message says how to start one.
    """

    def __init__(self, name: str, server: str | None = None) -> None:
        _quiet_libjack()
        try:
            self._client = jack.Client(name, servername=server, no_start_server=True)
        except jack.JackOpenError:
            where = f"named '{server}'" if server else "(default)"
            raise ServerNotRunning(f"no JACK server {where} is running: {how_to_start(server)}") from None
        self.server = server
        self.xruns = 0
        self.shutdown = threading.Event()
        self.shutdown_reason = ""
        self.format_changed = threading.Event()
        self._client.set_xrun_callback(self._on_xrun)
        self._client.set_shutdown_callback(self._on_shutdown)
        # JACK also calls these at activation; only a real change counts.
        self._format = (self._client.samplerate, self._client.blocksize)
        self._client.set_samplerate_callback(lambda rate: self._on_format(0, rate))
        self._client.set_blocksize_callback(lambda frames: self._on_format(1, frames))
        self._ports: list[jack.OwnPort] = []
        self._engine: _Engine | None = None

    # JACK's notification thread calls these; they only record.
    def _on_xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def _on_shutdown(self, status: jack.Status, reason: str) -> None:
        self.shutdown_reason = reason
        self.shutdown.set()

    def _on_format(self, which: int, value: int) -> None:
        if self._format[which] != value:
            self.format_changed.set()

    @property
    def name(self) -> str:
        return self._client.name

    @property
    def samplerate(self) -> int:
        return self._client.samplerate

    @property
    def blocksize(self) -> int:
        return self._client.blocksize

    @property
    def frame_time(self) -> int:
        """JACK's estimate of the current frame time (32 bit, any thread)."""
        return self._client.frame_time

    def register(self, direction: str, count: int, prefix: str) -> list[str]:
        """Register ``count`` audio ports named ``prefix_1`` ... ``prefix_N``.

        ``direction`` is ``"in"`` or ``"out"``; returns the full port names.
        """
        ports = self._client.inports if direction == "in" else self._client.outports
        self._ports = [ports.register(f"{prefix}_{i + 1}") for i in range(count)]
        return [p.name for p in self._ports]

    def run(self, engine: _Engine) -> None:
        """Install ``engine``'s C process callback on our ports and activate."""
        api = {field: _address(getattr(jack._lib, fn)) for field, fn in _API.items()}
        engine.bind(_address(self._client._ptr), api, [_address(p._ptr) for p in self._ports])
        callback = jack._ffi.cast("JackProcessCallback", engine.process_address)
        arg = jack._ffi.cast("void *", engine.state_address)
        if jack._lib.jack_set_process_callback(self._client._ptr, callback, arg) != 0:
            raise JacknetError(f"JACK refused the process callback of client '{self.name}'")
        self._engine = engine  # the C state must outlive the callback
        try:
            self._client.activate()
        except jack.JackError as e:
            raise JacknetError(f"JACK would not activate client '{self.name}': {e}") from None

    def connect(self, pattern: str | None) -> list[tuple[str, str]]:
        """Connect our ports, in order, to existing ports matching ``pattern``.

        Our inputs pair with other clients' outputs and vice versa, sorted as
        JACK lists them (so ``system:capture_.*`` gives capture_1 -> in_1,
        capture_2 -> in_2 ...).  Extra matches or ports stay unconnected.
        Returns the (source, destination) pairs made.
        """
        if not pattern:
            return []
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"--connect: bad regular expression {pattern!r}: {e}") from None
        ours = self._ports
        if not ours:
            return []
        want_outputs = ours[0].is_input
        candidates = [p for p in self._client.get_ports(is_audio=True, is_output=want_outputs,
                                                        is_input=not want_outputs)
                      if regex.fullmatch(p.name) and not p.name.startswith(self.name + ":")]
        made = []
        for own, other in zip(ours, candidates):
            pair = (other.name, own.name) if want_outputs else (own.name, other.name)
            if pair[1] not in [c.name for c in self._client.get_all_connections(pair[0])]:
                self._client.connect(*pair)
            made.append(pair)
        if len(candidates) < len(ours):
            log.info("--connect %r matched %d port(s) for %d channel(s); the rest stay unconnected",
                     pattern, len(candidates), len(ours))
        return made

    def connect_ports(self, source: str, destination: str) -> None:
        self._client.connect(source, destination)

    def close(self) -> None:
        """Deactivate, unregister our ports and leave the server."""
        try:
            self._client.deactivate()
            for port in self._ports:
                port.unregister()
        except jack.JackError:
            pass  # the server may already be gone
        self._client.close()
        self._ports = []
