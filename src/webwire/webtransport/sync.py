"""The blocking WebTransport client package: the names of
:mod:`webwire.webtransport`, with blocking methods.

Every method runs the very coroutine of the async class on the blocking
backend, driven by :func:`webwire._sync.run_sync` (no event loop);
background work (reconnecting, pool cleanup, monitoring) runs on the
backend's task-group threads. Sessions and their streams and datagrams
are handed out wrapped in :class:`Blocking`: their coroutine methods
block and return the result, their async iterators become iterators.
Objects here may be shared by threads.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from webwire._exceptions import ClientError, ConfigurationError
from webwire._sync import run_sync

from . import _browser, _client, _monitor, _pool, _proxy, _reconnecting, _utils
from ._config import ClientConfig
from ._stats import ClientStats
from ._types import SessionOpener
from ._utils import parse_webtransport_url, validate_url

__all__ = [
    "Blocking",
    "ClientConfig",
    "ClientError",
    "ClientMonitor",
    "ClientPool",
    "ClientStats",
    "ConfigurationError",
    "PooledClient",
    "ReconnectingClient",
    "WebTransportBrowser",
    "WebTransportClient",
    "WebTransportProxy",
    "benchmark_client_performance",
    "parse_webtransport_url",
    "test_client_connectivity",
    "validate_url",
]

_PLAIN = (bytes, bytearray, memoryview, str, int, float, bool, type(None), dict, list, tuple)
_ASYNC_TYPES: dict[type, bool] = {}


def _has_async_api(cls: type) -> bool:
    """Whether instances of ``cls`` have coroutine methods or are async
    iterables (and so are wrapped in :class:`Blocking`)."""
    known = _ASYNC_TYPES.get(cls)
    if known is None:
        known = hasattr(cls, "__aiter__") or any(
            inspect.iscoroutinefunction(getattr(cls, name, None))
            or inspect.isasyncgenfunction(getattr(cls, name, None))
            for name in dir(cls)
            if not name.startswith("__")
        )
        _ASYNC_TYPES[cls] = known
    return known


def _wrap(value: Any) -> Any:
    if isinstance(value, (*_PLAIN, Blocking)):
        return value
    if inspect.isawaitable(value):
        return _wrap(run_sync(_await(value)))
    if hasattr(value, "__anext__"):
        return _iterate(value)
    if _has_async_api(type(value)):
        return Blocking(value)
    return value


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _anext(iterator: Any) -> Any:
    return await iterator.__anext__()


def _iterate(iterator: Any) -> Iterator[Any]:
    try:
        while True:
            try:
                item = run_sync(_anext(iterator))
            except StopAsyncIteration:
                return
            yield _wrap(item)
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            run_sync(close())


class Blocking:
    """A blocking view of an object made on the blocking backend (a
    session, a stream, a session's datagrams): calling a coroutine method
    blocks and returns its result, an async iterator becomes an iterator,
    ``with`` stands for ``async with``, iterating stands for ``async
    for``, and attributes are read through. Results that have async
    methods are wrapped too. The wrapped object is :attr:`wrapped`.
    """

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: Any) -> None:
        object.__setattr__(self, "wrapped", wrapped)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if callable(value):

            def call(*args: Any, **kwargs: Any) -> Any:
                return _wrap(value(*args, **kwargs))

            call.__name__ = name
            call.__doc__ = getattr(value, "__doc__", None)
            return call
        return _wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.wrapped, name, value)

    def __enter__(self) -> Blocking:
        enter = getattr(self.wrapped, "__aenter__", None)
        if enter is not None:
            run_sync(enter())
        return self

    def __exit__(self, *args: Any) -> None:
        leave = getattr(self.wrapped, "__aexit__", None)
        if leave is not None:
            run_sync(leave(*args))

    def __iter__(self) -> Iterator[Any]:
        return _iterate(self.wrapped.__aiter__())

    def __repr__(self) -> str:
        return f"Blocking({self.wrapped!r})"


def _session(session: Any) -> Any:
    return None if session is None else _wrap(session)


def _unwrap(session: Any) -> Any:
    return session.wrapped if isinstance(session, Blocking) else session


class WebTransportClient:
    """The blocking :class:`webwire.webtransport.WebTransportClient`:
    establishes sessions (wrapped in :class:`Blocking`) and keeps
    :class:`ClientStats`; ``with`` closes it. Safe to share between
    threads.

    Args:
        config: The settings (the defaults when ``None``).
    """

    def __init__(
        self, config: ClientConfig | None = None, *, _opener: SessionOpener | None = None
    ) -> None:
        self._async = _client.WebTransportClient(config, _opener=_opener, _backend="sync")

    @classmethod
    def create(
        cls, *, url: str, config: ClientConfig | None = None
    ) -> WebTransportClient | ReconnectingClient:
        """A :class:`ReconnectingClient` for ``url`` when
        ``config.auto_reconnect`` is set, else a :class:`WebTransportClient`.

        Raises:
            InvalidURL: ``url`` is not a WebTransport URL.
        """
        parse_webtransport_url(url)
        if config is not None and config.auto_reconnect:
            return ReconnectingClient(url, config)
        return cls(config)

    @property
    def config(self) -> ClientConfig:
        """The client's settings."""
        return self._async.config

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._async.is_closed

    @property
    def stats(self) -> ClientStats:
        """Counters of the sessions asked for, established and failed."""
        return self._async.stats

    def connect(
        self, url: str, timeout: float | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Establish a session with ``url``, blocking; see
        :meth:`webwire.webtransport.WebTransportClient.connect` (same
        arguments, units and errors).

        Returns:
            The session, wrapped in :class:`Blocking`.
        """
        return _wrap(run_sync(self._async.connect(url, timeout, headers)))

    def close(self) -> None:
        """Close the client's open sessions and connections. Idempotent."""
        run_sync(self._async.close())

    def set_default_headers(self, headers: Mapping[str, str]) -> None:
        """Header fields added to every later CONNECT request.

        Raises:
            LocalProtocolError: A field is invalid.
        """
        self._async.set_default_headers(headers)

    def debug_state(self) -> dict[str, Any]:
        """A snapshot for debugging (see the async client's)."""
        return self._async.debug_state()

    def diagnose_issues(self) -> list[str]:
        """Problems the statistics show, as sentences."""
        return self._async.diagnose_issues()

    def __enter__(self) -> WebTransportClient:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class ReconnectingClient:
    """The blocking :class:`webwire.webtransport.ReconnectingClient`: a
    background thread keeps a session with ``url`` established, with the
    config's retry backoff. ``with`` starts and stops it.

    Raises:
        InvalidURL: ``url`` is not a WebTransport URL.
    """

    def __init__(
        self, url: str, config: ClientConfig | None = None, *,
        _opener: SessionOpener | None = None,
    ) -> None:
        self._async = _reconnecting.ReconnectingClient(
            url, config, _opener=_opener, _backend="sync"
        )
        self._client = WebTransportClient.__new__(WebTransportClient)
        self._client._async = self._async.client

    @property
    def client(self) -> WebTransportClient:
        """The blocking client that establishes the sessions: its
        :attr:`~WebTransportClient.stats`, or a :class:`ClientMonitor` to
        watch it."""
        return self._client

    @property
    def url(self) -> str:
        """The URL sessions are established with."""
        return self._async.url

    @property
    def is_connected(self) -> bool:
        """Whether a session is established and ready now."""
        return self._async.is_connected

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._async.is_closed

    @property
    def last_error(self) -> Any:
        """The error of the last failed attempt, or ``None``."""
        return self._async.last_error

    @property
    def attempts(self) -> int:
        """Connection attempts made so far."""
        return self._async.attempts

    @property
    def stats(self) -> ClientStats:
        """The statistics of the underlying client."""
        return self._async.client.stats

    def get_session(self, wait_timeout: float = 5.0) -> Any:
        """The current session (:class:`Blocking`), waiting up to
        ``wait_timeout`` seconds; ``None`` when none in time, given up or
        closed.

        Raises:
            ClientError: Not started with ``with``.
        """
        return _session(run_sync(self._async.get_session(wait_timeout)))

    def close(self) -> None:
        """Stop reconnecting; close the session and the client."""
        run_sync(self._async.close())

    def __enter__(self) -> ReconnectingClient:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class ClientPool:
    """The blocking :class:`webwire.webtransport.ClientPool`: one client
    per config, handed out round robin (thread-safe).

    Raises:
        ConfigurationError: ``configs`` is empty.
    """

    def __init__(
        self, configs: Sequence[ClientConfig | None] | None = None, *,
        _opener: SessionOpener | None = None,
    ) -> None:
        self._async = _pool.ClientPool(configs, _opener=_opener, _backend="sync")
        self._clients: dict[int, WebTransportClient] = {}
        for client in self._async._clients:
            wrapper = WebTransportClient.__new__(WebTransportClient)
            wrapper._async = client
            self._clients[id(client)] = wrapper

    def get_client(self) -> WebTransportClient:
        """The next client, in turn.

        Raises:
            ClientError: The pool is closed.
        """
        client = run_sync(self._async.get_client())
        return self._clients[id(client)]

    def get_client_count(self) -> int:
        """How many clients the pool has (0 once closed)."""
        return self._async.get_client_count()

    def connect_all(self, url: str) -> list[Any]:
        """A session with ``url`` from every client at once (threads);
        the failed ones are left out.

        Returns:
            The sessions, wrapped in :class:`Blocking`.
        """
        return [_wrap(s) for s in run_sync(self._async.connect_all(url))]

    def close_all(self) -> None:
        """Close every client and its sessions."""
        run_sync(self._async.close_all())

    def __enter__(self) -> ClientPool:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close_all()


class PooledClient:
    """The blocking :class:`webwire.webtransport.PooledClient`: reuses
    idle healthy sessions per URL; a background thread sweeps idle ones
    every ``cleanup_interval`` seconds. Thread-safe; ``with`` starts and
    stops it.

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
    ) -> None:
        self._async = _pool.PooledClient(
            config, pool_size, cleanup_interval, _opener=_opener, _backend="sync"
        )

    @property
    def stats(self) -> ClientStats:
        """The statistics of the underlying client."""
        return self._async.client.stats

    def idle_count(self, url: str | None = None) -> int:
        """Idle sessions kept (for ``url``, or in all)."""
        return self._async.idle_count(url)

    def get_session(self, url: str) -> Any:
        """An idle healthy session with ``url`` or a new one
        (:class:`Blocking`); errors as
        :meth:`WebTransportClient.connect`."""
        return _wrap(run_sync(self._async.get_session(url)))

    def return_session(self, session: Any) -> None:
        """Give back a session from :meth:`get_session`.

        Raises:
            ClientError: It was not handed out by this pooled client.
        """
        run_sync(self._async.return_session(_unwrap(session)))

    def cleanup(self) -> int:
        """Sweep once; returns how many idle sessions were removed."""
        return run_sync(self._async.cleanup())

    def close(self) -> None:
        """Stop the sweeping and close every session and the client."""
        run_sync(self._async.close())

    def __enter__(self) -> PooledClient:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class WebTransportProxy:
    """The blocking :class:`webwire.webtransport.WebTransportProxy`:
    tunnels through a WebTransport proxy.

    Raises:
        InvalidURL: ``proxy_url`` is not a WebTransport URL.
    """

    def __init__(
        self, proxy_url: str, config: ClientConfig | None = None, *,
        _opener: SessionOpener | None = None,
    ) -> None:
        self._async = _proxy.WebTransportProxy(
            proxy_url, config, _opener=_opener, _backend="sync"
        )

    @property
    def stats(self) -> ClientStats:
        """The statistics of the underlying client."""
        return self._async.stats

    def connect_through_proxy(
        self,
        target_url: str,
        proxy_headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """A tunnel to ``target_url``'s host and port: the stream
        (:class:`Blocking`); errors as the async method's
        (``ProxyError`` for a refusal, a timeout after ``timeout``
        seconds)."""
        return _wrap(
            run_sync(self._async.connect_through_proxy(target_url, proxy_headers, timeout))
        )

    def close(self) -> None:
        """Close the session with the proxy and the client."""
        run_sync(self._async.close())

    def __enter__(self) -> WebTransportProxy:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class WebTransportBrowser:
    """The blocking :class:`webwire.webtransport.WebTransportBrowser`: a
    current session and a navigation history (calls serialized between
    threads)."""

    def __init__(
        self, config: ClientConfig | None = None, *, _opener: SessionOpener | None = None
    ) -> None:
        self._async = _browser.WebTransportBrowser(config, _opener=_opener, _backend="sync")

    @property
    def stats(self) -> ClientStats:
        """The statistics of the underlying client."""
        return self._async.stats

    @property
    def current_session(self) -> Any:
        """The current session (:class:`Blocking`) or ``None``."""
        return _session(self._async.current_session)

    def navigate(self, url: str) -> Any:
        """Establish a session with ``url`` and make it current (see the
        async method)."""
        return _wrap(run_sync(self._async.navigate(url)))

    def back(self) -> Any:
        """The previous URL's new session, or ``None`` at the start."""
        return _session(run_sync(self._async.back()))

    def forward(self) -> Any:
        """The next URL's new session, or ``None`` at the end."""
        return _session(run_sync(self._async.forward()))

    def refresh(self) -> Any:
        """A new session with the current URL, or ``None`` when empty."""
        return _session(run_sync(self._async.refresh()))

    def get_history(self) -> list[str]:
        """A copy of the URLs visited, oldest first."""
        return run_sync(self._async.get_history())

    def close(self) -> None:
        """Close the current session and the client; clear the history."""
        run_sync(self._async.close())

    def __enter__(self) -> WebTransportBrowser:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class ClientMonitor:
    """The blocking :class:`webwire.webtransport.ClientMonitor`: a
    background thread takes a snapshot of ``client``'s statistics every
    ``monitoring_interval`` seconds inside ``with``.

    Raises:
        TypeError: ``client`` is not a blocking :class:`WebTransportClient`.
        ConfigurationError: An interval or threshold is out of range.
    """

    def __init__(
        self, client: WebTransportClient, monitoring_interval: float = 30.0, **thresholds: Any
    ) -> None:
        if not isinstance(client, WebTransportClient):
            raise TypeError(f"ClientMonitor watches a WebTransportClient, not {type(client)!r}")
        self._async = _monitor.ClientMonitor(client._async, monitoring_interval, **thresholds)

    @property
    def is_monitoring(self) -> bool:
        """Whether the periodic thread runs."""
        return self._async.is_monitoring

    def collect(self) -> dict[str, Any]:
        """Take and check a snapshot now; returns it."""
        return self._async.collect()

    def get_metrics_summary(self) -> dict[str, Any]:
        """What was collected (see the async method)."""
        return self._async.get_metrics_summary()

    def stop(self) -> None:
        """Stop the periodic thread."""
        run_sync(self._async.stop())

    def __enter__(self) -> ClientMonitor:
        run_sync(self._async.__aenter__())
        return self

    def __exit__(self, *args: object) -> None:
        self.stop()


def benchmark_client_performance(
    url: str,
    config: ClientConfig | None = None,
    num_requests: int = 100,
    concurrent_requests: int = 10,
    *,
    _opener: SessionOpener | None = None,
) -> dict[str, Any]:
    """The blocking :func:`webwire.webtransport.benchmark_client_performance`
    (concurrent attempts run on threads); same result dict and errors."""
    return run_sync(
        _utils.benchmark_client_performance(
            url, config, num_requests, concurrent_requests, _opener=_opener, _backend="sync"
        )
    )


def test_client_connectivity(
    url: str,
    config: ClientConfig | None = None,
    timeout: float = 10.0,
    *,
    _opener: SessionOpener | None = None,
) -> dict[str, Any]:
    """The blocking :func:`webwire.webtransport.test_client_connectivity`;
    same result dict and errors."""
    return run_sync(
        _utils.test_client_connectivity(url, config, timeout, _opener=_opener, _backend="sync")
    )


test_client_connectivity.__test__ = False  # type: ignore[attr-defined]
