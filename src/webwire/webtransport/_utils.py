"""URL helpers, a deadline helper, and the one-shot tools
:func:`benchmark_client_performance` and :func:`test_client_connectivity`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import yarl

from webwire._backends import Backend
from webwire._exceptions import ConfigurationError, InvalidURL, TimeoutException, WebwireError

from ._types import resolve_backend

if TYPE_CHECKING:
    from ._config import ClientConfig
    from ._types import SessionOpener

__all__ = [
    "benchmark_client_performance",
    "parse_webtransport_url",
    "run_with_timeout",
    "test_client_connectivity",
    "validate_url",
]

T = TypeVar("T")


def parse_webtransport_url(url: str | yarl.URL) -> tuple[str, int, str]:
    """Split a WebTransport URL (an ``https`` URL, W3C WebTransport and
    draft-ietf-webtrans-http3 section 3.1) into its parts.

    Returns:
        ``(host, port, path)``: the port defaults to 443; the path keeps
        its query.

    Raises:
        InvalidURL: Not an ``https`` URL, no host, a fragment, user
            information, or CR/LF/NUL/space in it.
    """
    text = str(url)
    if any(c in text for c in "\r\n\0 \t"):
        raise InvalidURL(f"invalid WebTransport URL {text!r}: it holds whitespace, CR, LF or NUL")
    try:
        parsed = url if isinstance(url, yarl.URL) else yarl.URL(text)
        host = parsed.host
        port = parsed.port
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"invalid WebTransport URL {text!r}: {exc}") from exc
    if parsed.scheme != "https":
        raise InvalidURL(f"invalid WebTransport URL {text!r}: the scheme must be https")
    if not host:
        raise InvalidURL(f"invalid WebTransport URL {text!r}: no host")
    if parsed.fragment:
        raise InvalidURL(f"invalid WebTransport URL {text!r}: it has a fragment")
    if parsed.user is not None or parsed.password is not None:
        raise InvalidURL(f"invalid WebTransport URL {text!r}: user information is not allowed")
    return host, port or 443, parsed.raw_path_qs or "/"


def validate_url(url: str | yarl.URL) -> bool:
    """Whether ``url`` is a valid WebTransport URL (see
    :func:`parse_webtransport_url`); never raises."""
    try:
        parse_webtransport_url(url)
    except InvalidURL:
        return False
    return True


async def run_with_timeout(
    backend: Backend, timeout: float | None, fn: Callable[[], Awaitable[T]], what: str
) -> T:
    """Run ``fn()`` and give up after ``timeout`` seconds (``None``: no
    limit) by cancelling it.

    Raises:
        TimeoutException: ``timeout`` passed first (the message names
            ``what``).
        Exception: Whatever ``fn`` raised.
    """
    if timeout is None:
        return await fn()
    results: list[T] = []
    expired: list[bool] = []
    async with backend.create_task_group() as group:

        async def work() -> None:
            results.append(await fn())
            group.cancel()

        async def watchdog() -> None:
            await backend.sleep(timeout)
            expired.append(True)
            group.cancel()

        group.start_soon(work)
        group.start_soon(watchdog)
    if results:
        return results[0]
    raise TimeoutException(f"{what} did not finish within {timeout} seconds")


async def benchmark_client_performance(
    url: str,
    config: ClientConfig | None = None,
    num_requests: int = 100,
    concurrent_requests: int = 10,
    *,
    _opener: SessionOpener | None = None,
    _backend: str | Backend | None = None,
) -> dict[str, Any]:
    """Establish ``num_requests`` sessions with ``url``, at most
    ``concurrent_requests`` at a time, closing each once established, and
    time them.

    Returns:
        ``{"total_requests", "successful_requests", "failed_requests",
        "success_rate" (0-1), "total_time", "requests_per_second",
        "avg_connect_time", "min_connect_time", "max_connect_time"}``
        (times in seconds, measured on the backend's monotonic clock;
        connect times over the successful sessions, 0.0 when none) and
        ``"errors"``: the first 10 error messages.

    Raises:
        ConfigurationError: ``num_requests`` or ``concurrent_requests`` is
            not an integer >= 1.
        InvalidURL: ``url`` is not a WebTransport URL.
    """
    from ._client import WebTransportClient

    counts = (("num_requests", num_requests), ("concurrent_requests", concurrent_requests))
    for name, value in counts:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(name, value, "must be an integer >= 1")
    parse_webtransport_url(url)
    backend = resolve_backend(_backend)
    times: list[float] = []
    errors: list[str] = []
    lock = backend.create_bookkeeping_lock()
    remaining = [num_requests]
    client = WebTransportClient(config, _opener=_opener, _backend=backend)
    started = backend.monotonic()
    async with client:

        async def worker() -> None:
            while True:
                with lock:
                    if not remaining[0]:
                        return
                    remaining[0] -= 1
                begin = backend.monotonic()
                try:
                    session = await client.connect(url)
                    elapsed = backend.monotonic() - begin
                    await session.close()
                except WebwireError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    times.append(elapsed)

        async with backend.create_task_group() as group:
            for _ in range(min(concurrent_requests, num_requests)):
                group.start_soon(worker)
    total = backend.monotonic() - started
    return {
        "total_requests": num_requests,
        "successful_requests": len(times),
        "failed_requests": len(errors),
        "success_rate": len(times) / num_requests,
        "total_time": total,
        "requests_per_second": num_requests / total if total > 0 else 0.0,
        "avg_connect_time": sum(times) / len(times) if times else 0.0,
        "min_connect_time": min(times, default=0.0),
        "max_connect_time": max(times, default=0.0),
        "errors": errors[:10],
    }


async def test_client_connectivity(
    url: str,
    config: ClientConfig | None = None,
    timeout: float = 10.0,
    *,
    _opener: SessionOpener | None = None,
    _backend: str | Backend | None = None,
) -> dict[str, Any]:
    """Try to establish one session with ``url`` within ``timeout``
    seconds, then close it. Never raises for a failed attempt.

    Returns:
        ``{"url", "success" (bool), "connect_time" (seconds, ``None`` on
        failure), "error" (message or ``None``), "error_type" (exception
        class name or ``None``), "timeout"}``.

    Raises:
        InvalidURL: ``url`` is not a WebTransport URL.
    """
    from ._client import WebTransportClient

    parse_webtransport_url(url)
    backend = resolve_backend(_backend)
    result: dict[str, Any] = {
        "url": url,
        "success": False,
        "connect_time": None,
        "error": None,
        "error_type": None,
        "timeout": timeout,
    }
    async with WebTransportClient(config, _opener=_opener, _backend=backend) as client:
        begin = backend.monotonic()
        try:
            session = await client.connect(url, timeout=timeout)
        except WebwireError as exc:
            result["error"] = str(exc)
            result["error_type"] = type(exc).__name__
            return result
        result["connect_time"] = backend.monotonic() - begin
        result["success"] = True
        await session.close()
    return result


test_client_connectivity.__test__ = False  # type: ignore[attr-defined]
