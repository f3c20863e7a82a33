"""Fixtures shared by every test directory.

* ``anyio_backend``: every ``@pytest.mark.anyio`` test runs on asyncio and
  on trio.
* ``async_api`` / ``sync_api``: open a :class:`webwire.AsyncClient` or a
  :class:`webwire.Client` behind one ``async`` interface (:class:`Api`), so
  a scenario is written once as a coroutine and runs on asyncio, on trio,
  and on the blocking client (driven by ``webwire._sync.run_sync``: the
  blocking client never suspends, so neither does the scenario).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

ApiFactory = Callable[..., AbstractAsyncContextManager["Api"]]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    backend: str = request.param
    return backend


def find_pool(client: Any) -> Any:
    """The connection pool under a client (``connections_in_use()``,
    ``connections_idle()``), or ``None`` before its first request."""
    inner = getattr(client, "_client", None)  # Client wraps an AsyncClient
    transport = client._transport if inner is None else inner._transport
    pool = getattr(transport, "pool", None)
    if pool is None:
        pool = getattr(transport, "_pool", None)
    return pool


class StreamedResponse:
    """A streamed response of either client, read with ``async for``."""

    def __init__(self, response: Any, is_async: bool) -> None:
        self.response = response
        self._is_async = is_async

    def __getattr__(self, name: str) -> Any:
        return getattr(self.response, name)

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The decoded body in chunks."""
        if self._is_async:
            async for chunk in self.response.aiter_bytes(chunk_size):
                yield chunk
        else:
            for chunk in self.response.iter_bytes(chunk_size):
                yield chunk

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as received (content coding kept)."""
        if self._is_async:
            async for chunk in self.response.aiter_raw():
                yield chunk
        else:
            for chunk in self.response.iter_raw():
                yield chunk

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body as text lines."""
        if self._is_async:
            async for line in self.response.aiter_lines():
                yield line
        else:
            for line in self.response.iter_lines():
                yield line

    async def aread(self) -> bytes:
        """Read the rest of the body."""
        if self._is_async:
            data: bytes = await self.response.aread()
        else:
            data = self.response.read()
        return data

    async def aclose(self) -> None:
        """Close the response (releases its connection)."""
        if self._is_async:
            await self.response.aclose()
        else:
            self.response.close()


class Api:
    """One ``async`` face over ``AsyncClient`` and ``Client``.

    Attributes:
        client: The webwire client.
        is_async: Whether it is an ``AsyncClient``.
    """

    def __init__(self, client: Any, is_async: bool) -> None:
        self.client = client
        self.is_async = is_async

    async def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        """``client.request(...)``: a read response."""
        if self.is_async:
            return await self.client.request(method, url, **kwargs)
        return self.client.request(method, url, **kwargs)

    async def get(self, url: Any, **kwargs: Any) -> Any:
        """``client.get(...)``."""
        if self.is_async:
            return await self.client.get(url, **kwargs)
        return self.client.get(url, **kwargs)

    async def post(self, url: Any, **kwargs: Any) -> Any:
        """``client.post(...)``."""
        if self.is_async:
            return await self.client.post(url, **kwargs)
        return self.client.post(url, **kwargs)

    async def head(self, url: Any, **kwargs: Any) -> Any:
        """``client.head(...)``."""
        if self.is_async:
            return await self.client.head(url, **kwargs)
        return self.client.head(url, **kwargs)

    @asynccontextmanager
    async def stream(self, method: str, url: Any, **kwargs: Any) -> AsyncIterator[StreamedResponse]:
        """``client.stream(...)`` as an async context manager."""
        if self.is_async:
            async with self.client.stream(method, url, **kwargs) as response:
                yield StreamedResponse(response, True)
        else:
            with self.client.stream(method, url, **kwargs) as response:
                yield StreamedResponse(response, False)

    def body(self, chunks: Iterable[bytes]) -> Any:
        """A streamed request body: an async generator for the async
        client, a plain generator for the blocking one."""
        items = list(chunks)
        if self.is_async:

            async def agen() -> AsyncIterator[bytes]:
                for item in items:
                    yield item

            return agen()

        def gen() -> Iterator[bytes]:
            yield from items

        return gen()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (the event loop keeps running on the async side)."""
        if self.is_async:
            import anyio

            await anyio.sleep(seconds)
        else:
            time.sleep(seconds)

    async def gather(
        self, n: int, fn: Callable[[int], Coroutine[Any, Any, Any]]
    ) -> list[Any]:
        """Run ``fn(0)`` ... ``fn(n - 1)`` at once: as tasks on the async
        client, as threads (each driven by ``run_sync``) on the blocking one.
        Returns the results, or the exception each raised, in order."""
        from webwire._sync import run_sync

        results: list[Any] = [None] * n

        async def run(i: int) -> None:
            try:
                results[i] = await fn(i)
            except Exception as exc:  # reported to the caller
                results[i] = exc

        if self.is_async:
            import anyio

            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(run, i)
        else:
            import threading

            threads = [threading.Thread(target=run_sync, args=(run(i),)) for i in range(n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        return results

    @property
    def pool(self) -> Any:
        """The client's connection pool (``None`` before the first request)."""
        return find_pool(self.client)

    def in_use(self) -> int:
        """Connections of the pool carrying a request now."""
        pool = self.pool
        count: int = 0 if pool is None else pool.connections_in_use()
        return count

    def idle(self) -> int:
        """Idle keep-alive connections of the pool."""
        pool = self.pool
        count: int = 0 if pool is None else pool.connections_idle()
        return count


@asynccontextmanager
async def open_async(**kwargs: Any) -> AsyncIterator[Api]:
    """An :class:`Api` over ``webwire.AsyncClient(**kwargs)``."""
    import webwire

    async with webwire.AsyncClient(**kwargs) as client:
        yield Api(client, True)


@asynccontextmanager
async def open_sync(**kwargs: Any) -> AsyncIterator[Api]:
    """An :class:`Api` over ``webwire.Client(**kwargs)``."""
    import webwire

    with webwire.Client(**kwargs) as client:
        yield Api(client, False)


@pytest.fixture
def async_api(anyio_backend: str) -> ApiFactory:
    """Opens an ``AsyncClient`` behind :class:`Api`: ``async with
    async_api(**client_options) as api``."""
    return open_async


@pytest.fixture
def sync_api() -> ApiFactory:
    """Opens a blocking ``Client`` behind :class:`Api`; run the scenario
    with ``webwire._sync.run_sync``."""
    return open_sync
