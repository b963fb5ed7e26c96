"""How a daemon's first start reads JACK's answers, without JACK: a start
that never reached a server gives up, one whose server refused it and then
went away (stopped while the daemon started) waits for it, and one that a
server keeps refusing gives up with the server's reason.  The nodes here
only replay JACK's answers; the same paths run on real servers in
`test_jack_restart.py` and `test_cli.py`."""
from __future__ import annotations

import logging
import threading
import pytest

from jacknet import ReceiverConfig, Supervisor
from jacknet.errors import JacknetError, ServerNotRunning

REFUSED = JacknetError("JACK would not activate client 'x': Error activating JACK client (-1)")
GONE = ServerNotRunning("no JACK server named 'x' is running")


class Link:
    address = ("127.0.0.1", 4464)
    closed = False

    def close(self) -> None:
        self.closed = True


class ScriptedNode:
    """A node whose start gives the next of ``answers`` (an error, or None
    for a start that works)."""

    def __init__(self, answers: list, link: Link) -> None:
        self.answers, self.link = answers, link
        self.config = ReceiverConfig(server="x")

    def open_link(self) -> Link:
        return self.link

    def start(self, link: Link) -> None:
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer

    def peer(self):
        return None, None

    address = Link.address


def first_start(answers: list, **options):
    link = Link()
    supervisor = Supervisor(lambda: ScriptedNode(answers, link), "recv", 60, retry=0.01,
                            on_tick=lambda stats: None, **options)
    return supervisor, supervisor.restart(threading.Event(), first=True), link


def test_no_server_at_the_start_gives_up_at_once():
    answers = [GONE, None]
    with pytest.raises(ServerNotRunning):
        first_start(answers)
    assert answers == [None]


def test_a_server_that_refuses_and_then_goes_away_is_waited_for(caplog):
    caplog.set_level(logging.INFO, logger="jacknet")
    supervisor, node, link = first_start([REFUSED, GONE, GONE, None])
    assert node is not None and not link.closed
    assert "went away while we started; waiting for it to come back" in caplog.text
    assert "link restored" in caplog.text


def test_a_server_that_keeps_refusing_gives_up_with_its_reason():
    answers = [REFUSED, REFUSED, REFUSED, None]
    with pytest.raises(JacknetError, match="would not activate"):
        first_start(answers)
    assert answers == [None]


def test_a_refusal_then_a_start_that_works_is_a_plain_start(caplog):
    caplog.set_level(logging.INFO, logger="jacknet")
    supervisor, node, link = first_start([REFUSED, None])
    assert node is not None and supervisor.state == "running"
    assert "link restored" not in caplog.text
