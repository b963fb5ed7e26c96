"""``[status] http``: a daemon's link on a web page, and ``/metrics``.

Off unless asked for.  ``http = "on"`` serves on 127.0.0.1:8477; another
address (``"0.0.0.0:8477"``) must be written out, and is logged as reachable
from the network.  Everything is read-only: GET and HEAD only, no request
changes the daemon.  The standard library's HTTP server, one thread a
request; nothing runs on the audio or network threads.

- ``/``: one self-contained page (page.html: no build chain, no CDN: the
  machine may be offline) with meters, latency and loss plots, counters and
  events, polling ``/update`` ten times a second;
- ``/update?rows=R&events=E``: the status (meters included) and the
  history rows and events after the ones the page has;
- ``/status``, ``/history``: as the status socket answers them;
- ``/metrics``: every counter in Prometheus' text format.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import parse_qs, urlparse

from jacknet.errors import ConfigError
from jacknet.net.address import parse_address

log = logging.getLogger("jacknet")

DEFAULT_HTTP = ("127.0.0.1", 8477)
LOOPBACK = ("127.", "::1", "localhost")


def http_address(setting: str) -> tuple[str, int] | None:
    """``[status] http``: ``off`` (None), ``on`` (127.0.0.1:8477), or an address."""
    if setting == "off":
        return None
    if setting == "on":
        return DEFAULT_HTTP
    try:
        host, port = parse_address(setting, DEFAULT_HTTP[0])
    except ConfigError as e:
        raise ConfigError(f"[status] http {setting!r}: {e} (allowed: off, on, HOST[:PORT])") \
            from None
    if not (setting.count(":") == 1 or "]:" in setting):  # no port given
        port = DEFAULT_HTTP[1]
    return host, port


class WebServer:
    """The page and ``/metrics`` for one daemon.

    Parameters
    ----------
    address : (host, port)
        Where to listen (port 0: any free one; see ``address`` once started).
    snapshot : callable
        The status dict (`Supervisor.status`).
    history : History
        The daemon's history.
    """

    def __init__(self, address: tuple[str, int], snapshot: Callable[[], dict], history) -> None:
        self.snapshot, self.history = snapshot, history
        handler = type("Handler", (_Handler,), {"web": self})
        try:
            self._httpd = ThreadingHTTPServer(address, handler)
        except OSError as e:
            raise ConfigError(f"[status] http {address[0]}:{address[1]}: {e.strerror} "
                              "(another port? or off)") from None
        self._httpd.daemon_threads = True
        self.address = self._httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    def start(self) -> WebServer:
        host = self.address[0]
        if not host.startswith(LOOPBACK):
            log.warning("the status page on %s:%d is reachable from the network (read-only)",
                        host, self.address[1])
        else:
            log.info("status page on http://%s:%d/", host, self.address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="jacknet-http",
                                        kwargs={"poll_interval": 0.25}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def update(self, rows: int, events: int) -> dict:
        out = self.snapshot()
        out["history"] = self.history.since(rows, events)
        return out


class _Handler(BaseHTTPRequestHandler):
    web: WebServer
    server_version = "jacknet"

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def do_GET(self, body: bool = True) -> None:
        url = urlparse(self.path)
        web = self.web
        try:
            if url.path == "/":
                self._send(200, "text/html; charset=utf-8", _page(), body)
            elif url.path == "/metrics":
                text = metrics(web.snapshot())
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", text.encode(), body)
            elif url.path in ("/status", "/history", "/update"):
                query = parse_qs(url.query)
                if url.path == "/status":
                    answer = web.snapshot()
                elif url.path == "/history":
                    answer = web.history.since()
                else:
                    answer = web.update(_int(query, "rows"), _int(query, "events"))
                self._send(200, "application/json", json.dumps(answer).encode(), body)
            else:
                self._send(404, "text/plain", b"not here: /, /update, /status, /history, "
                           b"/metrics\n", body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, code: int, kind: str, data: bytes, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        log.debug("http: " + format, *args)


def _int(query: dict, key: str) -> int:
    try:
        return max(0, int(query.get(key, ["0"])[0]))
    except ValueError:
        return 0


_PAGE: bytes | None = None


def _page() -> bytes:
    global _PAGE
    if _PAGE is None:
        _PAGE = resources.files("jacknet.monitor").joinpath("page.html").read_bytes()
    return _PAGE


def metrics(status: dict) -> str:
    """Every number of a status answer in Prometheus' text format: counters
    and gauges by their stats names, ``jacknet_`` before them, labelled with
    the daemon's name and role; per-channel values labelled ``channel``."""
    labels = f'name="{_escape(status.get("name") or "")}",role="{status.get("role", "")}"'
    lines: list[str] = []

    def add(name: str, kind: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# TYPE jacknet_{name} {kind}")
        lines.extend(f"jacknet_{name}{{{labels}{extra}}} {value!r}" for extra, value in samples)

    add("up", "gauge", [("", 1.0 if status.get("state") == "running" else 0.0)])
    add("reconnects", "counter", [("", status.get("reconnects", 0))])
    add("stalls", "counter", [("", status.get("stalls", 0))])
    for key, value in sorted((status.get("stats") or {}).items()):
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            kind = "gauge" if key in GAUGE_INTS else "counter"
            add(key, kind, [("", value)])
        elif isinstance(value, float):
            add(key, "gauge", [("", value)])
        elif isinstance(value, list):
            add(key, "counter" if key == "clips" else "gauge",
                [(f',channel="{k + 1}"', v) for k, v in enumerate(value)])
        elif isinstance(value, dict):
            add(key, "counter", [(f',reason="{_escape(str(k))}"', v) for k, v in value.items()])
    return "\n".join(lines) + "\n"


# Whole-number stats that go up and down.
GAUGE_INTS = {"connected", "outages_last_minute", "jack_transport_frame",
              "sender_transport_frame", "transport_error_frames"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
