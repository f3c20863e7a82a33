"""What the client package needs of a session and of the function that
opens one; the core's ``WebTransportSession`` satisfies it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from webwire._backends import Backend, get_backend

__all__ = ["Session", "SessionOpener", "default_opener", "resolve_backend"]


class Session(Protocol):
    """A WebTransport session (draft-ietf-webtrans-http3 section 3) as the
    client package hands it out: what ``open_session`` returns (the core's
    ``WebTransportSession``). The clients themselves use only
    :attr:`is_ready`, :attr:`is_closed`, :meth:`close`,
    :meth:`wait_closed` and :meth:`create_bidirectional_stream`."""

    @property
    def is_ready(self) -> bool:
        """Established and not closing."""

    @property
    def is_closed(self) -> bool:
        """Closed (by either side)."""

    @property
    def datagrams(self) -> Any:
        """The session's datagrams: ``send(data)``, ``receive(timeout)``,
        ``max_datagram_size`` (RFC 9297)."""

    async def close(self, code: int = 0, reason: str = "") -> None:
        """Close the session (CLOSE_WEBTRANSPORT_SESSION capsule with
        ``code`` and ``reason``)."""

    async def wait_closed(self) -> None:
        """Wait until the session is closed."""

    async def create_bidirectional_stream(self) -> Any:
        """Open a bidirectional stream of the session."""


SessionOpener = Callable[..., Awaitable[Any]]
"""``await opener(url, *, client, headers, timeout, verify, cert, config)``
returns an established session (the signature of
``webwire.webtransport._connect.open_session``)."""

async def default_opener(url: str, **options: Any) -> Any:
    """Open a session with the HTTP/3 core's ``open_session`` (imported on
    first use)."""
    from webwire.webtransport._connect import open_session  # type: ignore[import-not-found]

    return await open_session(url, **options)


def resolve_backend(spec: str | Backend | None) -> Backend:
    """The backend named (or given) by ``spec``; ``None`` detects the
    running async library."""
    if spec is not None and not isinstance(spec, str):
        return spec
    return get_backend(spec)
