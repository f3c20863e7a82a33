"""Client configuration values shared by every layer: timeouts and limits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "Limits", "Timeout", "TimeoutTypes"]

_UNSET: float = -1.0


def _check_seconds(name: str, value: Any) -> float | None:
    """A time limit in seconds: a non-negative real number or ``None``.

    Raises:
        TypeError: ``value`` is a tuple/list (the httpx/requests
            ``(connect, read)`` form is not accepted) or not a number.
        ValueError: ``value`` is negative or NaN.
    """
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        raise TypeError(
            f"Timeout {name} must be a number of seconds or None, not the {type(value).__name__} "
            f"{value!r}: write Timeout(5.0, connect=1.0, read=2.0) (keyword per limit)"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Timeout {name} must be a number of seconds or None, not {type(value).__name__}"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"Timeout.{name} must be >= 0 seconds or None, got {value!r}")
    return value


class Timeout:
    """Time limits of a request, in seconds; ``None`` means no limit.

    ``Timeout(5.0)`` sets connect, read, write and pool to 5 seconds and
    leaves ``total`` unset. ``Timeout(5.0, total=30.0)`` also bounds the
    whole request, redirects and the reading of the body included, to 30
    seconds: a server that drips its body slowly enough to dodge the read
    timeout is still stopped by ``total``.

    Every limit is a non-negative number of seconds or ``None``. The
    ``(connect, read)`` tuples of other libraries are refused with a
    :class:`TypeError` naming the keyword form (``Timeout(5.0, connect=1.0,
    read=2.0)``); negative and NaN values raise :class:`ValueError`.

    Args:
        timeout: Default for connect, read, write and pool (seconds).
        connect: Time to open a connection: DNS, TCP and TLS (seconds).
            Exceeding it raises :class:`~webwire.ConnectTimeout`.
        read: Longest wait for any data from the server (seconds), raising
            :class:`~webwire.ReadTimeout`.
        write: Longest wait for a send to make progress (seconds), raising
            :class:`~webwire.WriteTimeout`.
        pool: Longest wait for a free connection of the pool (seconds),
            raising :class:`~webwire.PoolTimeout`.
        total: Bound on the whole request, from the first connection to the
            last byte of the body, redirects included (seconds). When it runs
            out the operation under way raises its own timeout exception
            (``ReadTimeout`` while reading).
    """

    __slots__ = ("connect", "pool", "read", "total", "write")

    def __init__(
        self,
        timeout: float | Timeout | None = _UNSET,
        *,
        connect: float | None = _UNSET,
        read: float | None = _UNSET,
        write: float | None = _UNSET,
        pool: float | None = _UNSET,
        total: float | None = None,
    ) -> None:
        if isinstance(timeout, Timeout):
            base = timeout
            self.connect: float | None = base.connect
            self.read: float | None = base.read
            self.write: float | None = base.write
            self.pool: float | None = base.pool
            self.total: float | None = base.total
            return
        if timeout is _UNSET:
            default: float | None = 5.0
        else:
            default = _check_seconds("timeout", timeout)
        self.connect = default if connect is _UNSET else _check_seconds("connect", connect)
        self.read = default if read is _UNSET else _check_seconds("read", read)
        self.write = default if write is _UNSET else _check_seconds("write", write)
        self.pool = default if pool is _UNSET else _check_seconds("pool", pool)
        self.total = _check_seconds("total", total)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and (
            self.connect,
            self.read,
            self.write,
            self.pool,
            self.total,
        ) == (other.connect, other.read, other.write, other.pool, other.total)

    def __hash__(self) -> int:
        return hash((self.connect, self.read, self.write, self.pool, self.total))

    def __repr__(self) -> str:
        return (
            f"Timeout(connect={self.connect}, read={self.read}, write={self.write}, "
            f"pool={self.pool}, total={self.total})"
        )


TimeoutTypes = Union[float, Timeout, None]  # noqa: UP007


@dataclass(frozen=True)
class Limits:
    """Limits of the connection pool and of what the client accepts.

    Args:
        max_connections: Most connections open at once across all origins
            (``None``: no limit). A request beyond it waits up to
            ``Timeout.pool`` seconds for a free connection.
        max_keepalive_connections: Most idle connections kept for reuse.
        keepalive_expiry: Seconds an idle connection is kept before it is
            closed (``None``: kept until the server closes it).
        max_header_size: Most bytes of a response head (status line and
            headers) before :class:`~webwire.RemoteProtocolError`.
        max_header_count: Most header fields in a response head.
        max_decompressed_size: Most bytes a compressed body may decode to
            before :class:`~webwire.DecodingError` (decompression bombs).
        max_body_size: Most bytes of a response body (after content
            decoding) that ``read()``/``aread()`` and the awaited request
            methods keep in memory, or ``None`` (default) for no limit;
            beyond it :class:`~webwire.ResponseTooLarge` is raised and the
            connection closed. A request's ``extensions={"max_body_size":
            n}`` overrides it. Streaming iteration is not limited.
        dns_cache_ttl: Seconds a host name's resolved addresses are reused
            for new connections (per pool, keyed by host and port);
            ``None`` resolves every time. An entry whose addresses all
            fail to connect is dropped at once.
        max_connections_per_host: Most connections open at once to one
            origin (scheme, host, port), ``None`` for no limit. A request
            beyond it waits up to ``Timeout.pool`` seconds.
    """

    max_connections: int | None = 100
    max_keepalive_connections: int | None = 20
    keepalive_expiry: float | None = 5.0
    max_header_size: int = 64 * 1024
    max_header_count: int = 128
    max_decompressed_size: int | None = 1024 * 1024 * 1024
    max_body_size: int | None = None
    dns_cache_ttl: float | None = 10.0
    max_connections_per_host: int | None = None

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("Limits.max_connections must be >= 1 or None")
        if self.max_keepalive_connections is not None and self.max_keepalive_connections < 0:
            raise ValueError("Limits.max_keepalive_connections must be >= 0 or None")
        if self.max_body_size is not None and (
            isinstance(self.max_body_size, bool)
            or not isinstance(self.max_body_size, int)
            or self.max_body_size < 0
        ):
            raise ValueError(
                f"Limits.max_body_size must be a number of bytes >= 0 or None, "
                f"not {self.max_body_size!r}"
            )
        if self.dns_cache_ttl is not None and not self.dns_cache_ttl >= 0:
            raise ValueError("Limits.dns_cache_ttl must be >= 0 seconds or None")
        if self.max_connections_per_host is not None and self.max_connections_per_host < 1:
            raise ValueError("Limits.max_connections_per_host must be >= 1 or None")


DEFAULT_TIMEOUT = Timeout(5.0)
DEFAULT_LIMITS = Limits()
