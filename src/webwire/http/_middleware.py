"""The request pipeline: client middlewares, event hooks, tracing and
retries on one callback machinery.

Every feature here is a middleware ``(request, handler) -> Response`` in one
chain run for each request a client puts on the wire after a redirect
decision (one run per redirect hop):

    user middlewares -> retries -> event hooks -> tracing -> [auth -> transport]

* user middlewares (``middlewares=``): outermost, in the order given;
* retries (``retries=``, :class:`~webwire.Retry`): sends the hop again;
* event hooks (``event_hooks=``): request hooks before each attempt,
  response hooks after it;
* tracing (``trace=``): wraps the request body and the response stream to
  report chunks.

The handler at the end runs the authentication flow (which may send the
request more than once, e.g. after a ``401`` challenge) and the transport.
Redirects are followed outside the chain: a middleware sees one hop, and
the request-level trace signals (start, redirect, end, exception) are
emitted around the whole exchange. Callbacks are called through
:func:`call_callback`: a result is awaited only when it is awaitable; the
blocking client refuses coroutine functions.

With nothing configured the client has no pipeline (``None``) and skips
all of this with one test.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from webwire._exceptions import WebwireError
from webwire._retry import Retry
from webwire._sync import run_sync

from ._models import Response
from ._request import Request

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._tracing import TraceConfig, Tracer

__all__ = [
    "AsyncHandler",
    "AsyncMiddleware",
    "EventHook",
    "Middleware",
    "Pipeline",
    "SyncHandler",
    "SyncMiddleware",
    "call_callback",
    "check_event_hooks",
    "check_middlewares",
]

AsyncHandler = Callable[[Request], Awaitable[Response]]
"""The ``handler`` an :class:`~webwire.AsyncClient` middleware calls:
``await handler(request)``."""
SyncHandler = Callable[[Request], Response]
"""The ``handler`` a :class:`~webwire.Client` middleware calls:
``handler(request)``."""
AsyncMiddleware = Callable[[Request, AsyncHandler], Union[Response, Awaitable[Response]]]  # noqa: UP007
"""``async def middleware(request, handler) -> Response`` (or a plain
function returning a response or an awaitable)."""
SyncMiddleware = Callable[[Request, SyncHandler], Response]
"""``def middleware(request, handler) -> Response``."""
Middleware = Union[AsyncMiddleware, SyncMiddleware]  # noqa: UP007
EventHook = Callable[[Any], Any]
"""``hook(request)`` or ``hook(response)``; on AsyncClient it may be
``async def``."""

_Chain = tuple[Callable[[Request, Any], Any], ...]
_DRAIN_LIMIT = 64 * 1024
_HOOK_KINDS = ("request", "response")


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


async def call_callback(sync: bool, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)``; await the result when it is awaitable.

    Args:
        sync: The caller is the blocking client: an awaitable result is
            refused.

    Returns:
        The (awaited) result.

    Raises:
        TypeError: ``sync`` and ``fn`` returned an awaitable.
    """
    result = fn(*args)
    if inspect.isawaitable(result):
        if sync:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise TypeError(
                f"{fn!r} returned an awaitable: the blocking Client calls plain functions only"
            )
        result = await result
    return result


def _refuse_async(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} must be callable, not {fn!r}")
    if _is_async_callable(fn):
        raise TypeError(
            f"{what} {fn!r} is a coroutine function: the blocking Client takes plain "
            "functions (use AsyncClient for async ones)"
        )


def _sync_middleware(fn: SyncMiddleware) -> Callable[[Request, AsyncHandler], Awaitable[Response]]:
    """A blocking client's middleware as a link of the coroutine chain: its
    ``handler`` runs the rest of the chain to completion with ``run_sync``
    (on the blocking backend nothing ever suspends)."""

    async def link(request: Request, handler: AsyncHandler) -> Response:
        def call_next(next_request: Request) -> Response:
            return run_sync(handler(next_request))  # type: ignore[arg-type]

        return fn(request, call_next)

    link.__qualname__ = getattr(fn, "__qualname__", "middleware")
    return link


