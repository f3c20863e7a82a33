"""A plain ASGI application (no framework) that the integration servers run.

Routes (every request body is read in full before the response starts):

* ``/echo``: the request as JSON: ``method``, ``path``, ``query`` (raw
  string), ``args`` (decoded pairs), ``headers`` (pairs, names lowercased),
  ``body`` (UTF-8 text, undecodable bytes replaced), ``body_length``,
  ``body_sha256``, ``client`` (``[host, port]`` of the client socket, which
  shows whether a connection was reused).
* ``/json``: a fixed JSON document (:data:`JSON_DOCUMENT`).
* ``/bytes/{n}``: ``n`` bytes of :func:`pattern_bytes`, with Content-Length,
  sent in 64 KiB chunks.
* ``/stream/{n}``: ``n`` JSON lines, chunked transfer coding, one line per
  chunk.
* ``/redirect/{n}``: 302 to ``/redirect/{n-1}``, and ``/redirect/1`` to
  ``/echo``.
* ``/redirect-to?url=...&status=...``: a redirect to ``url`` (default 302).
* ``/relative-redirect``: 302 to the relative reference ``echo?via=relative``.
* ``/absolute-redirect``: 302 to the absolute URL of ``/echo?via=absolute``.
* ``/cookies/set?k=v...``: one Set-Cookie per pair, then 302 to ``/cookies``.
* ``/cookies``: ``{"cookies": {name: value}}`` parsed from the Cookie header.
* ``/gzip``, ``/deflate``, ``/br``: JSON encoded with that content coding
  (``deflate`` is the zlib format, RFC 9110 section 8.4.1.2).
* ``/status/{code}``: an empty response with that status.
* ``/stall``: sends the response head (chunked), then nothing until the
  client goes away; ``/stall?head=0`` does not even send the head.
* ``/slow-body``: Content-Length 50, one byte every 0.2 s.
* ``/delay/{seconds}``: answers ``/echo``-style JSON after that long.
* ``/basic-auth/{user}/{password}``: 200 with ``{"authenticated": true,
  "user": ...}`` for matching Basic credentials, else 401 with a
  ``WWW-Authenticate`` challenge.
* ``/headers``: ``{"headers": {name: value}}``.
* ``/html-latin1``: :data:`LATIN1_TEXT` in ISO-8859-1, declared in
  Content-Type.
* ``/no-charset``: :data:`GERMAN_TEXT` in ISO-8859-1, ``text/plain`` without
  a charset.
* ``/reject-upload``: 413 with a short body (Content-Length), sent at once
  WITHOUT reading the request body (an early response to an upload); the
  app then ends, and the server closes the connection its own way
  (hypercorn at once, resetting a client that is still sending; uvicorn
  after discarding the rest of the body).
  ``/reject-upload?linger=S``: the same 413, but the app keeps the
  exchange open for ``S`` seconds (still not reading) before it ends, as
  servers with a lingering close do (nginx): the response is complete, yet
  the connection is not reset under a client that is still sending.
* WebSocket ``/ws`` (hypercorn): accepts, then echoes every message back
  until the client closes.

Waiting endpoints watch for ``http.disconnect`` so they end as soon as the
client closes its connection.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

try:
    import brotli
except ImportError:  # pragma: no cover - brotli is a dev dependency
    brotli = None

__all__ = [
    "GERMAN_TEXT",
    "HAS_BROTLI",
    "JSON_DOCUMENT",
    "LATIN1_TEXT",
    "REJECT_UPLOAD_BODY",
    "SLOW_BODY_SIZE",
    "app",
    "pattern_bytes",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

HAS_BROTLI = brotli is not None
JSON_DOCUMENT: dict[str, Any] = {
    "name": "webwire",
    "numbers": [1, 2, 3],
    "nested": {"ok": True, "none": None},
    "unicode": "h\u00e9llo \u2603",
}
LATIN1_TEXT = (
    "Voil\u00e0 un caf\u00e9 cr\u00e8me tr\u00e8s chaud, d\u00e9j\u00e0 servi \u00e0 "
    "la fen\u00eatre: \u00e7a co\u00fbte cinq \u00e9cus. " * 4
)
GERMAN_TEXT = (
    "Gr\u00f6\u00dfe und Ma\u00dfe: Die Stra\u00dfe f\u00fchrt \u00fcber die "
    "Br\u00fccke. Sch\u00f6ne Gr\u00fc\u00dfe aus M\u00fcnchen, wir h\u00f6ren uns "
    "sp\u00e4ter. \u00c4pfel, \u00d6l und \u00dcbung. " * 4
)
SLOW_BODY_SIZE = 50
SLOW_BODY_INTERVAL = 0.2
CHUNK = 64 * 1024
_PATTERN = bytes(range(256)) * (CHUNK // 256)


def pattern_bytes(n: int) -> bytes:
    """The first ``n`` bytes ``/bytes/{n}`` sends (bytes 0..255 repeating)."""
    whole, rest = divmod(n, CHUNK)
    return _PATTERN * whole + _PATTERN[:rest]


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Read the whole request body; returns it and whether the client went
    away meanwhile."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts), True
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), False


async def _disconnected_within(receive: Receive, seconds: float | None) -> bool:
    """Wait up to ``seconds`` (``None``: forever) for the client to go away."""
    try:
        while True:
            message = await asyncio.wait_for(receive(), seconds)
            if message["type"] == "http.disconnect":
                return True
    except asyncio.TimeoutError:
        return False


async def _respond(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: Headers | None = None,
    content_type: bytes | None = b"text/plain; charset=utf-8",
) -> None:
    head: Headers = []
    if content_type is not None:
        head.append((b"content-type", content_type))
    head.extend(headers or [])
    head.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, data: Any, status: int = 200, headers: Headers | None = None) -> None:
    body = json.dumps(data).encode()
    await _respond(send, status, body, headers, b"application/json")


def _echo_document(scope: Scope, body: bytes) -> dict[str, Any]:
    query = scope.get("query_string", b"").decode("latin-1")
    client = scope.get("client")
    return {
        "method": scope["method"],
        "path": scope["path"],
        "query": query,
        "args": parse_qsl(query, keep_blank_values=True),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": body.decode("utf-8", "replace"),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "client": list(client) if client else None,
        "scheme": scope.get("scheme"),
        "http_version": scope.get("http_version"),
    }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _base_url(scope: Scope) -> str:
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _redirect(
    send: Send, location: str, status: int = 302, extra: Headers | None = None
) -> None:
    headers: Headers = [(b"location", location.encode("latin-1")), *(extra or [])]
    await _respond(send, status, b"", headers, None)


async def _bytes(send: Send, n: int) -> None:
    headers: Headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(n).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    sent = 0
    while sent < n:
        size = min(CHUNK, n - sent)
        await send({"type": "http.response.body", "body": _PATTERN[:size], "more_body": True})
        sent += size
    await send({"type": "http.response.body", "body": b""})


async def _stream(send: Send, n: int) -> None:
    headers: Headers = [(b"content-type", b"application/x-ndjson")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(n):
        line = json.dumps({"id": i, "text": f"line {i}"}).encode() + b"\n"
        await send({"type": "http.response.body", "body": line, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _stall(scope: Scope, receive: Receive, send: Send) -> None:
    if "head=0" not in scope.get("query_string", b"").decode():
        headers: Headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
    await _disconnected_within(receive, None)


async def _slow_body(receive: Receive, send: Send) -> None:
    headers: Headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(SLOW_BODY_SIZE).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for _ in range(SLOW_BODY_SIZE):
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        if await _disconnected_within(receive, SLOW_BODY_INTERVAL):
            return
    await send({"type": "http.response.body", "body": b""})


async def _basic_auth(scope: Scope, send: Send, user: str, password: str) -> None:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if _header(scope, b"authorization") == expected:
        await _json(send, {"authenticated": True, "user": user})
    else:
        challenge: Headers = [(b"www-authenticate", b'Basic realm="webwire tests"')]
        await _json(send, {"authenticated": False}, 401, challenge)


async def _encoded(send: Send, coding: str, scope: Scope) -> None:
    data = json.dumps({coding: True, "method": scope["method"], "padding": "z" * 2000}).encode()
    if coding == "gzip":
        body = gzip.compress(data)
    elif coding == "deflate":
        body = zlib.compress(data)
    else:
        assert brotli is not None
        body = brotli.compress(data)
    headers: Headers = [(b"content-encoding", coding.encode())]
    await _respond(send, 200, body, headers, b"application/json")


async def _route(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    path: str = scope["path"]
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    parts = path.strip("/").split("/")
    head, args = parts[0], parts[1:]
    if path in ("/echo", "/anything") or head == "anything":
        await _json(send, _echo_document(scope, body))
    elif path == "/json":
        await _json(send, JSON_DOCUMENT)
    elif head == "bytes" and len(args) == 1:
        await _bytes(send, int(args[0]))
    elif head == "stream" and len(args) == 1:
        await _stream(send, int(args[0]))
    elif head == "redirect" and len(args) == 1:
        n = int(args[0])
        await _redirect(send, "/echo" if n <= 1 else f"/redirect/{n - 1}")
    elif path == "/redirect-to":
        await _redirect(send, query["url"], int(query.get("status", "302")))
    elif path == "/relative-redirect":
        await _redirect(send, "echo?via=relative")
    elif path == "/absolute-redirect":
        await _redirect(send, _base_url(scope) + "/echo?via=absolute")
    elif path == "/cookies/set":
        cookies: Headers = [
            (b"set-cookie", f"{k}={v}; Path=/".encode("latin-1")) for k, v in query.items()
        ]
        await _redirect(send, "/cookies", 302, cookies)
    elif path == "/cookies":
        raw = _header(scope, b"cookie") or ""
        pairs = [c.strip().partition("=") for c in raw.split(";") if c.strip()]
        await _json(send, {"cookies": {k: v for k, _, v in pairs}})
    elif path in ("/gzip", "/deflate") or (path == "/br" and HAS_BROTLI):
        await _encoded(send, path[1:], scope)
    elif head == "status" and len(args) == 1:
        await _respond(send, int(args[0]))
    elif path == "/stall":
        await _stall(scope, receive, send)
    elif path == "/slow-body":
        await _slow_body(receive, send)
    elif head == "delay" and len(args) == 1:
        if not await _disconnected_within(receive, float(args[0])):
            await _json(send, _echo_document(scope, body))
    elif head == "basic-auth" and len(args) == 2:
        await _basic_auth(scope, send, args[0], args[1])
    elif path == "/headers":
        pairs2 = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        await _json(send, {"headers": dict(pairs2)})
    elif path == "/html-latin1":
        body2 = f"<p>{LATIN1_TEXT}</p>".encode("latin-1")
        await _respond(send, 200, body2, None, b"text/html; charset=ISO-8859-1")
    elif path == "/no-charset":
        await _respond(send, 200, GERMAN_TEXT.encode("latin-1"), None, b"text/plain")
    else:
        await _respond(send, 404, b"not found")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


REJECT_UPLOAD_BODY = b"upload rejected"


async def _reject_upload(scope: Scope, send: Send) -> None:
    """413 without reading the body; ``?linger=S``: then keep the exchange
    open for ``S`` seconds (still not reading) before ending it."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    linger = float(query.get("linger", "0"))
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(REJECT_UPLOAD_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    if not linger:
        await send({"type": "http.response.body", "body": REJECT_UPLOAD_BODY})
        return
    await send({"type": "http.response.body", "body": REJECT_UPLOAD_BODY, "more_body": True})
    await asyncio.sleep(linger)
    try:
        await send({"type": "http.response.body", "body": b""})
    except Exception:  # the client is gone: nothing left to end
        pass


async def _websocket_echo(receive: Receive, send: Send) -> None:
    """Accept a WebSocket and echo its messages until it closes."""
    message = await receive()
    if message["type"] != "websocket.connect":
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
    """The ASGI 3 entry point (HTTP, WebSocket and lifespan scopes)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket_echo(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/reject-upload":
        await _reject_upload(scope, send)
        return
    body, gone = await _read_body(receive)
    if gone:
        return
    await _route(scope, receive, send, body)


# -- request pipeline endpoints (retries) ------------------------------------------
#
# * ``/flaky/{key}/{fails}``: the first ``fails`` requests with that ``key``
#   get a 503 (with ``Retry-After: S`` when the query has ``retry_after=S``),
#   the next ones 200 with ``{"attempts": n}``; ``key`` keeps tests apart.

_FLAKY_COUNTS: dict[str, int] = {}
_route_before_pipeline = _route


async def _pipeline_route(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    parts = scope["path"].strip("/").split("/")
    if parts[0] != "flaky" or len(parts) != 3:
        await _route_before_pipeline(scope, receive, send, body)
        return
    key, fails = parts[1], int(parts[2])
    attempts = _FLAKY_COUNTS[key] = _FLAKY_COUNTS.get(key, 0) + 1
    if attempts <= fails:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        extra: Headers = []
        if "retry_after" in query:
            extra.append((b"retry-after", query["retry_after"].encode("latin-1")))
        await _json(send, {"attempts": attempts, "failed": True}, 503, extra)
    else:
        await _json(send, {"attempts": attempts, "body_length": len(body)})


# app() looks _route up when it is called, so the new routes are served.
_route = _pipeline_route


# -- command line endpoints (downloads) ---------------------------------------------
#
# * ``/cli/file/{n}``: ``n`` bytes of :func:`pattern_bytes` as an attachment
#   (``Content-Disposition: attachment; filename="cli-file.bin"``) with
#   single byte-range support (RFC 9110 section 14): ``Range: bytes=a-`` or
#   ``bytes=a-b`` gets a 206 with ``Content-Range``, a range starting at or
#   after ``n`` a 416 with ``Content-Range: bytes */n``; other Range values
#   are ignored (200 with the whole file).

CLI_FILE_NAME = "cli-file.bin"
_route_before_cli = _route


def _single_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of a single byte range, ``"unsatisfiable"``, or
    ``None`` when the field is absent or not a single range."""
    if value is None or not value.startswith("bytes=") or "," in value:
        return None
    first_text, dash, last_text = value[len("bytes=") :].strip().partition("-")
    if not dash or not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, last


async def _cli_file(scope: Scope, send: Send, size: int) -> None:
    data = pattern_bytes(size)
    headers: Headers = [
        (b"content-disposition", f'attachment; filename="{CLI_FILE_NAME}"'.encode()),
        (b"accept-ranges", b"bytes"),
    ]
    wanted = _single_range(_header(scope, b"range"), size)
    if wanted == "unsatisfiable":
        headers.append((b"content-range", f"bytes */{size}".encode()))
        await _respond(send, 416, b"", headers, None)
    elif isinstance(wanted, tuple):
        first, last = wanted
        headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
        await _respond(send, 206, data[first : last + 1], headers, b"application/octet-stream")
    else:
        await _respond(send, 200, data, headers, b"application/octet-stream")


async def _cli_route(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    parts = scope["path"].strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["cli", "file"] and parts[2].isdigit():
        await _cli_file(scope, send, int(parts[2]))
    else:
        await _route_before_cli(scope, receive, send, body)


_route = _cli_route
