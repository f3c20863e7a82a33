"""Server-sent events (HTML Living Standard, section 9.2): :class:`EventSource`
(``client.sse(url)`` on :class:`~webwire.AsyncClient`) and
:class:`SyncEventSource` (on :class:`~webwire.Client`).

One coroutine implementation serves both clients: the blocking one drives
it with :func:`webwire._sync.run_sync`. The stream is parsed by
:class:`webwire._proto.sse.SSEParser`; reconnection follows the standard
(``Last-Event-ID``, the server's ``retry`` time, ``204`` stops) with the
attempts counted by a :class:`~webwire._retry.Retry` policy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from webwire._config import Timeout
from webwire._exceptions import SSEError, TransportError
from webwire._proto.sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEParser
from webwire._retry import Retry
from webwire._sync import run_sync

from ._request import validate_headers

if TYPE_CHECKING:
    from yarl import URL

    from ._client import AsyncClient
    from ._models import Response

__all__ = [
    "DEFAULT_RECONNECTION_TIME",
    "DEFAULT_SSE_READ_TIMEOUT",
    "DEFAULT_SSE_RETRIES",
    "EventSource",
    "ServerSentEvent",
    "SyncEventSource",
    "sse_timeout",
]

DEFAULT_RECONNECTION_TIME = 3.0
"""Seconds to wait before reconnecting when the server gave no ``retry``."""

DEFAULT_SSE_READ_TIMEOUT = 60.0
"""Read timeout of an event stream (seconds) when the caller gives none:
servers send comments as keep-alives, and a longer silence is taken as a
dropped stream (and reconnected)."""

DEFAULT_SSE_RETRIES = 5
"""Consecutive failed reconnections allowed by default."""

_MEDIA_TYPE = "text/event-stream"
_ERROR_BODY_LIMIT = 64 * 1024


def _no_check() -> None:
    return None


def sse_timeout(client_timeout: Timeout, timeout: Any) -> Timeout:
    """The timeout of an event stream: ``timeout`` when given, else the
    client's with :data:`DEFAULT_SSE_READ_TIMEOUT` for reads and no total."""
    if timeout is not None and not _is_client_default(timeout):
        return timeout if isinstance(timeout, Timeout) else Timeout(timeout)
    return Timeout(
        connect=client_timeout.connect,
        read=DEFAULT_SSE_READ_TIMEOUT,
        write=client_timeout.write,
        pool=client_timeout.pool,
    )


def _is_client_default(value: Any) -> bool:
    from ._client import USE_CLIENT_DEFAULT

    return value is USE_CLIENT_DEFAULT


