"""Client configuration values shared by every layer: timeouts and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "Limits", "Timeout", "TimeoutTypes"]

_UNSET: float = -1.0


class Timeout:
    """Time limits of a request, in seconds; ``None`` means no limit.

    ``Timeout(5.0)`` sets connect, read, write and pool to 5 seconds and
    leaves ``total`` unset. ``Timeout(5.0, total=30.0)`` also bounds the
    whole request, redirects and the reading of the body included, to 30
    seconds: a server that drips its body slowly enough to dodge the read
    timeout is still stopped by ``total``.

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
        if timeout == _UNSET:
            default: float | None = 5.0
        else:
            default = timeout
        self.connect = default if connect == _UNSET else connect
        self.read = default if read == _UNSET else read
        self.write = default if write == _UNSET else write
        self.pool = default if pool == _UNSET else pool
        self.total = total
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Timeout.{name} must be >= 0 or None, got {value!r}")

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
    dns_cache_ttl: float | None = 10.0
    max_connections_per_host: int | None = None

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("Limits.max_connections must be >= 1 or None")
        if self.max_keepalive_connections is not None and self.max_keepalive_connections < 0:
            raise ValueError("Limits.max_keepalive_connections must be >= 0 or None")
        if self.dns_cache_ttl is not None and not self.dns_cache_ttl >= 0:
            raise ValueError("Limits.dns_cache_ttl must be >= 0 seconds or None")
        if self.max_connections_per_host is not None and self.max_connections_per_host < 1:
            raise ValueError("Limits.max_connections_per_host must be >= 1 or None")


DEFAULT_TIMEOUT = Timeout(5.0)
DEFAULT_LIMITS = Limits()
