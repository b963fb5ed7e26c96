"""jacknet: low-latency network audio links between JACK servers."""

__version__ = "0.1.0"
