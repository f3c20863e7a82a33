"""SOCKS handshakes over a backend stream: SOCKS4, SOCKS4a, SOCKS5
(RFC 1928) with username/password authentication (RFC 1929).

The messages are built and parsed by python-socks' sans-I/O protocol
objects; the bytes travel over webwire's own :class:`NetworkStream`, so the
same code runs on asyncio, trio and the blocking backend.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    ProxyError,
    ReadTimeout,
    TransportError,
    WriteTimeout,
)

if TYPE_CHECKING:
    from webwire._backends.base import Backend, NetworkStream

    from ._types import TraceHook
    from .connect import Origin
    from .proxy import Proxy

from ._dns import DNSCache

__all__ = ["socks_handshake"]


def _protocols() -> Any:
    try:
        from python_socks._protocols import errors, socks4, socks5
    except ImportError as exc:
        raise ImportError(
            "SOCKS proxies need the python-socks package: pip install 'webwire[socks]'"
        ) from exc
    return socks4, socks5, errors


class _Clock:
    """Seconds left of the handshake's time limit."""

    __slots__ = ("_backend", "_deadline")

    def __init__(self, backend: Backend, timeout: float | None) -> None:
        self._backend = backend
        self._deadline = None if timeout is None else backend.monotonic() + timeout

    def left(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._backend.monotonic())


async def _read_exact(stream: NetworkStream, size: int, clock: _Clock) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read(size - len(data), clock.left())
        if not chunk:
            raise ProxyError("the SOCKS proxy closed the connection during the handshake")
        data += chunk
    return data


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _local_address_of(
    backend: Backend,
    origin: Origin,
    clock: _Clock,
    ipv4_only: bool,
    dns: DNSCache | None,
    trace: TraceHook | None,
) -> str:
    """The IP to ask the proxy for when names are resolved here
    (``socks4``/``socks5``), through the pool's DNS cache when it has one."""
    if _is_ip(origin.host):
        return origin.host
    if dns is not None or trace is not None:
        cache = dns if dns is not None else DNSCache(None)
        addresses = await cache.resolve(backend, origin.host, origin.port, clock.left(), trace)
    else:
        addresses = await backend.resolve(origin.host, origin.port, timeout=clock.left())
    for _, ip in addresses:
        if not ipv4_only or ipaddress.ip_address(ip).version == 4:
            return ip
    raise ConnectError(f"{origin.host} has no IPv4 address (a SOCKS4 proxy needs one)")


async def socks_handshake(
    backend: Backend,
    stream: NetworkStream,
    proxy: Proxy,
    origin: Origin,
    *,
    timeout: float | None,
    dns: DNSCache | None = None,
    trace: TraceHook | None = None,
) -> None:
    """Ask the SOCKS proxy at the other end of ``stream`` to connect to
    ``origin``; on return ``stream`` carries the origin's bytes.

    ``socks4a`` and ``socks5h`` hand the host name to the proxy; ``socks4``
    and ``socks5`` resolve it here first.

    Args:
        timeout: Seconds for the whole handshake (local resolution
            included).
        dns: The pool's DNS cache, for names resolved here.
        trace: The request's trace hook (DNS signals).

    Raises:
        ProxyError: The proxy refused the credentials or the connection,
            sent a malformed reply, or closed the connection.
        ConnectTimeout: The proxy did not answer in time.
        ConnectError: The origin's host name cannot be resolved here.
        ImportError: python-socks is not installed.
    """
    socks4, socks5, errors = _protocols()
    scheme = proxy.origin.scheme
    clock = _Clock(backend, timeout)
    try:
        if scheme in ("socks5", "socks5h"):
            host = origin.host
            if scheme == "socks5":
                host = await _local_address_of(backend, origin, clock, False, dns, trace)
            await _socks5(stream, socks5, proxy, host, origin.port, clock)
        else:
            host = origin.host
            if scheme == "socks4" or _is_ip(host):
                host = await _local_address_of(backend, origin, clock, True, dns, trace)
            user = proxy.auth[0] if proxy.auth else None
            conn = socks4.Connection()
            request = conn.send(socks4.ConnectRequest(host, origin.port, user))
            await stream.write(request, clock.left())
            conn.receive(await _read_exact(stream, 8, clock))
    except errors.ReplyError as exc:
        raise ProxyError(
            f"the SOCKS proxy {proxy.url} refused the connection to {origin}: {exc}"
        ) from exc
    except (ReadTimeout, WriteTimeout) as exc:
        raise ConnectTimeout(
            f"the SOCKS proxy {proxy.url} did not answer within {timeout} s"
        ) from exc
    except ProxyError:
        raise
    except TransportError as exc:
        if isinstance(exc, ConnectError):
            raise
        raise ProxyError(f"the SOCKS proxy {proxy.url} failed: {exc}") from exc


async def _socks5(
    stream: NetworkStream,
    socks5: Any,
    proxy: Proxy,
    host: str,
    port: int,
    clock: _Clock,
) -> None:
    user, password = proxy.auth if proxy.auth else (None, None)
    conn = socks5.Connection()
    await stream.write(conn.send(socks5.AuthMethodsRequest(user, password)), clock.left())
    reply = conn.receive(await _read_exact(stream, 2, clock))
    if reply.method == socks5.AuthMethod.USERNAME_PASSWORD:
        if user is None:
            raise ProxyError(f"the SOCKS proxy {proxy.url} wants credentials")
        await stream.write(conn.send(socks5.AuthRequest(user, password or "")), clock.left())
        try:
            conn.receive(await _read_exact(stream, 2, clock))
        except ProxyError as exc:
            # Proxies commonly close the connection on refused credentials.
            raise ProxyError(
                f"the SOCKS proxy {proxy.url} refused the credentials: {exc}"
            ) from exc
    await stream.write(conn.send(socks5.ConnectRequest(host, port)), clock.left())
    head = await _read_exact(stream, 4, clock)
    if head[1] != 0:
        conn.receive(head)  # raises the reply's error
    kind = head[3]
    if kind == 1:
        rest = await _read_exact(stream, 6, clock)
    elif kind == 4:
        rest = await _read_exact(stream, 18, clock)
    elif kind == 3:
        size = await _read_exact(stream, 1, clock)
        rest = size + await _read_exact(stream, size[0] + 2, clock)
    else:
        raise ProxyError(f"the SOCKS proxy {proxy.url} sent an unknown address type {kind}")
    conn.receive(head + rest)
