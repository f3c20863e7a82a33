"""A small ASGI application served by ``webwire demo`` and the CLI tests.

Routes (all answers are JSON unless noted):

* ``GET /get``: echo of the method, query arguments, headers and URL, with
  the HTTP version the server saw (``"http_version"``: ``"1.1"`` or ``"2"``)
  and the client's address and port (``"connection"``: one value per TCP
  connection, so requests multiplexed on one HTTP/2 connection share it).
* ``POST /post`` (also ``PUT``/``PATCH``/``DELETE``): the same echo plus the
  body, parsed as JSON (``"json"``) or as a form (``"form"``) when it is one.
* ``/anything[/...]``: the echo of ``/post`` for any method.
* ``POST /upload``: reads a body of any size (at most 1 GiB) without
  keeping it and answers with its ``"size"`` in bytes, its ``"sha256"``
  (hex) and the ``"http_version"`` and ``"connection"`` of the echo.
* ``GET /bytes/N``: ``N`` bytes of ``application/octet-stream``, sent in
  64 KiB chunks with a ``Content-Length`` (at most 1 GiB).
* ``GET /redirect/N``: a chain of ``N`` ``302 Found`` redirects ending at
  ``/get`` (RFC 9110 section 15.4.3).
* ``GET /cookies/set?name=value``: sets each query argument as a cookie
  (RFC 6265 section 4.1) and answers with the cookies set.
* ``GET /cookies``: the cookies the request carried.
* ``GET /delay/S``: answers after ``S`` seconds (at most 10).
* ``GET /status/N``: an empty response with status ``N``; a 3xx status also
  carries ``Location: /get``.
* ``GET /headers``: the request's headers.
* WebSocket ``/ws`` (RFC 6455; over HTTP/2 too, RFC 8441): accepts, sends
  nothing first, then echoes every message, text as text and binary as
  binary, until the client closes. Another WebSocket path is refused
  (``403`` before the handshake completes).

Everything else is ``404 Not Found``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["CHUNK_SIZE", "MAX_BYTES", "MAX_DELAY", "app", "demo_pattern"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHUNK_SIZE = 64 * 1024
MAX_BYTES = 1024 * 1024 * 1024
MAX_DELAY = 10.0
_MAX_REQUEST_BODY = 16 * 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_BODY_STATUS = frozenset({204, 304})


def demo_pattern(size: int) -> bytes:
    """The bytes ``/bytes/N`` sends, cut to ``size`` bytes.

    The body is the 256 byte values ``0..255`` repeated, so a receiver can
    check what it got without keeping a copy.

    Args:
        size: Number of bytes wanted (>= 0).

    Returns:
        ``size`` bytes of the repeating pattern, starting at offset 0.
    """
    whole, rest = divmod(size, 256)
    return bytes(range(256)) * whole + bytes(range(rest))


_CHUNK = demo_pattern(CHUNK_SIZE)


async def _respond(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = [(b"content-length", str(len(body)).encode())]
    if body:
        head.append((b"content-type", content_type.encode()))
    head.extend(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send,
    value: object,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
    await _respond(send, status, body, headers=headers)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def _connection(scope: Scope) -> dict[str, str]:
    """The HTTP version and the client address of a request's connection."""
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else ""
    return {"http_version": str(scope.get("http_version", "")), "connection": peer}


