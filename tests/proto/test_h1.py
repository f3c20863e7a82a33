"""Tests of the HTTP/1.1 client state machine (webwire._proto.h1), in memory."""

from __future__ import annotations

from typing import Any

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._proto.events import (
    ConnectionTerminated,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    ResponseHead,
)
from webwire._proto.h1 import H1Connection, H1State

HOST = [(b"Host", b"example.com")]


# ----------------------------------------------------------------- helpers


def started(
    method: bytes = b"GET", headers: list[tuple[bytes, bytes]] | None = None, **kw: Any
) -> H1Connection:
    """A connection whose request has been sent completely."""
    conn = H1Connection(**kw)
    conn.send_request(method, b"/", HOST if headers is None else headers, end_stream=True)
    conn.data_to_send()
    return conn


def normalise(events: list[Event]) -> list[tuple[Any, ...]]:
    """Events as tuples, with consecutive Data merged."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, Data):
            assert event.stream_id == 0
            if out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + event.data)
            else:
                out.append(("data", event.data))
        elif isinstance(event, ResponseHead):
            out.append(
                (
                    "head",
                    event.status_code,
                    event.reason_phrase,
                    event.headers,
                    event.http_version,
                )
            )
        elif isinstance(event, InformationalResponse):
            out.append(("info", event.status_code, event.reason_phrase, event.headers))
        elif isinstance(event, EndOfMessage):
            out.append(("end", event.trailers))
        elif isinstance(event, ConnectionTerminated):
            out.append(("terminated",))
        else:  # pragma: no cover - no other event is expected
            raise AssertionError(event)
    return out


def feed(conn: H1Connection, chunks: list[bytes], eof: bool = False) -> list[tuple[Any, ...]]:
    """Feed the chunks (and an end of stream) and return the normalised events."""
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += conn.events()
    if eof:
        conn.receive_data(b"")
        events += conn.events()
    return normalise(events)


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# ------------------------------------------------------------ response bodies


def test_content_length_response() -> None:
    conn = started()
    events = feed(
        conn,
        [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"],
    )
    assert events == [
        (
            "head",
            200,
            b"OK",
            [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")],
            "HTTP/1.1",
        ),
        ("data", b"hello"),
        ("end", []),
    ]
    assert conn.state is H1State.DONE
    assert conn.keep_alive
    assert conn.received_any


def test_event_types_and_stream_id() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    head, data, end = conn.events()
    assert type(head) is ResponseHead and head.stream_id == 0
    assert type(data) is Data and data.stream_id == 0
    assert type(end) is EndOfMessage and end.stream_id == 0
    assert conn.events() == []


def test_chunked_response_with_trailers() -> None:
    conn = started()
    events = feed(
        conn,
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        ],
    )
    assert events == [
        ("head", 200, b"OK", [(b"Transfer-Encoding", b"chunked")], "HTTP/1.1"),
        ("data", b"hello world"),
        ("end", [(b"X-Checksum", b"abc"), (b"X-Other", b"1")]),
    ]
    assert conn.keep_alive


def test_close_delimited_response() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome ", b"data"], eof=True)
    assert events == [
        ("head", 200, b"OK", [(b"Server", b"x")], "HTTP/1.1"),
        ("data", b"some data"),
        ("end", []),
    ]
    assert not conn.keep_alive
    assert conn.state is H1State.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_close_delimited_by_non_chunked_transfer_encoding() -> None:
    conn = started()
    events = feed(
        conn, [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nab"], eof=True
    )
    assert events[1:] == [("data", b"2\r\nab"), ("end", [])]
    assert not conn.keep_alive


def test_empty_reason_phrase_and_no_headers() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 \r\n\r\n"], eof=True)
    assert events == [("head", 200, b"", [], "HTTP/1.1"), ("end", [])]
    conn = started()
    events = feed(conn, [b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"])
    assert events == [("head", 404, b"", [(b"Content-Length", b"0")], "HTTP/1.1"), ("end", [])]


def test_header_case_and_order_preserved() -> None:
    conn = started()
    headers = [(b"X-B", b"2"), (b"x-a", b"1"), (b"SET-COOKIE", b"a=1"), (b"Set-Cookie", b"b=2")]
    raw = b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    events = feed(conn, [b"HTTP/1.1 200 OK\r\n" + raw + b"Content-Length: 0\r\n\r\n"])
    assert events[0][3] == [*headers, (b"Content-Length", b"0")]


def test_whitespace_around_values_is_stripped() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nX-A:   padded  \r\nContent-Length: 0\r\n\r\n"])
    assert events[0][3][0] == (b"X-A", b"padded")


# ------------------------------------------------------------- no-content cases


@pytest.mark.parametrize(
    "framing", [b"Content-Length: 20\r\n", b"Transfer-Encoding: chunked\r\n", b""]
)
def test_head_response_has_no_body(framing: bytes) -> None:
    conn = started(b"HEAD")
    events = feed(conn, [b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n"])
    assert [e[0] for e in events] == ["head", "end"]
    assert conn.state is H1State.DONE
    assert conn.keep_alive
    # The connection carries the next request and its response correctly.
    conn.start_next_cycle()
    conn.send_request(b"GET", b"/", HOST, end_stream=True)
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"])
    assert events[1:] == [("data", b"abc"), ("end", [])]
    assert conn.keep_alive


def test_bytes_after_head_response_in_later_read_prevent_reuse() -> None:
    # Nothing was asked: bytes after a complete response are never taken as
    # the next response (a HEAD answered with content would be read as it).
    conn = started(b"HEAD")
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
    assert [type(e) for e in conn.events()] == [ResponseHead, EndOfMessage]
    conn.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert conn.events() == []
    assert not conn.keep_alive
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_head_response_http10_keep_alive_rules() -> None:
    conn = started(b"HEAD")
    feed(conn, [b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n"])
    assert not conn.keep_alive
    conn = started(b"HEAD")
    feed(conn, [b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"])
    assert conn.keep_alive
    conn = started(b"HEAD")
    feed(conn, [b"HTTP/1.1 200 OK\r\nConnection: x, close\r\n\r\n"])
    assert not conn.keep_alive
    conn = started(b"HEAD", [*HOST, (b"Connection", b"close")])
    feed(conn, [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert not conn.keep_alive


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize(
    "framing", [b"Content-Length: 20\r\n", b"Transfer-Encoding: chunked\r\n", b""]
)
def test_204_304_have_no_body(status: int, framing: bytes) -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 %d X\r\n" % status + framing + b"\r\n"])
    assert [e[0] for e in events] == ["head", "end"]
    assert conn.keep_alive
    conn.start_next_cycle()
    conn.send_request(b"GET", b"/", HOST, end_stream=True)
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    assert events[1:] == [("data", b"ok"), ("end", [])]


# -------------------------------------------------------------- interim (1xx)


def test_interim_responses_then_final() -> None:
    conn = started()
    events = feed(
        conn,
        [
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        ],
    )
    assert events == [
        ("info", 100, b"Continue", []),
        ("info", 103, b"Early Hints", [(b"Link", b"</a.css>; rel=preload")]),
        ("head", 200, b"OK", [(b"Content-Length", b"2")], "HTTP/1.1"),
        ("data", b"hi"),
        ("end", []),
    ]
    assert conn.keep_alive


def test_100_continue_before_body_is_sent() -> None:
    conn = H1Connection()
    conn.send_request(
        b"PUT", b"/", [*HOST, (b"Expect", b"100-continue"), (b"Content-Length", b"2")]
    )
    conn.data_to_send()
    conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert normalise(conn.events()) == [("info", 100, b"Continue", [])]
    assert conn.state is H1State.SENDING
    conn.send_data(b"ok")
    conn.end_request()
    assert conn.data_to_send() == b"ok"
    events = feed(conn, [b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"])
    assert events == [
        ("head", 201, b"Created", [(b"Content-Length", b"0")], "HTTP/1.1"),
        ("end", []),
    ]
    assert conn.keep_alive


def test_interim_response_with_content_refused() -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="interim"):
        conn.receive_data(b"HTTP/1.1 199 X\r\nContent-Length: 2\r\n\r\nhi")


def test_interim_with_head_request() -> None:
    conn = started(b"HEAD")
    events = feed(
        conn,
        bytewise(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
    )
    assert [e[0] for e in events] == ["info", "head", "end"]


# ------------------------------------------------------------ protocol switch

UPGRADE = [*HOST, (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]


@pytest.mark.parametrize(
    "fields", [b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"", b"Upgrade: websocket\r\n"]
)
def test_101_switching_protocols(fields: bytes) -> None:
    conn = started(headers=UPGRADE)
    head = b"HTTP/1.1 101 Switching Protocols\r\n" + fields + b"\r\n"
    events = feed(conn, [head + b"\x81\x05hello"])
    assert events[0][:3] == ("info", 101, b"Switching Protocols")
    assert len(events) == 1
    assert conn.state is H1State.SWITCHED
    assert conn.trailing_data == b"\x81\x05hello"
    assert not conn.keep_alive
    conn.receive_data(b"more")
    assert conn.trailing_data == b"\x81\x05hellomore"
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    with pytest.raises(LocalProtocolError):
        conn.send_request(b"GET", b"/", HOST)


def test_101_after_100() -> None:
    conn = started(headers=UPGRADE)
    events = feed(conn, bytewise(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\nabc"))
    assert [e[:2] for e in events] == [("info", 100), ("info", 101)]
    assert conn.trailing_data == b"abc"


def test_upgrade_declined() -> None:
    conn = started(headers=UPGRADE)
    events = feed(conn, bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"))
    assert events[1:] == [("data", b"body"), ("end", [])]
    assert conn.keep_alive
    assert conn.trailing_data == b""


def test_101_without_upgrade_request_refused() -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="without Upgrade"):
        conn.receive_data(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
        )
    assert conn.state is H1State.ERROR


def test_connect_tunnel() -> None:
    conn = H1Connection()
    conn.send_request(
        b"CONNECT", b"example.com:443", [(b"Host", b"example.com:443")], end_stream=True
    )
    assert (
        conn.data_to_send() == b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    events = feed(conn, [b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01"])
    assert events == [("head", 200, b"Connection Established", [], "HTTP/1.1"), ("end", [])]
    assert conn.state is H1State.SWITCHED
    assert conn.trailing_data == b"\x16\x03\x01"


def test_connect_refused_has_body() -> None:
    conn = started(b"CONNECT")
    events = feed(conn, bytewise(b"HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\nno!"))
    assert events[1:] == [("data", b"no!"), ("end", [])]
    assert conn.state is H1State.DONE
    assert conn.keep_alive


# ---------------------------------------------------------------- keep-alive


@pytest.mark.parametrize(
    "response, request_headers, expected",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HOST, True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", HOST, False),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
            HOST,
            False,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", HOST, False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", HOST, True),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            [*HOST, (b"Connection", b"close")],
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            [*HOST, (b"connection", b"keep-alive, Close")],
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            [*HOST, (b"Connection", b"closed")],
            True,
        ),
    ],
)
def test_keep_alive_rules(
    response: bytes, request_headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    conn = started(headers=request_headers)
    feed(conn, [response])
    assert conn.state is H1State.DONE
    assert conn.keep_alive is expected
    if not expected:
        with pytest.raises(LocalProtocolError, match="not reusable"):
            conn.start_next_cycle()


def test_http10_response_version() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert events[0][4] == "HTTP/1.0"


def test_two_responses_on_one_connection() -> None:
    conn = started()
    assert feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"])[1:] == [
        ("data", b"one"),
        ("end", []),
    ]
    conn.start_next_cycle()
    assert conn.state is H1State.IDLE
    assert not conn.received_any
    conn.send_request(b"POST", b"/two", [*HOST, (b"Content-Length", b"1")])
    conn.send_data(b"x")
    conn.end_request()
    assert conn.data_to_send().startswith(b"POST /two HTTP/1.1\r\n")
    events = feed(
        conn, [b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"]
    )
    assert events[0][:2] == ("head", 201)
    assert events[1:] == [("data", b"two"), ("end", [])]
    assert conn.keep_alive
    conn.start_next_cycle()
    conn.send_request(b"GET", b"/three", HOST, end_stream=True)
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthree"])
    assert events[1:] == [("data", b"three"), ("end", [])]


def test_start_next_cycle_requires_completion() -> None:
    conn = H1Connection()
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\non")
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_early_response_before_request_body_done() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"4")])
    conn.send_data(b"ab")
    feed(conn, [b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"])
    assert conn.state is H1State.SENDING
    assert not conn.keep_alive
    conn.send_data(b"cd")
    conn.end_request()
    assert conn.state is H1State.DONE
    assert conn.keep_alive


def test_stray_crlf_after_response_is_tolerated() -> None:
    conn = started()
    feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx\r\n"])
    assert conn.keep_alive


def test_unsolicited_data_in_same_read_prevents_reuse() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n"])
    assert events[1:] == [("data", b"x"), ("end", [])]
    assert conn.state is H1State.DONE
    assert not conn.keep_alive


def test_data_after_close_response_is_ignored() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxjunk"])
    assert events[1:] == [("data", b"x"), ("end", [])]
    conn.receive_data(b"more junk")
    assert conn.events() == []
    assert not conn.keep_alive


def test_bytes_between_cycles_prevent_reuse() -> None:
    conn = started()
    feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert conn.keep_alive
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Len")
    assert conn.events() == []
    assert not conn.keep_alive
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_eof_when_idle_is_connection_terminated() -> None:
    conn = H1Connection()
    conn.receive_data(b"")
    assert normalise(conn.events()) == [("terminated",)]
    assert conn.state is H1State.CLOSED
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        conn.send_request(b"GET", b"/", HOST)


def test_eof_after_complete_response() -> None:
    conn = started()
    feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert conn.keep_alive
    conn.receive_data(b"")
    assert normalise(conn.events()) == [("terminated",)]
    assert not conn.keep_alive
    assert conn.state is H1State.CLOSED


# ----------------------------------------------------------------- failures


def test_eof_before_any_response_byte() -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="without sending a response") as info:
        conn.receive_data(b"")
    assert not conn.received_any
    assert info.value.__cause__ is None
    assert conn.state is H1State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")


def test_eof_in_the_middle_of_the_head() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-")
    with pytest.raises(RemoteProtocolError, match="header section"):
        conn.receive_data(b"")
    assert conn.received_any


def test_eof_in_the_middle_of_a_head_response_head() -> None:
    conn = started(b"HEAD")
    conn.receive_data(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(RemoteProtocolError, match="header section"):
        conn.receive_data(b"")


def test_truncated_content_length_body() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert normalise(conn.events())[1:] == [("data", b"abc")]
    with pytest.raises(RemoteProtocolError, match="Content-Length: 10"):
        conn.receive_data(b"")
    assert conn.state is H1State.ERROR
    assert not conn.keep_alive


def test_truncated_chunked_body() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    with pytest.raises(RemoteProtocolError, match="chunked"):
        conn.receive_data(b"")


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    ],
)
def test_bad_chunked_encoding(response: bytes) -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="malformed") as info:
        conn.receive_data(response)
    assert isinstance(info.value.__cause__, httptools.HttpParserError)
    assert conn.state is H1State.ERROR


@pytest.mark.parametrize(
    "response",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    ],
)
def test_malformed_response(response: bytes) -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match=r"malformed HTTP response: .") as info:
        conn.receive_data(response)
    assert isinstance(info.value.__cause__, httptools.HttpParserError)


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9"])
def test_unsupported_version(version: bytes) -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="version"):
        conn.receive_data(version + b" 200 OK\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("split", [False, True])
def test_header_size_limit(method: bytes, split: bool) -> None:
    status = b"HTTP/1.1 200 OK\r\n"
    line = b"X-Pad: " + b"a" * 100 + b"\r\n"
    limit = len(status) + 10 * len(line)
    ok = status + line * 10 + b"Content-Length: 0\r\n"
    conn = started(method, max_header_size=len(ok))
    events = feed(conn, bytewise(ok + b"\r\n") if split else [ok + b"\r\n"])
    assert [e[0] for e in events] == ["head", "end"]

    too_big = status + line * 10 + b"X: 1\r\n\r\n"
    conn = started(method, max_header_size=limit)
    with pytest.raises(RemoteProtocolError, match=f"exceeds {limit} bytes"):
        feed(conn, bytewise(too_big) if split else [too_big])
    assert conn.state is H1State.ERROR


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_endless_header_value_is_cut_off(method: bytes) -> None:
    conn = started(method, max_header_size=4096)
    conn.receive_data(b"HTTP/1.1 200 OK\r\nX-Long: ")
    fed = 0
    with pytest.raises(RemoteProtocolError, match="exceeds 4096 bytes"):
        for _ in range(1000):
            conn.receive_data(b"a" * 1000)
            fed += 1000
    assert fed <= 5000


def test_header_size_limit_after_interim_response() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
    conn = started(max_header_size=150)
    with pytest.raises(RemoteProtocolError, match="exceeds 150 bytes"):
        conn.receive_data(interim + final)
    conn = started(max_header_size=len(final))
    assert [e[0] for e in feed(conn, [interim + final])] == ["info", "head", "end"]


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_header_count_limit(method: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10))
    conn = started(method, max_header_count=11)
    events = feed(conn, [head + b"Content-Length: 0\r\n\r\n"])
    assert len(events[0][3]) == 11
    conn = started(method, max_header_count=10)
    with pytest.raises(RemoteProtocolError, match="exceeds 10 fields"):
        conn.receive_data(head + b"Content-Length: 0\r\n\r\n")


def test_trailer_count_limit() -> None:
    conn = started(max_header_count=2)
    with pytest.raises(RemoteProtocolError, match="trailer section exceeds 2 fields"):
        conn.receive_data(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        )


def test_unsolicited_flood_before_request() -> None:
    conn = H1Connection(max_header_size=100)
    with pytest.raises(RemoteProtocolError, match="before a request"):
        conn.receive_data(b"x" * 200)


def test_response_before_request_is_parsed_after_it() -> None:
    conn = H1Connection()
    conn.receive_data(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n")
    assert conn.events() == []
    conn.send_request(b"GET", b"/", HOST, end_stream=True)
    conn.receive_data(b"Content-Length: 0\r\n\r\n")
    events = normalise(conn.events())
    assert events[0][:2] == ("head", 408)
    assert not conn.keep_alive


# ------------------------------------------- every split gives the same events

SCRIPTS: list[tuple[bytes, bytes, bool]] = [
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-A: b\r\n\r\nHello, world!", False),
    (
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n",
        False,
    ),
    (b"GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    (b"GET", b"HTTP/1.0 200 OK\r\nServer: s\r\n\r\nuntil the end", True),
    (b"GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", False),
    (b"GET", b'\r\nHTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', False),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", False),
    (b"HEAD", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n\r\n", False),
]


def run_script(method: bytes, chunks: list[bytes], eof: bool) -> tuple[Any, ...]:
    conn = started(method)
    events = feed(conn, chunks, eof)
    return events, conn.state, conn.keep_alive


@pytest.mark.parametrize("method, response, eof", SCRIPTS)
def test_every_split_gives_the_same_events(method: bytes, response: bytes, eof: bool) -> None:
    expected = run_script(method, [response], eof)
    assert expected[0][-1][0] == "end"
    assert run_script(method, bytewise(response), eof) == expected
    for cut in range(1, len(response)):
        assert run_script(method, [response[:cut], response[cut:]], eof) == expected, cut


def test_every_split_of_a_switch_gives_the_same_trailing_data() -> None:
    response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    for chunks in [bytewise(response)] + [
        [response[:cut], response[cut:]] for cut in range(1, len(response))
    ]:
        conn = started(headers=UPGRADE)
        events = feed(conn, chunks)
        assert [e[:2] for e in events] == [("info", 101)]
        assert conn.trailing_data == b"\x81\x02hi"


# -------------------------------------------------------------- hypothesis

token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=12,
)
field_value = st.binary(min_size=0, max_size=30).map(
    lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E or c >= 0x80)
)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, list[tuple[Any, ...]], bool]:
    """A valid response, the events it must give, and whether it needs EOF."""
    status = draw(st.sampled_from([200, 201, 202, 400, 404, 500, 503]))
    reason = draw(st.sampled_from([b"OK", b"", b"Some Reason"]))
    names = draw(st.lists(token, max_size=6))
    headers = [(b"X-" + name.encode(), draw(field_value)) for name in names]
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    trailers: list[tuple[bytes, bytes]] = []
    if framing == "length":
        headers.append((b"Content-Length", b"%d" % len(body)))
        payload = body
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 64), max_size=10))
        payload, pos = b"", 0
        for size in sizes:
            piece = body[pos : pos + size]
            pos += size
            if piece:
                payload += b"%x\r\n" % len(piece) + piece + b"\r\n"
        if pos < len(body):
            payload += b"%x\r\n" % (len(body) - pos) + body[pos:] + b"\r\n"
        trailers = [
            (b"T-" + n.encode(), draw(field_value)) for n in draw(st.lists(token, max_size=2))
        ]
        payload += b"0\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in trailers) + b"\r\n"
    else:
        payload = body
    raw = b"HTTP/1.1 %d " % status + reason + b"\r\n"
    raw += b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n" + payload
    expected: list[tuple[Any, ...]] = [("head", status, reason, headers, "HTTP/1.1")]
    if body:
        expected.append(("data", body))
    expected.append(("end", trailers))
    return raw, expected, framing == "close"


@settings(max_examples=300, deadline=None)
@given(responses(), st.data())
def test_random_chunkings_of_random_responses(
    case: tuple[bytes, list[tuple[Any, ...]], bool], data: st.DataObject
) -> None:
    raw, expected, eof = case
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=20)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)]) if b > a]
    conn = started()
    assert feed(conn, chunks, eof) == expected
    assert conn.keep_alive is not eof
    whole = started()
    assert feed(whole, [raw], eof) == expected


@pytest.mark.parametrize("extra", [b"HACKED", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"])
def test_head_response_followed_by_bytes_in_same_read(extra: bytes) -> None:
    conn = started(b"HEAD")
    events = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + extra])
    assert [e[0] for e in events] == ["head", "end"]
    assert not conn.keep_alive


def test_flood_between_cycles_prevents_reuse() -> None:
    conn = started(max_header_size=100)
    feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    assert conn.keep_alive
    conn.receive_data(b"x")
    assert not conn.keep_alive


# ----------------------------------------------- long Content-Length bodies


LONG_BODY = bytes(range(256)) * 1024  # 256 KiB, past the parser bypass threshold


def long_response(body: bytes = LONG_BODY) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("piece", [1000, 4096, 65536, 100_000])
def test_long_body_in_pieces_then_next_response(piece: int) -> None:
    conn = started()
    wire = long_response()
    chunks = [wire[i : i + piece] for i in range(0, len(wire), piece)]
    events = feed(conn, chunks)
    assert events[1] == ("data", LONG_BODY)
    assert events[-1] == ("end", [])
    assert conn.keep_alive
    conn.start_next_cycle()
    conn.send_request(b"GET", b"/", HOST, end_stream=True)
    conn.data_to_send()
    again = feed(conn, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok"])
    assert again[1:] == [("data", b"ok"), ("end", [])]


def test_long_body_cut_short_raises() -> None:
    conn = started()
    wire = long_response()
    conn.receive_data(wire[:1000])
    conn.receive_data(wire[1000:-10])
    with pytest.raises(RemoteProtocolError, match="Content-Length"):
        conn.receive_data(b"")


def test_long_body_with_extra_bytes_in_same_read_is_not_reused() -> None:
    conn = started()
    wire = long_response()
    events = feed(conn, [wire[:1000], wire[1000:] + b"HTTP/1.1 200 OK\r\n"])
    assert events[1] == ("data", LONG_BODY)
    assert events[-1] == ("end", [])
    assert not conn.keep_alive


def test_long_chunked_body_is_still_parsed() -> None:
    conn = started()
    chunk = b"%x\r\n" % len(LONG_BODY) + LONG_BODY + b"\r\n0\r\n\r\n"
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk
    events = feed(conn, [wire[i : i + 5000] for i in range(0, len(wire), 5000)])
    assert events[1] == ("data", LONG_BODY)
    assert events[-1] == ("end", [])


# ------------------------------------ obs-fold, reason phrase, chunk framing bounds


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_obs_fold_is_replaced_by_a_space(split: bool, method: bytes) -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\n\tthree\r\nX-B: b\r\n"
        b"Content-Length: 2\r\n\r\n"
    )
    conn = started(method)
    events = feed(conn, bytewise(raw) if split else [raw])
    # Each fold becomes one or more spaces (RFC 9112 section 5.2).
    fields = [(name, b" ".join(value.split())) for name, value in events[0][3]]
    assert fields == [(b"X-A", b"one two three"), (b"X-B", b"b"), (b"Content-Length", b"2")]
    assert b"\t" not in events[0][3][0][1]


@pytest.mark.parametrize("reason", [b"O\x00K", b"O\x01K", b"O\x7fK", b"O\x1bK"])
def test_control_in_reason_phrase_is_refused(reason: bytes) -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError, match="reason phrase"):
        conn.receive_data(b"HTTP/1.1 200 " + reason + b"\r\nContent-Length: 0\r\n\r\n")


def test_tab_and_obs_text_in_reason_phrase_are_kept() -> None:
    conn = started()
    events = feed(conn, [b"HTTP/1.1 200 O\tK \xe9\r\nContent-Length: 0\r\n\r\n"])
    assert events[0][2] == b"O\tK \xe9"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("piece", [100, 5000])
def test_endless_chunk_extension_is_cut_off(piece: int) -> None:
    conn = started(max_header_size=4096)
    conn.receive_data(CHUNKED_HEAD + b"3;ext=")
    fed = 0
    with pytest.raises(RemoteProtocolError, match="exceed 4096 bytes"):
        for _ in range(1000):
            conn.receive_data(b"a" * piece)
            fed += piece
    assert fed <= 4096 + 2 * piece


@pytest.mark.parametrize("piece", [100, 5000])
def test_endless_trailer_section_is_cut_off(piece: int) -> None:
    conn = started(max_header_size=4096)
    conn.receive_data(CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-Trailer: ")
    fed = 0
    with pytest.raises(RemoteProtocolError, match="exceed 4096 bytes"):
        for _ in range(1000):
            conn.receive_data(b"a" * piece)
            fed += piece
    assert fed <= 4096 + 2 * piece


def test_trailer_section_size_limit_in_one_read() -> None:
    conn = started(max_header_size=1000)
    with pytest.raises(RemoteProtocolError, match="trailer section exceeds 1000 bytes"):
        conn.receive_data(CHUNKED_HEAD + b"0\r\nX-T: " + b"a" * 2000 + b"\r\n\r\n")
    conn = started(max_header_size=1000)
    events = feed(conn, [CHUNKED_HEAD + b"0\r\nX-T: " + b"a" * 900 + b"\r\n\r\n"])
    assert events[-1] == ("end", [(b"X-T", b"a" * 900)])


def test_many_small_chunks_are_not_overhead() -> None:
    conn = started(max_header_size=100)
    body = b"".join(b"1;e=1\r\nx\r\n" for _ in range(1000)) + b"0\r\n\r\n"
    events = feed(conn, [CHUNKED_HEAD + body])
    assert events[1] == ("data", b"x" * 1000)
    conn = started(max_header_size=100)
    events = feed(conn, [CHUNKED_HEAD, *bytewise(body)])
    assert events[1] == ("data", b"x" * 1000)
