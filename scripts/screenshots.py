"""The README's pictures of the views, made from real daemons: a 4-channel
link on a private dummy JACK server (jacknet.testing.scene) with the known
signal on two channels, a 0.4 s outage through a relay so there is an event
to see, then `jacknet top` in an 80x24 tmux pane and the status page in
headless Chromium.  Writes docs/top.png and docs/page.png.

    .venv/bin/python scripts/screenshots.py [--seconds 40]

Needs tmux and chromium (scripts/setup --test installs both).
"""
from __future__ import annotations

import argparse
import html
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jacknet.testing.scene import Scene

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from relay import UdpRelay  # noqa: E402
from test_monitor import chromium  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0,
                        help="let the history grow this long first (default 40)")
    args = parser.parse_args()
    relay = UdpRelay()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with Scene(tmp, "jacknet-screenshots", http=True,
                   via=lambda port: relay.start(("127.0.0.1", port))[1]) as scene:
            time.sleep(args.seconds / 2)
            relay.impair(loss=1.0)
            time.sleep(0.4)
            relay.impair(loss=0.0)
            time.sleep(args.seconds / 2)
            session = "jacknet-screenshots"
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                            f"{sys.executable} -m jacknet top --socket {scene.recv_socket}"],
                           check=True, env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
                                            "TERM": "xterm-256color"})
            time.sleep(3)
            text = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
            subprocess.run(["tmux", "kill-session", "-t", session])
            terminal = tmp / "top.html"
            terminal.write_text(
                "<!doctype html><meta charset=utf-8><body style='margin:0;background:#111'>"
                "<pre style='margin:0;padding:10px;color:#ddd;font:14px/1.25 "
                f"\"DejaVu Sans Mono\",monospace'>{html.escape(text)}</pre>")
            chromium(terminal.as_uri(), tmp / "profile", f"--screenshot={ROOT / 'docs/top.png'}",
                     "--window-size=700,470")
            chromium(scene.http_url, tmp / "profile", f"--screenshot={ROOT / 'docs/page.png'}",
                     "--window-size=1100,1000")
    relay.close()
    print(text)
    print(f"wrote {ROOT / 'docs/top.png'} and {ROOT / 'docs/page.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
