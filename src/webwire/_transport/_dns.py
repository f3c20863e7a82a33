"""A per-pool cache of resolved host names, with a time to live.

Resolution goes through :meth:`Backend.resolve`; the addresses are then
handed to :meth:`Backend.connect_tcp`, which races them (Happy Eyeballs,
RFC 8305) as if it had resolved them itself. The clock is the backend's
(the fake clock on the memory backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webwire._backends.base import Backend

    from ._types import TraceHook

__all__ = ["DNSCache"]

_MAX_ENTRIES = 1024


class DNSCache:
    """Resolved addresses per ``(host, port)``, kept ``ttl`` seconds.

    Args:
        ttl: Seconds an entry is used after its resolution ended; ``None``
            keeps nothing (every call resolves).

    Entries are immutable tuples swapped in whole, so threads sharing a
    pool may use one cache; two concurrent misses both resolve.
    """

    __slots__ = ("_entries", "_ttl")

    def __init__(self, ttl: float | None) -> None:
        self._ttl = ttl
        self._entries: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}

    async def resolve(
        self,
        backend: Backend,
        host: str,
        port: int,
        timeout: float | None,
        trace: TraceHook | None,
    ) -> list[tuple[int, str]]:
        """The ``(family, ip)`` pairs of ``host``, cached or resolved now.

        Sends ``dns_cache_hit``/``dns_cache_miss`` (when caching) and
        ``dns_resolvehost_start``/``dns_resolvehost_end`` (when resolving)
        to ``trace``.

        Raises:
            ConnectError, ConnectTimeout: Resolution failed.
        """
        ttl = self._ttl
        key = (host, port)
        if ttl is not None:
            entry = self._entries.get(key)
            if entry is not None and backend.monotonic() < entry[0]:
                if trace is not None:
                    await trace("dns_cache_hit", {"host": host})
                return entry[1]
            if trace is not None:
                await trace("dns_cache_miss", {"host": host})
        if trace is not None:
            await trace("dns_resolvehost_start", {"host": host})
        addresses = await backend.resolve(host, port, timeout=timeout)
        if ttl is not None and addresses:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {}
            self._entries[key] = (backend.monotonic() + ttl, addresses)
        if trace is not None:
            await trace("dns_resolvehost_end", {"host": host})
        return addresses

    def forget(self, host: str, port: int) -> None:
        """Drop the entry of ``(host, port)`` (its addresses failed)."""
        self._entries.pop((host, port), None)
