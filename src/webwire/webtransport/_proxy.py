"""Tunnels through a WebTransport proxy (:class:`WebTransportProxy`)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from webwire._backends import Backend, Lock, init_lock
from webwire._exceptions import ClientError, ProxyError, WebwireError

from ._client import WebTransportClient, _close_quietly
from ._config import ClientConfig
from ._stats import ClientStats
from ._utils import parse_webtransport_url, run_with_timeout

if TYPE_CHECKING:
    from ._types import Session, SessionOpener

__all__ = ["WebTransportProxy"]

_MAX_HEAD = 64 * 1024
"""Bytes of the proxy's response head read at most."""
_MAX_HEAD_LINES = 100


class WebTransportProxy:
    """Opens byte tunnels to other hosts through a WebTransport proxy: a
    session with ``proxy_url``, and on one of its bidirectional streams an
    HTTP ``CONNECT host:port`` request (RFC 9110 section 9.3.6); once the
    proxy answers 2xx the stream carries the tunnel's bytes. One session
    with the proxy serves every tunnel (re-established when it closed).
    Use it as ``async with``.

    Args:
        proxy_url: ``https://...`` URL of the proxy's WebTransport endpoint.
        config: The settings (the defaults when ``None``).

    Raises:
        InvalidURL: ``proxy_url`` is not a WebTransport URL.
    """

    def __init__(
        self,
        proxy_url: str,
        config: ClientConfig | None = None,
        *,
        _opener: SessionOpener | None = None,
        _backend: str | Backend | None = None,
    ) -> None:
        parse_webtransport_url(proxy_url)
        self._proxy_url = proxy_url
        self._client = WebTransportClient(config, _opener=_opener, _backend=_backend)
        self._init = init_lock()
        self._lock: Lock | None = None
        self._session: Session | None = None

    @property
    def proxy_url(self) -> str:
        """The proxy's URL."""
        return self._proxy_url

    @property
    def client(self) -> WebTransportClient:
        """The client that establishes the session with the proxy."""
        return self._client

    @property
    def stats(self) -> ClientStats:
        """The statistics of the client that establishes the sessions."""
        return self._client.stats

    async def __aenter__(self) -> WebTransportProxy:
        if self._client.is_closed:
            raise ClientError("the proxy client is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session with the proxy (and every tunnel on it).
        Idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await _close_quietly(session)
        await self._client.close()

    async def connect_through_proxy(
        self,
        target_url: str,
        proxy_headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Open a tunnel to ``target_url``'s host and port.

        Args:
            target_url: ``https://host[:port]/...`` (the port defaults to
                443).
            proxy_headers: Header fields of the CONNECT request
                (``Proxy-Authorization``...).
            timeout: Seconds allowed for the session with the proxy and the
                CONNECT exchange.

        Returns:
            The bidirectional stream carrying the tunnel (read and write
            the target's bytes on it; close it to end the tunnel).

        Raises:
            InvalidURL: ``target_url`` is not a WebTransport URL.
            LocalProtocolError: A proxy header field is invalid.
            ProxyError: The proxy refused (non-2xx; the message has its
                status line) or answered something that is not HTTP.
            TimeoutException: No answer within ``timeout`` seconds.
            ConnectError, TransportError: The session with the proxy
                failed.
        """
        from webwire.http._request import validate_headers

        host, port, _ = parse_webtransport_url(target_url)
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        fields = validate_headers(proxy_headers or {})
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in fields if name.lower() != "host"]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        backend = self._client._get_backend()
        session = await self._proxy_session(timeout)
        stream = await session.create_bidirectional_stream()
        try:
            await run_with_timeout(
                backend, timeout, lambda: _handshake(stream, request), "the proxy's CONNECT answer"
            )
        except BaseException:
            await _abort_quietly(stream)
            raise
        return stream

    async def _proxy_session(self, timeout: float) -> Session:
        """The session with the proxy, established when there is none
        (one caller at a time establishes it)."""
        lock = self._lock
        if lock is None:
            backend = self._client._get_backend()
            with self._init:
                if self._lock is None:
                    self._lock = backend.create_lock()
                lock = self._lock
        async with lock:
            session = self._session
            if session is not None and session.is_ready and not session.is_closed:
                return session
            if session is not None:
                self._session = None
                await _close_quietly(session)  # releases its connection
            session = await self._client.connect(self._proxy_url, timeout=timeout)
            self._session = session
            return session


async def _handshake(stream: Any, request: bytes) -> None:
    """Send the CONNECT request and read the proxy's response head.

    Raises:
        ProxyError: A non-2xx status, a response that is not HTTP/1.x, a
            head over 64 KiB, or the stream ended first.
    """
    await stream.write(request)
    status_line = b""
    size = 0
    for index in range(_MAX_HEAD_LINES + 1):
        line = await stream.readline()
        size += len(line)
        if size > _MAX_HEAD or index == _MAX_HEAD_LINES:
            raise ProxyError("the proxy's response head is too large")
        if not line.endswith(b"\n"):
            raise ProxyError("the proxy closed the tunnel stream before answering CONNECT")
        if index == 0:
            status_line = line.rstrip(b"\r\n")
            continue
        if line in (b"\r\n", b"\n"):
            break
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProxyError(f"the proxy answered CONNECT with {status_line[:200]!r}, not HTTP")
    status = int(parts[1])
    if not 200 <= status < 300:
        text = status_line.decode("latin-1", "replace")
        raise ProxyError(f"the proxy refused the tunnel: {text}")


async def _abort_quietly(stream: Any) -> None:
    try:
        result = stream.abort()
        if inspect.isawaitable(result):
            await result
    except WebwireError:
        pass
