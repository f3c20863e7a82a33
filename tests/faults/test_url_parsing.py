"""Every URL parsing path against arbitrary strings: request URLs, a
client's ``base_url`` and joins to it, and a server's ``Location``. A string
the parser cannot take is an :class:`webwire.InvalidURL` (or
:class:`webwire.UnsupportedProtocol` for another scheme), never an
``IndexError``, ``ValueError`` or ``UnicodeError`` from yarl or idna. CR, LF
and TAB are refused rather than silently removed; port 0 is refused; joins
to ``base_url`` resolve dot segments (RFC 3986 section 5.2.4).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import webwire

URL_PIECES = st.sampled_from(
    ["http://", "https://", "//", "/", "[", "]", "::1", "@", ":", "%", "%zz", "%2e", ".", "..",
     "?", "#", "\\", "\t", "\r", "\n", " ", "\x00", "xn--", "xn--ls8h", "\u2100", "\udcff",
     "\u00e9", "\uff0e", "0", "65536", "99999999999", "h", "example.com", "user:pw@", "[v1.x]",
     "\u200b", "\ufeff", "ftp:", "http:", "a" * 70, "." * 3]
)
URL_TEXT = st.one_of(st.text(max_size=40), st.lists(URL_PIECES, max_size=10).map("".join))
SETTINGS = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ALLOWED = (webwire.InvalidURL, webwire.UnsupportedProtocol)


def echo(request: webwire.Request) -> webwire.Response:
    return webwire.Response(200, text=str(request.url))


@SETTINGS
@given(url=URL_TEXT)
def test_request_urls(url: str) -> None:
    with webwire.Client(transport=webwire.MockTransport(echo)) as client:
        try:
            response = client.get(url)
        except ALLOWED:
            return
        assert not any(c in response.text for c in "\r\n\t")


@SETTINGS
@given(base=URL_TEXT, url=URL_TEXT)
def test_base_url_and_joins(base: str, url: str) -> None:
    try:
        client = webwire.Client(base_url="http://h/" + base, transport=webwire.MockTransport(echo))
    except ALLOWED:
        return
    with client:
        try:
            client.get(url)
        except ALLOWED:
            pass


@SETTINGS
@given(location=st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_server_location(location: bytes) -> None:
    text = location.decode("latin-1").strip()

    def handler(request: webwire.Request) -> webwire.Response:
        if request.url.path == "/start":
            return webwire.Response(302, headers={"Location": text})
        return webwire.Response(200)

    with webwire.Client(transport=webwire.MockTransport(handler)) as client:
        try:
            client.get("http://h/start")
        except (*ALLOWED, webwire.TooManyRedirects):
            pass


@pytest.mark.parametrize(
    "url",
    ["http://h/a\tb", "http://h/\r\nX: y", "http://h\n/", "\thttp://h/", "http://h:0/",
     "https://h:0", "http://h:00/"],
)
def test_forbidden_characters_and_port_zero(url: str) -> None:
    with webwire.Client(transport=webwire.MockTransport(echo)) as client:
        with pytest.raises(webwire.InvalidURL):
            client.get(url)


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://h/a/b/", "../c", "http://h/a/c"),
        ("http://h/a/b/", "./c", "http://h/a/b/c"),
        ("http://h/a/b", "../c", "http://h/a/c"),
        ("http://h/a/b/", "c/./d/../e", "http://h/a/b/c/e"),
        ("http://h/a/b/", "../../../../c", "http://h/c"),
        ("http://h/a/b/", "..", "http://h/a/"),
        ("http://h/a/b/", "c?x=../y", "http://h/a/b/c?x=../y"),
        ("http://h/v1", "users", "http://h/v1/users"),
        ("http://h/v1", "/users", "http://h/v1/users"),
    ],
)
def test_base_url_joins_resolve_dot_segments(base: str, url: str, expected: str) -> None:
    with webwire.Client(base_url=base, transport=webwire.MockTransport(echo)) as client:
        assert client.get(url).text == expected


@pytest.mark.parametrize("location", ["http://h:0/x", "/a\tb", "http://[::1"])
def test_bad_location(location: str) -> None:
    def handler(request: Any) -> webwire.Response:
        return webwire.Response(302, headers={"Location": location})

    with webwire.Client(transport=webwire.MockTransport(handler)) as client:
        with pytest.raises(webwire.InvalidURL):
            client.get("http://h/start")
