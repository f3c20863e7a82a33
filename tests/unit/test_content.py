from __future__ import annotations

import encodings.aliases
import gzip
import io
import json as jsonlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webwire
from webwire import LocalProtocolError, StreamConsumed
from webwire._sync import run_sync
from webwire.http._content import (
    READ_SIZE,
    StreamBody,
    encode_json,
    encode_request,
    encode_urlencoded,
    form_items,
    iter_chunks,
    iter_file,
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def collect(body: AsyncIterable[bytes]) -> bytes:
    chunks = []
    async for chunk in body:
        assert isinstance(chunk, bytes)
        assert chunk
        chunks.append(chunk)
    return b"".join(chunks)


# --- content= -----------------------------------------------------------------


def test_nothing() -> None:
    assert encode_request() == ([], None)


def test_bytes_content() -> None:
    assert encode_request(content=b"hello") == ([("Content-Length", "5")], b"hello")
    assert encode_request(content=b"") == ([("Content-Length", "0")], b"")
    ab: Any = bytearray(b"ab")
    assert encode_request(content=ab) == ([("Content-Length", "2")], b"ab")


def test_str_content_is_utf8() -> None:
    headers, body = encode_request(content="héllo €")
    assert body == "héllo €".encode()
    assert headers == [("Content-Length", str(len("héllo €".encode())))]


@pytest.mark.anyio
async def test_iterable_content_is_streamed_without_framing() -> None:
    def gen() -> Iterator[bytes | str]:
        yield b"abc"
        yield ""
        yield "déf"

    headers, body = encode_request(content=gen())  # type: ignore[arg-type]
    assert headers == []  # framing (chunked on HTTP/1.1) is the driver's job
    assert isinstance(body, StreamBody)
    assert await collect(body) == "abcdéf".encode()


@pytest.mark.anyio
async def test_async_iterable_content() -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    headers, body = encode_request(content=agen())
    assert headers == []  # framing (chunked on HTTP/1.1) is the driver's job
    assert body is not None and not isinstance(body, bytes)
    assert await collect(body) == b"one two"


@pytest.mark.anyio
async def test_one_shot_body_cannot_be_sent_twice() -> None:
    _, body = encode_request(content=iter([b"a", b"b"]))
    assert isinstance(body, StreamBody)
    assert not body.replayable
    assert await collect(body) == b"ab"
    with pytest.raises(StreamConsumed):
        await collect(body)


@pytest.mark.anyio
async def test_list_body_can_be_sent_twice() -> None:
    _, body = encode_request(content=[b"a", b"b"])
    assert isinstance(body, StreamBody)
    assert body.replayable
    assert await collect(body) == b"ab"
    assert await collect(body) == b"ab"


@pytest.mark.anyio
async def test_bad_chunk_type_raises_type_error() -> None:
    _, body = encode_request(content=[b"ok", 42])  # type: ignore[list-item]
    assert body is not None and not isinstance(body, bytes)
    with pytest.raises(TypeError, match="int"):
        await collect(body)


def test_bad_content_type_raises_type_error() -> None:
    with pytest.raises(TypeError, match="content must be"):
        encode_request(content=42)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_file_content_streamed_in_64k_chunks(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000  # 256 000 bytes
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    with path.open("rb") as file:
        headers, body = encode_request(content=file)
        assert headers == []  # framing (chunked on HTTP/1.1) is the driver's job
        assert body is not None and not isinstance(body, bytes)
        sizes = []
        received = []
        async for chunk in body:
            sizes.append(len(chunk))
            received.append(chunk)
    assert b"".join(received) == payload
    assert max(sizes) <= READ_SIZE
    assert len(sizes) == 4


@pytest.mark.anyio
async def test_text_file_content_is_utf8() -> None:
    headers, body = encode_request(content=io.StringIO("ünïcode"))  # type: ignore[arg-type]
    assert headers == []  # framing (chunked on HTTP/1.1) is the driver's job
    assert body is not None and not isinstance(body, bytes)
    assert await collect(body) == "ünïcode".encode()


@pytest.mark.anyio
async def test_async_file_object_content() -> None:
    class AsyncFile:
        def __init__(self, data: bytes) -> None:
            self._buffer = io.BytesIO(data)
            self.sizes: list[int] = []

        async def read(self, size: int) -> bytes:
            self.sizes.append(size)
            return self._buffer.read(size)

    file = AsyncFile(b"x" * 100_000)
    _, body = encode_request(content=file)  # type: ignore[arg-type]
    assert body is not None and not isinstance(body, bytes)
    assert await collect(body) == b"x" * 100_000
    assert file.sizes == [READ_SIZE, READ_SIZE, READ_SIZE]


@pytest.mark.anyio
async def test_iter_file_with_size() -> None:
    file = io.BytesIO(b"0123456789")
    assert await collect(iter_file(file, 4)) == b"0123"
    assert file.tell() == 4
    with pytest.raises(LocalProtocolError, match="ended 10 bytes before"):
        await collect(iter_file(io.BytesIO(b"abc"), 13))


@pytest.mark.anyio
async def test_iter_chunks_sources() -> None:
    async def agen() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    assert await collect(iter_chunks(agen())) == b"ab"
    assert await collect(iter_chunks([memoryview(b"xy")])) == b"xy"
    assert await collect(iter_chunks(io.BytesIO(b"file"))) == b"file"


# --- data= --------------------------------------------------------------------


def test_form_data() -> None:
    headers, body = encode_request(
        data={"a": "1 2", "b": ["x", "y"], "c": True, "d": False, "e": 3.5, "f": None, "g": 7}
    )
    assert body == b"a=1+2&b=x&b=y&c=true&d=false&e=3.5&f=&g=7"
    assert headers == [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(body))),
    ]


