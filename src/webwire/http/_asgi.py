"""Send requests to an ASGI application in process: :class:`ASGITransport`.

The app (ASGI 3: ``async def app(scope, receive, send)``) plays the server.
Each request runs the app in a task of a task group the transport owns
while a client holds it open (``async with AsyncClient(app=app)``): the
request body is handed to the app chunk by chunk as it calls ``receive``,
and the response body reaches the caller as the app sends it, so endless
and server-sent event responses stream. WebSocket handshakes (requests
with ``extensions["protocol"] == "websocket"``) run the app in the ASGI
WebSocket scope (:mod:`webwire.http._asgi_websocket`). Only the
:class:`Backend` interface is used, so the same code runs on asyncio and on
trio.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from multidict import CIMultiDict, CIMultiDictProxy

from webwire._backends.base import ChannelClosed
from webwire._config import DEFAULT_TIMEOUT, Timeout
from webwire._exceptions import LifespanError, LocalProtocolError, RemoteProtocolError
from webwire._transport._types import close_body_iterator

from ._models import Response
from ._transports import AsyncBaseTransport

if TYPE_CHECKING:
    from webwire._backends.base import Backend, Channel, Event, TaskGroup

    from ._request import Request

__all__ = ["ASGIApp", "ASGITransport", "is_asgi_app"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_QUEUE_SIZE = 16
_END = ("end",)


def is_asgi_app(app: Any) -> bool:
    """Whether ``app`` looks like an ASGI 3 application: a coroutine
    function, or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def _disconnected() -> OSError:
    # As ASGI servers do (spec 2.4 makes it a rule): send() after the client
    # went away raises an OSError.
    return OSError("the client closed the response")


def _misuse(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"{message} (ASGI HTTP protocol)")


class _Exchange:
    """One request/response between the caller and the app.

    Messages to the caller go through ``channel``, a bounded channel, when
    the app runs in its own task (back-pressure on a fast app), or
    ``buffer``, a list, when it runs to completion in the caller's task.
    Misuse of the protocol by the app raises
    :class:`~webwire.RemoteProtocolError` inside the app (the app plays the
    server), which then reaches the caller as the app's error.
    """

    def __init__(
        self,
        transport: ASGITransport,
        request: Request,
        backend: Backend,
        channel: Channel[Any] | None,
    ) -> None:
        self.transport = transport
        self.request = request
        self.backend = backend
        self.channel = channel
        self.buffer: list[Any] = []
        self.done: Event = backend.create_event()
        self.head = request.method == "HEAD"
        self.started = False
        self.complete = False
        self.disconnected = False
        self.request_complete = False
        self.body: AsyncIterator[bytes] | None = None
        self.body_bytes: bytes | None = None
        body = request.stream
        if body is None:
            self.body_bytes = b""
        elif isinstance(body, bytes):
            self.body_bytes = body
        else:
            self.body = body.__aiter__()

    # -- the app's side -----------------------------------------------------

    async def receive(self) -> Message:
        if not self.request_complete and not self.disconnected:
            if self.body is None:
                self.request_complete = True
                data, self.body_bytes = self.body_bytes or b"", None
                return {"type": "http.request", "body": data, "more_body": False}
            try:
                chunk = await self.body.__anext__()
            except StopAsyncIteration:
                self.request_complete = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise _disconnected()
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise _misuse("ASGI app sent 'http.response.start' twice")
            status = message["status"]
            if not isinstance(status, int) or not 100 <= status <= 999:
                raise _misuse(f"ASGI app sent an invalid status {status!r}")
            self.started = True
            await self._put(("start", status, list(message.get("headers", ()))))
        elif kind == "http.response.body":
            if not self.started:
                raise _misuse("ASGI app sent 'http.response.body' before the response start")
            if self.complete:
                raise _misuse("ASGI app sent 'http.response.body' after the last body part")
            data = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if data and not self.head:
                await self._put(("body", data))
            if not more:
                self.complete = True
                await self._put(_END)
                self.done.set()
        elif kind == "http.response.trailers":
            return
        else:
            raise _misuse(f"ASGI app sent an unexpected message {kind!r}")

    async def _put(self, item: Any) -> None:
        channel = self.channel
        if channel is None:
            self.buffer.append(item)
            return
        try:
            await channel.send(item)
        except ChannelClosed:
            raise _disconnected() from None

    async def run(self, scope: dict[str, Any]) -> None:
        """Run the app; never raises an app error (the caller gets it)."""
        error: BaseException | None = None
        try:
            await self.transport.app(scope, self.receive, self.send)
        except Exception as exc:
            error = exc
        finally:
            await self._close_body()
        if self.disconnected or (error is None and self.complete):
            return
        if error is None:
            what = "sending a response" if not self.started else "finishing the response body"
            error = RemoteProtocolError(
                f"the ASGI app returned without {what}", request=self.request
            )
        try:
            await self._put(("error", error))
        except OSError:
            pass
        self.done.set()

    async def _close_body(self) -> None:
        body, self.body = self.body, None
        if body is not None:
            await close_body_iterator(body)

    # -- the caller's side ----------------------------------------------------

    async def next_item(self, timeout: float | None) -> Any:
        if self.channel is None:
            return self.buffer.pop(0) if self.buffer else _END
        try:
            return await self.channel.receive(timeout)
        except ChannelClosed:
            return _END

    async def failure_after_end(self) -> BaseException | None:
        """An error the app raised right after its last body part (as
        Starlette's error middleware does after sending its 500)."""
        if self.channel is None:
            item = self.buffer.pop(0) if self.buffer else None
        else:
            await self.backend.checkpoint()
            try:
                item = self.channel.receive_nowait()
            except (IndexError, ChannelClosed):
                item = None
        if item is not None and item[0] == "error":
            error: BaseException = item[1]
            return error
        return None

    def disconnect(self) -> None:
        """The caller is gone (closed the response early, or failed)."""
        if not self.disconnected:
            self.disconnected = True
            if self.channel is not None:
                self.channel.close()
            self.done.set()


