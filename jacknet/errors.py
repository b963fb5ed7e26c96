"""Exceptions that carry what a user needs to fix the problem."""


class JacknetError(Exception):
    """Base class of jacknet's own errors."""


class ConfigError(JacknetError):
    """A bad option or configuration value (the CLI exits with code 2)."""


class ServerNotRunning(JacknetError):
    """No JACK server of the requested name is running."""


class MalformedPacket(ValueError):
    """A datagram that is not a valid jacknet packet.

    ``reason`` is a short stable key used for counting (``"magic"``,
    ``"version"``, ``"length"`` ...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
