from __future__ import annotations

import email.parser
import email.policy
import io
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from webwire import LocalProtocolError, StreamConsumed
from webwire.http._content import READ_SIZE, StreamBody
from webwire.http._multipart import encode_multipart


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def collect(body: bytes | AsyncIterable[bytes]) -> bytes:
    if isinstance(body, bytes):
        return body
    return b"".join([chunk async for chunk in body])


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) <= 1
    return values[0] if values else None


def parse(headers: list[tuple[str, str]], body: bytes) -> list[Any]:
    """Parse with the standard library's MIME parser, as a server would."""
    content_type = header(headers, "Content-Type")
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart()
    assert not message.defects
    return list(message.iter_parts())


def test_exact_body_for_fixed_boundary() -> None:
    headers, body = encode_multipart(
        {"field": "value", "multi": ["1", "2"]},
        {
            "file": ("hello.txt", b"Hello, world!"),
            "raw": b"\x00\x01",
            "typed": ("data.bin", "text", "application/x-custom", {"X-Extra": "yes"}),
        },
        boundary=b"BOUNDARY",
    )
    expected = (
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="field"\r\n'
        b"\r\n"
        b"value\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="multi"\r\n'
        b"\r\n"
        b"1\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="multi"\r\n'
        b"\r\n"
        b"2\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="file"; filename="hello.txt"\r\n'
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"Hello, world!\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="raw"; filename="upload"\r\n'
        b"Content-Type: application/octet-stream\r\n"
        b"\r\n"
        b"\x00\x01\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="typed"; filename="data.bin"\r\n'
        b"Content-Type: application/x-custom\r\n"
        b"X-Extra: yes\r\n"
        b"\r\n"
        b"text\r\n"
        b"--BOUNDARY--\r\n"
    )
    assert body == expected
    assert headers == [
        ("Content-Type", "multipart/form-data; boundary=BOUNDARY"),
        ("Content-Length", str(len(expected))),
    ]


def test_parsed_by_a_mime_parser() -> None:
    headers, body = encode_multipart(
        {"a": "ünïcode", "n": 5, "flag": True},
        [("f", ("a.json", b'{"x":1}')), ("f", ("b.png", b"\x89PNG"))],
    )
    assert isinstance(body, bytes)
    parts = parse(headers, body)
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        "a",
        "n",
        "flag",
        "f",
        "f",
    ]
    assert parts[0].get_payload(decode=True) == "ünïcode".encode()
    assert parts[1].get_payload(decode=True) == b"5"
    assert parts[2].get_payload(decode=True) == b"true"
    assert parts[3].get_content_type() == "application/json"
    assert parts[4].get_content_type() == "image/png"
    assert parts[4].get_payload(decode=True) == b"\x89PNG"


def test_random_boundary() -> None:
    headers1, body1 = encode_multipart(None, {"f": b"x"})
    headers2, _ = encode_multipart(None, {"f": b"x"})
    content_type = header(headers1, "Content-Type")
    assert content_type is not None
    boundary = content_type.split("boundary=")[1]
    assert len(boundary) == 32
    int(boundary, 16)
    assert isinstance(body1, bytes) and body1.startswith(f"--{boundary}\r\n".encode())
    assert headers1 != headers2


def test_quoting_of_names() -> None:
    _, body = encode_multipart(
        {'we"ird\r\nname': "v"},
        {'fi"le': ('my "file"\r\n.txt', b"x"), "ü": ("naïve.txt", b"y")},
        boundary=b"b",
    )
    assert isinstance(body, bytes)
    assert b'name="we%22ird%0D%0Aname"\r\n' in body
    assert b'name="fi%22le"; filename="my %22file%22%0D%0A.txt"\r\n' in body
    assert 'name="ü"; filename="naïve.txt"\r\n'.encode() in body
    # Nothing but the quoted values may break a header line.
    assert body.count(b"\r\n") == 3 * 3 + 2 + 3 + 1


def test_filename_none_sends_plain_field() -> None:
    _, body = encode_multipart(None, {"f": (None, b"abc")}, boundary=b"b")
    assert body == b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nabc\r\n--b--\r\n'
    _, body = encode_multipart(None, {"f": (None, b"{}", "application/json")}, boundary=b"b")
    assert b"Content-Type: application/json\r\n" in body  # type: ignore[operator]


