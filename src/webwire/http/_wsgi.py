"""Send requests to a WSGI application in process: :class:`WSGITransport`.

The app (PEP 3333) plays the server for the blocking :class:`~webwire.Client`:
the request body is read from ``wsgi.input`` as the app asks for it, and
the app's response iterable is consumed lazily as the caller reads the body
(its ``close()`` is called when the body ends or the response is closed).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote_to_bytes

from multidict import CIMultiDict, CIMultiDictProxy

from webwire._exceptions import LocalProtocolError, RemoteProtocolError
from webwire._sync import run_sync
from webwire._transport._types import close_body_iterator

from ._models import Response
from ._transports import AsyncBaseTransport

if TYPE_CHECKING:
    from webwire._backends.base import Backend

    from ._request import Request

__all__ = ["WSGITransport"]

_LINE_CHUNK = 64 * 1024


async def _next_chunk(source: AsyncIterator[bytes]) -> bytes:
    return await source.__anext__()


class _WSGIInput:
    """``wsgi.input``: the request body, pulled from the request's body
    iterator only as the app reads it."""

    def __init__(self, request: Request) -> None:
        body = request.stream
        self._buffer = bytearray(body if isinstance(body, bytes) else b"")
        self._source: AsyncIterator[bytes] | None = None
        if body is not None and not isinstance(body, bytes):
            self._source = body.__aiter__()

    def _fill(self) -> bool:
        """Append the next chunk of the body; ``False`` at its end."""
        source = self._source
        if source is None:
            return False
        try:
            chunk = run_sync(_next_chunk(source))
        except StopAsyncIteration:
            self._source = None
            return False
        self._buffer.extend(chunk)
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (all the rest when negative or ``None``)."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line (ending with ``\\n``), at most ``size`` bytes."""
        limit = None if size is None or size < 0 else size
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                count = end + 1
                break
            start = len(self._buffer)
            if (limit is not None and start >= limit) or not self._fill():
                count = len(self._buffer)
                break
        if limit is not None:
            count = min(count, limit)
        return self._take(count)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end (or about ``hint`` bytes)."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        """Release the body iterator."""
        source, self._source = self._source, None
        if source is not None:
            run_sync(close_body_iterator(source))


class _StartResponse:
    """``start_response`` of one call (PEP 3333 "The start_response()
    Callable"), with ``exc_info`` handling."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.written: list[bytes] = []

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RemoteProtocolError("start_response() was already called (PEP 3333)")
        self.status = status
        self.headers = list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise RemoteProtocolError("write() called before start_response() (PEP 3333)")
        self.written.append(bytes(data))


class _WSGIBody:
    """The response body: parts passed to ``write()``, then the app's
    iterable, consumed as the caller reads; ``close()`` called at the end."""

    __slots__ = ("_closed", "_first", "_input", "_iterable", "_iterator", "_transport")

    def __init__(
        self,
        transport: WSGITransport,
        first: list[bytes],
        iterable: Iterable[bytes],
        iterator: Iterator[bytes] | None,
        wsgi_input: _WSGIInput,
    ) -> None:
        self._transport = transport
        self._input = wsgi_input
        self._first = first
        self._iterable = iterable
        self._iterator = iterator
        self._closed = False

    def __aiter__(self) -> _WSGIBody:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            return self._first.pop(0)
        iterator = self._iterator
        while iterator is not None:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                await self.aclose()
                if self._transport.raise_app_exceptions:
                    raise
                raise RemoteProtocolError(
                    "the WSGI app failed while sending the response body"
                ) from exc
            if chunk:
                return bytes(chunk)
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Call the iterable's ``close()`` (once)."""
        if not self._closed:
            self._closed = True
            self._iterator = None
            self._first.clear()
            try:
                close = getattr(self._iterable, "close", None)
                if close is not None:
                    close()
            finally:
                self._input.close()


class WSGITransport(AsyncBaseTransport):
    """Send requests to a WSGI application (PEP 3333) in process, for the
    blocking :class:`~webwire.Client` (``Client(app=app)`` builds one).

    The environ holds ``REQUEST_METHOD``, ``SCRIPT_NAME`` (``script_name``)
    and ``PATH_INFO`` (the rest of the percent-decoded path, as latin-1
    text), ``QUERY_STRING``, ``CONTENT_TYPE``, ``CONTENT_LENGTH``,
    ``SERVER_NAME``/``SERVER_PORT``, ``SERVER_PROTOCOL``, ``REMOTE_ADDR``,
    one ``HTTP_*`` key per request field (repeated fields joined with
    ``", "``), and the ``wsgi.*`` keys; ``wsgi.input`` reads the request
    body lazily (``wsgi.input_terminated`` is set, so a streamed body
    without ``Content-Length`` can be read to its end). The response
    iterable is consumed as the body is read, and its ``close()`` is always
    called.

    Args:
        app: The WSGI application.
        raise_app_exceptions: Re-raise the app's exceptions unchanged. When
            ``False``, a failure before the response starts gives a ``500``
            response, one in the middle of the body a
            :class:`~webwire.RemoteProtocolError`.
        script_name: ``SCRIPT_NAME``: the mount point of the app; a request
            path under it has it removed from ``PATH_INFO``.
        remote_addr: ``REMOTE_ADDR``: the client address the app sees.
        wsgi_errors: ``wsgi.errors`` (default ``sys.stderr``).

    Raises:
        TypeError: ``app`` is an ASGI application.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        raise_app_exceptions: bool = True,
        script_name: str = "",
        remote_addr: str = "127.0.0.1",
        wsgi_errors: TextIO | None = None,
    ) -> None:
        from ._asgi import is_asgi_app

        if is_asgi_app(app):
            raise TypeError(
                f"{app!r} is an ASGI app: send requests to it with AsyncClient(app=...)"
            )
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.script_name = script_name.rstrip("/")
        self.remote_addr = remote_addr
        self.wsgi_errors = wsgi_errors

    def _bind_backend(self, backend: Backend) -> None:
        if backend.name != "sync":
            raise TypeError(
                "WSGITransport serves the blocking Client; an AsyncClient sends requests "
                "to ASGI apps (ASGITransport)"
            )

    def _environ(self, request: Request, wsgi_input: _WSGIInput) -> dict[str, Any]:
        url = request.url
        path = unquote_to_bytes(url.raw_path or "/").decode("latin-1")
        script = self.script_name
        if script and (path == script or path.startswith(script + "/")):
            path = path[len(script) :]
        scheme = url.scheme
        port = url.port if url.port is not None else (443 if scheme == "https" else 80)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": script,
            "PATH_INFO": path,
            "QUERY_STRING": url.raw_query_string,
            "SERVER_NAME": url.raw_host or "",
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": wsgi_input,
            "wsgi.input_terminated": True,
            "wsgi.errors": self.wsgi_errors if self.wsgi_errors is not None else sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError as exc:
                raise LocalProtocolError(
                    "header fields must be latin-1 text (RFC 9110 section 5.5)", request=request
                ) from exc
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
                continue
            key = "HTTP_" + key
            if key in environ:
                sep = "; " if key == "HTTP_COOKIE" else ", "
                environ[key] = environ[key] + sep + value
            else:
                environ[key] = value
        return environ

    async def handle_async_request(self, request: Request) -> Response:
        """Call the app for ``request``.

        Returns:
            The app's response; its body is the app's iterable, read lazily.

        Raises:
            Exception: The app's own exception, unchanged
                (``raise_app_exceptions``), when it fails before the first
                body part.
            RemoteProtocolError: The app returned without calling
                ``start_response``, or gave an invalid status line.
            LocalProtocolError: A header is not latin-1 text.
        """
        wsgi_input = _WSGIInput(request)
        start = _StartResponse()
        environ = self._environ(request, wsgi_input)
        iterable: Iterable[bytes] | None = None
        first: list[bytes] = []
        iterator: Iterator[bytes] | None = None
        try:
            iterable = self.app(environ, start)
            iterator = iter(iterable)
            # The head is "sent" with the first non-empty part (PEP 3333):
            # until then the app may still replace it (start_response with
            # exc_info).
            first = [data for data in start.written if data]
            while not first:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    iterator = None
                    break
                if chunk:
                    first.append(bytes(chunk))
                first.extend(data for data in start.written if data)
                start.written.clear()
            start.sent = True
            if start.status is None:
                raise RemoteProtocolError(
                    "the WSGI app returned without calling start_response()", request=request
                )
            status_code = _status_code(start.status, request)
        except Exception:
            if iterable is not None:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
            wsgi_input.close()
            if self.raise_app_exceptions:
                raise
            return Response(500, text="Internal Server Error", request=request)
        if request.method == "HEAD":
            # As a server would: a HEAD response has no body (RFC 9110 9.3.2).
            first, iterator = [], None
        fields: CIMultiDict[str] = CIMultiDict(
            (str(name), str(value)) for name, value in start.headers
        )
        body = _WSGIBody(self, first, iterable, iterator, wsgi_input)
        return Response._from_transport(
            status_code,
            start.status.partition(" ")[2],
            "HTTP/1.1",
            CIMultiDictProxy(fields),
            body,
            {},
            request,
        )


def _status_code(status: str, request: Request) -> int:
    code = status.partition(" ")[0]
    if len(code) != 3 or not code.isdigit() or int(code) < 100:
        raise RemoteProtocolError(
            f"the WSGI app gave an invalid status line {status!r}", request=request
        )
    return int(code)
