"""The explicit states of the HTTP/1.1 client state machine
(webwire._proto.h1): every legal and illegal transition of both tables, and
scenarios proving that the states only ever move through the tables."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto._h1_request import RequestWriter
from webwire._proto.h1 import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    ClientEvent,
    ClientState,
    H1Connection,
    H1State,
    ServerEvent,
    ServerState,
)

HOST = [(b"Host", b"example.com")]
LOCAL_EVENTS = {ServerEvent.REQUEST, ServerEvent.NEW_CYCLE}


# ------------------------------------------------------------ the tables


def test_every_state_is_reachable_and_tables_are_closed() -> None:
    for table, states in (
        (CLIENT_TRANSITIONS, set(ClientState)),
        (SERVER_TRANSITIONS, set(ServerState)),
    ):
        targets = set(table.values()) | {next(iter(sorted(states)))}
        assert targets == states
        assert {state for state, _ in table} <= states


def test_transitions_are_identified_by_their_states() -> None:
    # No two events move between the same pair of states, so a recorded
    # (old, new) pair names its event (used by the scenarios below).
    for table in (CLIENT_TRANSITIONS, SERVER_TRANSITIONS):
        pairs = [(old, new) for (old, _), new in table.items()]
        assert len(pairs) == len(set(pairs))


def writer_in(state: ClientState) -> RequestWriter:
    """A request writer in ``state``, with a chunked body in progress."""
    writer = RequestWriter()
    writer.head(b"POST", b"/", [(b"Transfer-Encoding", b"chunked")], None, False)
    writer.outgoing.clear()
    writer.state = state
    return writer


def fire(writer: RequestWriter, event: ClientEvent) -> bool:
    if event is ClientEvent.REQUEST:
        return writer.head(b"GET", b"/", HOST, None, False) is not None
    if event is ClientEvent.DATA:
        return writer.data(b"x")
    if event is ClientEvent.END_OF_MESSAGE:
        return writer.end()
    return writer.next_cycle()


@pytest.mark.parametrize("state, event", list(itertools.product(ClientState, ClientEvent)), ids=str)
def test_client_transition(state: ClientState, event: ClientEvent) -> None:
    writer = writer_in(state)
    allowed = fire(writer, event)
    expected = CLIENT_TRANSITIONS.get((state, event))
    if expected is None:
        assert not allowed
        assert writer.state is state
        assert writer.outgoing == []
    else:
        assert allowed
        assert writer.state is expected


@pytest.mark.parametrize("state, event", list(itertools.product(ServerState, ServerEvent)), ids=str)
def test_server_transition(state: ServerState, event: ServerEvent) -> None:
    conn = H1Connection()
    conn._their = state
    expected = SERVER_TRANSITIONS.get((state, event))
    if expected is not None:
        conn._server_step(event)
        assert conn.their_state is expected
    elif event in LOCAL_EVENTS:
        with pytest.raises(LocalProtocolError, match=f"{event.name} is not allowed"):
            conn._server_step(event)
        assert conn.their_state is state
    else:
        with pytest.raises(RemoteProtocolError, match=f"{event.name} is not allowed"):
            conn._server_step(event)
        assert conn.their_state is ServerState.ERROR


# ------------------------------------------------- illegal calls, public API


@pytest.mark.parametrize(
    "call",
    ["send_request", "send_data", "end_request", "start_next_cycle"],
)
@pytest.mark.parametrize("our", list(ClientState))
def test_illegal_calls_raise_and_change_nothing(call: str, our: ClientState) -> None:
    conn = H1Connection()
    conn._writer = writer_in(our)
    conn._outgoing = conn._writer.outgoing
    event = {
        "send_request": ClientEvent.REQUEST,
        "send_data": ClientEvent.DATA,
        "end_request": ClientEvent.END_OF_MESSAGE,
        "start_next_cycle": ClientEvent.NEW_CYCLE,
    }[call]
    arguments: dict[str, list[Any]] = {"send_request": [b"GET", b"/", HOST], "send_data": [b"x"]}
    args = arguments.get(call, [])
    if (our, event) in CLIENT_TRANSITIONS and event is not ClientEvent.NEW_CYCLE:
        return  # legal: covered by the scenarios
    before = (conn.our_state, conn.their_state)
    with pytest.raises(LocalProtocolError, match="cannot"):
        getattr(conn, call)(*args)
    assert (conn.our_state, conn.their_state) == before
    assert conn.data_to_send() == b""


def test_no_call_is_allowed_after_a_server_error() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"5")])
    conn.data_to_send()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"garbage\r\n\r\n")
    assert conn.their_state is ServerState.ERROR
    assert conn.our_state is ClientState.SEND_BODY
    for call, args in (("send_data", [b"x"]), ("end_request", [])):
        with pytest.raises(LocalProtocolError, match="ERROR"):
            getattr(conn, call)(*args)
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.start_next_cycle()
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        conn.receive_data(b"more")


# ----------------------------------- scenarios: states move only by table


class RecordingWriter(RequestWriter):
    """Records every assignment of ``state``."""

    moves: list[tuple[ClientState, ClientState]]

    @property  # type: ignore[override]
    def state(self) -> ClientState:
        return self._state  # type: ignore[no-any-return]

    @state.setter
    def state(self, new: ClientState) -> None:
        old = getattr(self, "_state", None)
        if old is not None:
            self.moves.append((old, new))
        self._state = new


class RecordingConnection(H1Connection):
    """An H1Connection that records every move of both sides."""

    def __init__(self, **kwargs: Any) -> None:
        self.server_moves: list[tuple[ServerState, ServerState]] = []
        super().__init__(**kwargs)
        writer = RecordingWriter.__new__(RecordingWriter)
        writer.moves = []
        RecordingWriter.__init__(writer)
        self._writer = writer
        self._outgoing = writer.outgoing

    @property  # type: ignore[override]
    def _their(self) -> ServerState:
        return self.__dict__["_their_state"]  # type: ignore[no-any-return]

    @_their.setter
    def _their(self, new: ServerState) -> None:
        old = self.__dict__.get("_their_state")
        if old is not None:
            self.server_moves.append((old, new))
        self.__dict__["_their_state"] = new

    @property
    def client_moves(self) -> list[tuple[ClientState, ClientState]]:
        writer = self._writer
        assert isinstance(writer, RecordingWriter)
        return writer.moves


def client_event(old: ClientState, new: ClientState) -> ClientEvent:
    events = [e for (s, e), n in CLIENT_TRANSITIONS.items() if s is old and n is new]
    assert len(events) == 1, f"client moved {old.name} -> {new.name} outside the table"
    return events[0]


def server_event(old: ServerState, new: ServerState) -> ServerEvent:
    events = [e for (s, e), n in SERVER_TRANSITIONS.items() if s is old and n is new]
    assert len(events) == 1, f"server side moved {old.name} -> {new.name} outside the table"
    return events[0]


def run(
    method: bytes = b"GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: tuple[bytes, ...] = (),
    *,
    body: bytes | None = None,
    end: bool = True,
    eof: bool = False,
    cycle: bool = False,
    before_end: tuple[bytes, ...] = (),
) -> RecordingConnection:
    """Drive a recording connection through one exchange."""
    conn = RecordingConnection()
    fields = HOST if headers is None else headers
    conn.send_request(method, b"/", fields, end_stream=body is None and end)
    for chunk in before_end:
        try:
            conn.receive_data(chunk)
        except RemoteProtocolError:
            return conn
    if body is not None:
        conn.send_data(body)
        if end:
            conn.end_request()
    conn.data_to_send()
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
        if eof:
            conn.receive_data(b"")
        if cycle:
            conn.start_next_cycle()
    except RemoteProtocolError:
        pass
    conn.events()
    return conn


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
UPGRADE = [*HOST, (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
LONG = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"

SCENARIOS: dict[str, tuple[Any, list[ServerState]]] = {
    "get, keep-alive, next cycle": (
        lambda: run(chunks=(OK,), cycle=True),
        [ServerState.IDLE],
    ),
    "post with a body": (
        lambda: run(b"POST", [*HOST, (b"Content-Length", b"2")], (OK,), body=b"hi"),
        [ServerState.DONE],
    ),
    "interim then final": (
        lambda: run(chunks=(b"HTTP/1.1 100 Continue\r\n\r\n", OK)),
        [ServerState.DONE],
    ),
    "connection close": (
        lambda: run(chunks=(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",)),
        [ServerState.MUST_CLOSE],
    ),
    "bytes after a close response": (
        lambda: run(
            chunks=(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxjunk",)
        ),
        [ServerState.MUST_CLOSE],
    ),
    "close delimited": (
        lambda: run(chunks=(b"HTTP/1.1 200 OK\r\n\r\nabc",), eof=True),
        [ServerState.CLOSED],
    ),
    "eof when idle": (lambda: eof_when_idle(), [ServerState.CLOSED]),
    "eof after the response": (lambda: run(chunks=(OK,), eof=True), [ServerState.CLOSED]),
    "eof after a close response": (
        lambda: run(
            chunks=(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",),
            eof=True,
        ),
        [ServerState.CLOSED],
    ),
    "head": (
        lambda: run(b"HEAD", chunks=(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",)),
        [ServerState.DONE],
    ),
    "head with close": (
        lambda: run(b"HEAD", chunks=(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\n",)),
        [ServerState.MUST_CLOSE],
    ),
    "101 switch": (
        lambda: run(headers=UPGRADE, chunks=(b"HTTP/1.1 101 Switching Protocols\r\n\r\nxx",)),
        [ServerState.SWITCHED],
    ),
    "connect 200": (
        lambda: run(b"CONNECT", chunks=(b"HTTP/1.1 200 OK\r\n\r\n\x16",)),
        [ServerState.SWITCHED],
    ),
    "connect 407": (
        lambda: run(b"CONNECT", chunks=(b"HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n",)),
        [ServerState.DONE],
    ),
    "long body, raw": (
        lambda: run(chunks=(LONG + b"a" * 1000, b"b" * 199_000)),
        [ServerState.DONE],
    ),
    "long body then extra bytes": (
        lambda: run(chunks=(LONG + b"a" * 1000, b"b" * 199_000 + b"HTTP")),
        [ServerState.MUST_CLOSE],
    ),
    "long body cut short": (
        lambda: run(chunks=(LONG + b"a" * 1000,), eof=True),
        [ServerState.ERROR],
    ),
    "flood between cycles": (lambda: flood_between_cycles(), [ServerState.MUST_CLOSE]),
    "flood before a request": (lambda: flood_before_request(), [ServerState.ERROR]),
    "malformed head": (lambda: run(chunks=(b"garbage\r\n\r\n",)), [ServerState.ERROR]),
    "malformed body": (
        lambda: run(chunks=(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",)),
        [ServerState.ERROR],
    ),
    "early response while sending": (
        lambda: run(
            b"POST",
            [*HOST, (b"Content-Length", b"4")],
            before_end=(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",),
            body=b"ab",
            end=False,
        ),
        [ServerState.DONE],
    ),
}


def eof_when_idle() -> RecordingConnection:
    conn = RecordingConnection()
    conn.receive_data(b"")
    return conn


def flood_between_cycles() -> RecordingConnection:
    conn = run(chunks=(OK,))
    conn.receive_data(b"x" * 70_000)
    return conn


def flood_before_request() -> RecordingConnection:
    conn = RecordingConnection(max_header_size=100)
    try:
        conn.receive_data(b"x" * 200)
    except RemoteProtocolError:
        pass
    return conn


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_moves_only_through_the_tables(name: str) -> None:
    build, final = SCENARIOS[name]
    conn = build()
    for old, new in conn.server_moves:
        server_event(old, new)
    for old, new in conn.client_moves:
        client_event(old, new)
    assert conn.their_state is final[0]


def test_scenarios_cover_every_legal_transition() -> None:
    seen_server: set[tuple[ServerState, ServerEvent]] = set()
    seen_client: set[tuple[ClientState, ClientEvent]] = set()
    for build, _ in SCENARIOS.values():
        conn = build()
        seen_server |= {(old, server_event(old, new)) for old, new in conn.server_moves}
        seen_client |= {(old, client_event(old, new)) for old, new in conn.client_moves}
    # PROTOCOL_ERROR from SEND_RAW_BODY is the truncated long body above;
    # every other pair comes from a scenario as well.
    assert seen_server == set(SERVER_TRANSITIONS)
    assert seen_client == set(CLIENT_TRANSITIONS)


def test_summary_state_of_each_pair() -> None:
    conn = H1Connection()
    cases = {
        (ClientState.IDLE, ServerState.IDLE): H1State.IDLE,
        (ClientState.SEND_BODY, ServerState.SEND_RESPONSE): H1State.SENDING,
        (ClientState.SEND_BODY, ServerState.DONE): H1State.SENDING,
        (ClientState.DONE, ServerState.SEND_RESPONSE): H1State.RECEIVING,
        (ClientState.DONE, ServerState.SEND_BODY): H1State.RECEIVING,
        (ClientState.DONE, ServerState.SEND_RAW_BODY): H1State.RECEIVING,
        (ClientState.DONE, ServerState.DONE): H1State.DONE,
        (ClientState.DONE, ServerState.MUST_CLOSE): H1State.DONE,
        (ClientState.DONE, ServerState.SWITCHED): H1State.SWITCHED,
        (ClientState.SEND_BODY, ServerState.CLOSED): H1State.CLOSED,
        (ClientState.IDLE, ServerState.ERROR): H1State.ERROR,
    }
    for (our, their), summary in cases.items():
        conn._writer.state = our
        conn._their = their
        assert conn.state is summary
        assert conn.keep_alive is (our is ClientState.DONE and their is ServerState.DONE)


def test_101_only_to_an_upgrade_request() -> None:
    for method, headers in ((b"GET", HOST), (b"CONNECT", HOST), (b"HEAD", HOST)):
        conn = H1Connection()
        conn.send_request(method, b"/", headers, end_stream=True)
        with pytest.raises(RemoteProtocolError, match="without Upgrade"):
            conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        assert conn.their_state is ServerState.ERROR
    conn = H1Connection()
    conn.send_request(b"HEAD", b"/", UPGRADE, end_stream=True)
    conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\nabc")
    assert conn.their_state is ServerState.SWITCHED
    assert conn.trailing_data == b"abc"


def test_switch_while_the_request_body_is_in_progress() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*UPGRADE, (b"Content-Length", b"4")])
    conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    assert (conn.our_state, conn.their_state) == (ClientState.SEND_BODY, ServerState.SWITCHED)
    assert conn.state is H1State.SWITCHED
    assert not conn.keep_alive