class EventSource:
    """A stream of server-sent events, reconnected as the HTML standard
    says; made by :meth:`AsyncClient.sse`.

    Use it as ``async with client.sse(url) as source: async for event in
    source`` (the first connection is made, and checked, when the block is
    entered, and released when it exits, also after a ``break``), or as
    ``async for event in client.sse(url)``: then the connection is released
    when the stream ends or fails, or by :meth:`aclose` (leaving such a loop
    with ``break`` keeps it open until then). Each item is a
    :class:`ServerSentEvent`.

    Reconnection: when the stream ends or drops (a network error, a read
    timeout), the request is sent again with ``Last-Event-ID`` (the last
    event ID, when not empty), after the server's ``retry`` time (3 s
    when it gave none) or the policy's backoff, whichever is longer. The
    ``retry`` policy counts consecutive failed attempts: a connection that
    delivers an event starts the count afresh. When the policy is exhausted
    the iteration ends (the stream had ended) or the last network error is
    raised (it had failed). ``retry=None`` never reconnects. A ``204``
    response ends the iteration without reconnecting.

    Attributes:
        last_event_id: The last event ID (sent as ``Last-Event-ID``).
        response: The response of the current connection, or ``None``.

    Raises (when entered or iterated):
        SSEError: A response is not ``200`` with ``Content-Type:
            text/event-stream`` (other than ``204``).
        TransportError: A network error when no reconnection is left.
        RemoteProtocolError: An event is over ``max_event_size``.
    """

    def __init__(
        self,
        client: AsyncClient,
        method: str,
        url: str | URL,
        *,
        request_kwargs: dict[str, Any],
        send_kwargs: dict[str, Any],
        retry: Retry | int | None,
        last_event_id: str | None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._request_kwargs = request_kwargs
        self._send_kwargs = send_kwargs
        if isinstance(retry, int) and not isinstance(retry, bool):
            retry = Retry.from_int(retry)
        elif retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry must be a Retry, an int or None, not {retry!r}")
        self._initial_retry: Retry | None = retry
        self._retry: Retry | None = retry
        self._parser = SSEParser(last_event_id=last_event_id or "", max_event_size=max_event_size)
        self._pending: deque[ServerSentEvent] = deque()
        self.response: Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._reconnecting = False
        self._done = False
        self._entered = False

    @property
    def last_event_id(self) -> str:
        """The last event ID string (``""`` when none)."""
        return self._parser.last_event_id

    # -- connection ---------------------------------------------------------

    async def _open(self) -> None:
        """Send the request; set up the response, or mark the end (204)."""
        client = self._client
        kwargs = dict(self._request_kwargs)
        fields: CIMultiDict[str] = CIMultiDict(
            [("Accept", _MEDIA_TYPE), ("Cache-Control", "no-store")]
        )
        user_headers = kwargs.pop("headers", None)
        if user_headers is not None:
            fields.update(validate_headers(user_headers))
        if self._parser.last_event_id:
            # The field carries the ID as UTF-8 (header text here is latin-1).
            fields["Last-Event-ID"] = self._parser.last_event_id.encode().decode("latin-1")
        request = client.build_request(self._method, self._url, headers=fields, **kwargs)
        response = await client.send(request, stream=True, **self._send_kwargs)
        if response.status_code == 204:
            await response._aclose()
            self._done = True
            return
        media_type = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if response.status_code != 200 or media_type != _MEDIA_TYPE:
            try:
                # Keep a short body (an error message) on the response.
                await response._adrain(_ERROR_BODY_LIMIT)
            except TransportError:
                pass
            finally:
                await response._aclose()
            raise SSEError(
                f"expected a 200 response with Content-Type: {_MEDIA_TYPE}, got "
                f"{response.status_code} with {response.headers.get('Content-Type')!r}",
                request=request,
                response=response,
            )
        self._parser.reset()
        self.response = response
        self._chunks = response._iterator("bytes", check=_no_check)

    async def _drop(self) -> None:
        response, self.response, self._chunks = self.response, None, None
        if response is not None:
            await response._aclose()

    def _failed(self, error: TransportError | None) -> None:
        """The connection ended (``error`` None) or failed: plan the next
        attempt, or end."""
        retry = self._retry
        if retry is None:
            self._done = True
            if error is not None:
                raise error
            return
        retry = retry.increment(error=error)
        if retry.is_exhausted():
            self._done = True
            if error is not None:
                raise error
            return
        self._retry = retry
        self._reconnecting = True

    async def _wait(self) -> None:
        server = self._parser.retry
        delay = DEFAULT_RECONNECTION_TIME if server is None else server / 1000.0
        if self._retry is not None:
            delay = max(delay, self._retry.get_backoff_time())
        backend = self._client._backend or self._client._init_backend()
        await backend.sleep(delay)

    async def _connected(self) -> bool:
        """Open (or reopen) the connection when needed; ``False`` at the end."""
        while self.response is None:
            if self._done:
                return False
            if self._reconnecting:
                self._reconnecting = False
                await self._wait()
            try:
                await self._open()
            except TransportError as exc:
                self._failed(exc)
        return True

    async def _next(self) -> ServerSentEvent | None:
        """The next event, or ``None`` at the end of the stream."""
        pending = self._pending
        while not pending:
            if not await self._connected():
                return None
            assert self._chunks is not None
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                await self._drop()
                self._failed(None)
                continue
            except TransportError as exc:
                await self._drop()
                self._failed(exc)
                continue
            except BaseException:
                await self._drop()
                raise
            self._parser.receive_data(chunk)
            events = self._parser.events()
            if events:
                pending.extend(events)
                self._retry = self._initial_retry
        return pending.popleft()

    async def aclose(self) -> None:
        """Close the current connection and end the stream. Idempotent."""
        self._done = True
        self._pending.clear()
        await self._drop()

    # -- async API ------------------------------------------------------------

    async def __aenter__(self) -> EventSource:
        self._entered = True
        try:
            await self._connected()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()

    def __aiter__(self) -> EventSource:
        return self

    async def __anext__(self) -> ServerSentEvent:
        try:
            event = await self._next()
        except BaseException:
            await self.aclose()
            raise
        if event is None:
            await self.aclose()
            raise StopAsyncIteration
        return event


class SyncEventSource:
    """The blocking face of :class:`EventSource`, made by
    :meth:`Client.sse`: ``for event in client.sse(url)`` or ``with
    client.sse(url) as source: for event in source``. Same behaviour,
    attributes and errors; ``break`` out of a bare ``for`` loop releases the
    connection too (the loop's generator is closed)."""

    def __init__(self, source: EventSource) -> None:
        self._source = source

    @property
    def last_event_id(self) -> str:
        """The last event ID string (``""`` when none)."""
        return self._source.last_event_id

    @property
    def response(self) -> Response | None:
        """The response of the current connection, or ``None``."""
        return self._source.response

    def close(self) -> None:
        """Close the current connection and end the stream. Idempotent."""
        run_sync(self._source.aclose())

    def __enter__(self) -> SyncEventSource:
        run_sync(self._source.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ServerSentEvent]:
        source = self._source
        try:
            while True:
                event = run_sync(source._next())
                if event is None:
                    return
                yield event
        finally:
            if not source._entered:
                self.close()