class _ASGIBody:
    """The response body as the app sends it (async iterable, one pass)."""

    __slots__ = ("_exchange", "_finished", "_timeout")

    def __init__(self, exchange: _Exchange, timeout: float | None) -> None:
        self._exchange = exchange
        self._timeout = timeout
        self._finished = False

    def __aiter__(self) -> _ASGIBody:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        exchange = self._exchange
        try:
            item = await exchange.next_item(self._timeout)
        except BaseException:
            self._finished = True
            exchange.disconnect()
            raise
        kind = item[0]
        if kind == "body":
            data: bytes = item[1]
            return data
        self._finished = True
        if kind == "end":
            if exchange.transport.raise_app_exceptions:
                failure = await exchange.failure_after_end()
                if failure is not None:
                    raise failure
            raise StopAsyncIteration
        # ("error", exc) after the response started.
        exchange.disconnect()
        error: BaseException = item[1]
        if exchange.transport.raise_app_exceptions or isinstance(error, RemoteProtocolError):
            raise error
        raise RemoteProtocolError(
            "the ASGI app failed while sending the response body", request=exchange.request
        ) from error

    async def aclose(self) -> None:
        """Stop reading: the app sees ``http.disconnect`` (and an
        ``OSError`` from its next ``send``)."""
        self._finished = True
        self._exchange.disconnect()


