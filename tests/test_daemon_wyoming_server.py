"""The Wyoming TCP server with the real shipped bundle, spoken to by the `wyoming` library's
own client (wyoming.client.AsyncTcpClient): describe, transcript and recognize round trips,
the satellite's area, 20 clients at once; raw sockets for the hostile parts (garbage, a huge
declared length, too many connections, an idle client), after which the service still
answers."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Iterator, List, Optional

import pytest

from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.served import ServedEngine
from edge_slm.daemon.wyoming_handler import WyomingHandler
from edge_slm.daemon.wyoming_server import BUSY, WyomingServer
from edge_slm.protocols import wyoming as w
from edge_slm.protocols.wyoming_wire import BAD_JSON, TOO_LARGE, Event, EventDecoder
from edge_slm.runtime.engine import IntentEngine

pytest.importorskip("wyoming", reason="the dev extra installs the wyoming library")
from wyoming.asr import Transcript  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.intent import Intent, NotRecognized, Recognize  # noqa: E402

WAIT_S = 30.0
"""Longest wait for an answer (generous: the machine is shared)."""
KITCHEN = "turn off the kitchen lights"


@pytest.fixture(scope="module")
def source():
    return ServedEngine(IntentEngine.load())


def _start(source, **kw) -> WyomingServer:
    server = WyomingServer(WyomingHandler(source, DaemonConfig()), "127.0.0.1", 0, **kw)
    server.start()
    return server


@pytest.fixture
def server(source) -> Iterator[WyomingServer]:
    server = _start(source)
    yield server
    server.stop()


async def _ask(port: int, *events) -> List:
    """Send the events on one connection; the first answer to each."""
    answers = []
    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=WAIT_S,
                              read_timeout=WAIT_S) as client:
        for event in events:
            await client.write_event(event)
            answers.append(await client.read_event())
    return answers


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT_S * 2))


def _entities(intent: Intent) -> dict:
    return {e.name: e.value for e in intent.entities}


def test_describe_transcript_and_recognize_with_the_wyoming_client(server, source):
    info, by_ha, by_rhasspy, oos = _run(_ask(
        server.port, Describe().event(),
        Transcript(KITCHEN, language="en", context={"conversation_id": "c1"}).event(),
        Recognize(KITCHEN).event(), Transcript("what is the capital of france").event()))
    program = Info.from_event(info).intent[0]
    assert program.name == "edge-slm" and program.models[0].name == source.served.model_id
    assert program.models[0].languages == ["en"]
    for event in (by_ha, by_rhasspy):
        intent = Intent.from_event(event)
        assert intent.name == "HassTurnOff"
        entities = _entities(intent)
        assert entities["area"].lower() == "kitchen" and entities["domain"] == "light"
        assert 0.5 < event.data["confidence"] <= 1.0
    assert Intent.from_event(by_ha).context == {"conversation_id": "c1"}
    assert NotRecognized.is_type(oos.type) and NotRecognized.from_event(oos).text


def test_the_satellites_area_from_the_context(server):
    [answer] = _run(_ask(server.port, Transcript("turn on the lights in here",
                                                 context={"area": "Kitchen"}).event()))
    intent = Intent.from_event(answer)
    assert intent.name == "HassTurnOn" and _entities(intent)["area"].lower() == "kitchen"


def test_twenty_clients_at_once_are_all_answered(server):
    texts = [KITCHEN, "what is the capital of france"] * 10

    async def all_of_them():
        return await asyncio.gather(*(_ask(server.port, Transcript(t).event())
                                      for t in texts))

    answers = [a[0] for a in _run(all_of_them())]
    assert len(answers) == 20
    for text, answer in zip(texts, answers):
        if text == KITCHEN:
            assert Intent.from_event(answer).name == "HassTurnOff"
        else:
            assert NotRecognized.is_type(answer.type)
    assert server.served >= 20


class Raw:
    """A plain socket to the server, reading its events with our decoder."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.decoder = EventDecoder()
        self.pending: List[Event] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next(self) -> Optional[Event]:
        """The next event, or None when the server closed the connection."""
        while not self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.pending += [e for e in self.decoder.feed(chunk) if isinstance(e, Event)]
        return self.pending.pop(0)

    def close(self) -> None:
        self.sock.close()


def test_garbage_gets_an_error_and_the_connection_goes_on(server):
    raw = Raw(server.port)
    try:
        raw.send(b"GET / HTTP/1.1\r\n")
        err = w.Error.from_event(raw.next())
        assert err.code == BAD_JSON
        raw.send(w.Transcript(KITCHEN).to_bytes())
        assert w.Intent.from_event(raw.next()).name == "HassTurnOff"
    finally:
        raw.close()


def test_a_huge_declared_length_gets_an_error_and_the_connection_is_closed(server):
    raw = Raw(server.port)
    try:
        raw.send(json.dumps({"type": "transcript", "data_length": 2 ** 40}).encode() + b"\n")
        err = w.Error.from_event(raw.next())
        assert err.code == TOO_LARGE
        assert raw.next() is None  # closed by the server
    finally:
        raw.close()
    [answer] = _run(_ask(server.port, Transcript(KITCHEN).event()))  # still serving
    assert Intent.from_event(answer).name == "HassTurnOff"


def test_a_client_that_vanishes_mid_event_loses_nothing_else(server):
    raw = Raw(server.port)
    raw.send(b'{"type": "transcript", "data_length": 500}\n{"text": "turn')
    raw.close()
    [answer] = _run(_ask(server.port, Recognize(KITCHEN).event()))
    assert Intent.from_event(answer).name == "HassTurnOff"


def test_one_connection_too_many_is_told_busy(source):
    server = _start(source, max_connections=1)
    first = Raw(server.port)
    try:
        first.send(w.Describe().to_bytes())
        assert first.next().type == "info"  # the first one is being served
        second = Raw(server.port)
        err = w.Error.from_event(second.next())
        assert err.code == BUSY and second.next() is None
        second.close()
    finally:
        first.close()
        server.stop()


def test_an_idle_connection_is_closed(source):
    server = _start(source, idle_timeout_s=0.2)
    raw = Raw(server.port)
    try:
        assert raw.next() is None  # nothing sent: closed once idle
    finally:
        raw.close()
        server.stop()


def test_stop_closes_open_connections_and_the_port(source):
    server = _start(source)
    raw = Raw(server.port)
    raw.send(w.Describe().to_bytes())
    assert raw.next().type == "info"
    server.stop()
    assert raw.next() is None
    raw.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_a_port_in_use_is_a_config_error(server, source):
    from edge_slm.errors import ConfigError

    other = WyomingServer(WyomingHandler(source, DaemonConfig()), "127.0.0.1", server.port)
    with pytest.raises(ConfigError, match="cannot listen on tcp://127.0.0.1"):
        other.start()
