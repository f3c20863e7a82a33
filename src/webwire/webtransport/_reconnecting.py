"""A client that keeps one session to a URL open
(:class:`ReconnectingClient`)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from webwire._backends import Backend, Event, TaskGroup, init_lock
from webwire._exceptions import ClientError, WebwireError

from ._client import WebTransportClient, _close_quietly
from ._config import ClientConfig
from ._stats import ClientStats
from ._utils import parse_webtransport_url

if TYPE_CHECKING:
    from ._types import Session, SessionOpener

__all__ = ["ReconnectingClient"]


class ReconnectingClient:
    """Keeps a session with ``url`` established: a background task
    connects, waits for the session to close, and connects again. Failed
    attempts are retried after ``config.retry_delay`` seconds, multiplied
    by ``config.retry_backoff`` after each further failure up to
    ``config.max_retry_delay``; after ``config.max_retries`` failures in a
    row it gives up (:attr:`last_error` tells why). After a session ends
    the client connects again at once, unless sessions keep ending within
    ``config.retry_delay`` seconds of being established (a server that
    accepts and closes at once): from the second such session in a row,
    the next attempt waits as after failures (never giving up, since the
    server accepts). Use it as ``async with``.

    Args:
        url: ``https://...`` WebTransport URL.
        config: The settings (the defaults when ``None``).

    Raises:
        InvalidURL: ``url`` is not a WebTransport URL.
    """

    def __init__(
        self,
        url: str,
        config: ClientConfig | None = None,
        *,
        _opener: SessionOpener | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        parse_webtransport_url(url)
        self._url = url
        self._client = WebTransportClient(config, _opener=_opener, _backend=_backend)
        self._lock = init_lock()
        self._session: Session | None = None
        self._changed: Event | None = None
        self._group: TaskGroup | None = None
        self._closed = False
        self._gave_up = False
        self._last_error: WebwireError | None = None
        self._attempts = 0

    @property
    def url(self) -> str:
        """The URL sessions are established with."""
        return self._url

    @property
    def client(self) -> WebTransportClient:
        """The client that establishes the sessions (its :attr:`stats`)."""
        return self._client

    @property
    def stats(self) -> ClientStats:
        """The statistics of the client that establishes the sessions."""
        return self._client.stats

    @property
    def is_connected(self) -> bool:
        """Whether a session is established and ready now."""
        session = self._session
        return session is not None and session.is_ready and not session.is_closed

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def last_error(self) -> WebwireError | None:
        """The error of the last failed attempt, or ``None``."""
        return self._last_error

    @property
    def attempts(self) -> int:
        """Connection attempts made so far."""
        return self._attempts

    async def __aenter__(self) -> ReconnectingClient:
        """Start the background task that connects.

        Raises:
            ClientError: The client is closed.
        """
        if self._closed:
            raise ClientError("the reconnecting client is closed")
        if self._group is not None:
            return self
        backend = self._client._get_backend()
        self._changed = backend.create_event()
        group = backend.create_detached_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._run, backend)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reconnecting and close the current session and the client.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            group, self._group = self._group, None
        if group is not None:
            group.cancel()
            await group.__aexit__(None, None, None)
        if self._changed is not None:
            self._changed.set()
        session, self._session = self._session, None
        if session is not None:
            await _close_quietly(session)
        await self._client.close()

    async def get_session(self, wait_timeout: float = 5.0) -> Session | None:
        """The current session, waiting up to ``wait_timeout`` seconds for
        one to be established.

        Returns:
            The session, or ``None`` when none was established in time, the
            client gave up (see :attr:`last_error`) or is closed.

        Raises:
            ClientError: The client was never started (``async with``).
        """
        if self._changed is None:
            raise ClientError("use the reconnecting client with 'async with' before get_session()")
        backend = self._client._get_backend()
        deadline = backend.monotonic() + wait_timeout
        while True:
            # Read the event first: it is swapped only after a new session
            # is in place, so a session checked after it is never older.
            event = self._changed
            session = self._session
            if session is not None and session.is_ready and not session.is_closed:
                return session
            remaining = deadline - backend.monotonic()
            if self._closed or self._gave_up or remaining <= 0:
                return None
            await event.wait(remaining)

    async def _run(self, backend: Backend) -> None:
        """Connect, wait for the session's end, repeat; back off after
        failures."""
        config = self._client.config
        failures = 0
        short_lived = 0
        while not self._closed:
            self._attempts += 1
            try:
                session = await self._client.connect(self._url)
            except WebwireError as exc:
                self._last_error = exc
                failures += 1
                if failures > config.max_retries:
                    self._gave_up = True
                    self._announce(backend)
                    return
                delay = config.retry_delay * config.retry_backoff ** (failures - 1)
                await backend.sleep(min(delay, config.max_retry_delay))
                continue
            failures = 0
            self._session = session
            self._announce(backend)
            established = backend.monotonic()
            try:
                await session.wait_closed()
            except WebwireError:
                pass
            if self._session is session:
                self._session = None
            # Ended by the server or the network: release its connection.
            await _close_quietly(session)
            if backend.monotonic() - established >= config.retry_delay:
                short_lived = 0
                continue
            short_lived += 1
            if short_lived >= 2:
                delay = config.retry_delay * config.retry_backoff ** (short_lived - 2)
                await backend.sleep(min(delay, config.max_retry_delay))

    def _announce(self, backend: Backend) -> None:
        """Wake the callers of :meth:`get_session`; later callers wait for
        the next change on a new event."""
        event = self._changed
        self._changed = backend.create_event()
        if event is not None:
            event.set()