def test_extra_content_type_header_wins() -> None:
    _, body = encode_multipart(
        None, {"f": ("a.txt", b"x", None, {"content-type": "text/csv"})}, boundary=b"b"
    )
    assert isinstance(body, bytes)
    assert b"content-type: text/csv\r\n" in body
    assert b"text/plain" not in body


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"f": ("a.txt", b"x", None, {"X-Bad": "a\r\nInjected: 1"})}, LocalProtocolError),
        ({"f": ("a.txt", b"x", None, {"Bad Name": "v"})}, LocalProtocolError),
        ({"f": ("a.txt", b"x", "text/plain\r\nX: y")}, LocalProtocolError),
        ({"f": ("a.txt", b"x", None, {"Content-Disposition": "x"})}, ValueError),
        ({"f": ("a.txt",)}, TypeError),
        ({"f": ("a.txt", 42)}, TypeError),
        ({"f": 42}, TypeError),
        ({"f": (b"name", b"x")}, TypeError),
        ([("f",)], TypeError),
        ([(1, b"x")], TypeError),
    ],
)
def test_bad_file_values(files: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_multipart(None, files, boundary=b"b")


@pytest.mark.parametrize("boundary", [b"", b"a" * 71, b"bad\r\n", b"ends with space ", b"\xff"])
def test_bad_boundary(boundary: bytes) -> None:
    with pytest.raises(ValueError, match="boundary"):
        encode_multipart(None, {"f": b"x"}, boundary=boundary)
    with pytest.raises(TypeError):
        encode_multipart(None, {"f": b"x"}, boundary="str")  # type: ignore[arg-type]


def test_boundary_with_special_characters_is_quoted() -> None:
    headers, body = encode_multipart(None, {"f": b"x"}, boundary=b"a b=c")
    assert header(headers, "Content-Type") == 'multipart/form-data; boundary="a b=c"'
    assert isinstance(body, bytes)
    assert parse(headers, body)[0].get_payload(decode=True) == b"x"


# --- files --------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(os.urandom(300_000))
    return path


@pytest.mark.anyio
async def test_disk_file_streamed_with_content_length(big_file: Path) -> None:
    payload = big_file.read_bytes()
    with big_file.open("rb") as file:
        headers, body = encode_multipart({"k": "v"}, {"upload": file}, boundary=b"bnd")
        assert isinstance(body, StreamBody)
        assert header(headers, "Transfer-Encoding") is None
        chunks = [chunk async for chunk in body]
    received = b"".join(chunks)
    assert header(headers, "Content-Length") == str(len(received))
    assert max(len(c) for c in chunks) <= READ_SIZE
    parts = parse(headers, received)
    assert parts[1].get_param("filename", header="content-disposition") == "photo.jpg"
    assert parts[1].get_content_type() == "image/jpeg"
    assert parts[1].get_payload(decode=True) == payload


@pytest.mark.anyio
async def test_file_not_read_before_streaming(big_file: Path) -> None:
    class Tracking(io.FileIO):
        reads = 0

        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            data = super().read(size)
            if size != 0:
                Tracking.reads += 1
                assert size <= READ_SIZE
            return data

    with Tracking(big_file, "rb") as file:
        headers, body = encode_multipart(None, {"f": file})
        assert Tracking.reads == 0
        received = await collect(body)
    assert header(headers, "Content-Length") == str(len(received))
    assert big_file.read_bytes() in received


@pytest.mark.anyio
async def test_file_read_from_current_position_and_replayed(big_file: Path) -> None:
    payload = big_file.read_bytes()
    with big_file.open("rb") as file:
        file.seek(1000)
        headers, body = encode_multipart(None, {"f": ("x.bin", file)}, boundary=b"b")
        assert isinstance(body, StreamBody) and body.replayable
        first = await collect(body)
        second = await collect(body)
    assert first == second
    assert header(headers, "Content-Length") == str(len(first))
    assert parse(headers, first)[0].get_payload(decode=True) == payload[1000:]


@pytest.mark.anyio
async def test_bytesio_is_sized_with_seek() -> None:
    data = b"in memory file " * 10_000
    file = io.BytesIO(data)
    headers, body = encode_multipart(None, {"f": ("m.txt", file)}, boundary=b"b")
    received = await collect(body)
    assert header(headers, "Content-Length") == str(len(received))
    assert parse(headers, received)[0].get_payload(decode=True) == data


@pytest.mark.anyio
async def test_file_that_shrinks_raises(big_file: Path) -> None:
    with big_file.open("rb") as file:
        _, body = encode_multipart(None, {"f": file})
        with big_file.open("r+b") as writer:
            writer.truncate(1000)
        with pytest.raises(LocalProtocolError, match="before its announced length"):
            await collect(body)


@pytest.mark.anyio
async def test_file_that_grows_is_cut_at_announced_length(big_file: Path) -> None:
    with big_file.open("rb") as file:
        headers, body = encode_multipart(None, {"f": file})
        with big_file.open("ab") as writer:
            writer.write(b"extra" * 1000)
        received = await collect(body)
    assert header(headers, "Content-Length") == str(len(received))


@pytest.mark.anyio
async def test_unsized_sources_are_chunked() -> None:
    class Pipe:
        """A non-seekable binary stream."""

        def __init__(self, data: bytes) -> None:
            self._buffer = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

        def seekable(self) -> bool:
            return False

    def gen() -> Iterator[bytes]:
        yield b"gen"
        yield b"erated"

    async def agen() -> AsyncIterator[bytes]:
        yield b"async"

    headers, body = encode_multipart(
        {"k": "v"},
        [
            ("pipe", ("p.bin", Pipe(b"piped"))),
            ("text", ("t.txt", io.StringIO("tëxt"))),
            ("gen", ("g.bin", gen())),
            ("async", ("a.bin", agen())),
            ("bytes", ("b.bin", b"plain")),
        ],
        boundary=b"b",
    )
    assert header(headers, "Transfer-Encoding") == "chunked"
    assert header(headers, "Content-Length") is None
    assert isinstance(body, StreamBody) and not body.replayable
    received = await collect(body)
    payloads = [p.get_payload(decode=True) for p in parse(headers, received)]
    assert payloads == [b"v", b"piped", "tëxt".encode(), b"generated", b"async", b"plain"]
    with pytest.raises(StreamConsumed):
        await collect(body)


@pytest.mark.anyio
async def test_content_length_matches_for_mixed_parts(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([0, 1, READ_SIZE - 1, READ_SIZE, READ_SIZE + 1, 3 * READ_SIZE]):
        path = tmp_path / f"f{i}.dat"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    files = [(f"f{i}", path.open("rb")) for i, path in enumerate(paths)]
    try:
        headers, body = encode_multipart(
            {"x": ["1", "ü"]}, [*files, ("s", ("s.txt", "strïng"))], boundary=b"b"
        )
        received = await collect(body)
    finally:
        for _, file in files:
            file.close()
    assert header(headers, "Content-Length") == str(len(received))
    payloads = [p.get_payload(decode=True) for p in parse(headers, received)]
    assert payloads[2:8] == [path.read_bytes() for path in paths]
    assert payloads[8] == "strïng".encode()


def test_file_object_without_name_uses_upload() -> None:
    # BytesIO has no name; a file opened from a descriptor has an int name.
    headers, body = encode_multipart(None, {"f": io.BytesIO(b"x")}, boundary=b"b")
    assert isinstance(body, StreamBody)
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            os.close(write_fd)
            headers, body = encode_multipart(None, {"f": pipe}, boundary=b"b")
            assert header(headers, "Transfer-Encoding") == "chunked"
    finally:
        try:
            os.close(write_fd)
        except OSError:
            pass


@pytest.mark.anyio
async def test_default_filename_in_stream(tmp_path: Path) -> None:
    _, body = encode_multipart(None, {"f": io.BytesIO(b"x")}, boundary=b"b")
    assert b'filename="upload"' in await collect(body)


def test_data_fields_as_pairs() -> None:
    _, body = encode_multipart([("a", "1"), ("a", 2)], {}, boundary=b"b")
    assert body == (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n2\r\n'
        b"--b--\r\n"
    )
