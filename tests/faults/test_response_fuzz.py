"""A fuzzer of hostile HTTP/1.1 responses.

Hypothesis builds responses from the parts a hostile or broken server gets
wrong: status lines, field names and values (controls, obs-fold, huge,
negative and duplicate ``Content-Length``, ``Transfer-Encoding`` variants),
chunk sizes, extensions and trailers, truncated bodies, ``Content-Encoding``
(gzip, deflate, br, zstd) over garbage, charsets, ``Set-Cookie``,
``Location`` and ``Link`` values, JSON bodies. An in-memory server (the
memory backend, fake clock: no sockets, no real waits) sends one to every
request of an ``AsyncClient``, and every way of reading a response is used.

Whatever the bytes, nothing may raise outside the :class:`webwire.WebwireError`
tree (a JSON error must be a WebwireError too).

Examples per run: ``WEBWIRE_FUZZ_EXAMPLES`` (default 2000; ``make fuzz`` runs
50,000).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import webwire
from webwire._backends.memory import MemoryBackend, MemoryStream, run

HOST = "fuzz.test"
URL = f"http://{HOST}/"
EXAMPLES = int(os.environ.get("WEBWIRE_FUZZ_EXAMPLES", "2000"))

# -- building blocks ---------------------------------------------------------------

CONTROL = st.sampled_from([b"\x00", b"\r", b"\n", b"\t", b"\x7f", b"\x1b", b"\xff", b" "])
SHORT_BYTES = st.binary(max_size=24)
TOKEN = st.from_regex(rb"\A[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}\Z")


def mixed(*parts: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Concatenations of up to four pieces drawn from ``parts``."""
    return st.lists(st.one_of(*parts), max_size=4).map(b"".join)


NUMBER = st.one_of(
    st.integers(-5, 200).map(lambda n: str(n).encode()),
    st.sampled_from(
        [b"", b"0", b"00", b"1e3", b"0x10", b" 5", b"5 ", b"+5", b"-0", b"5, 5", b"5,6",
         b"99999999999999999999999999", b"18446744073709551616", b"\xd9\xa5"]
    ),
)
TRANSFER_CODING = st.sampled_from(
    [b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"chunked;x=1",
     b"", b"chunked, chunked", b"x", b" chunked", b"compress"]
)
CONTENT_CODING = st.sampled_from(
    [b"gzip", b"deflate", b"br", b"zstd", b"gzip, br", b"identity", b"x-gzip", b"GZIP",
     b"gzip, gzip", b"", b"compress", b"deflate, zstd, gzip"]
)
CHARSET = st.sampled_from(
    [b"utf-8", b"UTF-8", b"latin-1", b"utf-16", b"utf-32", b"ascii", b"bogus", b"", b"\"utf-8\"",
     b"utf-8\x00", b"x" * 200, b"cp1252", b"utf-7", b"idna", b"rot13", b"hex", b"base64",
     b"utf-8-sig", b"zlib", b"punycode", b"mbcs", b"undefined"]
)
CONTENT_TYPE = st.one_of(
    st.builds(lambda t, c: t + b"; charset=" + c,
              st.sampled_from([b"text/plain", b"application/json", b"text/html", b""]), CHARSET),
    st.sampled_from([b"application/json", b"text/plain", b"*/*", b";;;", b"text/"]),
    SHORT_BYTES,
)
COOKIE_ATTR = st.sampled_from(
    [b"; Path=/", b"; Domain=fuzz.test", b"; Domain=.test", b"; Domain=", b"; Max-Age=-1",
     b"; Max-Age=99999999999999999999", b"; Max-Age=x", b"; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
     b"; Expires=garbage", b"; Expires=Fri, 31 Dec 99999 23:59:59 GMT", b"; Secure", b"; HttpOnly",
     b"; SameSite=Lax", b"; SameSite=\x00", b"; Domain=[::1]", b"; Path=", b";;", b"; =",
     b"; Domain=xn--", b"; Version=1", b"; Comment=\"x"]
)
SET_COOKIE = st.builds(
    lambda n, v, attrs: n + b"=" + v + b"".join(attrs),
    st.one_of(TOKEN, SHORT_BYTES, st.just(b"")),
    st.one_of(TOKEN, SHORT_BYTES, st.just(b"\"quoted\"")),
    st.lists(COOKIE_ATTR, max_size=4),
)
LOCATION = st.one_of(
    st.sampled_from(
        [b"/", b"/next", b"//other.test/x", b"http://[", b"http://[::1", b"http://h:0/",
         b"http://h:99999/", b"ftp://x/", b"http://", b"http:///", b"http://xn--/",
         b"http://\xe2\x84\x80.com/", b"\xff\xfe", b"?q=1", b"#frag", b"http://fuzz.test/a/../b",
         b"javascript:alert(1)", b"http://a b/", b"http://user:pw@fuzz.test/", b"..", b"data:,x",
         b"http://fuzz.test:80", b"http://[v1.x]/", b"http://%zz/", b"http://\x00/"]
    ),
    SHORT_BYTES,
)
LINK = st.one_of(
    st.sampled_from(
        [b"<http://x/>; rel=next", b"<>; rel=", b"<", b";;;", b"<a>; rel=\"x", b"<a>, <b>; rel=a b",
         b"<http://[>; rel=next", b"<a>; title*=UTF-8''%zz", b",,,,"]
    ),
    SHORT_BYTES,
)
JSON_BODY = st.one_of(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                      max_size=3),
        max_leaves=6,
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [b"{", b"[1,", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\x00\x00\x00{", b"NaN",
         b"1e999999", b"\"\\ud800\"", b"\xc3\x28", b"[" * 5000, b"{\"a\":" * 3000]
    ),
)
BODY = st.one_of(st.binary(max_size=200), JSON_BODY, st.text(max_size=50).map(str.encode))


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "raw-deflate":
        c = zlib.compressobj(wbits=-15)
        return c.compress(body) + c.flush()
    if coding == "br":
        import brotli

        return bytes(brotli.compress(body))
    import zstandard

    return bytes(zstandard.ZstdCompressor().compress(body))