def test_form_data_non_ascii_and_reserved() -> None:
    body = encode_urlencoded({"näme": "a&b=c/é", "k": (b"\xff", "z")})
    assert body == b"n%C3%A4me=a%26b%3Dc%2F%C3%A9&k=%FF&k=z"
    assert parse_qsl(body.decode(), encoding="latin-1")[1] == ("k", "\xff")


def test_empty_form() -> None:
    assert encode_request(data={}) == (
        [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "0")],
        b"",
    )


def test_form_bad_value() -> None:
    with pytest.raises(TypeError, match="form values"):
        encode_request(data={"a": {"nested": 1}})
    with pytest.raises(TypeError, match="names must be str"):
        form_items({1: "x"})  # type: ignore[dict-item]


def test_data_bytes_or_str_is_content() -> None:
    assert encode_request(data=b"raw") == ([("Content-Length", "3")], b"raw")  # type: ignore[arg-type]
    assert encode_request(data="raw") == ([("Content-Length", "3")], b"raw")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_data_iterable_is_content() -> None:
    headers, body = encode_request(data=iter([b"a", b"b"]))  # type: ignore[arg-type]
    assert headers == []  # framing (chunked on HTTP/1.1) is the driver's job
    assert body is not None and not isinstance(body, bytes)
    assert await collect(body) == b"ab"


# --- json= --------------------------------------------------------------------


def test_json() -> None:
    value: Any = {"name": "é€", "list": [1, 2.5, None, True], "nested": {"a": "b"}}
    headers, body = encode_request(json=value)
    assert body == '{"name":"é€","list":[1,2.5,null,true],"nested":{"a":"b"}}'.encode()
    assert isinstance(body, bytes)
    assert jsonlib.loads(body) == value
    assert headers == [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


@pytest.mark.parametrize("value", [[], {}, 0, "", False])
def test_json_falsy_values_are_sent(value: Any) -> None:
    headers, body = encode_request(json=value)
    assert body == jsonlib.dumps(value).encode()
    assert ("Content-Type", "application/json") in headers


def test_json_rejects_nan_and_unknown_types() -> None:
    with pytest.raises(ValueError):
        encode_json(float("nan"))
    with pytest.raises(TypeError):
        encode_json({"a": object()})


# --- combinations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": b"x", "data": {"a": "b"}},
        {"content": b"x", "json": {}},
        {"content": b"x", "files": {"f": b"y"}},
        {"json": 1, "data": {"a": "b"}},
        {"json": 1, "files": {"f": b"y"}},
        {"content": b"x", "data": b"y"},
    ],
)
def test_conflicting_bodies_raise_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=r"cannot be combined|not both"):
        encode_request(**kwargs)


