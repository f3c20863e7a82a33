from __future__ import annotations

import io
import json as jsonlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from webwire import LocalProtocolError, StreamConsumed
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
