"""The blocking ``Client``'s first use from many threads at once: one
backend, one pool, ``Limits.max_connections`` honoured for all of them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from scripted_server import Connection, ScriptedServer, response

import webwire

THREADS = 32
MAX_CONNECTIONS = 10


@pytest.mark.timeout(60)
def test_first_requests_from_many_threads_share_one_pool() -> None:
    open_now = 0
    most_open = 0
    lock = threading.Lock()

    def handler(conn: Connection) -> None:
        nonlocal open_now, most_open
        with lock:
            open_now += 1
            most_open = max(most_open, open_now)
        try:
            while conn.read_request():
                # Slow enough that the requests overlap.
                conn.stop.wait(0.02)
                conn.send(response(b"ok"))
        finally:
            with lock:
                open_now -= 1

    barrier = threading.Barrier(THREADS)
    with ScriptedServer(handler) as server:
        client = webwire.Client(limits=webwire.Limits(max_connections=MAX_CONNECTIONS))

        def first_use(_: int) -> int:
            barrier.wait()
            return client.get(server.url).status_code

        try:
            with ThreadPoolExecutor(THREADS) as pool:
                statuses = list(pool.map(first_use, range(THREADS)))
            assert statuses == [200] * THREADS
            pool_ = client._client.transport.pool  # type: ignore[attr-defined]
            assert pool_ is not None
        finally:
            client.close()
        assert server.accepted <= MAX_CONNECTIONS
        assert most_open <= MAX_CONNECTIONS