def test_files_use_multipart() -> None:
    headers, body = encode_request(data={"a": "1"}, files={"f": b"data"}, boundary=b"xyz")
    assert headers[0] == ("Content-Type", "multipart/form-data; boundary=xyz")
    assert isinstance(body, bytes)
    assert headers[1] == ("Content-Length", str(len(body)))
    assert b'name="a"\r\n\r\n1\r\n' in body
    assert b'name="f"; filename="upload"' in body


def test_stream_body_is_async_iterable() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b""

    body = StreamBody(gen, replayable=True)
    assert isinstance(body, AsyncIterable)


def test_form_data_as_list_of_pairs() -> None:
    pairs: Any = [("a", "1"), ("a", "2"), ("b", ["x", "y"])]
    headers, body = encode_request(data=pairs)
    assert body == b"a=1&a=2&b=x&b=y"
    assert headers[0] == ("Content-Type", "application/x-www-form-urlencoded")
    with pytest.raises(TypeError, match="pairs"):
        encode_request(data=[("a", "1", "extra")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="mapping or list of pairs"):
        form_items(42)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_iter_chunks_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="cannot stream"):
        await collect(iter_chunks(42))


# -- response text and JSON never raise raw codec errors -------------------------------

_CHARSETS = [
    *sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())),
    "punycode",
    "idna",
    "undefined",
    "unicode_escape",
    "raw_unicode_escape",
    "utf-8 garbage",
    '"utf-16"',
    "no-such-charset",
    "base64",
    "rot13",
    "",
]


def _response(body: bytes, content_type: str | None, **kwargs: Any) -> webwire.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return webwire.Response(
        200, content=body, headers=headers, request=webwire.Request("GET", "http://e.com/")
    )


@pytest.mark.parametrize(
    "charset", ["utf-16", "utf-32", "punycode", "idna", "utf-8 garbage", "undefined", "zzz"]
)
@pytest.mark.parametrize("body", [b"abc", b"\xff\xfe\x00", b"a\\u12", b"\x80" * 7, b""])
def test_text_with_hostile_charsets(charset: str, body: bytes) -> None:
    response = _response(body, f"text/plain; charset={charset}")
    text = response.text
    assert isinstance(text, str)
    assert "".join(response.iter_text()) == text
    assert isinstance(list(response.iter_lines()), list)
    if body == b"\xff\xfe\x00" and charset == "utf-16":
        assert text.endswith("\ufffd")  # the odd trailing byte


@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=64),
    charset=st.one_of(st.sampled_from(_CHARSETS), st.text(max_size=12)),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_text_decoding_never_raises(body: bytes, charset: str, chunk: int) -> None:
    content_type = f"text/plain; charset={charset}"
    try:
        response = _response(body, content_type)
    except webwire.LocalProtocolError:
        return  # a charset with CR/LF cannot even be a header value
    text = response.text
    assert isinstance(text, str)
    pieces = list(response.iter_text(chunk))
    assert all(isinstance(piece, str) for piece in pieces)
    assert all(isinstance(line, str) for line in response.iter_lines())
    streamed = webwire.Response(
        200, stream=_chunks([body[i : i + chunk] for i in range(0, len(body), chunk)]),
        headers={"Content-Type": content_type},
    )
    assert all(isinstance(piece, str) for piece in streamed.iter_text())


def _chunks(parts: list[bytes]) -> AsyncIterable[bytes]:
    class Parts:
        def __aiter__(self) -> AsyncIterator[bytes]:
            return self._gen()

        async def _gen(self) -> AsyncIterator[bytes]:
            for part in parts:
                yield part

    return Parts()


def test_encoding_setter_checks_the_codec() -> None:
    response = _response(b"abc", None)
    with pytest.raises(webwire.DecodingError, match="unknown text encoding"):
        response.encoding = "no-such-codec"
    with pytest.raises(webwire.DecodingError, match="not a text encoding"):
        response.encoding = "idna"
    response.encoding = "latin-1"
    assert response.text == "abc"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": ', "Expecting value"),
        (b"\xff\xfe{", "UTF"),
        (b"[" * 100_000 + b"]" * 100_000, "deeply"),
        (b"", "Expecting value"),
    ],
)
def test_json_errors(body: bytes, message: str) -> None:
    response = _response(body, "application/json")
    with pytest.raises(webwire.JSONDecodingError, match=message) as info:
        response.json()
    error = info.value
    assert isinstance(error, webwire.DecodingError)
    assert isinstance(error, jsonlib.JSONDecodeError) and isinstance(error, ValueError)
    assert error.request is response.request
    assert isinstance(error.doc, str) and error.lineno >= 1