def _echo(scope: Scope) -> dict[str, Any]:
    headers = _headers(scope)
    host = headers.get("Host", "")
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{query}" if query else "")
    echo = {"method": scope["method"], "args": _query(scope), "headers": headers, "url": url}
    echo.update(_connection(scope))
    return echo


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_REQUEST_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _describe_body(body: bytes, content_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {"data": body.decode("utf-8", "replace"), "json": None, "form": {}}
    if content_type.startswith("application/x-www-form-urlencoded"):
        out["form"] = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    try:
        out["json"] = json.loads(body) if body else None
    except ValueError:
        pass
    return out


async def _post(scope: Scope, receive: Receive, send: Send) -> None:
    body = await _read_body(receive)
    if body is None:
        await _json(send, {"error": "request body missing or too large"}, 413)
        return
    echo = _echo(scope)
    echo.update(_describe_body(body, echo["headers"].get("Content-Type", "")))
    await _json(send, echo)


async def _upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Count and hash a request body of any size, keeping none of it."""
    digest = hashlib.sha256()
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BYTES:
            await _json(send, {"error": f"body larger than {MAX_BYTES} bytes"}, 413)
            return
        digest.update(chunk)
        if not message.get("more_body", False):
            break
    await _json(send, {"size": size, "sha256": digest.hexdigest(), **_connection(scope)})


async def _bytes(receive: Receive, send: Send, size: int) -> None:
    if size < 0 or size > MAX_BYTES:
        await _json(send, {"error": f"size must be 0..{MAX_BYTES}"}, 400)
        return
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(size).encode()),
    ]
    gone = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = size
        while left > CHUNK_SIZE:
            if gone.done():
                return
            await send({"type": "http.response.body", "body": _CHUNK, "more_body": True})
            left -= CHUNK_SIZE
        await send({"type": "http.response.body", "body": _CHUNK[:left]})
    finally:
        gone.cancel()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _redirect(send: Send, count: int) -> None:
    target = b"/get" if count <= 1 else f"/redirect/{count - 1}".encode()
    await _respond(send, 302, headers=[(b"location", target)])


async def _status(send: Send, status: int) -> None:
    if not 200 <= status <= 599:
        await _json(send, {"error": "status must be 200..599"}, 400)
        return
    headers = [(b"location", b"/get")] if 300 <= status < 400 else []
    if status in _NO_BODY_STATUS:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    await _respond(send, status, f"{status} {phrase}\n".encode(), "text/plain", headers)


def _cookies(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, sep, val = pair.strip().partition("=")
            if sep:
                out[key] = val
    return out


async def _set_cookies(scope: Scope, send: Send) -> None:
    values = _query(scope)
    headers = [(b"set-cookie", f"{k}={v}; Path=/".encode("latin-1")) for k, v in values.items()]
    await _json(send, {"cookies": values}, headers=headers)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value else None


async def _route_get(scope: Scope, receive: Receive, send: Send, path: str) -> bool:
    head, _, tail = path.lstrip("/").partition("/")
    number = _number(tail) if tail else None
    if path == "/get":
        await _json(send, _echo(scope))
    elif path == "/headers":
        await _json(send, {"headers": _headers(scope)})
    elif path == "/cookies":
        await _json(send, {"cookies": _cookies(scope)})
    elif path == "/cookies/set":
        await _set_cookies(scope, send)
    elif head == "bytes" and number is not None and number.is_integer():
        await _bytes(receive, send, int(number))
    elif head == "redirect" and number is not None and number.is_integer() and number >= 1:
        await _redirect(send, int(number))
    elif head == "status" and number is not None and number.is_integer():
        await _status(send, int(number))
    elif head == "delay" and number is not None and number >= 0:
        if await _sleep_unless_gone(receive, min(number, MAX_DELAY)):
            await _json(send, _echo(scope))
    else:
        return False
    return True


async def _sleep_unless_gone(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``; return ``False`` early if the client disconnects."""

    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait_for(asyncio.shield(watcher), seconds)
    except asyncio.TimeoutError:
        return True
    finally:
        watcher.cancel()
    return False


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """The ``/ws`` echo; any other path is refused (``websocket.close``
    before ``websocket.accept``: the server answers ``403``)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The demo ASGI 3 application (routes in the module docstring).

    Args:
        scope: The ASGI connection scope (``http``, ``websocket`` or
            ``lifespan``).
        receive: The ASGI receive callable.
        send: The ASGI send callable.
    """
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    method: str = scope["method"]
    anything = path == "/anything" or path.startswith("/anything/")
    if path == "/upload" and method == "POST":
        await _upload(scope, receive, send)
    elif anything or (path == "/post" and method in _BODY_METHODS):
        await _post(scope, receive, send)
    elif method in ("GET", "HEAD") and await _route_get(scope, receive, send, path):
        return
    else:
        await _json(send, {"error": "not found", "path": path}, 404)
