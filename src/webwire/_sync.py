"""Run webwire's coroutines without an event loop, on the blocking backend.

On the blocking backend (``_backends/sync.py``) every awaitable completes
without suspending, so a coroutine built on it finishes on its first
``send(None)``. This is how the synchronous API (``Client``,
``webwire.get()``) runs the very same code as ``AsyncClient``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Drive ``coro`` to completion without an event loop.

    Returns:
        The coroutine's return value (its exceptions propagate unchanged).

    Raises:
        RuntimeError: The coroutine tried to suspend, which means it awaited
            something that is not of the blocking backend (for example an
            asyncio future, or a stream made by an async client).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError(
        "a coroutine suspended on the blocking backend: an async object "
        "(created by AsyncClient or on an event loop) was used from the "
        "synchronous API"
    )