def check_middlewares(middlewares: Sequence[Middleware], sync: bool) -> _Chain:
    """Checked chain links for ``middlewares``.

    Raises:
        TypeError: ``middlewares`` is not a sequence of callables, or
            (``sync``) one is a coroutine function.
    """
    if callable(middlewares) or isinstance(middlewares, (str, bytes)):
        raise TypeError("middlewares must be a sequence of functions, e.g. [fn]")
    links: list[Callable[[Request, Any], Any]] = []
    for fn in middlewares:
        if sync:
            _refuse_async(fn, "middleware")
            links.append(_sync_middleware(fn))  # type: ignore[arg-type]
        else:
            if not callable(fn):
                raise TypeError(f"middleware must be callable, not {fn!r}")
            links.append(fn)
    return tuple(links)


def check_event_hooks(
    event_hooks: Mapping[str, Sequence[EventHook]] | None, sync: bool
) -> dict[str, list[EventHook]]:
    """``event_hooks`` as ``{"request": [...], "response": [...]}``.

    Raises:
        ValueError: A key other than ``"request"`` and ``"response"``.
        TypeError: A hook is not callable, or (``sync``) is a coroutine
            function.
    """
    hooks: dict[str, list[EventHook]] = {"request": [], "response": []}
    if event_hooks is None:
        return hooks
    for kind, fns in event_hooks.items():
        if kind not in hooks:
            raise ValueError(f"event_hooks keys are 'request' and 'response', not {kind!r}")
        if callable(fns):
            raise TypeError(f"event_hooks[{kind!r}] must be a list of functions")
        for fn in fns:
            if sync:
                _refuse_async(fn, f"{kind} event hook")
            elif not callable(fn):
                raise TypeError(f"{kind} event hook must be callable, not {fn!r}")
        hooks[kind] = list(fns)
    return hooks


async def _dispatch(
    chain: _Chain, index: int, request: Request, terminal: AsyncHandler, sync: bool
) -> Response:
    """Run link ``index`` of ``chain`` (the terminal handler past its end)."""
    if not isinstance(request, Request):
        raise TypeError(f"a middleware handler takes a webwire.Request, not {request!r}")
    if index == len(chain):
        return await terminal(request)

    def handler(next_request: Request) -> Awaitable[Response]:
        return _dispatch(chain, index + 1, next_request, terminal, sync)

    link = chain[index]
    result = link(request, handler)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, Response):
        raise TypeError(f"middleware {link!r} must return a webwire.Response, not {result!r}")
    return result


class Pipeline:
    """The middlewares, event hooks, trace configs and retry policy of a
    client (or of one request that overrides them). Immutable; the client
    rebuilds it when its configuration changes.

    Args:
        middlewares: Checked links (see :func:`check_middlewares`).
        hooks: Event hooks (see :func:`check_event_hooks`); read live, so
            lists changed in place are honoured; ``None``: no hooks.
        traces: Trace configs.
        retry: The retry policy, or ``None`` for no retries.
        sync: The blocking client.
    """

    __slots__ = ("hooks", "middlewares", "retry", "sync", "traces")

    def __init__(
        self,
        middlewares: _Chain,
        hooks: dict[str, list[EventHook]] | None,
        traces: tuple[TraceConfig, ...],
        retry: Retry | None,
        sync: bool,
    ) -> None:
        self.middlewares = middlewares
        self.hooks = hooks
        self.traces = traces
        self.retry = retry
        self.sync = sync

    @classmethod
    def build(
        cls,
        middlewares: _Chain,
        hooks: dict[str, list[EventHook]] | None,
        traces: tuple[TraceConfig, ...],
        retry: Retry | None,
        sync: bool,
    ) -> Pipeline | None:
        """A pipeline, or ``None`` when nothing is configured."""
        if retry is not None and retry.total == 0:
            retry = None  # Retry(0): the first failure exhausts it
        if not middlewares and hooks is None and not traces and retry is None:
            return None
        return cls(middlewares, hooks, traces, retry, sync)

    async def send(
        self,
        client: AsyncClient,
        request: Request,
        auth: Any,
        follow_redirects: bool,
        trace_request_ctx: Any,
    ) -> Response:
        """Send ``request`` through the client's redirect loop with this
        pipeline, emitting the request-level trace signals around it."""
        run = _Run(self, client, trace_request_ctx)
        tracer = run.tracer
        if tracer is None:
            return await client._send_handling_redirects(request, auth, follow_redirects, run)
        request.extensions["trace"] = tracer.transport_hook
        await tracer.request_start(request)
        run.request = request
        try:
            response = await client._send_handling_redirects(
                request, auth, follow_redirects, run
            )
        except Exception as exc:
            await tracer.request_exception(run.request, exc)
            raise
        try:
            await tracer.request_end(response.request, response)
        except BaseException:
            await response._aclose()
            raise
        return response


