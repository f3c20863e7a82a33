"""The one place that validates request methods, targets and header fields
(webwire._proto._fields), shared by HTTP/1.1, HTTP/2 and HTTP/3, and its
agreement with the HTTP/1.1 serialiser and the ``http`` layer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import webwire
from webwire._exceptions import LocalProtocolError
from webwire._proto import _fields
from webwire._proto._fields import (
    FIELD_CONNECTION,
    FIELD_CONNECTION_SPECIFIC,
    FIELD_CONTENT_LENGTH,
    FIELD_HOST,
    FIELD_OTHER,
    FIELD_TE,
    FIELD_TRANSFER_ENCODING,
    FIELD_UPGRADE,
    check_field,
    check_fields,
    check_target,
    field_kind,
    has_token,
    is_token,
    last_token,
    validate_request,
)
from webwire._proto.h1 import H1Connection
from webwire.http._request import check_method, validate_headers

HOST = [(b"Host", b"example.com")]
TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_valid_request_passes() -> None:
    validate_request(
        b"GET",
        b"/search?q=caf%C3%A9",
        [*HOST, (b"X-Tab", b"a\tb"), (b"X-Obs", b"caf\xe9"), (b"X-Empty", b"")],
    )
    validate_request(b"CONNECT", b"example.com:443", HOST)
    validate_request(b"OPTIONS", b"*", [])
    validate_request(b"M-SEARCH", b"/", [(b"!#$%&'*+-.^_`|~", b"x")])


@pytest.mark.parametrize("bad", [b"\r", b"\n", b"\x00", b"\x01", b"\x1f", b"\x7f"])
@pytest.mark.parametrize("where", ["method", "target", "name", "value"])
def test_controls_refused_everywhere(bad: bytes, where: str) -> None:
    method, target, name, value = b"GET", b"/", b"X-Test", b"ok"
    if where == "method":
        method = b"GE" + bad + b"T"
    elif where == "target":
        target = b"/a" + bad + b"b"
    elif where == "name":
        name = b"X" + bad + b"Evil"
    else:
        value = b"ok" + bad + b"Evil: 1"
    match = {"method": "method", "target": "target", "name": "header name", "value": "value"}
    with pytest.raises(LocalProtocolError, match=match[where]):
        validate_request(method, target, [*HOST, (name, value)])


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
        (b"GET", "/", HOST, "target must be bytes"),
        (b"GET", b"/", [(b"Host:", b"x")], "header name"),
        (b"GET", b"/", [(b"", b"x")], "header name"),
        (b"GET", b"/", [("Host", b"x")], "header name must be bytes"),
        (b"GET", b"/", [(b"Host", "x")], "must be bytes"),
        (b"GET", b"/", [(b"X", b"a", b"b")], "pairs"),
        (b"GET", b"/", [b"X"], "pairs"),
        (b"GET", b"/", ((b"Host", b"x"),), "pairs"),
    ],
)
def test_invalid_requests_refused(method: Any, target: Any, headers: Any, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        validate_request(method, target, headers)


@pytest.mark.parametrize(
    "name, kind",
    [
        (b"Content-Length", FIELD_CONTENT_LENGTH),
        (b"transfer-encoding", FIELD_TRANSFER_ENCODING),
        (b"CONNECTION", FIELD_CONNECTION),
        (b"Upgrade", FIELD_UPGRADE),
        (b"Keep-Alive", FIELD_CONNECTION_SPECIFIC),
        (b"Proxy-Connection", FIELD_CONNECTION_SPECIFIC),
        (b"TE", FIELD_TE),
        (b"host", FIELD_HOST),
        (b"X-Other", FIELD_OTHER),
    ],
)
def test_field_kind(name: bytes, kind: int) -> None:
    assert field_kind(name) == kind
    assert field_kind(name) == kind  # from the cache


def test_field_kind_refuses_non_tokens() -> None:
    for bad in (b"", b"a b", b"a:b", "str", 1):
        with pytest.raises(LocalProtocolError, match="header name"):
            field_kind(bad)


def test_cache_is_bounded() -> None:
    for i in range(_fields._KNOWN_MAX + 10):
        field_kind(b"X-Many-%d" % i)
        _fields.check_method(b"M%d" % i)
    assert len(_fields._known_names) <= _fields._KNOWN_MAX
    assert len(_fields._known_methods) <= _fields._KNOWN_MAX
    validate_request(b"GET", b"/", HOST)


def test_check_field_and_target() -> None:
    check_field(b"X", b"a\tb \x80\xff")
    with pytest.raises(LocalProtocolError, match="control"):
        check_field(b"X", b"a\x0bb")
    check_target(b"/a?b=c#d")
    with pytest.raises(LocalProtocolError, match="target"):
        check_target(b"/a\x00")


def test_check_fields_as_a_whole() -> None:
    check_fields([*HOST, (b"X-A", b"1"), (b"X-B", b"")])
    check_fields([])
    with pytest.raises(LocalProtocolError, match="X-B"):
        check_fields([*HOST, (b"X-B", b"a\nb")])
    with pytest.raises(LocalProtocolError, match="header name"):
        check_fields([(b"X A", b"1")])
    with pytest.raises(LocalProtocolError, match="pairs"):
        check_fields(((b"X", b"1"),))  # type: ignore[arg-type]


def test_token_helpers() -> None:
    assert is_token(TCHAR)
    assert not is_token(b"")
    assert not is_token(b"a,b")
    assert last_token(b"gzip , Chunked ") == b"chunked"
    assert has_token(b"Keep-Alive, Close", b"close")
    assert not has_token(b"closed", b"close")


@given(st.binary(max_size=12))
def test_token_rule_matches_rfc(value: bytes) -> None:
    assert is_token(value) == (bool(value) and all(byte in TCHAR for byte in value))


@given(st.binary(max_size=12), st.binary(max_size=12))
def test_serialiser_and_validator_agree(name: bytes, value: bytes) -> None:
    try:
        validate_request(b"GET", b"/", [(name, value)])
        valid = True
    except LocalProtocolError:
        valid = False
    conn = H1Connection()
    try:
        conn.send_request(b"GET", b"/", [(name, value)], end_stream=True)
        sent = True
    except LocalProtocolError:
        sent = False
    framing = name.lower() in (b"content-length", b"transfer-encoding")
    if not framing:
        assert sent == valid


@given(st.binary(max_size=12), st.binary(max_size=12))
def test_http_layer_and_validator_agree(name: bytes, value: bytes) -> None:
    try:
        validate_request(b"GET", b"/", [(name, value)])
        valid = True
    except LocalProtocolError:
        valid = False
    try:
        validate_headers([(name, value)])
        accepted = True
    except LocalProtocolError:
        accepted = False
    assert accepted == valid


def test_http_layer_refuses_what_latin1_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError, match="latin-1"):
        validate_headers({"X": "snow\u2603"})
    with pytest.raises(LocalProtocolError, match="latin-1"):
        validate_headers({"X-\u2603": "v"})
    assert validate_headers({"X": "caf\u00e9"}) == [("X", "caf\u00e9")]
    assert check_method("get") == "GET"
    for bad in ("GE T", "G\u00c9T", ""):
        with pytest.raises(LocalProtocolError, match="method"):
            check_method(bad)
    with pytest.raises(LocalProtocolError):
        webwire.Request("GET", "http://example.com/", headers={"X": "a\x01b"})
