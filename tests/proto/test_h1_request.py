"""Tests of request serialisation in the HTTP/1.1 client state machine
(webwire._proto.h1): exact bytes, body framing and refused input."""

from __future__ import annotations

from typing import Any

import pytest

from webwire._exceptions import LocalProtocolError
from webwire._proto.h1 import H1Connection, H1State

HOST = [(b"Host", b"example.com")]


def started() -> H1Connection:
    """A connection whose request has been sent completely."""
    conn = H1Connection()
    conn.send_request(b"GET", b"/", HOST, end_stream=True)
    conn.data_to_send()
    return conn


def test_request_serialisation_exact_bytes() -> None:
    conn = H1Connection()
    conn.send_request(
        b"GET",
        b"/search?q=1",
        [
            (b"Host", b"example.com"),
            (b"user-agent", b"webwire"),
            (b"X-Empty", b""),
            (b"X-Tab", b"a\tb"),
            (b"X-Dup", b"1"),
            (b"x-dup", b"2"),
        ],
        end_stream=True,
    )
    assert conn.data_to_send() == (
        b"GET /search?q=1 HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"user-agent: webwire\r\n"
        b"X-Empty: \r\n"
        b"X-Tab: a\tb\r\n"
        b"X-Dup: 1\r\n"
        b"x-dup: 2\r\n"
        b"\r\n"
    )
    assert conn.data_to_send() == b""
    assert conn.state is H1State.RECEIVING


def test_request_without_headers() -> None:
    conn = H1Connection()
    conn.send_request(b"OPTIONS", b"*", [], end_stream=True)
    assert conn.data_to_send() == b"OPTIONS * HTTP/1.1\r\n\r\n"


def test_content_length_body() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"10")])
    assert conn.state is H1State.SENDING
    conn.send_data(b"hello")
    conn.send_data(b"")
    conn.send_data(b"world")
    conn.end_request()
    assert conn.data_to_send() == (
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nhelloworld"
    )
    assert conn.state is H1State.RECEIVING


def test_content_length_too_much() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"content-length", b"3")])
    conn.send_data(b"ab")
    with pytest.raises(LocalProtocolError, match="exceeds its Content-Length"):
        conn.send_data(b"cd")


def test_content_length_too_little() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"3")])
    conn.send_data(b"ab")
    with pytest.raises(LocalProtocolError, match="1 bytes short"):
        conn.end_request()


def test_content_length_zero_with_end_stream() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"0")], end_stream=True)
    assert conn.state is H1State.RECEIVING
    with pytest.raises(LocalProtocolError, match="short"):
        H1Connection().send_request(
            b"POST", b"/", [*HOST, (b"Content-Length", b"1")], end_stream=True
        )


def test_chunked_request_body_exact_bytes() -> None:
    conn = H1Connection()
    conn.send_request(b"PUT", b"/up", [*HOST, (b"Transfer-Encoding", b"chunked")])
    conn.send_data(b"hello")
    conn.send_data(b"")
    conn.send_data(b"x" * 26)
    conn.end_request()
    assert conn.data_to_send() == (
        b"PUT /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
        b"1a\r\n" + b"x" * 26 + b"\r\n"
        b"0\r\n\r\n"
    )


def test_chunked_with_other_codings_and_end_stream() -> None:
    conn = H1Connection()
    conn.send_request(
        b"POST", b"/", [*HOST, (b"transfer-encoding", b"gzip, Chunked")], end_stream=True
    )
    assert conn.data_to_send().endswith(b"\r\n\r\n0\r\n\r\n")


def test_body_without_framing_refused() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", HOST)
    conn.send_data(b"")
    with pytest.raises(LocalProtocolError, match="cannot carry a body"):
        conn.send_data(b"x")
    conn.end_request()
    assert conn.data_to_send() == b"POST / HTTP/1.1\r\nHost: example.com\r\n\r\n"