class _Lifespan:
    """The ASGI lifespan protocol run in a task of the transport's group."""

    def __init__(self, transport: ASGITransport, backend: Backend) -> None:
        self.transport = transport
        self.to_app: Channel[Message] = backend.create_channel(2)
        self.from_app: Channel[Any] = backend.create_channel(4)
        self.received = False
        self.ended = False
        self.supported = True

    async def receive(self) -> Message:
        self.received = True
        return await self.to_app.receive()

    async def send(self, message: Message) -> None:
        await self.from_app.send(("message", message))

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(_ASGI), "state": self.transport._state}
        error: BaseException | None = None
        try:
            await self.transport.app(scope, self.receive, self.send)
        except Exception as exc:
            error = exc
        self.ended = True
        try:
            await self.from_app.send(("ended", error))
        except ChannelClosed:
            pass

    async def step(self, event: str) -> None:
        """Send ``lifespan.<event>`` and wait for the app's answer."""
        if not self.supported or self.ended:
            return
        await self.to_app.send({"type": f"lifespan.{event}"})
        kind, value = await self.from_app.receive()
        if kind == "message":
            answer = value.get("type")
            if answer == f"lifespan.{event}.complete":
                return
            if answer == f"lifespan.{event}.failed":
                detail = value.get("message", "")
                raise LifespanError(f"ASGI lifespan {event} failed: {detail}".rstrip(": "))
            raise LifespanError(f"ASGI app sent {answer!r} during lifespan {event}")
        error: BaseException | None = value
        if event == "startup" and not self.received:
            # The app refused the lifespan scope before reading anything:
            # it does not support the protocol; carry on without it.
            self.supported = False
            return
        if error is None and event == "shutdown":
            return
        raise LifespanError(f"the ASGI app ended during lifespan {event}") from error


