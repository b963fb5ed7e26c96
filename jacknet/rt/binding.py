"""jacknet's binding layer on top of JACK-Client.

One `JackClient` serves both daemons and the test tools: open a client on a
named or default server, register N ports with predictable names, connect
them to ports matching a regular expression, count xruns, notice shutdown,
sample-rate and buffer-size changes, and run a C process callback from
`jacknet.rt.engines` (which is where the real-time work happens).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import re

import jack

from jacknet.errors import ConfigError, JacknetError, ServerNotRunning
from jacknet.rt._rt import ffi as rt_ffi
from jacknet.rt.engines import _Engine, c_address

log = logging.getLogger(__name__)

# libjack functions the C code calls, by jn_jack_api field.
_API = {
    "port_get_buffer": "jack_port_get_buffer",
    "last_frame_time": "jack_last_frame_time",
    "frame_time": "jack_frame_time",  # the receive path stamps arrivals (recv.c)
    "transport_query": "jack_transport_query",
    "transport_locate": "jack_transport_locate",
    "transport_start": "jack_transport_start",
    "transport_stop": "jack_transport_stop",
}


def _address(cdata) -> int:
    return int(jack._ffi.cast("uintptr_t", cdata))


def _c_function(name: str, jack_type: str):
    """One of rt.c's functions as a function pointer of JACK-Client's ``jack_type``."""
    return jack._ffi.cast(jack_type, c_address(name))


@functools.cache
def _libjack() -> ctypes.CDLL:
    """libjack for the calls JACK-Client does not declare (the same library
    it loaded: dlopen hands back the one already mapped)."""
    lib = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
    lib.jack_client_real_time_priority.argtypes = [ctypes.c_void_p]
    lib.jack_client_real_time_priority.restype = ctypes.c_int
    return lib


def _quiet_libjack() -> None:
    # libjack prints every failed connection attempt to stderr, and may call
    # its message function on its process thread, where no Python may run:
    # a C function that drops the messages.
    drop = _c_function("jn_jack_message", "void (*)(const char *)")
    jack._lib.jack_set_error_function(drop)
    jack._lib.jack_set_info_function(drop)


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
        # Only C callbacks: jack2 calls the buffer-size callback on the process
        # thread at activation and the shutdown callback there too, and a
        # Python one would wait there for the GIL.  Rate and period changes
        # are polled (`format_changed`) instead.
        self._watch = rt_ffi.new("jn_watch *")
        arg = jack._ffi.cast("void *", int(rt_ffi.cast("uintptr_t", self._watch)))
        ptr = self._client._ptr
        jack._lib.jack_set_xrun_callback(ptr, _c_function("jn_watch_xrun", "JackXRunCallback"), arg)
        jack._lib.jack_on_info_shutdown(
            ptr, _c_function("jn_watch_shutdown", "JackInfoShutdownCallback"), arg)
        self._format = (self._client.samplerate, self._client.blocksize)
        self._ports: list[jack.OwnPort] = []
        self._engine: _Engine | None = None
        self._progress = (0, 0)   # engine cycles, server frame: when they last differed

    @property
    def xruns(self) -> int:
        """Xruns the server reported to this client."""
        return int(self._watch.xruns)

    @property
    def process_priority(self) -> int | None:
        """The SCHED_FIFO priority of this client's process thread, or None
        when the server does not run realtime."""
        priority = _libjack().jack_client_real_time_priority(_address(self._client._ptr))
        return priority if priority > 0 else None

    @property
    def lost(self) -> bool:
        """True once the server has shut this client down (or gone away)."""
        return bool(self._watch.shutdown)

    @property
    def shutdown_reason(self) -> str:
        return rt_ffi.string(self._watch.reason).decode(errors="replace") if self.lost else ""

    @property
    def format_changed(self) -> bool:
        """True once the server's sample rate or period differs from the one
        this client was built for."""
        if self.lost:
            return False
        ptr = self._client._ptr
        return (jack._lib.jack_get_sample_rate(ptr), jack._lib.jack_get_buffer_size(ptr)) \
            != self._format

    def stalled(self, seconds: float) -> bool:
        """True when the process callback has not run while the server's
        clock moved on by ``seconds`` or more: JACK has stopped calling this
        client, and waits for it, so the whole graph is held up."""
        if self._engine is None or self.lost:
            return False
        cycles = self._engine.cycles
        frame = jack._lib.jack_last_frame_time(self._client._ptr)
        last_cycles, since = self._progress
        if cycles != last_cycles:
            self._progress = (cycles, frame)
            return False
        return ((frame - since) & 0xFFFFFFFF) >= seconds * self._format[0]

    @property
    def cycles(self) -> int:
        """Cycles our process callback has run (0 before `run`)."""
        return self._engine.cycles if self._engine is not None else 0

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
        try:
            self._ports = [ports.register(f"{prefix}_{i + 1}") for i in range(count)]
        except jack.JackError as e:
            # A server that is shutting down refuses too: a daemon tries again.
            raise JacknetError(f"JACK refused a port of client '{self.name}' ({e}; {count} "
                               f"asked for): its port limit (jackd --port-max) is reached, "
                               f"or it is shutting down") from None
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
        self._progress = (engine.cycles, jack._lib.jack_last_frame_time(self._client._ptr))
        try:
            self._client.activate()
        except jack.JackError as e:
            raise JacknetError(f"JACK would not activate client '{self.name}': {e}") from None

    def follow_transport(self, playout, timebase: bool = False) -> None:
        """Take part in JACK's slow-sync with ``playout``'s C sync callback
        (`jacknet.sync.follow`), and with ``timebase`` be the timebase master
        that writes the sender's BBT.  Both run on JACK's process thread."""
        ptr = self._client._ptr
        arg = jack._ffi.cast("void *", playout.state_address)
        sync = _c_function("jn_follow_sync", "JackSyncCallback")
        if jack._lib.jack_set_sync_callback(ptr, sync, arg) != 0:
            raise JacknetError(f"JACK refused the sync callback of client '{self.name}'")
        if timebase:
            master = _c_function("jn_follow_timebase", "JackTimebaseCallback")
            if jack._lib.jack_set_timebase_callback(ptr, 0, master, arg) != 0:
                raise JacknetError(f"JACK has a timebase master already: client '{self.name}' "
                                   "cannot be one (--timebase)")
        playout.follow(True)

    def connect(self, pattern: str | None) -> list[tuple[str, str]]:
        """Connect our ports, in order, to existing ports matching ``pattern``.

        Our inputs pair with other clients' outputs and vice versa, sorted as
        JACK lists them (so ``system:capture_.*`` gives capture_1 -> in_1,
        capture_2 -> in_2 ...).  Extra matches or ports stay unconnected.
        Returns the (source, destination) pairs made.
        """
        pairs = []
        for pair in self._pairs(pattern):
            try:
                self._join(*pair)
            except jack.JackError:  # the far port went away meanwhile
                log.info("could not connect %s -> %s", *pair)
                continue
            pairs.append(pair)
        if pattern and len(pairs) < len(self._ports):
            log.info("--connect %r matched %d port(s) for %d channel(s); the rest stay unconnected",
                     pattern, len(pairs), len(self._ports))
        return pairs

    def connect_missing(self, pattern: str | None) -> list[tuple[str, str]]:
        """The same, quietly, for ports that appeared since (a client started
        or restarted after us): returns only the pairs made now.  A port that
        goes away meanwhile is skipped."""
        made = []
        if self.lost:
            return made
        for pair in self._pairs(pattern):
            try:
                if self._join(*pair):
                    made.append(pair)
            except jack.JackError:
                pass
        return made

    def _join(self, source: str, destination: str) -> bool:
        """Connect the two unless they are already; True if made now."""
        if destination in [c.name for c in self._client.get_all_connections(source)]:
            return False
        self._client.connect(source, destination)
        return True

    def _pairs(self, pattern: str | None) -> list[tuple[str, str]]:
        """(source, destination) for each of our ports and the port ``pattern`` gives it."""
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
        return [(other.name, own.name) if want_outputs else (own.name, other.name)
                for own, other in zip(ours, candidates)]

    def connections(self) -> list[tuple[str, str]]:
        """Every (source, destination) connection of our ports, whoever made it."""
        return [(other, own.name) if own.is_input else (own.name, other)
                for own in self._ports for other in self._far_ports(own)]

    def _far_ports(self, own: jack.OwnPort) -> list[str]:
        """The names of the ports ``own`` is connected to (JACK-Client looks
        each one up, and one that goes away meanwhile raises: skip it)."""
        names = jack._ffi.gc(jack._lib.jack_port_get_all_connections(self._client._ptr,
                                                                       own._ptr),
                             jack._lib.jack_free)
        out = []
        if names:
            i = 0
            while names[i]:
                out.append(jack._ffi.string(names[i]).decode())
                i += 1
        return out

    def matching(self, pattern: str | None) -> set[tuple[str, str]]:
        """(our port's short name, the far port's name) for each pair
        ``pattern`` gives (`connect`)."""
        prefix = self.name + ":"
        return {(a[len(prefix):], b) if a.startswith(prefix) else (b[len(prefix):], a)
                for a, b in self._pairs(pattern)}

    def own_connections(self) -> list[tuple[str, str]]:
        """(our port's short name, the far port's name) for every connection
        of our ports: what stays the same when our client is renamed."""
        return [(own.shortname, other) for own in self._ports for other in self._far_ports(own)]

    def connect_own(self, short: str, other: str) -> bool:
        """Connect our port ``short`` with ``other``, in the direction they
        flow; False if either is gone or JACK refuses."""
        own = next((p for p in self._ports if p.shortname == short), None)
        if own is None:
            return False
        try:
            self._client.connect(*((other, own.name) if own.is_input else (own.name, other)))
        except jack.JackError:
            return False
        return True

    def client_id(self, port: str) -> str | None:
        """The id of the client that owns ``port`` (new each time a client
        opens), or None if there is no such port."""
        try:
            self._client.get_port_by_name(port)
            return self._client.get_uuid_for_client_name(port.split(":", 1)[0])
        except jack.JackError:
            return None

    def restore(self, pairs: list[tuple[str, str]], old_name: str) -> int:
        """Make again the connections a client named ``old_name`` had (a
        rebuilt client may carry another name); returns how many were made.
        Ports that have gone since are skipped."""
        made = 0
        rename = lambda port: (self.name + port[len(old_name):]  # noqa: E731
                               if port.startswith(old_name + ":") else port)
        for source, destination in pairs:
            try:
                self._client.connect(rename(source), rename(destination))
                made += 1
            except jack.JackError:
                pass
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