ENCODED_BODY = st.builds(
    lambda body, coding, cut, junk: compress(body, coding)[: cut or None] + junk,
    BODY,
    st.sampled_from(["gzip", "deflate", "raw-deflate", "br", "zstd"]),
    st.integers(-20, 0),
    st.sampled_from([b"", b"\x00", b"garbage", b"\x1f\x8b"]),
)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` in chunked coding, with hostile sizes, extensions and trailers."""
    out = []
    pos = 0
    while pos < len(body) and len(out) < 8:
        size = draw(st.integers(1, max(1, len(body) - pos)))
        piece = body[pos : pos + size]
        pos += size
        size_text = draw(
            st.one_of(
                st.just(b"%x" % len(piece)),
                st.just(b"%X" % len(piece)),
                st.just(b"0000%x" % len(piece)),
                NUMBER,
                st.just(b"%x" % (len(piece) + draw(st.integers(-3, 3)))),
            )
        )
        ext = draw(st.one_of(st.just(b""), st.sampled_from(
            [b";a=b", b"; a", b";a=\"q\"", b";" * 50, b";a=\x00", b"; =", b";a=b;c"]
        ), mixed(st.just(b";"), SHORT_BYTES)))
        out.append(size_text + ext + b"\r\n" + piece + b"\r\n")
    last = draw(st.sampled_from([b"0\r\n", b"0;x=y\r\n", b"00\r\n", b""]))
    trailers = draw(
        st.lists(
            st.one_of(
                st.builds(lambda n, v: n + b": " + v + b"\r\n", TOKEN, SHORT_BYTES),
                st.sampled_from([b"Content-Length: 5\r\n", b"X: a\r\n b\r\n", b"bad\r\n",
                                 b"Transfer-Encoding: chunked\r\n", b": x\r\n"]),
            ),
            max_size=3,
        )
    )
    end = draw(st.sampled_from([b"\r\n", b"", b"\n", b"junk"]))
    return b"".join(out) + last + b"".join(trailers) + end


FIELD = st.one_of(
    st.tuples(st.just(b"Content-Length"), NUMBER),
    st.tuples(st.just(b"Transfer-Encoding"), TRANSFER_CODING),
    st.tuples(st.just(b"Content-Encoding"), CONTENT_CODING),
    st.tuples(st.just(b"Content-Type"), CONTENT_TYPE),
    st.tuples(st.just(b"Set-Cookie"), SET_COOKIE),
    st.tuples(st.just(b"Location"), LOCATION),
    st.tuples(st.just(b"Link"), LINK),
    st.tuples(st.sampled_from([b"Connection", b"Keep-Alive", b"Upgrade", b"Trailer"]),
              st.sampled_from([b"close", b"keep-alive", b"upgrade", b"x", b""])),
    st.tuples(TOKEN, st.from_regex(rb"\A[\x20-\x7e\x80-\xff]{0,20}\Z")),
)
HOSTILE_FIELD = st.one_of(
    st.tuples(TOKEN, st.one_of(SHORT_BYTES, mixed(SHORT_BYTES, CONTROL))),
    st.tuples(mixed(TOKEN, CONTROL, SHORT_BYTES), SHORT_BYTES),
)
VALID_STATUS = st.sampled_from(
    [100, 101, 103, 200, 201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 404, 500, 599]
).map(lambda n: str(n).encode())
VERSION = st.sampled_from([b"HTTP/1.0", b"HTTP/2", b"HTTP/0.9", b"HTTX/1.1", b"HTTP/1.1 ",
                           b"http/1.1", b""])
REASON = st.one_of(st.sampled_from([b"OK", b"", b"Found", b"X Y Z"]), mixed(SHORT_BYTES, CONTROL))
INTERIM = st.sampled_from(
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
     b"HTTP/1.1 102 Processing\r\nContent-Length: 3\r\n\r\n", b"HTTP/1.1 100 X\r\n"]
)


def rarely(draw: st.DrawFn) -> bool:
    """True for about one example in six: most parts of a response are
    well-formed, so that the hostile ones reach every layer."""
    return draw(st.integers(0, 5)) == 0


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """One hostile response (possibly preceded by 1xx heads, possibly cut)."""
    version = draw(VERSION) if rarely(draw) else b"HTTP/1.1"
    status = draw(NUMBER) if rarely(draw) else draw(VALID_STATUS)
    reason = draw(REASON) if rarely(draw) else b"OK"
    head = version + b" " + status + b" " + reason + b"\r\n"
    fields = draw(st.lists(FIELD, max_size=6))
    if rarely(draw):
        fields.insert(draw(st.integers(0, len(fields))), draw(HOSTILE_FIELD))
    separator = b"\r\n"
    if rarely(draw):
        separator = draw(st.sampled_from([b"\n", b"\r\n ", b"\r\n\t", b"\r"]))
    head += b"".join(name + b": " + value + separator for name, value in fields) + b"\r\n"
    body = draw(st.one_of(BODY, ENCODED_BODY))
    framing = draw(st.sampled_from(["as-is", "chunked", "length", "length", "none"]))
    if framing == "chunked":
        head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        body = draw(chunked(body))
    elif framing == "length":
        error = draw(st.integers(-3, 3)) if rarely(draw) else 0
        head = head[:-2] + b"Content-Length: %d\r\n\r\n" % (len(body) + error)
    raw = head + body
    if rarely(draw):
        raw = b"".join(draw(st.lists(INTERIM, min_size=1, max_size=2))) + raw
    if rarely(draw):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


# -- the client side --------------------------------------------------------------


async def serve(stream: MemoryStream, raw: bytes, close: bool) -> None:
    """Answer every request head on the connection with ``raw``; close after
    the first answer when ``close``."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = await stream.read(65536, None)
            if not data:
                return
            buffer += data
        _, _, buffer = buffer.partition(b"\r\n\r\n")
        await stream.write(raw, None)
        if close:
            return


def attempt(fn: Any) -> Any:
    """Call ``fn``; a WebwireError is an acceptable outcome."""
    try:
        return fn()
    except webwire.WebwireError:
        return None


async def attempt_async(coro: Any) -> None:
    try:
        await coro
    except webwire.WebwireError:
        pass


async def drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


def use_read_response(response: webwire.Response) -> None:
    """Every property and method of a response whose body is read."""
    attempt(lambda: response.content)
    attempt(lambda: response.text)
    attempt(lambda: response.encoding)
    attempt(response.json)
    attempt(lambda: list(response.cookies.items()))
    attempt(lambda: list(response.headers.items()))
    attempt(lambda: response.reason_phrase)
    attempt(lambda: response.has_redirect_location)
    attempt(lambda: getattr(response, "links", None))
    attempt(lambda: response.raise_for_status())
    attempt(lambda: str(response.url))
    attempt(lambda: repr(response))


async def exercise(raw: bytes, close: bool, method: str, reader: str) -> None:
    backend = MemoryBackend()

    async def handler(stream: MemoryStream) -> None:
        await serve(stream, raw, close)

    backend.serve_tcp(HOST, 80, handler)
    async with webwire.AsyncClient(
        _backend=backend,
        timeout=webwire.Timeout(5.0),
        max_redirects=2,
        limits=webwire.Limits(max_header_size=4096, max_decompressed_size=1 << 20),
    ) as client:
        try:
            response = await client.request(method, URL)
        except webwire.WebwireError:
            response = None
        if response is not None:
            use_read_response(response)
            await attempt_async(drain(response.aiter_bytes()))
            await attempt_async(drain(response.aiter_text()))
            await attempt_async(drain(response.aiter_lines()))
        try:
            async with client.stream(method, URL, follow_redirects=False) as streamed:
                if reader == "bytes":
                    await attempt_async(drain(streamed.aiter_bytes(7)))
                elif reader == "text":
                    await attempt_async(drain(streamed.aiter_text(5)))
                elif reader == "lines":
                    await attempt_async(drain(streamed.aiter_lines()))
                else:
                    await attempt_async(drain(streamed.aiter_raw()))
                use_read_response(streamed)
        except webwire.WebwireError:
            pass
        assert client.transport.pool is None or client.transport.pool.connections_in_use() == 0
    assert backend.open_connections() == []


@pytest.mark.timeout(max(120, EXAMPLES // 10))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    raw=responses(),
    close=st.booleans(),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    reader=st.sampled_from(["bytes", "text", "lines", "raw"]),
)
def test_hostile_responses_raise_only_webwire_errors(
    raw: bytes, close: bool, method: str, reader: str
) -> None:
    run(exercise, raw, close, method, reader)
