"""Several clients (:class:`ClientPool`) and reused sessions
(:class:`PooledClient`)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from webwire._backends import Backend, TaskGroup, init_lock
from webwire._exceptions import ClientError, ConfigurationError, WebwireError

from ._client import WebTransportClient, _close_quietly
from ._config import ClientConfig
from ._stats import ClientStats
from ._utils import parse_webtransport_url

if TYPE_CHECKING:
    from ._types import Session, SessionOpener

__all__ = ["ClientPool", "PooledClient"]


class ClientPool:
    """One :class:`WebTransportClient` per config, handed out in turn
    (round robin) to spread sessions over them. Use it as ``async with``.

    Args:
        configs: One config per client (``None`` entries take the
            defaults); ``None`` makes one default client.

    Raises:
        ConfigurationError: ``configs`` is empty.
    """

    def __init__(
        self,
        configs: Sequence[ClientConfig | None] | None = None,
        *,
        _opener: SessionOpener | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        configs = [None] if configs is None else list(configs)
        if not configs:
            raise ConfigurationError("configs", configs, "a client pool needs at least one config")
        self._backend_spec = _backend
        self._clients = [
            WebTransportClient(config, _opener=_opener, _backend=_backend) for config in configs
        ]
        self._lock = init_lock()
        self._next = 0
        self._closed = False

    async def __aenter__(self) -> ClientPool:
        if self._closed:
            raise ClientError("the client pool is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close_all()

    async def get_client(self) -> WebTransportClient:
        """The next client, in turn.

        Raises:
            ClientError: The pool is closed.
        """
        with self._lock:
            if self._closed or not self._clients:
                raise ClientError("the client pool is closed")
            client = self._clients[self._next % len(self._clients)]
            self._next = (self._next + 1) % len(self._clients)
        return client

    def get_client_count(self) -> int:
        """How many clients the pool has (0 once closed)."""
        return len(self._clients)

    async def connect_all(self, url: str) -> list[Session]:
        """Establish a session with ``url`` from every client at once.

        Returns:
            The sessions established, in client order (clients that failed
            are left out).

        Raises:
            ClientError: The pool is closed.
            InvalidURL: ``url`` is not a WebTransport URL.
        """
        parse_webtransport_url(url)
        with self._lock:
            if self._closed:
                raise ClientError("the client pool is closed")
            clients = list(self._clients)
        results: list[Session | None] = [None] * len(clients)
        backend = clients[0]._get_backend()

        async def connect(index: int) -> None:
            try:
                results[index] = await clients[index].connect(url)
            except WebwireError:
                pass

        async with backend.create_task_group() as group:
            for index in range(len(clients)):
                group.start_soon(connect, index)
        return [session for session in results if session is not None]

    async def close_all(self) -> None:
        """Close every client (and their sessions). Idempotent."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        for client in clients:
            await client.close()


