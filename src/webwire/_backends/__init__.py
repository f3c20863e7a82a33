"""Concurrency backends: asyncio, trio and blocking sockets.

:func:`get_backend` returns the backend for a concurrency model; the async
ones are detected with sniffio when the name is ``None``.
"""

from __future__ import annotations

import threading

from .base import (
    Backend,
    Channel,
    ChannelClosed,
    DatagramSocket,
    Event,
    Lock,
    NetworkStream,
    Semaphore,
    TaskGroup,
)

__all__ = [
    "Backend",
    "Channel",
    "ChannelClosed",
    "DatagramSocket",
    "Event",
    "Lock",
    "NetworkStream",
    "Semaphore",
    "TaskGroup",
    "get_backend",
    "init_lock",
]

_cache: dict[str, Backend] = {}


def init_lock() -> threading.Lock:
    """A lock guarding one-time initialisation shared by threads (which
    backend a client uses, its pool), made before any backend is chosen:
    blocking clients are shared by threads from their first request on.
    Never held across an ``await``."""
    return threading.Lock()


def get_backend(name: str | None = None) -> Backend:
    """Return the shared backend named ``name``.

    Args:
        name: ``"asyncio"``, ``"trio"``, ``"sync"``, or ``None`` to detect
            the running async library with sniffio.

    Raises:
        RuntimeError: ``name`` is ``None`` and no supported async library is
            running, or ``name`` is unknown.
        ImportError: The trio backend was asked for but trio is missing
            (install ``webwire[trio]``).
    """
    if name is None:
        import sniffio

        try:
            name = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError as exc:
            raise RuntimeError(
                "no running async library: use AsyncClient inside asyncio or trio, "
                "or the synchronous Client"
            ) from exc
    backend = _cache.get(name)
    if backend is not None:
        return backend
    if name == "asyncio":
        from .asyncio import AsyncioBackend

        backend = AsyncioBackend()
    elif name == "trio":
        try:
            from .trio import TrioBackend
        except ImportError as exc:  # pragma: no cover - depends on installed extras
            raise ImportError("the trio backend needs trio: pip install 'webwire[trio]'") from exc
        backend = TrioBackend()
    elif name == "sync":
        from .sync import SyncBackend

        backend = SyncBackend()
    else:
        raise RuntimeError(f"unsupported async library {name!r} (asyncio, trio or sync)")
    _cache[name] = backend
    return backend
