"""Types passed between the transport layer and the HTTP API above it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RawResponse", "ResponseStream", "bound_timeout"]


class ResponseStream(ABC):
    """The body of a response as it arrives: raw bytes, transfer coding
    removed, content coding (gzip, br, ...) kept.

    Reading it to the end returns the connection to the pool; ``aclose()``
    before the end closes the connection instead (it cannot be reused).
    Iterating again after the end yields nothing.
    """

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection; idempotent, never raises network errors."""


@dataclass(slots=True)
class RawResponse:
    """A response head and its body stream, as the transport produced it.

    Attributes:
        status_code: Final status code (1xx interim responses are skipped).
        reason_phrase: Reason phrase bytes (empty for HTTP/2 and HTTP/3).
        http_version: ``"HTTP/1.0"``, ``"HTTP/1.1"``, ``"HTTP/2"``, ``"HTTP/3"``.
        headers: Header fields as received, in order.
        stream: The body.
        extensions: Extra details (``"peername"``, ``"tls_version"``, ...).
    """

    status_code: int
    reason_phrase: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    stream: ResponseStream
    extensions: dict[str, Any] = field(default_factory=dict)


def bound_timeout(timeout: float | None, deadline: float | None, now: float) -> float | None:
    """The time left for one operation: ``timeout`` seconds, cut to what is
    left before the absolute ``deadline`` (both in the backend's monotonic
    clock). Never negative."""
    if deadline is None:
        return timeout
    left = deadline - now
    if left < 0.0:
        left = 0.0
    if timeout is None or left < timeout:
        return left
    return timeout