class ASGITransport(AsyncBaseTransport):
    """Send requests to an ASGI 3 application in process, without a
    network (ASGI HTTP connection scope, spec version 2.3).

    Used by ``AsyncClient(app=app)``; pass one explicitly for the options.
    With the client open as ``async with``, each request runs the app in its
    own task and the response streams: the caller reads the first chunks of
    an endless response while the app runs, and closing the response early
    delivers ``http.disconnect`` to the app (and an ``OSError`` from its next
    ``send``). Used without ``async with``, the app runs to completion in
    the caller's task and the response body is collected in memory first
    (an endless response then never returns).

    WebSocket: with the client open, :func:`webwire.websocket.connect`
    (``client=``) talks to the app's WebSocket endpoints in process (ASGI
    WebSocket scope, spec 2.4, scheme ``ws``/``wss``, ``subprotocols`` from
    ``Sec-WebSocket-Protocol``). ``websocket.accept`` gives the ``101``
    (with the app's subprotocol and header fields), ``websocket.close``
    before acceptance a ``403`` and a ``websocket.http.response`` denial
    (advertised in the scope's ``extensions``) its own status and body: the
    client then raises :class:`~webwire.InvalidStatus`. No compression is
    negotiated. An app error before acceptance is raised from ``connect``
    (``raise_app_exceptions``; else a ``500``); after acceptance it fails
    the connection with 1011 ("Internal Server Error"), is logged on
    ``webwire.asgi``, and (``raise_app_exceptions``) is the cause at the
    end of the ``__cause__`` chain of the client's
    :class:`~webwire.ConnectionClosedError`. Closing the client ends open
    connections (the client sees 1006).

    Args:
        app: The ASGI 3 application (``async def app(scope, receive,
            send)``).
        raise_app_exceptions: Re-raise the app's exceptions to the caller
            unchanged. When ``False``, an app that fails (or returns without
            a response) before starting the response gives a ``500``
            response, and a failure in the middle of the body a
            :class:`~webwire.RemoteProtocolError` (as a server dropping the
            connection would).
        root_path: The ASGI ``root_path`` (mount prefix); request paths
            include it.
        client: The ``(host, port)`` the app sees as the client's address.
        lifespan: Run the ASGI lifespan protocol: ``lifespan.startup`` when
            the client is entered (``async with``), ``lifespan.shutdown``
            when it exits; the app's ``state`` dictionary is copied into
            every request scope. Apps that raise on the lifespan scope before
            receiving anything are taken as not supporting it.

    Raises:
        TypeError: ``app`` is not an ASGI 3 application (a WSGI one, for
            example).
    """

    def __init__(
        self,
        app: Any,
        *,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
        lifespan: bool = False,
    ) -> None:
        if not is_asgi_app(app):
            raise TypeError(
                f"{app!r} is not an ASGI 3 application (async def app(scope, receive, send)); "
                "WSGI apps are served by Client(app=...) or WSGITransport"
            )
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.root_path = root_path
        self.client = client
        self.lifespan = lifespan
        self._backend: Backend | None = None
        self._group: TaskGroup | None = None
        self._life: _Lifespan | None = None
        self._state: dict[str, Any] = {}

    def _bind_backend(self, backend: Backend) -> None:
        if backend.name == "sync":
            raise TypeError(
                "ASGITransport needs AsyncClient (asyncio or trio); the blocking Client "
                "serves WSGI apps (WSGITransport)"
            )
        self._backend = backend

    # -- lifetime -------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the transport is entered (``async with``): requests then
        run the app in their own tasks and responses stream."""
        return self._group is not None

    async def __aenter__(self) -> ASGITransport:
        """Open the task group the app's requests run in, and run the
        lifespan startup when ``lifespan`` is on.

        Raises:
            LifespanError: The app's startup failed.
            RuntimeError: The transport is already open.
        """
        if self._group is not None:
            raise RuntimeError("this ASGITransport is already open")
        if self._backend is None:
            from webwire._backends import get_backend

            self._bind_backend(get_backend(None))
        backend = self._backend
        assert backend is not None
        group = backend.create_task_group()
        await group.__aenter__()
        self._group = group
        if self.lifespan:
            life = _Lifespan(self, backend)
            self._life = life
            group.start_soon(life.run)
            try:
                await life.step("startup")
            except BaseException:
                self._life = None
                await self._close_group()
                raise
        return self

    async def __aexit__(self, *args: object) -> None:
        """Run the lifespan shutdown (when on), then end the app tasks
        still running (responses not closed) and close the group.

        Raises:
            LifespanError: The app's shutdown failed.
        """
        life, self._life = self._life, None
        try:
            if life is not None:
                await life.step("shutdown")
        finally:
            await self._close_group()

    async def _close_group(self) -> None:
        group, self._group = self._group, None
        if group is not None:
            group.cancel()
            await group.__aexit__(None, None, None)

    # -- requests ---------------------------------------------------------------

    def _scope(self, request: Request) -> dict[str, Any]:
        url = request.url
        try:
            headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.items()
            ]
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(
                "header fields must be latin-1 text (RFC 9110 section 5.5)", request=request
            ) from exc
        raw_path = url.raw_path or "/"
        scheme = url.scheme
        port = url.port if url.port is not None else (443 if scheme == "https" else 80)
        return {
            "type": "http",
            "asgi": dict(_ASGI),
            "http_version": "1.1",
            "method": request.method,
            "scheme": scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("ascii"),
            "query_string": url.raw_query_string.encode("ascii"),
            "root_path": self.root_path,
            "headers": headers,
            "client": self.client,
            "server": (url.raw_host or "", port),
            "extensions": {},
            "state": dict(self._state),
        }

    async def handle_async_request(self, request: Request) -> Response:
        """Run the app for ``request``.

        Returns:
            The app's response; its body streams from the app (when the
            transport is open) and closing it early disconnects the app.

        Raises:
            Exception: The app's own exception, unchanged, when it fails
                before starting the response (``raise_app_exceptions``).
            LocalProtocolError: A WebSocket handshake while the transport
                is not open (``async with``).
            RemoteProtocolError: The app returned without a response.
            ReadTimeout: The app did not start the response (or send the
                next body part) within the read timeout.
            LocalProtocolError: A header is not latin-1 text.
        """
        backend = self._backend
        if backend is None:
            from webwire._backends import get_backend

            backend = get_backend(None)
            self._bind_backend(backend)
        timeout = request.extensions.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, Timeout):
            timeout = Timeout(timeout)
        if request.extensions.get("protocol") == "websocket":
            return await self._websocket(request, backend, timeout)
        scope = self._scope(request)
        group = self._group
        channel = backend.create_channel(_QUEUE_SIZE) if group is not None else None
        exchange = _Exchange(self, request, backend, channel)
        if group is not None:
            group.start_soon(exchange.run, scope)
        else:
            await exchange.run(scope)
        try:
            item = await exchange.next_item(timeout.read)
        except BaseException:
            exchange.disconnect()
            raise
        if item[0] != "start":
            exchange.disconnect()
            error = item[1] if item[0] == "error" else RemoteProtocolError(
                "the ASGI app ended without a response", request=request
            )
            if self.raise_app_exceptions:
                raise error
            return Response(500, text="Internal Server Error", request=request)
        _, status, raw_headers = item
        fields: CIMultiDict[str] = CIMultiDict(
            (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
            for name, value in raw_headers
        )
        return Response._from_transport(
            status,
            "",
            "HTTP/1.1",
            CIMultiDictProxy(fields),
            _ASGIBody(exchange, timeout.read),
            {},
            request,
        )

    # -- WebSocket ----------------------------------------------------------------

    def _websocket_scope(self, request: Request) -> dict[str, Any]:
        scope = self._scope(request)
        del scope["method"]
        scope["type"] = "websocket"
        scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        offered = ",".join(request.headers.getall("Sec-WebSocket-Protocol", ()))
        scope["subprotocols"] = [name.strip() for name in offered.split(",") if name.strip()]
        scope["extensions"] = {"websocket.http.response": {}}
        return scope

    async def _websocket(self, request: Request, backend: Backend, timeout: Timeout) -> Response:
        """Run the app for a WebSocket opening handshake (RFC 6455 section
        4; ASGI WebSocket scope): a ``101`` response whose
        ``extensions["detach"]`` gives the client's end of an in-memory
        stream, or the app's refusal (``403``, or its denial response)."""
        from websockets.utils import accept_key

        from ._asgi_websocket import WebSocketSession, pipe_pair

        group = self._group
        if group is None:
            raise LocalProtocolError(
                "a WebSocket connection to an ASGI app needs the client open: "
                "'async with AsyncClient(app=app) as client:'",
                request=request,
            )
        key = request.headers.get("Sec-WebSocket-Key")
        if key is None:
            raise LocalProtocolError(
                "a WebSocket handshake without Sec-WebSocket-Key", request=request
            )
        scope = self._websocket_scope(request)
        client_end, server_end = pipe_pair(backend, scope["client"], scope["server"])
        session = WebSocketSession(
            self.app, backend, group, server_end, self.raise_app_exceptions
        )
        group.start_soon(session.run, scope)
        try:
            item = await session.handshake.receive(timeout.read)
            if item[0] == "start":
                body: list[bytes] = []
                while True:
                    part = await session.handshake.receive(timeout.read)
                    if part[0] == "body":
                        body.append(part[1])
                    elif part[0] == "end":
                        return _ws_response(item[1], item[2], b"".join(body), request)
                    else:
                        item = part
                        break
        except BaseException:
            # Timed out or cancelled: the app sees the client disconnect.
            client_end.abort()
            session.handshake.close()
            session.disconnect()
            raise
        kind = item[0]
        if kind == "accept":
            _, subprotocol, app_headers = item
            headers = [
                (b"upgrade", b"websocket"),
                (b"connection", b"Upgrade"),
                (b"sec-websocket-accept", accept_key(key).encode()),
            ]
            if subprotocol is not None:
                headers.append((b"sec-websocket-protocol", str(subprotocol).encode()))
            headers.extend(app_headers)
            return _ws_response(101, headers, b"", request, detach=lambda: client_end)
        client_end.abort()
        if kind == "close":
            return _ws_response(403, [], b"", request)
        error = item[1]
        if self.raise_app_exceptions:
            if error is None:
                error = RemoteProtocolError(
                    "the ASGI app returned without accepting or refusing the WebSocket",
                    request=request,
                )
            raise error
        return _ws_response(500, [], b"Internal Server Error", request)


class _Body:
    """A response body already in memory (one chunk)."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._data:
            yield self._data


def _ws_response(
    status: int,
    raw_headers: list[tuple[bytes, bytes]],
    body: bytes,
    request: Request,
    detach: Callable[[], Any] | None = None,
) -> Response:
    fields: CIMultiDict[str] = CIMultiDict(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers
    )
    extensions: dict[str, Any] = {} if detach is None else {"detach": detach}
    return Response._from_transport(
        status,
        "Switching Protocols" if status == 101 else "",
        "HTTP/1.1",
        CIMultiDictProxy(fields),
        _Body(body),
        extensions,
        request,
    )