class _Run:
    """One ``send`` through a :class:`Pipeline`: its tracer and the chain
    run for each hop."""

    __slots__ = ("chain", "client", "pipeline", "request", "tracer")

    def __init__(self, pipeline: Pipeline, client: AsyncClient, trace_request_ctx: Any) -> None:
        self.pipeline = pipeline
        self.client = client
        self.request: Request | None = None
        chain = pipeline.middlewares
        if pipeline.retry is not None:
            chain = (*chain, self._retry_link)
        if pipeline.hooks is not None:
            chain = (*chain, self._hooks_link)
        self.tracer: Tracer | None = None
        if pipeline.traces:
            from ._tracing import Tracer

            self.tracer = Tracer(client._owner, pipeline.traces, trace_request_ctx, pipeline.sync)
            chain = (*chain, self._trace_link)
        self.chain = chain

    async def hop(self, request: Request, terminal: AsyncHandler) -> Response:
        """Run the chain for one redirect hop."""
        self.request = request
        return await _dispatch(self.chain, 0, request, terminal, self.pipeline.sync)

    async def redirect(self, request: Request, response: Response) -> None:
        """A redirect ``response`` to ``request`` is followed."""
        if self.tracer is not None:
            await self.tracer.request_redirect(request, response)

    # -- internal links -----------------------------------------------------

    async def _hooks_link(self, request: Request, handler: AsyncHandler) -> Response:
        hooks = self.pipeline.hooks
        assert hooks is not None
        sync = self.pipeline.sync
        for hook in list(hooks["request"]):
            await call_callback(sync, hook, request)
        response = await handler(request)
        try:
            for hook in list(hooks["response"]):
                await call_callback(sync, hook, response)
        except BaseException:
            await response._aclose()
            raise
        return response

    async def _trace_link(self, request: Request, handler: AsyncHandler) -> Response:
        from ._tracing import TracedRequestBody, TracedResponseStream

        tracer = self.tracer
        assert tracer is not None
        body = request._body
        sent_whole: bytes | None = None
        if isinstance(body, bytes):
            sent_whole = body
        elif body is not None and not isinstance(body, TracedRequestBody):
            request._body = TracedRequestBody(body, request, tracer)
        response = await handler(request)
        try:
            if sent_whole:
                # A bytes body is written by the transport as a whole: it is
                # reported once, when it was sent.
                await tracer.chunk_sent(request, sent_whole)
            if not isinstance(response._stream, TracedResponseStream):
                response._stream = TracedResponseStream(response._stream, request, tracer)
        except BaseException:
            await response._aclose()
            raise
        return response

    async def _retry_link(self, request: Request, handler: AsyncHandler) -> Response:
        retry = self.pipeline.retry
        assert retry is not None
        backend = self.client._backend
        assert backend is not None
        method = request.method
        while True:
            try:
                response = await handler(request)
            except WebwireError as exc:
                if Retry.is_connect_error(exc):
                    allowed = True
                elif Retry.is_read_error(exc):
                    allowed = retry.is_method_retryable(method) and request._replayable()
                else:
                    allowed = False
                if not allowed:
                    raise
                retry = retry.increment(method=method, error=exc)
                if retry.is_exhausted() or not await _wait(
                    backend, request, retry.get_backoff_time()
                ):
                    raise
                continue
            if not retry.is_retry(method, response.status_code) or not request._replayable():
                return response
            following = retry.increment(method=method, response=response)
            if following.is_exhausted():
                return response
            delay = following.get_retry_after(response) if retry.respect_retry_after else None
            if delay is None:
                delay = following.get_backoff_time()
            if not _fits(backend, request, delay):
                return response
            try:
                await response._adrain(_DRAIN_LIMIT)
            except WebwireError:
                await response._aclose()  # the connection is not reused
            await _wait(backend, request, delay)
            retry = following


def _fits(backend: Any, request: Request, delay: float) -> bool:
    """Whether waiting ``delay`` seconds leaves time before the request's
    total deadline."""
    deadline = request.extensions.get("deadline")
    return deadline is None or backend.monotonic() + delay < deadline


async def _wait(backend: Any, request: Request, delay: float) -> bool:
    """Wait ``delay`` seconds on the backend's clock; ``False`` (without
    waiting) when that would pass the request's total deadline."""
    if not _fits(backend, request, delay):
        return False
    if delay > 0:
        await backend.sleep(delay)
    return True