@pytest.mark.parametrize(
    "headers, match",
    [
        ([(b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")], "both"),
        ([(b"Transfer-Encoding", b"gzip")], "must end in 'chunked'"),
        ([(b"Content-Length", b"-1")], "invalid Content-Length"),
        ([(b"Content-Length", b"1 ")], "invalid Content-Length"),
        ([(b"Content-Length", b"")], "invalid Content-Length"),
        ([(b"Content-Length", b"1"), (b"content-length", b"2")], "conflicting"),
    ],
)
def test_bad_request_framing(headers: list[tuple[bytes, bytes]], match: str) -> None:
    conn = H1Connection()
    with pytest.raises(LocalProtocolError, match=match):
        conn.send_request(b"POST", b"/", headers)
    assert conn.data_to_send() == b""
    assert conn.state is H1State.IDLE


def test_repeated_identical_content_length_allowed() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [(b"Content-Length", b"1"), (b"Content-Length", b"1")])
    conn.send_data(b"x")
    conn.end_request()
    assert conn.data_to_send() == (
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
    )


INJECTIONS = [b"\r", b"\n", b"\r\n", b"\x00"]


@pytest.mark.parametrize("bad", INJECTIONS)
@pytest.mark.parametrize("where", ["method", "target", "name", "value"])
def test_injection_refused(bad: bytes, where: str) -> None:
    method, target, name, value = b"GET", b"/", b"X-Test", b"ok"
    if where == "method":
        method = b"GE" + bad + b"T"
    elif where == "target":
        target = b"/a" + bad + b"b"
    elif where == "name":
        name = b"X" + bad + b"Evil"
    else:
        value = b"ok" + bad + b"Evil: 1"
    conn = H1Connection()
    with pytest.raises(LocalProtocolError, match=where if where != "name" else "header name"):
        conn.send_request(method, target, [*HOST, (name, value)])
    assert conn.data_to_send() == b""
    assert conn.state is H1State.IDLE


@pytest.mark.parametrize(
    "method, target, headers, match",
    [
        (b"", b"/", HOST, "method"),
        (b"G T", b"/", HOST, "method"),
        (b"GET(", b"/", HOST, "method"),
        ("GET", b"/", HOST, "method must be bytes"),
        (b"GET", b"", HOST, "target"),
        (b"GET", b"/a b", HOST, "target"),
        (b"GET", b"/a\tb", HOST, "target"),
        (b"GET", b"/a\x7fb", HOST, "target"),
        (b"GET", "/", HOST, "target must be bytes"),
        (b"GET", b"/", [(b" Host", b"x")], "header name"),
        (b"GET", b"/", [(b"Host ", b"x")], "header name"),
        (b"GET", b"/", [(b"Ho st", b"x")], "header name"),
        (b"GET", b"/", [(b"Host:", b"x")], "header name"),
        (b"GET", b"/", [(b"", b"x")], "header name"),
        (b"GET", b"/", [("Host", b"x")], "header name must be bytes"),
        (b"GET", b"/", [(b"Host", "x")], "must be bytes"),
        (b"GET", b"/", [(b"X", b"a\x01b")], "control character"),
        (b"GET", b"/", [(b"X", b"a\x7f")], "control character"),
        (b"GET", b"/", [(b"X", b"a", b"b")], "pairs"),
        (b"GET", b"/", [b"X"], "pairs"),
    ],
)
def test_invalid_request_refused(method: Any, target: Any, headers: Any, match: str) -> None:
    conn = H1Connection()
    with pytest.raises(LocalProtocolError, match=match):
        conn.send_request(method, target, headers)
    assert conn.data_to_send() == b""


def test_second_request_while_busy_refused() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError, match="RECEIVING"):
        conn.send_request(b"GET", b"/", HOST)


def test_send_data_after_end_refused() -> None:
    conn = started()
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.end_request()
    with pytest.raises(LocalProtocolError):
        H1Connection().send_data(b"x")


def test_constructor_limits_validated() -> None:
    with pytest.raises(ValueError):
        H1Connection(max_header_size=0)
    with pytest.raises(ValueError):
        H1Connection(max_header_count=0)


def test_no_timers() -> None:
    conn = H1Connection()
    assert conn.next_deadline() is None
    conn.handle_deadline(123.0)
    assert conn.events() == []
    assert conn.data_to_send() == b""
    assert conn.state is H1State.IDLE


def test_headers_given_as_a_generator_refused() -> None:
    conn = H1Connection()
    with pytest.raises(LocalProtocolError, match="list of"):
        conn.send_request(b"GET", b"/", (h for h in HOST))  # type: ignore[arg-type]


def test_header_cache_does_not_hide_meaning() -> None:
    # A method spelled like a field name must not change how that field is read.
    conn = H1Connection()
    conn.send_request(b"Content-Length", b"/", [(b"Content-Length", b"1")])
    with pytest.raises(LocalProtocolError, match="exceeds"):
        conn.send_data(b"ab")


def test_data_to_send_joins_pieces_in_order() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", [(b"Transfer-Encoding", b"chunked")])
    conn.send_data(b"a")
    conn.send_data(b"bc")
    assert conn.data_to_send() == (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n2\r\nbc\r\n"
    )
    conn.end_request()
    assert conn.data_to_send() == b"0\r\n\r\n"
    assert conn.data_to_send() == b""


def test_framing_added_when_fields_carry_none() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", HOST, body_length=3)
    conn.send_data(b"abc")
    conn.end_request()
    assert conn.data_to_send() == (
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"
    )
    conn = H1Connection()
    conn.send_request(b"POST", b"/", HOST, chunked=True)
    conn.send_data(b"abc")
    conn.end_request()
    assert conn.data_to_send() == (
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )


@pytest.mark.parametrize(
    "field", [(b"content-length", b"2"), (b"Transfer-Encoding", b"gzip, chunked")]
)
def test_framing_fields_given_are_kept(field: tuple[bytes, bytes]) -> None:
    for options in ({"body_length": 5}, {"chunked": True}):
        conn = H1Connection()
        conn.send_request(b"PUT", b"/", [*HOST, field], **options)  # type: ignore[arg-type]
        head = conn.data_to_send()
        assert head.count(b"\r\n") == 4
        assert head.endswith(field[0] + b": " + field[1] + b"\r\n\r\n")


def test_zero_length_body_framed() -> None:
    conn = H1Connection()
    conn.send_request(b"POST", b"/", HOST, end_stream=True, body_length=0)
    assert conn.data_to_send().endswith(b"Content-Length: 0\r\n\r\n")
    assert conn.state is H1State.RECEIVING
