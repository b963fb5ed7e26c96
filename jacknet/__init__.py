"""jacknet: low-latency network audio links between JACK servers.

The library face: configure a `Sender` or a `Receiver` with a
`SenderConfig` or `ReceiverConfig`, start it (or use it as a context
manager), read its typed `stats`, close it.  `Supervisor` runs one as a
daemon would (rebuilding it when the JACK server comes back).

>>> from jacknet import Receiver, ReceiverConfig            # doctest: +SKIP
>>> with Receiver(ReceiverConfig(port=4477, channels=2)) as r:
...     print(r.stats().latency_ms)
"""

__version__ = "0.1.0"

from jacknet.config import DemoConfig, ReceiverConfig, RunConfig, SenderConfig  # noqa: E402
from jacknet.daemon import Supervisor  # noqa: E402
from jacknet.errors import ConfigError, JacknetError, MalformedPacket, ServerNotRunning  # noqa: E402
from jacknet.receiver import Receiver  # noqa: E402
from jacknet.sender import Sender  # noqa: E402
from jacknet.stats import ReceiverStats, SenderStats, as_dict, format_line  # noqa: E402

__all__ = [
    "__version__",
    "Sender", "SenderConfig", "SenderStats",
    "Receiver", "ReceiverConfig", "ReceiverStats",
    "RunConfig", "DemoConfig", "Supervisor",
    "as_dict", "format_line",
    "JacknetError", "ConfigError", "ServerNotRunning", "MalformedPacket",
]
