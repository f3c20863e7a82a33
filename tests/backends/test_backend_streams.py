"""Network streams of the three backends against small local servers.

Every scenario is an ``async def`` written once against the Backend
interface; it runs on asyncio and trio through anyio's pytest plugin, and on
the blocking backend through ``run_sync`` (which fails if anything ever
suspends).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from webwire._backends import Backend, NetworkStream, get_backend
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from webwire._sync import run_sync

from .servers import (
    ThreadServer,
    TLSMaterial,
    answer_then_reset,
    close_at_once,
    close_when,
    closed_port,
    count_until_eof,
    delayed_echo,
    echo,
    reset,
    send_and_close,
    sender,
    silent,
    slow_reader,
)

Scenario = Callable[[Backend, TLSMaterial], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


async def read_exactly(stream: NetworkStream, size: int, timeout: float = 5.0) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = await stream.read(min(65536, size - got), timeout)
        assert data, f"EOF after {got} of {size} bytes"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def eventually(backend: Backend, check: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await backend.sleep(0.01)
    return check()


@scenario
async def echo_round_trips(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            for size in (1, 100, 5000, 70000):
                payload = os.urandom(size)
                await stream.write(payload, 5)
                assert await read_exactly(stream, size) == payload
            assert stream.get_extra_info("peername")[:2] == ("127.0.0.1", server.port)
            assert stream.get_extra_info("sockname")[0] == "127.0.0.1"
            assert stream.get_extra_info("socket") is not None
            assert stream.get_extra_info("alpn_protocol") is None
            assert stream.get_extra_info("ssl_object") is None
            assert stream.get_extra_info("no-such-thing") is None
        finally:
            await stream.aclose()
            await stream.aclose()


@scenario
async def small_reads_split_buffered_data(backend: Backend, tls: TLSMaterial) -> None:
    payload = bytes(range(256)) * 40
    with ThreadServer(sender(payload)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            received = b""
            while len(received) < len(payload):
                data = await stream.read(7, 5)
                assert 1 <= len(data) <= 7
                received += data
            assert received == payload
        finally:
            await stream.aclose()


@scenario
async def read_returns_empty_at_eof(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(close_at_once) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            assert await stream.read(1024, 5) == b""
            assert await stream.read(1024, 5) == b""
            assert stream.is_readable()
        finally:
            await stream.aclose()


@scenario
async def data_then_eof(backend: Backend, tls: TLSMaterial) -> None:
    payload = os.urandom(300000)
    with ThreadServer(send_and_close(payload)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await backend.sleep(0.1)
            assert await read_exactly(stream, len(payload)) == payload
            assert await stream.read(1024, 5) == b""
        finally:
            await stream.aclose()


@scenario
async def tls_data_then_eof_without_close_notify(backend: Backend, tls: TLSMaterial) -> None:
    payload = os.urandom(100000)
    with ThreadServer(send_and_close(payload), tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            assert await read_exactly(stream, len(payload)) == payload
            assert await stream.read(1024, 5) == b""
        finally:
            await stream.aclose()


@scenario
async def tls_aclose_is_bounded_when_peer_is_silent(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(silent, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        start = time.monotonic()
        await stream.aclose()
        assert time.monotonic() - start < 1.0
        with pytest.raises(ReadError):
            await stream.read(10, 1)


@scenario
async def read_timeout(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(silent) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            start = time.monotonic()
            with pytest.raises(ReadTimeout) as caught:
                await stream.read(1024, 0.2)
            elapsed = time.monotonic() - start
            assert 0.15 <= elapsed < 3.0
            assert isinstance(caught.value, TimeoutError)
            # The stream stays usable after a read timeout.
            await stream.write(b"still open", 5)
            assert not stream.is_readable()
        finally:
            await stream.aclose()


@scenario
async def successive_reads_with_different_timeouts(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(delayed_echo(0.3)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await stream.write(b"a", 5)
            assert await stream.read(10, 5) == b"a"
            # A shorter timeout than the previous read's still applies.
            await stream.write(b"b", 5)
            start = time.monotonic()
            with pytest.raises(ReadTimeout):
                await stream.read(10, 0.1)
            assert time.monotonic() - start < 0.25
            assert await stream.read(10, 5) == b"b"
            # A longer timeout than the previous read's is not cut short.
            await stream.write(b"c", 5)
            assert await stream.read(10, 0.5) == b"c"
            await stream.write(b"d", 5)
            assert await stream.read(10, 1.0) == b"d"
        finally:
            await stream.aclose()


@scenario
async def connect_refused(backend: Backend, tls: TLSMaterial) -> None:
    port = closed_port()
    with pytest.raises(ConnectError) as caught:
        await backend.connect_tcp("127.0.0.1", port, timeout=5)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


@scenario
async def connect_invalid_port(backend: Backend, tls: TLSMaterial) -> None:
    with pytest.raises(ConnectError):
        await backend.connect_tcp("127.0.0.1", 70000, timeout=5)


@scenario
async def tls_handshake_timeout(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(silent) as server:
        start = time.monotonic()
        with pytest.raises(ConnectTimeout):
            await backend.connect_tcp(
                "127.0.0.1", server.port, timeout=0.3, ssl_context=tls.client_context
            )
        assert time.monotonic() - start < 3.0


@scenario
async def tls_echo_and_alpn(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            assert stream.get_extra_info("alpn_protocol") == "h2"
            ssl_object = stream.get_extra_info("ssl_object")
            assert ssl_object is not None
            assert ssl_object.version().startswith("TLS")
            for size in (10, 100000):
                payload = os.urandom(size)
                await stream.write(payload, 5)
                assert await read_exactly(stream, size) == payload
        finally:
            await stream.aclose()


@scenario
async def tls_stream_usable_after_read_timeout(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            with pytest.raises(ReadTimeout):
                await stream.read(10, 0.1)
            await stream.write(b"after", 5)
            assert await read_exactly(stream, 5) == b"after"
        finally:
            await stream.aclose()


@scenario
async def tls_server_hostname_is_used(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1",
            server.port,
            timeout=5,
            ssl_context=tls.client_context,
            server_hostname="localhost",
        )
        await stream.aclose()
        with pytest.raises(ConnectError) as caught:
            await backend.connect_tcp(
                "127.0.0.1",
                server.port,
                timeout=5,
                ssl_context=tls.client_context,
                server_hostname="example.org",
            )
        assert "certificate" in str(caught.value).lower()


@scenario
async def tls_untrusted_certificate(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.untrusted_server_context) as server:
        with pytest.raises(ConnectError) as caught:
            await backend.connect_tcp(
                "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
            )
        message = str(caught.value)
        assert f"127.0.0.1:{server.port}" in message
        assert "certificate" in message.lower()


@scenario
async def start_tls_upgrades_plain_stream(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        plain = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        stream = await plain.start_tls(tls.client_context, "127.0.0.1", 5)
        try:
            assert stream.get_extra_info("alpn_protocol") == "h2"
            await stream.write(b"over tls", 5)
            assert await read_exactly(stream, 8) == b"over tls"
        finally:
            await stream.aclose()


@scenario
async def start_tls_untrusted_raises_connect_error(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.untrusted_server_context) as server:
        plain = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            with pytest.raises(ConnectError):
                await plain.start_tls(tls.client_context, "127.0.0.1", 5)
        finally:
            plain.abort()
            await plain.aclose()


@scenario
async def is_readable_tracks_peer_close(backend: Backend, tls: TLSMaterial) -> None:
    close_now = threading.Event()
    with ThreadServer(close_when(close_now)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await backend.sleep(0.1)
            assert not stream.is_readable()
            close_now.set()
            assert await eventually(backend, stream.is_readable)
            assert await stream.read(100, 5) == b""
        finally:
            await stream.aclose()


@scenario
async def is_readable_tls(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            await stream.write(b"ping", 5)
            assert await read_exactly(stream, 4) == b"ping"
            await backend.sleep(0.1)
            assert not stream.is_readable()
            await stream.write(b"pong", 5)
            assert await eventually(backend, stream.is_readable)
        finally:
            await stream.aclose()


@scenario
async def abort_then_read_and_write_fail(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        await stream.write(b"data", 5)
        assert await read_exactly(stream, 4) == b"data"
        stream.abort()
        stream.abort()
        with pytest.raises(ReadError):
            await stream.read(100, 1)
        with pytest.raises(WriteError):
            await stream.write(b"more", 1)
        assert stream.is_readable()
        await stream.aclose()


@scenario
async def read_after_aclose_fails(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        await stream.aclose()
        with pytest.raises(ReadError):
            await stream.read(100, 1)
        with pytest.raises(WriteError):
            await stream.write(b"more", 1)


@scenario
async def reset_by_peer_raises_read_error(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(reset) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await stream.write(b"go", 5)
            with pytest.raises(ReadError):
                await stream.read(100, 5)
        finally:
            await stream.aclose()


EARLY_REPLY = b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 9\r\n\r\ntoo large"
UPLOAD_PIECE = b"u" * 65536
UPLOAD_PIECES = 1600  # 100 MiB: more than the kernel buffers of both sides


async def read_until_end(stream: NetworkStream) -> tuple[bytes, ReadError | None]:
    """Everything ``stream`` returns until end of stream or a ReadError."""
    received = b""
    while True:
        try:
            data = await stream.read(65536, 5)
        except ReadError as exc:
            return received, exc
        if not data:
            return received, None
        received += data


async def upload_until_write_error(backend: Backend, stream: NetworkStream) -> None:
    """Write until a write fails, letting other tasks run between pieces as
    the HTTP/1.1 driver does (an asyncio TLS transport only reports a
    failed send to the writes that follow a loop iteration)."""
    with pytest.raises(WriteError):
        for _ in range(UPLOAD_PIECES):
            await stream.write(UPLOAD_PIECE, 5)
            await backend.checkpoint()


@scenario
async def early_reply_survives_reset_during_upload(backend: Backend, tls: TLSMaterial) -> None:
    # The server answers after the first bytes and resets the connection
    # while the upload goes on: the write fails, the reply is still read.
    with ThreadServer(answer_then_reset(EARLY_REPLY)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await upload_until_write_error(backend, stream)
            received, error = await read_until_end(stream)
            assert received == EARLY_REPLY
            if error is not None:
                assert backend.name == "asyncio"
        finally:
            await stream.aclose()


@scenario
async def reply_in_kernel_survives_failed_write(backend: Backend, tls: TLSMaterial) -> None:
    # The thread blocks until the server has answered and reset the
    # connection, so no event loop runs in between: the reply is still in
    # the kernel's receive queue, unread, when the next write fails (the
    # bytes an asyncio transport drops when it closes after a failed send).
    answered = threading.Event()
    with ThreadServer(answer_then_reset(EARLY_REPLY, answered)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await stream.write(b"POST /upload HTTP/1.1\r\n", 5)
            assert answered.wait(5)
            await upload_until_write_error(backend, stream)
            received, error = await read_until_end(stream)
            assert received == EARLY_REPLY
            if backend.name == "asyncio":
                # The reset follows the reply.
                assert error is not None
                assert isinstance(error.__cause__, ConnectionResetError)
                with pytest.raises(ReadError):
                    await stream.read(100, 1)
            else:
                # The failed send took the reset: the socket is at its end.
                assert error is None
                assert await stream.read(100, 1) == b""
            with pytest.raises(WriteError):
                await stream.write(b"more", 1)
        finally:
            await stream.aclose()


@scenario
async def tls_reply_before_reset_is_never_garbled(backend: Backend, tls: TLSMaterial) -> None:
    # Over TLS the reply cannot always be recovered after the write failed
    # (asyncio's TLS layer and trio's TLS stream stop at the failed send),
    # but what is returned is plaintext, and a reply cut short ends with a
    # ReadError, never with a clean end of stream.
    answered = threading.Event()
    handler = answer_then_reset(EARLY_REPLY, answered)
    with ThreadServer(handler, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            await stream.write(b"POST /upload HTTP/1.1\r\n", 5)
            assert answered.wait(5)
            await upload_until_write_error(backend, stream)
            received, error = await read_until_end(stream)
            assert EARLY_REPLY.startswith(received)
            if received != EARLY_REPLY:
                assert error is not None
        finally:
            await stream.aclose()


@scenario
async def large_write_to_slow_reader(backend: Backend, tls: TLSMaterial) -> None:
    size = 8 * 1024 * 1024
    with ThreadServer(slow_reader(size)) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await stream.write(b"x" * size, 5)
            assert await stream.read(100, 10) == str(size).encode()
        finally:
            await stream.aclose()


@scenario
async def large_tls_write_to_slow_reader(backend: Backend, tls: TLSMaterial) -> None:
    size = 4 * 1024 * 1024
    with ThreadServer(slow_reader(size), tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            await stream.write(b"y" * size, 5)
            assert await stream.read(100, 10) == str(size).encode()
        finally:
            await stream.aclose()


@scenario
async def write_timeout_when_peer_never_reads(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(silent, recv_buffer=16384) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            chunk = b"z" * (1024 * 1024)
            with pytest.raises(WriteTimeout):
                for _ in range(256):
                    await stream.write(chunk, 0.3)
        finally:
            stream.abort()
            await stream.aclose()


@scenario
async def send_eof_half_closes(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(count_until_eof) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            await stream.write(b"x" * 1000, 5)
            await stream.send_eof()
            # The peer saw end of stream and answers: reading still works.
            assert await read_exactly(stream, 8) == b"got 1000"
            assert await stream.read(100, 5) == b""
            with pytest.raises(WriteError):
                await stream.write(b"more", 1)
        finally:
            await stream.aclose()
        with pytest.raises(WriteError):
            await stream.send_eof()


@scenario
async def send_eof_on_tls_raises_write_error(backend: Backend, tls: TLSMaterial) -> None:
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = await backend.connect_tcp(
            "127.0.0.1", server.port, timeout=5, ssl_context=tls.client_context
        )
        try:
            with pytest.raises(WriteError):
                await stream.send_eof()
            # The stream is untouched.
            await stream.write(b"still", 5)
            assert await read_exactly(stream, 5) == b"still"
        finally:
            await stream.aclose()


@scenario
async def unix_socket_round_trip(backend: Backend, tls: TLSMaterial) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "echo.sock")
        with ThreadServer(count_until_eof, unix=path):
            stream = await backend.connect_unix(path, timeout=5)
            try:
                await stream.write(b"abc", 5)
                await stream.send_eof()
                assert await read_exactly(stream, 5) == b"got 3"
                assert await stream.read(10, 5) == b""
                assert stream.get_extra_info("peername") == path
            finally:
                await stream.aclose()
        with pytest.raises(ConnectError) as caught:
            await backend.connect_unix(os.path.join(directory, "missing.sock"), timeout=5)
        assert "missing.sock" in str(caught.value)
        assert isinstance(caught.value.__cause__, OSError)


@scenario
async def connect_by_name_falls_back_across_families(backend: Backend, tls: TLSMaterial) -> None:
    # "localhost" has both ::1 and 127.0.0.1; only the IPv4 one listens, so
    # the IPv6 attempt (made first) is refused and the next one starts at
    # once.
    with ThreadServer(echo) as server:
        stream = await backend.connect_tcp("localhost", server.port, timeout=5)
        try:
            assert stream.get_extra_info("peername")[0] == "127.0.0.1"
            await stream.write(b"hi", 5)
            assert await read_exactly(stream, 2) == b"hi"
        finally:
            await stream.aclose()
    with pytest.raises(ConnectError) as caught:
        await backend.connect_tcp("localhost", closed_port(), timeout=5)
    assert "localhost" in str(caught.value)


@scenario
async def connect_unknown_name(backend: Backend, tls: TLSMaterial) -> None:
    with pytest.raises(ConnectError) as caught:
        await backend.connect_tcp("no-such-host.invalid", 80, timeout=5)
    assert "no-such-host.invalid" in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_async_backends(name: str, anyio_backend: str, tls: TLSMaterial) -> None:
    backend = get_backend(anyio_backend)
    assert backend.name == anyio_backend
    await SCENARIOS[name](backend, tls)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_asyncio_backend_on_uvloop(
    name: str, anyio_backend: object, tls: TLSMaterial
) -> None:
    pytest.importorskip("uvloop")
    await SCENARIOS[name](get_backend("asyncio"), tls)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sync_backend(name: str, tls: TLSMaterial) -> None:
    backend = get_backend("sync")
    assert backend.name == "sync"
    run_sync(SCENARIOS[name](backend, tls))
