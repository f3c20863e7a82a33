"""client.sse() against sse-starlette's EventSourceResponse served by
hypercorn: events, ids, the retry field, reconnection with Last-Event-ID
after the server ends the stream, 204, errors. Each scenario runs on
asyncio, trio and the blocking client."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import webwire
from webwire._sync import run_sync

Scenario = Callable[[Any, Any], Awaitable[None]]


def both(scenario: Scenario) -> tuple[Any, Any]:
    """Two tests for one scenario: AsyncClient (asyncio and trio) and Client."""

    @pytest.mark.anyio
    async def test_async(async_api: Any, sse_server: Any) -> None:
        await scenario(async_api, sse_server)

    def test_sync(sync_api: Any, sse_server: Any) -> None:
        run_sync(scenario(sync_api, sse_server))

    return test_async, test_sync


async def collect(api: Any, url: str, **kwargs: Any) -> list[webwire.ServerSentEvent]:
    if api.is_async:
        return [event async for event in api.client.sse(url, **kwargs)]
    return list(api.client.sse(url, **kwargs))


async def seen(api: Any, key: str) -> dict[str, Any]:
    response = await api.get(f"/seen?key={key}")
    data: dict[str, Any] = response.json()
    return data


async def _events_and_reconnection(open_api: Any, server: Any) -> None:
    key = uuid.uuid4().hex
    async with open_api(base_url=str(server.url)) as api:
        got = await collect(api, f"/events?key={key}&n=2&total=6&retry=20")
        assert [(e.event, e.id, e.json()) for e in got] == [
            ("tick", str(i), {"n": i}) for i in range(1, 7)
        ]
        assert [e.retry for e in got] == [20, None, 20, None, 20, None]
        # Three streams ended by the server, then 204 stopped the source.
        assert (await seen(api, key))["last_event_ids"] == [None, "2", "4", "6"]


test_events_and_reconnection_async, test_events_and_reconnection_sync = both(
    _events_and_reconnection
)


async def _fields(open_api: Any, server: Any) -> None:
    async with open_api(base_url=str(server.url)) as api:
        got = await collect(api, "/multi")
    assert [(e.event, e.data, e.id, e.retry) for e in got] == [
        ("message", "line one\nline two\nline three", "m1", 10),
        ("custom", "named", "m1", None),
        ("empty", "", "m1", None),
    ]


test_fields_async, test_fields_sync = both(_fields)


async def _last_event_id_resume(open_api: Any, server: Any) -> None:
    key = uuid.uuid4().hex
    async with open_api(base_url=str(server.url)) as api:
        got = await collect(
            api, f"/events?key={key}&n=3&total=5", last_event_id="3", retry=None
        )
        assert [e.id for e in got] == ["4", "5"]
        assert (await seen(api, key))["last_event_ids"] == ["3"]


test_last_event_id_resume_async, test_last_event_id_resume_sync = both(_last_event_id_resume)


async def _context_manager_and_early_close(open_api: Any, server: Any) -> None:
    key = uuid.uuid4().hex
    async with open_api(base_url=str(server.url)) as api:
        url = f"/endless?key={key}"
        got: list[str] = []
        if api.is_async:
            async with api.client.sse(url) as source:
                assert source.response.status_code == 200
                async for event in source:
                    got.append(event.data)
                    if len(got) == 3:
                        break
        else:
            with api.client.sse(url) as source:
                assert source.response.status_code == 200
                for event in source:
                    got.append(event.data)
                    if len(got) == 3:
                        break
        assert got == ["1", "2", "3"]
        assert source.response is None
        assert source.last_event_id == "3"
        # The server sees the client go away (poll: it learns asynchronously).
        for _ in range(200):
            if (await seen(api, key))["disconnected"]:
                break
            await api.sleep(0.01)
        assert (await seen(api, key))["disconnected"]
        # The pool holds no connection for the closed stream.
        assert api.in_use() == 0


test_context_manager_async, test_context_manager_sync = both(_context_manager_and_early_close)


async def _no_content_stops(open_api: Any, server: Any) -> None:
    async with open_api(base_url=str(server.url)) as api:
        assert await collect(api, "/status/204") == []


test_no_content_async, test_no_content_sync = both(_no_content_stops)


async def _wrong_type_and_status(open_api: Any, server: Any) -> None:
    async with open_api(base_url=str(server.url)) as api:
        with pytest.raises(webwire.SSEError, match="text/plain") as info:
            await collect(api, "/wrong-type")
        assert info.value.response is not None
        assert info.value.response.status_code == 200
        # A short body is kept for diagnostics.
        assert info.value.response.content == b"data: not an event stream\n\n"
        with pytest.raises(webwire.SSEError, match="500"):
            await collect(api, "/status/500")
        # The connections were released.
        assert api.in_use() == 0


test_wrong_type_async, test_wrong_type_sync = both(_wrong_type_and_status)


async def _connection_refused(open_api: Any, server: Any) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with open_api() as api:
        with pytest.raises(webwire.ConnectError):
            await collect(api, f"http://127.0.0.1:{port}/", retry=None)


test_connection_refused_async, test_connection_refused_sync = both(_connection_refused)