# -- default_encoding ------------------------------------------------------------------


LATIN1 = "caf\u00e9 cr\u00e8me".encode("latin-1")


async def s_default_encoding(open_api: Any) -> None:
    def handler(request: webwire.Request) -> webwire.Response:
        if request.url.path == "/declared":
            return webwire.Response(
                200, content="é".encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
            )
        return webwire.Response(200, content=LATIN1, headers={"Content-Type": "text/plain"})

    transport = webwire.MockTransport(handler)
    async with open_api(transport=transport, default_encoding="latin-1") as api:
        assert (await api.get("http://e.com/")).text == "caf\u00e9 cr\u00e8me"
        assert (await api.get("http://e.com/declared")).text == "é"
    calls: list[bytes] = []

    def choose(data: bytes) -> str:
        calls.append(data)
        return "cp1252"

    async with open_api(transport=transport, default_encoding=choose) as api:
        response = await api.get("http://e.com/")
        assert response.text == "caf\u00e9 cr\u00e8me" and response.encoding == "cp1252"
        assert calls == [LATIN1]
        async with api.stream("GET", "http://e.com/") as streamed:
            lines = [line async for line in streamed.aiter_lines()]
        assert lines == ["caf\u00e9 cr\u00e8me"]
    async with open_api(transport=transport, default_encoding=lambda data: None) as api:
        assert (await api.get("http://e.com/")).encoding not in (None, "utf-8")  # a guess
    with pytest.raises(ValueError, match="default_encoding"):
        webwire.AsyncClient(default_encoding="no-such-codec")


@pytest.mark.anyio
async def test_default_encoding_async(async_api: Any) -> None:
    await s_default_encoding(async_api)


def test_default_encoding_sync(sync_api: Any) -> None:
    run_sync(s_default_encoding(sync_api))


# -- max_body_size ---------------------------------------------------------------------


async def s_max_body_size(open_api: Any) -> None:
    packed = gzip.compress(b"x" * 5000)

    def handler(request: webwire.Request) -> webwire.Response:
        if request.url.path == "/gzip":
            return webwire.Response(
                200, stream=_chunks([packed]), headers={"Content-Encoding": "gzip"}
            )
        return webwire.Response(200, stream=_chunks([b"a" * 600, b"b" * 600]))

    transport = webwire.MockTransport(handler)
    async with open_api(transport=transport, limits=webwire.Limits(max_body_size=1000)) as api:
        with pytest.raises(webwire.ResponseTooLarge, match="1000 bytes") as info:
            await api.get("http://e.com/")
        assert info.value.limit == 1000 and info.value.request is not None
        # Decoded bytes count: 5000 bytes of gzip output exceed 1000.
        with pytest.raises(webwire.ResponseTooLarge):
            await api.get("http://e.com/gzip")
        # A request may raise the limit, and streaming is not limited.
        big = await api.get("http://e.com/", extensions={"max_body_size": 1200})
        assert len(big.content) == 1200
        async with api.stream("GET", "http://e.com/") as streamed:
            assert len(b"".join([c async for c in streamed.aiter_bytes()])) == 1200
        with pytest.raises(ValueError, match="max_body_size"):
            await api.get("http://e.com/", extensions={"max_body_size": "10"})
    async with open_api(transport=transport) as api:  # off by default
        assert len((await api.get("http://e.com/gzip")).content) == 5000


@pytest.mark.anyio
async def test_max_body_size_async(async_api: Any) -> None:
    await s_max_body_size(async_api)


def test_max_body_size_sync(sync_api: Any) -> None:
    run_sync(s_max_body_size(sync_api))


def test_max_body_size_checked() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_body_size"):
            webwire.Limits(max_body_size=bad)  # type: ignore[arg-type]
    assert webwire.Limits().max_body_size is None
