"""The counters a sender and a receiver report, and their renderings.

Each counter is counted in one place (its owner, named in each field's
docstring and in docs/stats.md); `Sender.stats` and `Receiver.stats`
gather them into these typed snapshots.  Taking a snapshot changes
nothing, so any number of readers (the stats line, a status socket) may
take them.  `format_line` renders the stats line, `as_dict` the same
names for JSON.  Also here: rate-limited logging of bad input.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

# JACK transport states (jack_transport_state_t) by number, as stats name them.
TRANSPORT_STATES = {0: "stopped", 1: "rolling", 2: "looping", 3: "starting", 4: "net-starting"}

# Old spellings kept for scripts that read the stats line: alias -> name.
ALIASES = {"margin_ms": "slack_ms"}


@dataclass
class SenderStats:
    packets: int = 0
    """Packets sent (packetizer.Packetizer)."""
    datagrams: int = 0
    """Datagrams the link took, fragments included (sender.Sender)."""
    bytes: int = 0
    """Their bytes as sent, headers (and a sealed link's tags) included (sender.Sender)."""
    kbit_s: float = 0.0
    """Bits on the wire per second of audio (sender.Sender, from bytes and packets)."""
    mtu: int = 0
    """Largest datagram payload in bytes: --mtu, or what auto chose for the path (sender.Sender)."""
    copies_left_out: int | None = None
    """With --redundancy: copies that did not fit in --mtu (packetizer.Packetizer)."""
    send_errors: int = 0
    """Datagrams the link could not send (net.transport.SinkStats)."""
    queue_dropped: int = 0
    """TCP: datagrams dropped while the connection was stalled or down (net.transport.SinkStats)."""
    connected: int | None = None
    """TCP: 1 while connected (net.transport.TcpSink)."""
    announcements: int | None = None
    """Sealed: announcements of the stream sent (security.links.SealedSink)."""
    dropped_frames: int = 0
    """Audio the worker could not keep up with, oldest dropped (rt/rt.c, jn_capture)."""
    missed_packets: int = 0
    """Packets left unsent: JACK skipped this client's cycles, so their audio
    was never captured; the receiver counts them lost (packetizer.Packetizer)."""
    clipped: int | None = None
    """int16: samples clipped (codecs.pcm.Int16Encoder)."""
    xruns: int = 0
    """JACK xruns seen by this client (rt.binding.JackClient)."""
    cycles: int = 0
    """JACK cycles captured (rt/rt.c, jn_capture)."""
    jack_transport: str | None = None
    """The JACK transport's state in the last packet: stopped, rolling, starting (sync.watch.TransportWatch); None with --no-transport."""
    jack_transport_frame: int | None = None
    """Its frame then (sync.watch.TransportWatch)."""
    transport_changes: int | None = None
    """Starts, stops and locates of the JACK transport sent (sync.watch.TransportWatch)."""
    peak_dbfs: list[float] | None = None
    """Per input, the peak of the last second, dBFS (-120: silence) (monitor.levels.Levels, from rt/rt.c's jn_meter)."""
    rms_dbfs: list[float] | None = None
    """Per input, the RMS of the last second, dBFS (monitor.levels.Levels)."""
    clips: list[int] | None = None
    """Per input, samples at or beyond full scale since the start (monitor.levels.Levels)."""
    reconnects: int | None = None
    """Links rebuilt after the JACK server went away or changed format (daemon.Supervisor)."""


@dataclass
class ReceiverStats:
    datagrams: int = 0
    """Datagrams from the sender played (recv.pipeline.IntakeStats)."""
    bytes: int = 0
    """Their bytes (recv.pipeline.IntakeStats)."""
    packets: int = 0
    """Packets placed as they arrived (recv.jitter.JitterStats)."""
    lost: int = 0
    """Sequence numbers never seen (recv.pipeline.LossCounter)."""
    incomplete: int = 0
    """Fragments that never made a whole packet (net.protocol.Reassembler)."""
    late: int = 0
    """Packets that came after their frames were played or concealed (recv.pipeline.IntakeStats)."""
    duplicate: int = 0
    """Packets and fragments that came before (recv.pipeline.IntakeStats)."""
    revived: int = 0
    """Lost packets replaced by a later one's copy (recv.sequencer.SequencerStats)."""
    fec_recovered: int = 0
    """Lost Opus frames rebuilt from in-band FEC (recv.sequencer.SequencerStats)."""
    plc_concealed: int = 0
    """Lost Opus frames guessed by the decoder (recv.sequencer.SequencerStats)."""
    decoder_restarts: int = 0
    """Gaps too long to conceal (recv.sequencer.SequencerStats)."""
    overruns: int = 0
    """Packets beyond what the buffer holds: re-sync (recv.jitter.JitterStats)."""
    foreign: int = 0
    """Packets of another stream while one is live (recv.jitter.JitterStats)."""
    foreign_sources: int = 0
    """Datagrams from another address while locked to a sender (recv.pipeline.IntakeStats)."""
    refused: int | None = None
    """TCP: second senders turned away (net.transport.SourceStats)."""
    denied: int | None = None
    """With allow: datagrams and connections from other addresses (net.udp.UdpSource, net.tcp.TcpSource)."""
    auth_failures: int | None = None
    """Sealed: datagrams that did not authenticate: a wrong key, forged, broken, unsealed (security.seal.Opener)."""
    replays: int | None = None
    """Sealed: authentic datagrams seen before, or an old stream's announcement (security.seal.Opener)."""
    unannounced: int | None = None
    """Sealed: datagrams of a stream whose announcement has not come yet (security.seal.Opener)."""
    announcements: int | None = None
    """Sealed: new streams accepted (security.seal.Opener)."""
    malformed: dict = field(default_factory=dict)
    """Datagrams refused, by reason (recv.pipeline.IntakeStats; framing: net.transport.SourceStats)."""
    internal_errors: int = 0
    """Bugs caught on the network thread, logged once (recv.pipeline.IntakeStats)."""
    strays: int = 0
    """Packets far off their stream's timeline (forged, broken, replayed), dropped (recv.continuity.ContinuityStats)."""
    leaps: int = 0
    """Times a stream's timeline started afresh: the sender's clock jumped (recv.continuity.ContinuityStats)."""
    concealed_frames: int = 0
    """Frames the playout faded over (rt/rt.c, jn_playout)."""
    underruns: int = 0
    """Cycles with a gap (rt/rt.c, jn_playout)."""
    nonfinite_samples: int = 0
    """NaN or Inf samples a packet or decoder produced, played as silence (rt/rt.c, jn_playout)."""
    limited_samples: int = 0
    """Samples beyond the stream's ceiling, played at it (rt/rt.c, jn_playout)."""
    relocks: int = 0
    """Re-syncs of the clock mapping (recv.jitter.JitterStats)."""
    tightened: int = 0
    """Latency brought back down after a disturbance (recv.jitter.JitterStats)."""
    loosened: int = 0
    """Buffer grown because packets kept landing partly late (recv.jitter.JitterStats)."""
    xruns: int = 0
    """JACK xruns seen by this client (rt.binding.JackClient)."""
    outages: int = 0
    """Stretches of 100 ms or more without a datagram from the sender, ended (monitor.outages.Outages)."""
    outages_last_minute: int = 0
    """Of those, the ones that ended in the last minute, and one going on now (monitor.outages.Outages)."""
    outage_ms: float | None = None
    """How long the outage going on now has lasted; None while packets come (monitor.outages.Outages)."""
    last_outage_ms: float | None = None
    """How long the last outage that ended lasted (monitor.outages.Outages)."""
    fill_ms: float | None = None
    """Audio buffered ahead of the playout (recv.jitter.JitterBuffer)."""
    target_ms: float | None = None
    """Latency aimed at: period + margin + decoding lead (recv.jitter.JitterBuffer)."""
    latency_ms: float | None = None
    """Latency held: the receiver's period plus the margin it holds now (recv.jitter.JitterBuffer, less clock.bridge.ClockBridge's slew)."""
    slack_ms: float | None = None
    """How early the least early packet of the last 5 s landed (recv.jitter.SlackWindow)."""
    drift_ppm: float | None = None
    """When resampling: the sender's clock against ours (clock.drift.DriftStats)."""
    ratio: float | None = None
    """When resampling: sender frames per receiver frame (clock.drift.DriftStats)."""
    loop_error_frames: float | None = None
    """When resampling: buffered frames beyond the loop's target (clock.drift.DriftStats)."""
    loop_jumps: int | None = None
    """When resampling: steps of the read or write position (clock.drift.DriftStats)."""
    loop_resyncs: int | None = None
    """When resampling: errors too large for drift, the loop locked again (clock.drift.DriftStats)."""
    jitter_ms: float | None = None
    """With --latency auto: the arrival jitter measured (clock.autolatency.JitterMeter)."""
    reconnects: int | None = None
    """Links rebuilt after the JACK server went away or changed format (daemon.Supervisor)."""
    sender_transport: str | None = None
    """The sender's JACK transport in the newest packet: stopped, rolling, starting (sync.heard.HeardTransport); None if it shares none."""
    sender_transport_frame: int | None = None
    """Its frame then (sync.heard.HeardTransport)."""
    transport_changes: int | None = None
    """The sender's starts, stops and locates heard (sync.heard.HeardTransport)."""
    jack_transport: str | None = None
    """With --follow-transport: this server's JACK transport in the last cycle (rt/rt.c, jn_follow)."""
    jack_transport_frame: int | None = None
    """Its frame then (rt/rt.c, jn_follow)."""
    transport_error_frames: int | None = None
    """With --follow-transport: this transport's frame less the sender frame of the audio played (plus --transport-offset), last time both rolled (sync.follow.FollowStats)."""
    transport_rolls: int | None = None
    """Starts made, each to the frame of the audio heard (sync.follow.FollowStats)."""
    transport_stops: int | None = None
    """Stops made (sync.follow.FollowStats)."""
    transport_locates: int | None = None
    """Locates of the stopped transport (sync.follow.FollowStats)."""
    transport_relocates: int | None = None
    """Locates while rolling: the sender located, the mapping moved, or drift (sync.follow.FollowStats)."""
    transport_drift_relocates: int | None = None
    """Of those, for drift beyond --transport-tolerance alone (sync.follow.FollowStats)."""
    transport_held: int | None = None
    """Cycles this client held the transport in Starting to roll aligned (rt/rt.c, jn_follow)."""
    peak_dbfs: list[float] | None = None
    """Per output, as played, the peak of the last second, dBFS (-120: silence) (monitor.levels.Levels, from rt/rt.c's jn_meter)."""
    rms_dbfs: list[float] | None = None
    """Per output, as played, the RMS of the last second, dBFS (monitor.levels.Levels)."""
    clips: list[int] | None = None
    """Per output, as played, samples at or beyond full scale since the start (monitor.levels.Levels)."""


def as_dict(stats) -> dict:
    """A stats snapshot as a plain dict, with the old spellings (`ALIASES`) too."""
    out = dataclasses.asdict(stats)
    for alias, name in ALIASES.items():
        if name in out:
            out[alias] = out[name]
    return out


def format_line(side: str, stats) -> str:
    """Render a stats snapshot (or dict) as ``side: key=value ...``, None values left out."""
    items = as_dict(stats) if dataclasses.is_dataclass(stats) else stats
    parts = []
    for key, value in items.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float):
            value = f"{value:.2f}"
        elif isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in value.items()) or "0"
        elif isinstance(value, (list, tuple)):
            value = ",".join(f"{v:g}" for v in value)
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
