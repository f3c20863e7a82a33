"""Sessions with a navigation history (:class:`WebTransportBrowser`)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from webwire._backends import Backend, Lock, init_lock
from webwire._exceptions import ClientError

from ._client import WebTransportClient, _close_quietly
from ._config import ClientConfig
from ._stats import ClientStats
from ._utils import parse_webtransport_url

if TYPE_CHECKING:
    from ._types import Session, SessionOpener

__all__ = ["WebTransportBrowser"]


class WebTransportBrowser:
    """One current session and a history of URLs, as a web browser keeps
    for its pages: :meth:`navigate` establishes a session with a URL and
    then closes the previous one (a failed navigation keeps the current
    page and history), :meth:`back` and :meth:`forward` move in the
    history, :meth:`refresh` re-establishes the current URL. Calls are
    serialized. Use it as ``async with``.

    Args:
        config: The settings (the defaults when ``None``).
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        _opener: SessionOpener | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        self._client = WebTransportClient(config, _opener=_opener, _backend=_backend)
        self._init = init_lock()
        self._lock: Lock | None = None
        self._history: list[str] = []
        self._index = -1
        self._session: Session | None = None
        self._closed = False

    @property
    def current_session(self) -> Session | None:
        """The session of the current page, or ``None``."""
        return self._session

    @property
    def client(self) -> WebTransportClient:
        """The client that establishes the sessions."""
        return self._client

    @property
    def stats(self) -> ClientStats:
        """The statistics of the client that establishes the sessions."""
        return self._client.stats

    def _get_lock(self) -> Lock:
        lock = self._lock
        if lock is None:
            backend = self._client._get_backend()
            with self._init:
                if self._lock is None:
                    self._lock = backend.create_lock()
                lock = self._lock
        return lock

    async def __aenter__(self) -> WebTransportBrowser:
        if self._closed:
            raise ClientError("the browser is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def navigate(self, url: str) -> Session:
        """Establish a session with ``url`` and make it the current page;
        the forward history is dropped. Navigating to the current URL
        returns the current session while it is open.

        Raises:
            ClientError: The browser is closed.
            InvalidURL, ConnectTimeout, ConnectError, TransportError: As
                :meth:`WebTransportClient.connect`.
        """
        parse_webtransport_url(url)
        async with self._get_lock():
            self._check_open()
            current = self._session
            if current is not None and not current.is_closed and self._current_url() == url:
                return current
            session = await self._switch(url)
            del self._history[self._index + 1 :]
            self._history.append(url)
            self._index = len(self._history) - 1
            return session

    async def back(self) -> Session | None:
        """Go to the previous URL of the history (a new session).

        Returns:
            The new session, or ``None`` at the start of the history.

        Raises:
            ClientError: The browser is closed.
            ConnectError, TransportError: As :meth:`navigate` (the position
                in the history does not change).
        """
        return await self._go(-1)

    async def forward(self) -> Session | None:
        """Go to the next URL of the history (a new session).

        Returns:
            The new session, or ``None`` at the end of the history.

        Raises:
            ClientError: The browser is closed.
            ConnectError, TransportError: As :meth:`navigate`.
        """
        return await self._go(1)

    async def refresh(self) -> Session | None:
        """Re-establish the session with the current URL.

        Returns:
            The new session, or ``None`` when nothing was visited.

        Raises:
            ClientError: The browser is closed.
            ConnectError, TransportError: As :meth:`navigate`.
        """
        return await self._go(0)

    async def get_history(self) -> list[str]:
        """A copy of the URLs visited, oldest first."""
        async with self._get_lock():
            return list(self._history)

    @property
    def history_index(self) -> int:
        """Position of the current page in the history (-1 when empty)."""
        return self._index

    async def close(self) -> None:
        """Close the current session and the client; the history is
        cleared. Idempotent."""
        async with self._get_lock():
            self._closed = True
            session, self._session = self._session, None
            self._history.clear()
            self._index = -1
        if session is not None:
            await _close_quietly(session)
        await self._client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientError("the browser is closed")

    def _current_url(self) -> str | None:
        return self._history[self._index] if self._index >= 0 else None

    async def _go(self, step: int) -> Session | None:
        async with self._get_lock():
            self._check_open()
            index = self._index + step
            if not self._history or not 0 <= index < len(self._history):
                return None
            session = await self._switch(self._history[index])
            self._index = index
            return session

    async def _switch(self, url: str) -> Session:
        """Establish a session with ``url``, then close the current one."""
        session = await self._client.connect(url)
        old, self._session = self._session, session
        if old is not None:
            await _close_quietly(old)
        return session