class PooledClient:
    """Reuses established sessions: :meth:`get_session` hands out an idle
    healthy session with the same URL when there is one, else establishes
    one; :meth:`return_session` keeps it for the next caller (at most
    ``pool_size`` idle per URL; more are closed). Every
    ``cleanup_interval`` seconds a background task drops closed sessions
    and closes those idle for ``cleanup_interval`` seconds or more. Use it
    as ``async with``.

    Args:
        config: The settings (the defaults when ``None``).
        pool_size: Idle sessions kept per URL (>= 1).
        cleanup_interval: Seconds between sweeps, and the idle time after
            which a session is closed (> 0).

    Raises:
        ConfigurationError: ``pool_size`` or ``cleanup_interval`` is out of
            range.
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        pool_size: int = 10,
        cleanup_interval: float = 60.0,
        *,
        _opener: SessionOpener | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
            raise ConfigurationError("pool_size", pool_size, "must be an integer >= 1")
        if not isinstance(cleanup_interval, (int, float)) or not cleanup_interval > 0:
            raise ConfigurationError("cleanup_interval", cleanup_interval, "must be > 0 seconds")
        self._client = WebTransportClient(config, _opener=_opener, _backend=_backend)
        self._pool_size = pool_size
        self._interval = float(cleanup_interval)
        self._lock = init_lock()
        self._idle: dict[str, list[tuple[Session, float]]] = {}
        self._lent: dict[int, tuple[Session, str]] = {}
        self._group: TaskGroup | None = None
        self._closed = False

    @property
    def client(self) -> WebTransportClient:
        """The client that establishes the sessions."""
        return self._client

    @property
    def stats(self) -> ClientStats:
        """The statistics of the client that establishes the sessions."""
        return self._client.stats

    def idle_count(self, url: str | None = None) -> int:
        """Idle sessions kept (for ``url``, or in all)."""
        with self._lock:
            if url is not None:
                return len(self._idle.get(url, ()))
            return sum(len(entries) for entries in self._idle.values())

    async def __aenter__(self) -> PooledClient:
        """Start the cleanup task.

        Raises:
            ClientError: The pooled client is closed.
        """
        if self._closed:
            raise ClientError("the pooled client is closed")
        if self._group is None:
            backend = self._client._get_backend()
            group = backend.create_detached_task_group()
            await group.__aenter__()
            self._group = group
            group.start_soon(self._cleanup_loop, backend)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def get_session(self, url: str) -> Session:
        """An idle healthy session with ``url``, or a new one.

        Raises:
            ClientError: The pooled client is closed.
            InvalidURL, ConnectTimeout, ConnectError, TransportError: As
                :meth:`WebTransportClient.connect`.
        """
        parse_webtransport_url(url)
        stale: list[Session] = []
        found: Session | None = None
        with self._lock:
            if self._closed:
                raise ClientError("the pooled client is closed")
            entries = self._idle.get(url, [])
            while entries:
                session, _ = entries.pop()
                if session.is_ready and not session.is_closed:
                    found = session
                    break
                stale.append(session)
            if found is not None:
                self._lent[id(found)] = (found, url)
        for session in stale:
            await _close_quietly(session)
        if found is not None:
            return found
        session = await self._client.connect(url)
        with self._lock:
            self._lent[id(session)] = (session, url)
        return session

    async def return_session(self, session: Session) -> None:
        """Give back a session from :meth:`get_session`: kept for reuse when
        it is healthy and its URL has fewer than ``pool_size`` idle
        sessions, else closed. Once the pooled client is closed, every
        session given back is closed.

        Raises:
            ClientError: The session was not handed out by this pooled
                client (or was already returned).
        """
        backend = self._client._get_backend()
        keep = False
        with self._lock:
            entry = self._lent.pop(id(session), None)
            if entry is None or entry[0] is not session:
                raise ClientError("this session was not handed out by this pooled client")
            url = entry[1]
            healthy = session.is_ready and not session.is_closed
            if not self._closed and healthy:
                entries = self._idle.setdefault(url, [])
                if len(entries) < self._pool_size:
                    entries.append((session, backend.monotonic()))
                    keep = True
        if not keep:
            await _close_quietly(session)

    async def cleanup(self) -> int:
        """Sweep once: drop closed sessions and close those idle for
        ``cleanup_interval`` seconds or more.

        Returns:
            How many idle sessions were removed.
        """
        now = self._client._get_backend().monotonic()
        removed: list[Session] = []
        with self._lock:
            for url in list(self._idle):
                kept = []
                for session, since in self._idle[url]:
                    if session.is_closed or not session.is_ready or now - since >= self._interval:
                        removed.append(session)
                    else:
                        kept.append((session, since))
                if kept:
                    self._idle[url] = kept
                else:
                    del self._idle[url]
        for session in removed:
            await _close_quietly(session)
        return len(removed)

    async def _cleanup_loop(self, backend: Backend) -> None:
        while True:
            await backend.sleep(self._interval)
            await self.cleanup()

    async def close(self) -> None:
        """Stop the cleanup task and close every session and the client.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            group, self._group = self._group, None
            idle = [session for entries in self._idle.values() for session, _ in entries]
            self._idle.clear()
            # Sessions lent out are closed with the client; they may still be
            # given back (and are kept in _lent for that).
        if group is not None:
            group.cancel()
            await group.__aexit__(None, None, None)
        for session in idle:
            await _close_quietly(session)
        await self._client.close()
