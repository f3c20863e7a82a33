"""Request and Response models, URL building."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from yarl import URL

import webwire
from webwire._sync import run_sync
from webwire.http._urls import build_url, host_header, parse_url

# -- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "http://[::1",
        "example.com",
        "/relative",
        "http://exa mple.com/",
        "http://h:99999/",
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(webwire.InvalidURL):
        parse_url(url)


@pytest.mark.parametrize("url", ["ftp://example.com/", "ws://example.com/", "file:///etc/passwd"])
def test_unsupported_schemes(url: str) -> None:
    with pytest.raises(webwire.UnsupportedProtocol):
        parse_url(url)


def test_url_type_checked() -> None:
    with pytest.raises(TypeError):
        parse_url(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("https://api.example.com/v1", "users", "https://api.example.com/v1/users"),
        ("https://api.example.com/v1/", "/users?a=1", "https://api.example.com/v1/users?a=1"),
        ("https://api.example.com", "users#top", "https://api.example.com/users#top"),
        ("https://api.example.com/v1", "http://other.org/x", "http://other.org/x"),
        ("https://api.example.com/v1", "//cdn.example.com/a", "https://cdn.example.com/a"),
        # Percent-escapes of the relative URL are kept, not encoded again.
        ("https://h/v1", "/x?u=J%C3%A4&b=%20x", "https://h/v1/x?u=J%C3%A4&b=%20x"),
        ("https://h/v1", "a%20b#f%20g", "https://h/v1/a%20b#f%20g"),
        ("https://u:p@h:8443/v1", "x", "https://u:p@h:8443/v1/x"),
    ],
)
def test_base_url_join(base: str, url: str, expected: str) -> None:
    assert str(build_url(URL(base), url)) == expected


def test_relative_url_without_base_url() -> None:
    with pytest.raises(webwire.InvalidURL):
        build_url(None, "users")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/", "example.com"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:443/", "example.com"),
        ("http://example.com:8080/", "example.com:8080"),
        ("https://example.com:80/", "example.com:80"),
        ("http://bücher.de/", "xn--bcher-kva.de"),
        ("http://[::1]:8000/", "[::1]:8000"),
    ],
)
def test_host_header(url: str, host: str) -> None:
    assert host_header(URL(url)) == host
    assert webwire.Request("GET", url).headers["Host"] == host


# -- Request -------------------------------------------------------------------


def test_request_basics() -> None:
    request = webwire.Request(
        "post",
        "http://user:pw@example.com/path?a=1",
        params={"b": "2", "a": "3", "none": None, "flag": False},
        headers={"X-Test": "1"},
        content=b"body",
    )
    assert request.method == "POST"
    assert request.url.user is None
    assert request._url_auth == ("user", "pw")
    assert dict(request.url.query) == {"a": "3", "b": "2", "none": "", "flag": "false"}
    assert list(request.headers.items()) == [
        ("Host", "example.com"),
        ("X-Test", "1"),
        ("Content-Length", "4"),
    ]
    assert request.content == b"body"
    assert repr(request) == "<Request('POST', 'http://example.com/path?a=3&b=2&none=&flag=false')>"


def test_request_empty_post_announces_length() -> None:
    assert webwire.Request("POST", "http://e.com/").headers["Content-Length"] == "0"
    assert "Content-Length" not in webwire.Request("GET", "http://e.com/").headers


@pytest.mark.parametrize(
    "headers",
    [
        {"X": "a\r\nInjected: yes"},
        {"X": "a\rb"},
        {"X": "a\nb"},
        {"X": "a\x00b"},
        {"X": "snow\u2603"},
        {"Bad Name": "x"},
        {"Bad:Name": "x"},
        {"": "x"},
        [(b"X-Bytes", b"a\r\nb")],
    ],
)
def test_request_refuses_bad_headers(headers: Any) -> None:
    with pytest.raises(webwire.LocalProtocolError):
        webwire.Request("GET", "http://example.com/", headers=headers)


@pytest.mark.parametrize("method", ["GE T", "GET\r\n", "", "G(ET"])
def test_request_refuses_bad_method(method: str) -> None:
    with pytest.raises(webwire.LocalProtocolError):
        webwire.Request(method, "http://example.com/")


def test_request_header_types() -> None:
    with pytest.raises(TypeError):
        webwire.Request("GET", "http://e.com/", headers={"X": 1})  # type: ignore[dict-item]
    request = webwire.Request("GET", "http://e.com/", headers=[(b"X-B", b"caf\xe9")])
    assert request.headers["x-b"] == "café"


def test_request_cookies_and_json() -> None:
    request = webwire.Request("PUT", "http://e.com/", cookies={"a": "1"}, json={"k": [1]})
    assert request.headers["Cookie"] == "a=1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"k": [1]}


def test_streamed_request_body() -> None:
    request = webwire.Request("POST", "http://e.com/", content=iter([b"a", b"b"]))
    with pytest.raises(webwire.StreamError):
        _ = request.content
    assert request.read() == b"ab"
    assert request.content == b"ab"


# -- Response ------------------------------------------------------------------


def make(status: int = 200, **kwargs: Any) -> webwire.Response:
    kwargs.setdefault("request", webwire.Request("GET", "http://example.com/x"))
    return webwire.Response(status, **kwargs)


def test_response_status_classes_and_repr() -> None:
    assert repr(make(200)) == "<Response [200 OK]>"
    assert repr(make(418)) == "<Response [418 I'm a Teapot]>"
    assert make(599).reason_phrase == ""
    assert make(201).is_success and not make(201).is_error
    assert make(101).is_informational
    assert make(404).is_client_error and make(404).is_error
    assert make(502).is_server_error
    redirect = make(307, headers={"Location": "/y"})
    assert redirect.is_redirect and redirect.has_redirect_location
    assert make(304).is_redirect is False
    assert make(302).has_redirect_location is False
    assert make(200, reason_phrase="Fine").reason_phrase == "Fine"
    with pytest.raises(ValueError):
        webwire.Response(42)


def test_raise_for_status() -> None:
    ok = make(204)
    assert ok.raise_for_status() is ok
    assert make(302).raise_for_status().status_code == 302
    with pytest.raises(webwire.HTTPStatusError, match=r"Client error '404 Not Found'.*/x'"):
        make(404).raise_for_status()
    with pytest.raises(webwire.HTTPStatusError, match=r"Server error '500 Internal Server Error'"):
        make(500).raise_for_status()
    with pytest.raises(RuntimeError):
        webwire.Response(500).raise_for_status()


def test_text_charset_and_guess() -> None:
    latin = make(
        content="café".encode("latin-1"), headers={"Content-Type": "text/plain; charset=ISO-8859-1"}
    )
    assert latin.encoding == "iso-8859-1"
    assert latin.text == "café"
    utf8 = make(content="naïve ☃".encode())
    assert utf8.encoding == "utf-8"
    assert utf8.text == "naïve ☃"
    unknown = make(content=b"abc", headers={"Content-Type": "text/plain; charset=no-such"})
    assert unknown.text == "abc"
    override = make(content="é".encode())
    override.encoding = "latin-1"
    assert override.text == "Ã©"
    assert make(text="x").headers["Content-Type"] == "text/plain; charset=utf-8"
    assert make(html="<p>").headers["Content-Type"] == "text/html; charset=utf-8"


def test_json() -> None:
    response = make(json={"a": "é"})
    assert response.headers["Content-Type"] == "application/json"
    assert response.encoding == "utf-8"
    assert response.json() == {"a": "é"}
    utf16 = make(
        content=json.dumps({"b": 1}).encode("utf-16"), headers={"Content-Type": "application/json"}
    )
    assert utf16.json() == {"b": 1}
    with pytest.raises(json.JSONDecodeError):
        make(content=b"{nope").json()


class Chunks:
    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.closed = False

    async def __aiter__(self) -> Any:
        for index, chunk in enumerate(self.chunks):
            if self.fail_after is not None and index >= self.fail_after:
                raise webwire.ReadError("connection reset")
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_streamed_response_reading() -> None:
    stream = Chunks([b"he", b"llo\nwor", b"ld"])
    response = make(stream=stream)
    with pytest.raises(webwire.ResponseNotRead):
        _ = response.content
    with pytest.raises(RuntimeError):
        _ = response.elapsed
    assert await response.aread() == b"hello\nworld"
    assert stream.closed and response.is_closed
    assert response.num_bytes_downloaded == 11
    assert response.elapsed.total_seconds() >= 0
    assert [c async for c in response.aiter_bytes(4)] == [b"hell", b"o\nwo", b"rld"]
    assert [line async for line in response.aiter_lines()] == ["hello", "world"]
    with pytest.raises(webwire.StreamConsumed):
        async for _ in response.aiter_raw():
            pass


@pytest.mark.anyio
async def test_closed_before_read() -> None:
    stream = Chunks([b"x"])
    response = make(stream=stream)
    await response.aclose()
    assert stream.closed
    with pytest.raises(webwire.StreamClosed):
        await response.aread()


@pytest.mark.anyio
async def test_read_error_closes_stream() -> None:
    stream = Chunks([b"a", b"b"], fail_after=1)
    response = make(stream=stream)
    with pytest.raises(webwire.ReadError):
        await response.aread()
    assert stream.closed and response.is_closed
    stream2 = Chunks([b"a", b"b"], fail_after=1)
    response2 = make(stream=stream2)
    with pytest.raises(webwire.ReadError):
        async for _ in response2.aiter_text():
            pass
    assert stream2.closed


@pytest.mark.anyio
async def test_content_decoding() -> None:
    body = "säure\nline2".encode()
    packed = gzip.compress(body)
    stream = Chunks([packed[:10], packed[10:]])
    response = make(
        stream=stream,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
    )
    assert [line async for line in response.aiter_lines()] == ["säure", "line2"]
    raw = make(stream=Chunks([packed]), headers={"Content-Encoding": "gzip"})
    assert b"".join([c async for c in raw.aiter_raw()]) == packed
    broken = make(stream=Chunks([b"\x1f\x8bnot gzip at all"]), headers={"Content-Encoding": "gzip"})
    with pytest.raises(webwire.DecodingError):
        await broken.aread()
    assert broken.is_closed


@pytest.mark.anyio
async def test_decompression_limit() -> None:
    packed = gzip.compress(b"\0" * 100_000)
    response = make(stream=Chunks([packed]), headers={"Content-Encoding": "gzip"})
    response._max_decoded_size = 1000
    with pytest.raises(webwire.DecodingError):
        await response.aread()
    assert response.is_closed


def test_sync_reading_of_neutral_response() -> None:
    response = make(stream=Chunks([b"a\r\n", b"b"]))
    assert list(response.iter_lines()) == ["a", "b"]
    assert response.is_closed
    again = make(stream=Chunks([b"xyz"]))
    assert list(again.iter_raw()) == [b"xyz"]
    with pytest.raises(webwire.StreamConsumed):
        again.read()


def test_response_marked_async_refuses_sync_use() -> None:
    response = make(stream=Chunks([b"x"]))
    response._sync = False
    with pytest.raises(RuntimeError, match="AsyncClient"):
        response.read()
    with pytest.raises(RuntimeError, match="AsyncClient"):
        response.iter_lines()
    response._sync = True
    with pytest.raises(RuntimeError, match="synchronous Client"):
        run_sync(response.aread())
    assert response.read() == b"x"
    with response:
        pass
    assert response.is_closed


def test_response_cookies() -> None:
    response = make(headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/x")])
    assert dict(response.cookies.items()) == {"a": "1", "b": "2"}


# -- ok, links, headers.raw, next_request ----------------------------------------------


def test_ok_and_raise_for_status_returns_self() -> None:
    assert make(200).ok and make(302).ok and make(399).ok
    assert not make(400).ok and not make(503).ok
    response = make(204)
    assert response.raise_for_status() is response


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '<https://api.example.com/page/2>; rel="next", </page/9>; rel=last',
            {
                "next": {"url": "https://api.example.com/page/2", "rel": "next"},
                "last": {"url": "/page/9", "rel": "last"},
            },
        ),
        (
            '<http://e.com/a,b>; rel="alternate"; title="A \\"quoted\\", title"; '
            'type=text/html, <http://e.com/norel>',
            {
                "alternate": {
                    "url": "http://e.com/a,b",
                    "rel": "alternate",
                    "title": 'A "quoted", title',
                    "type": "text/html",
                },
                "http://e.com/norel": {"url": "http://e.com/norel"},
            },
        ),
        ("garbage without brackets", {}),
        ("<unterminated; rel=next", {}),
        ('<a>; REL="Next"; rel=other', {"Next": {"url": "a", "rel": "Next"}}),
    ],
)
def test_links(value: str, expected: dict[str, Any]) -> None:
    assert make(200, headers={"Link": value}).links == expected


def test_links_from_several_fields() -> None:
    response = make(200, headers=[("Link", "</1>; rel=prev"), ("Link", "</3>; rel=next")])
    assert set(response.links) == {"prev", "next"}
    assert make(200).links == {}


def test_headers_raw_as_received() -> None:
    response = make(200, headers=[("X-Mixed-Case", "a"), ("x-mixed-case", "b"), ("ETag", "é")])
    assert response.headers.raw == [
        (b"X-Mixed-Case", b"a"),
        (b"x-mixed-case", b"b"),
        (b"ETag", "é".encode("latin-1")),
    ]
    assert response.headers.getall("X-MIXED-CASE") == ["a", "b"]


async def s_next_request(open_api: Any) -> None:
    def handler(request: webwire.Request) -> webwire.Response:
        if request.url.path == "/start":
            return webwire.Response(303, headers={"Location": "/done?x=1"})
        return webwire.Response(200, text=request.method)

    transport = webwire.MockTransport(handler)
    async with open_api(transport=transport, follow_redirects=False) as api:
        response = await api.post("http://example.com/start", content=b"body")
        assert response.status_code == 303
        follow = response.next_request
        assert isinstance(follow, webwire.Request)
        assert str(follow.url) == "http://example.com/done?x=1"
        assert follow.method == "GET"
        final = await api.request("GET", follow.url)
        assert final.text == "GET"
        assert final.next_request is None
    async with open_api(transport=transport) as api:
        followed = await api.post("http://example.com/start")
        assert followed.status_code == 200 and followed.next_request is None
        assert followed.history[0].next_request is not None
    assert make(302, headers={"Location": "/x"}).next_request is None  # not from a client


@pytest.mark.anyio
async def test_next_request_async_client(async_api: Any) -> None:
    await s_next_request(async_api)


def test_next_request_sync_client(sync_api: Any) -> None:
    run_sync(s_next_request(sync_api))


# -- hand-built responses are decoded like received ones ----------------------------------


def test_handbuilt_encoded_content_is_decoded() -> None:
    packed = gzip.compress(b"hello world")
    response = make(200, content=packed, headers={"Content-Encoding": "gzip"})
    assert response.content == b"hello world"
    assert response.text == "hello world"
    assert b"".join(response.iter_raw()) == packed
    with pytest.raises(webwire.DecodingError):
        make(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})


async def s_mock_encoded(open_api: Any) -> None:
    packed = gzip.compress(b'{"a": 1}')

    def handler(request: webwire.Request) -> webwire.Response:
        return webwire.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

    async with open_api(transport=webwire.MockTransport(handler)) as api:
        response = await api.get("http://example.com/")
        assert response.json() == {"a": 1}
        async with api.stream("GET", "http://example.com/") as streamed:
            assert b"".join([c async for c in streamed.aiter_bytes()]) == b'{"a": 1}'


@pytest.mark.anyio
async def test_mock_encoded_async(async_api: Any) -> None:
    await s_mock_encoded(async_api)


def test_mock_encoded_sync(sync_api: Any) -> None:
    run_sync(s_mock_encoded(sync_api))


@pytest.mark.anyio
async def test_empty_body_yields_no_chunk() -> None:
    assert list(make(200, content=b"").iter_bytes()) == []
    assert list(make(200).iter_text()) == []
    assert list(make(200).iter_lines()) == []
    assert [c async for c in make(200, stream=Chunks([])).aiter_bytes()] == []
    assert [c async for c in make(200, stream=Chunks([b""])).aiter_bytes()] == []


# -- default headers removable -------------------------------------------------------------


async def s_remove_default_headers(open_api: Any) -> None:
    seen: list[webwire.Request] = []

    def handler(request: webwire.Request) -> webwire.Response:
        seen.append(request)
        return webwire.Response(200)

    transport = webwire.MockTransport(handler)
    async with open_api(transport=transport, headers={"User-Agent": None, "X-A": "1"}) as api:
        await api.get("http://example.com/")
        await api.get("http://example.com/", headers={"Accept": None, "X-A": None})
        await api.get("http://example.com/", headers=[("User-Agent", "mine")])
        api.client.headers = {"Accept-Encoding": None}
        await api.get("http://example.com/")
    first, second, third, fourth = (r.headers for r in seen)
    assert "User-Agent" not in first and first["X-A"] == "1" and first["Accept"] == "*/*"
    assert "Accept" not in second and "X-A" not in second and "User-Agent" not in second
    assert third["User-Agent"] == "mine"
    assert "Accept-Encoding" not in fourth and fourth["User-Agent"].startswith("webwire/")
    request = webwire.Request("GET", "http://e.com/", headers={"X-Gone": None, "X-B": "2"})
    assert "X-Gone" not in request.headers and request.headers["X-B"] == "2"


@pytest.mark.anyio
async def test_remove_default_headers_async(async_api: Any) -> None:
    await s_remove_default_headers(async_api)


def test_remove_default_headers_sync(sync_api: Any) -> None:
    run_sync(s_remove_default_headers(sync_api))


# -- timeouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [(1, 2), (1, 2, 3, 4), [1.0, 2.0]])
def test_timeout_tuples_refused(value: Any) -> None:
    with pytest.raises(TypeError, match=r"Timeout\(5.0, connect=1.0, read=2.0\)"):
        webwire.Timeout(value)
    with pytest.raises(TypeError, match="connect="):
        webwire.AsyncClient(timeout=value)
    with pytest.raises(TypeError):
        webwire.Timeout(5.0, read=value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), -1.0])
def test_timeout_negative_and_nan_refused(value: float) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        webwire.Timeout(value)
    for name in ("connect", "read", "write", "pool", "total"):
        with pytest.raises(ValueError, match=name):
            webwire.Timeout(5.0, **{name: value})


def test_timeout_bad_types_refused() -> None:
    with pytest.raises(TypeError):
        webwire.Timeout("5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        webwire.Timeout(True)
    assert webwire.Timeout(0).connect == 0
    assert webwire.Timeout(None).read is None
    assert webwire.Timeout(1, total=float("inf")).total == float("inf")


async def s_request_timeout_tuple(open_api: Any) -> None:
    transport = webwire.MockTransport(lambda request: webwire.Response(200))
    async with open_api(transport=transport) as api:
        with pytest.raises(TypeError, match="connect="):
            await api.get("http://example.com/", timeout=(1, 2))
        with pytest.raises(ValueError, match=">= 0"):
            await api.get("http://example.com/", timeout=-3)


@pytest.mark.anyio
async def test_request_timeout_tuple_async(async_api: Any) -> None:
    await s_request_timeout_tuple(async_api)


def test_request_timeout_tuple_sync(sync_api: Any) -> None:
    run_sync(s_request_timeout_tuple(sync_api))
