"""Threads sharing one blocking WebSocket connection, against the
``websockets`` library's echo server: the reader role passes between a
receiving thread (whose receives time out often, handing the stream back to
the background reader) and the background reader, while other threads send
whole and fragmented messages and pings."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from websockets.sync.server import Server, ServerConnection, serve

import webwire
from webwire.websocket import sync as sws


def _echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


@pytest.fixture
def echo_url() -> Iterator[str]:
    server: Server = serve(_echo, "127.0.0.1", 0, compression=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
    finally:
        server.shutdown()
        thread.join(10.0)


@pytest.mark.timeout(60)
def test_threads_send_while_one_receives_with_timeouts(echo_url: str) -> None:
    senders, count = 4, 150
    received: list[str] = []
    errors: list[BaseException] = []
    with sws.connect(echo_url, compression=None, ping_interval=0.05) as ws:

        def receiver() -> None:
            try:
                while len(received) < senders * count:
                    try:
                        message = ws.recv(timeout=0.001)
                    except webwire.ReadTimeout:
                        continue
                    assert isinstance(message, str)
                    received.append(message)
            except BaseException as exc:
                errors.append(exc)

        def sender(n: int) -> None:
            try:
                for i in range(count):
                    if i % 3 == 0:
                        ws.send([f"{n}:", f"{i}", ""])  # one fragmented message
                    else:
                        ws.send(f"{n}:{i}")
                    if i % 50 == 0:
                        ws.ping().wait(10.0)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=receiver)]
        threads += [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(45.0)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert ws.state is webwire.websocket.State.OPEN
    for n in range(senders):
        mine = [m for m in received if m.startswith(f"{n}:")]
        assert mine == [f"{n}:{i}" for i in range(count)]  # whole, and in each sender's order
    assert len(received) == senders * count
