"""The WebTransport client (:class:`WebTransportClient`): establishes
sessions (draft-ietf-webtrans-http3 section 3) and keeps statistics."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yarl

from webwire._backends import Backend, init_lock
from webwire._exceptions import ClientError, LocalProtocolError, WebwireError

from ._config import ClientConfig
from ._stats import ClientStats
from ._types import Session, SessionOpener, default_opener, resolve_backend
from ._utils import parse_webtransport_url

if TYPE_CHECKING:
    from webwire.http._client import AsyncClient

    from ._reconnecting import ReconnectingClient

__all__ = ["WebTransportClient"]


class WebTransportClient:
    """Establishes WebTransport sessions over HTTP/3 and keeps
    :class:`ClientStats` of them; use it as ``async with``. Sessions it made
    and has not seen closed are closed with it; its HTTP/3 connections are
    shared by its sessions.

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
        if config is not None and not isinstance(config, ClientConfig):
            raise TypeError(f"config must be a ClientConfig, not {type(config).__name__}")
        self._config = config if config is not None else ClientConfig()
        self._opener = _opener
        self._backend_spec = _backend
        self._backend: Backend | None = None
        self._lock = init_lock()
        self._default_headers: dict[str, str] = {}
        self._sessions: list[Session] = []
        self._stats = ClientStats()
        self._closed = False
        self._http: AsyncClient | None = None

    @classmethod
    def create(
        cls, *, url: str, config: ClientConfig | None = None
    ) -> WebTransportClient | ReconnectingClient:
        """A client as ``config`` asks: a
        :class:`~webwire.webtransport.ReconnectingClient` for ``url`` when
        ``config.auto_reconnect`` is set, else a :class:`WebTransportClient`
        (``url`` is then only checked).

        Raises:
            InvalidURL: ``url`` is not a WebTransport URL.
        """
        parse_webtransport_url(url)
        if config is not None and config.auto_reconnect:
            from ._reconnecting import ReconnectingClient

            return ReconnectingClient(url, config)
        return cls(config)

    # -- properties ---------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        """The client's settings."""
        return self._config

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def stats(self) -> ClientStats:
        """Counters of the sessions asked for, established and failed."""
        return self._stats

    def _get_backend(self) -> Backend:
        backend = self._backend
        if backend is None:
            backend = resolve_backend(self._backend_spec)
            with self._lock:
                if self._backend is None:
                    self._backend = backend
                backend = self._backend
        return backend

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> WebTransportClient:
        if self._closed:
            raise ClientError("the WebTransport client is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every session this client made that is still open, then
        its HTTP/3 connections. Idempotent; errors of closing are not
        raised."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions, self._sessions = self._sessions, []
            http, self._http = self._http, None
        for session in sessions:
            await _close_quietly(session)
        if http is not None:
            try:
                await http.aclose()
            except WebwireError:
                pass

    def set_default_headers(self, headers: Mapping[str, str]) -> None:
        """Header fields added to every later CONNECT request (over the
        config's; a ``connect(headers=...)`` field wins over both).

        Raises:
            LocalProtocolError: A name is not a token or a value holds CR,
                LF or NUL (RFC 9110 section 5.5).
        """
        from webwire.http._request import validate_headers

        pairs = validate_headers(headers)
        with self._lock:
            self._default_headers = {name.lower(): value for name, value in pairs}

    # -- connecting ---------------------------------------------------------------

    async def connect(
        self,
        url: str | yarl.URL,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Session:
        """Establish a session with ``url`` (an extended CONNECT with
        ``:protocol: webtransport``, draft-ietf-webtrans-http3 section 3.2).

        Args:
            url: ``https://host[:port]/path``.
            timeout: Seconds allowed; ``config.connect_timeout`` when
                ``None``.
            headers: Extra CONNECT header fields for this session.

        Returns:
            The established session.

        Raises:
            ClientError: The client is closed (or was closed meanwhile).
            InvalidURL: ``url`` is not a WebTransport URL.
            LocalProtocolError: A header field is invalid.
            ConnectTimeout: Not established within ``timeout`` seconds.
            ConnectError, TransportError: Connecting failed; the server
                refused the session (non-2xx) or does not support
                WebTransport.
        """
        if self._closed:
            raise ClientError("the WebTransport client is closed")
        parse_webtransport_url(url)
        fields = self._request_headers(headers)
        wait = self._config.connect_timeout if timeout is None else timeout
        backend = self._get_backend()
        with self._lock:
            self._stats.connections_attempted += 1
            ended = [s for s in self._sessions if s.is_closed]
            self._sessions = [s for s in self._sessions if not s.is_closed]
        for session in ended:
            # Closed by the server: release its connection.
            await _close_quietly(session)
        started = backend.monotonic()
        try:
            session = await self._open(str(url), fields, wait, backend)
        except WebwireError:
            self._count_failure()
            raise
        except Exception as exc:
            self._count_failure()
            raise ClientError(f"connecting to {url} failed: {exc}") from exc
        except BaseException:
            self._count_failure()
            raise
        elapsed = backend.monotonic() - started
        with self._lock:
            closed = self._closed
            if not closed:
                self._stats.record_success(elapsed)
                self._sessions.append(session)
        if closed:
            await _close_quietly(session)
            raise ClientError("the WebTransport client was closed while connecting")
        return session

    def _count_failure(self) -> None:
        with self._lock:
            self._stats.connections_failed += 1

    def _request_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        from webwire.http._request import validate_headers

        fields = self._config.request_headers()
        with self._lock:
            fields.update(self._default_headers)
        if headers:
            fields.update((name.lower(), value) for name, value in validate_headers(headers))
        for name in fields:
            if name.startswith(":"):
                raise LocalProtocolError(f"pseudo-header field {name!r} is set by webwire")
        return fields

    async def _open(
        self, url: str, headers: dict[str, str], timeout: float, backend: Backend
    ) -> Session:
        opener = self._opener or default_opener
        session: Session = await opener(
            url,
            client=self._http_client(backend),
            headers=headers,
            timeout=timeout,
            verify=self._config.tls_verify(),
            cert=self._config.tls_cert(),
            config=self._config,
        )
        return session

    def _http_client(self, backend: Backend) -> AsyncClient:
        """The HTTP client whose HTTP/3 connections carry the sessions
        (made on first use, with the config's TLS settings)."""
        with self._lock:
            http = self._http
            if http is None:
                from webwire.http._client import AsyncClient

                http = self._http = AsyncClient(
                    verify=self._config.tls_verify(),
                    cert=self._config.tls_cert(),
                    _backend=backend,
                )
        return http

    # -- diagnostics --------------------------------------------------------------

    def debug_state(self) -> dict[str, Any]:
        """A snapshot for debugging.

        Returns:
            ``{"closed", "open_sessions", "default_headers", "stats"
            (:meth:`ClientStats.to_dict`), "config" (:meth:`ClientConfig.to_dict`)}``.
        """
        with self._lock:
            open_sessions = sum(1 for s in self._sessions if not s.is_closed)
            headers = dict(self._default_headers)
        return {
            "closed": self._closed,
            "open_sessions": open_sessions,
            "default_headers": headers,
            "stats": self._stats_snapshot().to_dict(),
            "config": self._config.to_dict(),
        }

    def _stats_snapshot(self) -> ClientStats:
        """A copy of :attr:`stats` taken under the lock that guards its
        updates (its counters agree with each other)."""
        with self._lock:
            return dataclasses.replace(self._stats)

    def diagnose_issues(self) -> list[str]:
        """Problems the statistics show, as sentences: a success rate under
        90 % after more than 10 attempts, an average connect time over 5
        seconds, a closed client; empty when none."""
        issues: list[str] = []
        stats = self._stats_snapshot()
        if self._closed:
            issues.append("the client is closed")
        if stats.connections_attempted > 10 and stats.success_rate < 0.9:
            issues.append(f"low connection success rate: {stats.success_rate:.1%}")
        if stats.avg_connect_time > 5.0:
            issues.append(f"slow average connect time: {stats.avg_connect_time:.2f} s")
        return issues


async def _close_quietly(session: Session) -> None:
    """Close ``session``, ignoring webwire errors. A session the server
    closed is closed too: that releases its connection (``close`` is
    idempotent)."""
    try:
        await session.close()
    except WebwireError:
        pass
