"""Micro-benchmark of the HTTP/1.1 state machine (not a test: prints timings).

Run: ``.venv/bin/python tests/proto/bench_h1.py``
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httptools

from webwire._proto.h1 import H1Connection, ServerState

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Server: bench/1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 13\r\n"
    b"\r\n"
    b"Hello, world!"
)
REQUEST_HEADERS = [
    (b"Host", b"example.com"),
    (b"User-Agent", b"webwire/0.1"),
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
]
N = 100_000


def best_of(fn: Callable[[], None], repeat: int = 5) -> float:
    """Best time of ``repeat`` runs of ``fn`` (N iterations), in µs per iteration."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) / N * 1e6


def raw_parser() -> None:
    class Sink:
        def on_status(self, status: bytes) -> None: ...
        def on_header(self, name: bytes, value: bytes) -> None: ...
        def on_headers_complete(self) -> None: ...
        def on_body(self, body: bytes) -> None: ...
        def on_message_complete(self) -> None: ...

    parser = httptools.HttpResponseParser(Sink())
    for _ in range(N):
        parser.feed_data(RESPONSE)


def cycle(headers: list[tuple[bytes, bytes]]) -> Callable[[], None]:
    """N request/response rounds on one keep-alive connection."""

    def run() -> None:
        conn = H1Connection()
        for _ in range(N):
            conn.send_request(b"GET", b"/index.html", headers, end_stream=True)
            conn.data_to_send()
            conn.receive_data(RESPONSE)
            conn.events()
            conn.start_next_cycle()

    return run


def parse_only() -> None:
    """N responses parsed, the request state reset directly (no sending)."""
    conn = H1Connection()
    conn.send_request(b"GET", b"/", [], end_stream=True)
    for _ in range(N):
        conn._reset_cycle()
        conn._their = ServerState.SEND_RESPONSE
        conn.receive_data(RESPONSE)
        conn.events()


def main() -> None:
    print(f"response: {len(RESPONSE)} bytes (status line, 4 fields, 13-byte body); {N} rounds")
    print(f"httptools alone, no-op callbacks    {best_of(raw_parser):6.2f} µs/response")
    print(f"receive_data + events only          {best_of(parse_only):6.2f} µs/response")
    full = best_of(cycle(REQUEST_HEADERS))
    bare = best_of(cycle([]))
    print(f"round with a 5-field request        {full:6.2f} µs")
    print(f"round with a field-less request     {bare:6.2f} µs")


if __name__ == "__main__":
    main()
