"""A TLS stream of the blocking backend used by two threads at once.

On the blocking backend one thread may read a stream while another writes
it (an HTTP/2 connection shared by threads does so all the time). OpenSSL
does not allow two threads to use one TLS connection at once, so
:class:`~webwire._backends.sync.SyncStream` serialises its TLS calls; these
tests push a lot of data both ways at once through a TLS echo server and
check every byte, and check that aborting or closing the stream wakes the
threads blocked on it.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

import pytest

from webwire._backends import NetworkStream, get_backend
from webwire._backends.sync import SyncStream
from webwire._exceptions import ReadError, ReadTimeout, WriteError, WriteTimeout
from webwire._sync import run_sync

from .servers import ThreadServer, TLSMaterial, echo, send_all, sender, silent

TOTAL = 64 * 1024 * 1024
"""Bytes sent through the echo server by the concurrency test."""


def connect_tls(port: int, tls: TLSMaterial, via_start_tls: bool = False) -> NetworkStream:
    backend = get_backend("sync")
    if not via_start_tls:
        return run_sync(
            backend.connect_tcp("127.0.0.1", port, timeout=5, ssl_context=tls.client_context)
        )
    plain = run_sync(backend.connect_tcp("127.0.0.1", port, timeout=5))
    return run_sync(plain.start_tls(tls.client_context, "127.0.0.1", 5))


def piece_sizes(rng: random.Random, total: int) -> list[int]:
    """Sizes from one byte to more than one write chunk (256 KiB), adding
    up to ``total``."""
    sizes: list[int] = []
    left = total
    while left:
        size = min(left, rng.choice([1, 17, 1000, 16384, 16385, 65536, 300_000]))
        sizes.append(size)
        left -= size
    return sizes


def first_difference(a: bytes | bytearray, b: bytes) -> int:
    """Offset of the first byte where ``a`` and ``b`` differ."""
    return next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("via_start_tls", [False, True], ids=["connect_tcp", "start_tls"])
def test_one_thread_reads_while_another_writes(tls: TLSMaterial, via_start_tls: bool) -> None:
    rng = random.Random(2024)
    payload = rng.randbytes(TOTAL)
    sizes = piece_sizes(rng, TOTAL)
    with ThreadServer(echo, tls=tls.server_context) as server:
        stream = connect_tls(server.port, tls, via_start_tls)
        assert isinstance(stream, SyncStream)
        assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("peername") == ("127.0.0.1", server.port)
        received = bytearray()

        def write_all() -> None:
            view = memoryview(payload)
            offset = 0
            for size in sizes:
                run_sync(stream.write(bytes(view[offset : offset + size]), 10))
                offset += size

        def read_all() -> None:
            reads = 0
            while len(received) < TOTAL:
                size = (1, 100, 4096, 65536, 262144)[reads % 5]
                data = run_sync(stream.read(size, 10))
                assert data, f"end of stream after {len(received)} of {TOTAL} bytes"
                received.extend(data)
                reads += 1

        writer, write_errors = in_thread(write_all)
        reader, read_errors = in_thread(read_all)
        writer.join(120)
        reader.join(120)
        try:
            assert not writer.is_alive() and not reader.is_alive()
            assert not write_errors, write_errors
            assert not read_errors, read_errors
            assert len(received) == TOTAL
            assert received == payload, (
                f"bytes differ from offset {first_difference(received, payload)}"
            )
        finally:
            run_sync(stream.aclose())
    assert not server.errors, server.errors


def test_is_readable_counts_decrypted_bytes_pending(tls: TLSMaterial) -> None:
    with ThreadServer(sender(b"p" * 1000), tls=tls.server_context) as server:
        stream = connect_tls(server.port, tls)
        try:
            assert run_sync(stream.read(10, 5)) == b"p" * 10
            time.sleep(0.1)
            # The rest of the record is decrypted and held by the TLS
            # layer; the socket itself has nothing to read.
            assert stream.is_readable()
            assert run_sync(stream.read(2000, 5)) == b"p" * 990
            time.sleep(0.1)
            assert not stream.is_readable()
        finally:
            run_sync(stream.aclose())


def test_abort_wakes_a_blocked_tls_reader_and_closes_the_socket(tls: TLSMaterial) -> None:
    with ThreadServer(silent, tls=tls.server_context) as server:
        stream = connect_tls(server.port, tls)
        raw = stream.get_extra_info("socket")
        started = time.monotonic()
        reader, errors = in_thread(lambda: run_sync(stream.read(10, 30)))
        time.sleep(0.2)
        stream.abort()
        stream.abort()
        reader.join(5)
        assert not reader.is_alive()
        assert time.monotonic() - started < 5
        assert len(errors) == 1 and isinstance(errors[0], ReadError), errors
        assert raw.fileno() == -1
        with pytest.raises(ReadError):
            run_sync(stream.read(10, 1))
        with pytest.raises(WriteError):
            run_sync(stream.write(b"x", 1))
        assert stream.is_readable()
        run_sync(stream.aclose())


def test_aclose_wakes_a_blocked_tls_reader(tls: TLSMaterial) -> None:
    with ThreadServer(silent, tls=tls.server_context) as server:
        stream = connect_tls(server.port, tls)
        raw = stream.get_extra_info("socket")
        reader, errors = in_thread(lambda: run_sync(stream.read(10, 30)))
        time.sleep(0.2)
        run_sync(stream.aclose())
        reader.join(5)
        assert not reader.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], ReadError), errors
        assert raw.fileno() == -1
        run_sync(stream.aclose())


def test_abort_wakes_a_tls_writer_blocked_on_a_full_buffer(tls: TLSMaterial) -> None:
    with ThreadServer(silent, tls=tls.server_context, recv_buffer=16384) as server:
        stream = connect_tls(server.port, tls)

        def fill() -> None:
            while True:
                run_sync(stream.write(b"w" * 65536, 30))

        writer, errors = in_thread(fill)
        time.sleep(0.5)
        assert writer.is_alive()
        stream.abort()
        writer.join(5)
        assert not writer.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], WriteError), errors


def test_tls_write_timeout_when_peer_never_reads(tls: TLSMaterial) -> None:
    with ThreadServer(silent, tls=tls.server_context, recv_buffer=16384) as server:
        stream = connect_tls(server.port, tls)
        started = time.monotonic()
        try:
            with pytest.raises(WriteTimeout):
                for _ in range(256):
                    run_sync(stream.write(b"z" * (1024 * 1024), 0.3))
            assert time.monotonic() - started < 10
        finally:
            stream.abort()
            run_sync(stream.aclose())


def test_tls_read_with_zero_timeout_returns_what_is_there(tls: TLSMaterial) -> None:
    def greet(conn: socket.socket, stop: threading.Event) -> None:
        send_all(conn, b"hello", stop)
        stop.wait()

    with ThreadServer(greet, tls=tls.server_context) as server:
        stream = connect_tls(server.port, tls)
        try:
            time.sleep(0.3)
            assert run_sync(stream.read(100, 0)) == b"hello"
            with pytest.raises(ReadTimeout):
                run_sync(stream.read(100, 0))
        finally:
            run_sync(stream.aclose())
