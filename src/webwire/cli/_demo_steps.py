"""The steps of ``webwire demo``: one scenario per :class:`Step`, written
once for asyncio and trio (:data:`ASYNC_STEPS`) and once for the blocking
client (:data:`SYNC_STEPS`), with what they share (:class:`DemoContext`,
the checks of responses, the download progress)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import webwire
import webwire.websocket
import webwire.websocket.sync

from ._demo_app import demo_pattern

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = [
    "ASYNC_STEPS",
    "DEFAULT_DOWNLOAD_SIZE",
    "DEFAULT_H2_DOWNLOAD_SIZE",
    "H1",
    "H2",
    "H3",
    "SYNC_STEPS",
    "WS_COMPRESSED_SIZE",
    "DemoContext",
    "Step",
    "StepFailed",
    "StepResult",
]

DEFAULT_DOWNLOAD_SIZE = 50 * 1024 * 1024
DEFAULT_H2_DOWNLOAD_SIZE = 16 * 1024 * 1024
#: Requests sent at once by the multiplexing step.
CONCURRENT_REQUESTS = 20
#: Bytes of the HTTP/2 upload step: many times the 65,535-byte initial
#: flow-control window (RFC 9113 section 6.9.2).
UPLOAD_SIZE = 4 * 1024 * 1024
H1 = "HTTP/1.1"
H2 = "HTTP/2"
H3 = "HTTP/3"
#: ``Response.http_version`` -> the ASGI ``http_version`` the server reports.
_SERVER_VERSIONS = {H1: "1.1", H2: "2", H3: "3"}
_TIMEOUT = webwire.Timeout(10.0)
_WS_TIMEOUT = 10.0
#: Bytes of the compressed WebSocket message (repetitive text).
WS_COMPRESSED_SIZE = 256 * 1024
_WS_BINARY = bytes(range(256))
T = TypeVar("T")


class StepFailed(Exception):
    """A demo step saw something other than what it expected."""


@dataclass
class DemoContext:
    """What every step gets: where the servers are and how to report.

    Attributes:
        http_url: Base URL of the cleartext server.
        https_url: Base URL of the TLS server.
        ca_path: PEM file of the demo CA (the client's ``verify=``).
        wt_url: Base URL of the WebTransport server (``""``: none).
        download_size: Bytes of the HTTP/1.1 streamed download step.
        h2_download_size: Bytes of the HTTP/2 streamed download step.
        progress: Progress display for the downloads, or ``None``.
    """

    http_url: str
    https_url: str
    ca_path: str
    wt_url: str = ""
    download_size: int = DEFAULT_DOWNLOAD_SIZE
    h2_download_size: int = DEFAULT_H2_DOWNLOAD_SIZE
    progress: Progress | None = None


AsyncStepFn = Callable[["webwire.AsyncClient", DemoContext], Awaitable[str]]
SyncStepFn = Callable[["webwire.Client", DemoContext], str]


@dataclass(frozen=True)
class Step:
    """One step of the tour.

    Attributes:
        name: Short label shown in the table.
        run: The step; returns a description of the outcome and raises on
            failure (a response in another HTTP version included).
        expected: Exception type the step expects; seeing it is a success.
        http_version: The HTTP version the step runs on (``"HTTP/1.1"``,
            ``"HTTP/2"`` or ``"HTTP/3"``), shown in the table.
    """

    name: str
    run: Any
    expected: type[BaseException] | None = None
    http_version: str = H1


@dataclass
class StepResult:
    """The outcome of one step on one backend.

    Attributes:
        backend: ``"asyncio"``, ``"trio"`` or ``"sync"``.
        name: The step's label.
        ok: Whether the step succeeded.
        detail: What was seen (or the error).
        elapsed: Wall time of the step, in seconds.
        http_version: The HTTP version of the step (``""`` for a failure
            outside any step).
    """

    backend: str
    name: str
    ok: bool
    detail: str
    elapsed: float
    http_version: str = ""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _describe(response: webwire.Response) -> str:
    return f"{response.http_version} {response.status_code} {response.reason_phrase}".strip()


def _check_response(response: webwire.Response, http_version: str) -> None:
    """Require a ``200`` answered in ``http_version``."""
    _check(response.status_code == 200, f"status {response.status_code}")
    _check(
        response.http_version == http_version,
        f"{response.http_version} instead of {http_version}",
    )


def _check_echo(response: webwire.Response, http_version: str) -> dict[str, Any]:
    """Require a ``200`` JSON echo answered in ``http_version``, on both the
    client's side and the server's.

    Returns:
        The echo document.
    """
    _check_response(response, http_version)
    echo: dict[str, Any] = response.json()
    seen = echo.get("http_version")
    _check(
        seen == _SERVER_VERSIONS[http_version],
        f"the server saw HTTP/{seen} instead of {http_version}",
    )
    return echo


def _multiplexed(
    first: webwire.Response, responses: Sequence[webwire.Response], elapsed: float
) -> str:
    """Check the multiplexing step: every response is the HTTP/2 echo of its
    own request (``?n=index``) and came on the connection of ``first``.

    Returns:
        The step's description.
    """
    connection = _check_echo(first, H2)["connection"]
    connections = {connection}
    for index, response in enumerate(responses):
        echo = _check_echo(response, H2)
        _check(echo["args"] == {"n": str(index)}, f"response {index} answers another request")
        connections.add(echo["connection"])
    _check(
        len(connections) == 1,
        f"{len(responses) + 1} requests came on {len(connections)} connections",
    )
    return (
        f"{len(responses)} concurrent requests, all {H2} 200 on one connection, "
        f"{elapsed * 1000:.0f} ms"
    )


def _upload_payload() -> tuple[bytes, str]:
    """The body of the upload step and its SHA-256 (hex)."""
    payload = demo_pattern(UPLOAD_SIZE)
    return payload, hashlib.sha256(payload).hexdigest()


def _uploaded(response: webwire.Response, digest: str, elapsed: float) -> str:
    """Check the server's size and SHA-256 of the upload step's body.

    Returns:
        The step's description.
    """
    _check_response(response, H2)
    seen = response.json()
    _check(seen["http_version"] == "2", f"the server saw HTTP/{seen['http_version']}")
    _check(seen["size"] == UPLOAD_SIZE, f"the server got {seen['size']} of {UPLOAD_SIZE} bytes")
    _check(seen["sha256"] == digest, "the server got other bytes (SHA-256 differs)")
    mib = UPLOAD_SIZE / (1024 * 1024)
    return (
        f"{_describe(response)}, {mib:.0f} MiB uploaded, SHA-256 matches, {elapsed * 1000:.0f} ms"
    )


async def _gather(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``calls`` concurrently on the running event loop (asyncio or trio).

    Returns:
        Their results, in the order of ``calls``.

    Raises:
        Exception: The first error a call raised (after all have ended).
    """
    import sniffio

    results: list[Any] = [None] * len(calls)
    errors: list[Exception] = []

    async def run(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except Exception as exc:
            errors.append(exc)

    if sniffio.current_async_library() == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for index in range(len(calls)):
                nursery.start_soon(run, index)
    else:
        await asyncio.gather(*(run(index) for index in range(len(calls))))
    if errors:
        raise errors[0]
    return results


# Async steps: run unchanged on asyncio and trio.


async def a_get_http(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get over cleartext HTTP/1.1; the query must be echoed (RFC 9110 section 9.3.1)."""
    response = await client.get(ctx.http_url + "/get", params={"tour": "yes"})
    echo = _check_echo(response, H1)
    _check(echo["args"] == {"tour": "yes"}, "query not echoed")
    return f"{_describe(response)}, {len(response.content)} bytes JSON"


async def a_get_https_http1(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get over TLS offering only HTTP/1.1 (``http2=False``): ALPN
    settles on ``http/1.1``; the certificate is verified against the demo CA."""
    async with webwire.AsyncClient(verify=ctx.ca_path, timeout=_TIMEOUT, http2=False) as http1:
        response = await http1.get(ctx.https_url + "/get")
    _check_echo(response, H1)
    return f"{_describe(response)}, verified by the demo CA"


async def a_post_json(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """POST a JSON body and check the echo (RFC 8259)."""
    payload = {"name": "webwire", "numbers": [1, 2, 3]}
    response = await client.post(ctx.http_url + "/post", json=payload)
    _check(_check_echo(response, H1)["json"] == payload, "JSON not echoed")
    return f"{_describe(response)}, JSON echoed"


async def _a_download(
    client: webwire.AsyncClient, ctx: DemoContext, base_url: str, http_version: str, size: int
) -> str:
    """Stream ``size`` bytes from ``base_url`` in ``http_version`` and count
    them, with a progress bar."""
    label = "download" if http_version == H1 else "download (h2)"
    tracker = _Tracker(ctx, label, size)
    async with client.stream("GET", f"{base_url}/bytes/{size}") as response:
        _check_response(response, http_version)
        async for chunk in response.aiter_bytes():
            tracker.advance(len(chunk))
    return tracker.finish()


async def a_download(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """Stream ``ctx.download_size`` bytes over HTTP/1.1 and count them."""
    return await _a_download(client, ctx, ctx.http_url, H1, ctx.download_size)


async def a_redirects(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """Follow three 302 redirects (RFC 9110 section 15.4.3); ``history`` has 3."""
    response = await client.get(ctx.http_url + "/redirect/3")
    _check_echo(response, H1)
    _check(len(response.history) == 3, f"history has {len(response.history)} responses")
    return f"3 redirects followed to {response.url.path}"


async def a_cookies(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A cookie set by the server is sent back on the next request (RFC 6265)."""
    await client.get(ctx.http_url + "/cookies/set", params={"flavour": "oatmeal"})
    response = await client.get(ctx.http_url + "/cookies")
    _check_response(response, H1)
    cookies = response.json()["cookies"]
    _check(cookies.get("flavour") == "oatmeal", f"server saw cookies {cookies}")
    return "server cookie sent back"


async def a_timeout(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A 2 s response with a 0.5 s read timeout must raise ``ReadTimeout``."""
    await client.get(ctx.http_url + "/delay/2", timeout=webwire.Timeout(0.5))
    raise StepFailed("no timeout after 0.5 s")


async def a_server_error(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """``raise_for_status()`` on a 500 must raise ``HTTPStatusError``."""
    response = await client.get(ctx.http_url + "/status/500")
    response.raise_for_status()
    raise StepFailed("raise_for_status() did not raise")


async def a_get_h2(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get over TLS with HTTP/2 and HTTP/1.1 offered (the client's
    default): the server picks ``h2`` by ALPN (RFC 9113 section 3.2)."""
    response = await client.get(ctx.https_url + "/get")
    _check_echo(response, H2)
    return f"{_describe(response)}, h2 chosen by ALPN"


async def a_multiplex(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """One GET, then 20 GETs at once: each is answered in HTTP/2 with its
    own echo, and the server saw all of them on one connection (streams
    multiplexed, RFC 9113 section 5)."""
    first = await client.get(ctx.https_url + "/get")
    url = ctx.https_url + "/get"

    def request(index: int) -> Callable[[], Awaitable[webwire.Response]]:
        return lambda: client.get(url, params={"n": str(index)})

    started = time.perf_counter()
    responses = await _gather([request(index) for index in range(CONCURRENT_REQUESTS)])
    return _multiplexed(first, responses, time.perf_counter() - started)


async def a_download_h2(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """Stream ``ctx.h2_download_size`` bytes over HTTP/2 (TLS) and count them."""
    return await _a_download(client, ctx, ctx.https_url, H2, ctx.h2_download_size)


async def a_upload_h2(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """POST 4 MiB over HTTP/2; the server's size and SHA-256 must match."""
    payload, digest = _upload_payload()
    started = time.perf_counter()
    response = await client.post(ctx.https_url + "/upload", content=payload)
    return _uploaded(response, digest, time.perf_counter() - started)


async def a_get_h2c(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """GET /get on the cleartext port with HTTP/2 only (``http1=False``):
    h2c with prior knowledge (RFC 9113 section 3.3)."""
    async with webwire.AsyncClient(http1=False, http2=True, timeout=_TIMEOUT) as h2c:
        response = await h2c.get(ctx.http_url + "/get")
    _check_echo(response, H2)
    return f"{_describe(response)}, h2c with prior knowledge"


def _h3_after_alt_svc(first: webwire.Response, second: webwire.Response) -> str:
    """Check the Alt-Svc step: an HTTP/2 answer advertising ``h3`` (RFC
    7838), then the HTTP/3 answer of the next request.

    Returns:
        The step's description.
    """
    _check_echo(first, H2)
    advertised = first.headers.get("Alt-Svc", "")
    _check("h3=" in advertised, f"no h3 alternative in Alt-Svc ({advertised!r})")
    _check_echo(second, H3)
    return f"{_describe(first)} + Alt-Svc {advertised}, then {_describe(second)}{_quic(second)}"


def _quic(response: webwire.Response) -> str:
    """``", QUIC handshake N ms"`` when the response tells its connection's
    handshake time."""
    seconds = response.extensions.get("quic_handshake_time")
    return "" if seconds is None else f", QUIC handshake {seconds * 1000:.1f} ms"


async def a_get_h3_alt_svc(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """With ``http3=True``: the first GET goes over TCP (HTTP/2 by ALPN)
    and its answer carries ``Alt-Svc: h3=":PORT"`` (RFC 7838); the next GET
    goes over HTTP/3 (RFC 9114) to that UDP port."""
    async with webwire.AsyncClient(verify=ctx.ca_path, timeout=_TIMEOUT, http3=True) as h3:
        first = await h3.get(ctx.https_url + "/get")
        second = await h3.get(ctx.https_url + "/get")
    return _h3_after_alt_svc(first, second)


async def a_get_h3_forced(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """With ``http_versions={"HTTP/3"}``: HTTP/3 on the URL's own port from
    the first request, no TCP at all."""
    async with webwire.AsyncClient(
        verify=ctx.ca_path, timeout=_TIMEOUT, http_versions={H3}
    ) as h3:
        response = await h3.get(ctx.https_url + "/get")
    _check_echo(response, H3)
    return f"{_describe(response)}, forced, no TCP{_quic(response)}"


# Blocking steps: the same scenarios on webwire.Client.


def s_get_http(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get over cleartext HTTP/1.1; the query must be echoed (RFC 9110 section 9.3.1)."""
    response = client.get(ctx.http_url + "/get", params={"tour": "yes"})
    echo = _check_echo(response, H1)
    _check(echo["args"] == {"tour": "yes"}, "query not echoed")
    return f"{_describe(response)}, {len(response.content)} bytes JSON"


def s_get_https_http1(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get over TLS offering only HTTP/1.1 (``http2=False``): ALPN
    settles on ``http/1.1``; the certificate is verified against the demo CA."""
    with webwire.Client(verify=ctx.ca_path, timeout=_TIMEOUT, http2=False) as http1:
        response = http1.get(ctx.https_url + "/get")
    _check_echo(response, H1)
    return f"{_describe(response)}, verified by the demo CA"


def s_post_json(client: webwire.Client, ctx: DemoContext) -> str:
    """POST a JSON body and check the echo (RFC 8259)."""
    payload = {"name": "webwire", "numbers": [1, 2, 3]}
    response = client.post(ctx.http_url + "/post", json=payload)
    _check(_check_echo(response, H1)["json"] == payload, "JSON not echoed")
    return f"{_describe(response)}, JSON echoed"


def _s_download(
    client: webwire.Client, ctx: DemoContext, base_url: str, http_version: str, size: int
) -> str:
    """Stream ``size`` bytes from ``base_url`` in ``http_version`` and count
    them, with a progress bar."""
    label = "download" if http_version == H1 else "download (h2)"
    tracker = _Tracker(ctx, label, size)
    with client.stream("GET", f"{base_url}/bytes/{size}") as response:
        _check_response(response, http_version)
        for chunk in response.iter_bytes():
            tracker.advance(len(chunk))
    return tracker.finish()


def s_download(client: webwire.Client, ctx: DemoContext) -> str:
    """Stream ``ctx.download_size`` bytes over HTTP/1.1 and count them."""
    return _s_download(client, ctx, ctx.http_url, H1, ctx.download_size)


def s_redirects(client: webwire.Client, ctx: DemoContext) -> str:
    """Follow three 302 redirects (RFC 9110 section 15.4.3); ``history`` has 3."""
    response = client.get(ctx.http_url + "/redirect/3")
    _check_echo(response, H1)
    _check(len(response.history) == 3, f"history has {len(response.history)} responses")
    return f"3 redirects followed to {response.url.path}"


def s_cookies(client: webwire.Client, ctx: DemoContext) -> str:
    """A cookie set by the server is sent back on the next request (RFC 6265)."""
    client.get(ctx.http_url + "/cookies/set", params={"flavour": "oatmeal"})
    response = client.get(ctx.http_url + "/cookies")
    _check_response(response, H1)
    cookies = response.json()["cookies"]
    _check(cookies.get("flavour") == "oatmeal", f"server saw cookies {cookies}")
    return "server cookie sent back"


def s_timeout(client: webwire.Client, ctx: DemoContext) -> str:
    """A 2 s response with a 0.5 s read timeout must raise ``ReadTimeout``."""
    client.get(ctx.http_url + "/delay/2", timeout=webwire.Timeout(0.5))
    raise StepFailed("no timeout after 0.5 s")


def s_server_error(client: webwire.Client, ctx: DemoContext) -> str:
    """``raise_for_status()`` on a 500 must raise ``HTTPStatusError``."""
    response = client.get(ctx.http_url + "/status/500")
    response.raise_for_status()
    raise StepFailed("raise_for_status() did not raise")


def s_get_h2(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get over TLS with HTTP/2 and HTTP/1.1 offered (the client's
    default): the server picks ``h2`` by ALPN (RFC 9113 section 3.2)."""
    response = client.get(ctx.https_url + "/get")
    _check_echo(response, H2)
    return f"{_describe(response)}, h2 chosen by ALPN"


def s_multiplex(client: webwire.Client, ctx: DemoContext) -> str:
    """One GET, then 20 GETs at once from 20 threads sharing the client:
    each is answered in HTTP/2 with its own echo, and the server saw all of
    them on one connection (streams multiplexed, RFC 9113 section 5)."""
    first = client.get(ctx.https_url + "/get")
    url = ctx.https_url + "/get"
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS) as pool:
        futures = [
            pool.submit(client.get, url, params={"n": str(index)})
            for index in range(CONCURRENT_REQUESTS)
        ]
        responses = [future.result() for future in futures]
    return _multiplexed(first, responses, time.perf_counter() - started)


def s_download_h2(client: webwire.Client, ctx: DemoContext) -> str:
    """Stream ``ctx.h2_download_size`` bytes over HTTP/2 (TLS) and count them."""
    return _s_download(client, ctx, ctx.https_url, H2, ctx.h2_download_size)


def s_upload_h2(client: webwire.Client, ctx: DemoContext) -> str:
    """POST 4 MiB over HTTP/2; the server's size and SHA-256 must match."""
    payload, digest = _upload_payload()
    started = time.perf_counter()
    response = client.post(ctx.https_url + "/upload", content=payload)
    return _uploaded(response, digest, time.perf_counter() - started)


def s_get_h2c(client: webwire.Client, ctx: DemoContext) -> str:
    """GET /get on the cleartext port with HTTP/2 only (``http1=False``):
    h2c with prior knowledge (RFC 9113 section 3.3)."""
    with webwire.Client(http1=False, http2=True, timeout=_TIMEOUT) as h2c:
        response = h2c.get(ctx.http_url + "/get")
    _check_echo(response, H2)
    return f"{_describe(response)}, h2c with prior knowledge"


def s_get_h3_alt_svc(client: webwire.Client, ctx: DemoContext) -> str:
    """With ``http3=True``: HTTP/2 first, HTTP/3 after its ``Alt-Svc``."""
    with webwire.Client(verify=ctx.ca_path, timeout=_TIMEOUT, http3=True) as h3:
        first = h3.get(ctx.https_url + "/get")
        second = h3.get(ctx.https_url + "/get")
    return _h3_after_alt_svc(first, second)


def s_get_h3_forced(client: webwire.Client, ctx: DemoContext) -> str:
    """With ``http_versions={"HTTP/3"}``: HTTP/3 from the first request."""
    with webwire.Client(verify=ctx.ca_path, timeout=_TIMEOUT, http_versions={H3}) as h3:
        response = h3.get(ctx.https_url + "/get")
    _check_echo(response, H3)
    return f"{_describe(response)}, forced, no TCP{_quic(response)}"


# WebSocket steps: the demo app's /ws echo (RFC 6455), over cleartext
# HTTP/1.1 (Upgrade) and over TLS, where the server offers HTTP/2 and the
# handshake is an extended CONNECT (RFC 8441).


def _ws_url(base_url: str) -> str:
    """The ``/ws`` URI of an ``http``/``https`` base URL."""
    return base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


def _ws_handshake(ws: Any, http_version: str) -> str:
    """Check that the connection runs on ``http_version`` and describe its
    handshake."""
    _check(
        ws.http_version == http_version,
        f"WebSocket over {ws.http_version} instead of {http_version}",
    )
    response = ws.response
    status = f"{ws.http_version} {response.status_code}"
    if http_version == H2:
        return f"{status}, extended CONNECT (RFC 8441)"
    return f"{status} {response.reason_phrase}".rstrip()


def _ws_extensions(ws: Any) -> str:
    """The negotiated ``Sec-WebSocket-Extensions`` value, ``""`` for none."""
    value: str = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    return value


def _ws_compressed_text() -> str:
    line = "webwire compresses repetitive WebSocket messages well. "
    return (line * (WS_COMPRESSED_SIZE // len(line) + 1))[:WS_COMPRESSED_SIZE]


def _ws_compression(ws: Any, echoed: Any, text: str) -> str:
    _check(echoed == text, "the compressed message came back different")
    extensions = _ws_extensions(ws)
    _check("permessage-deflate" in extensions, f"no compression negotiated ({extensions!r})")
    name = extensions.split(";")[0].strip()
    return f"{name} negotiated, {len(text) // 1024} KiB text echoed"


def _ws_latency(seconds: float) -> str:
    _check(seconds > 0, f"no round-trip time measured ({seconds})")
    return f"pong in {seconds * 1000:.2f} ms"


async def _a_ws_echo(ws: webwire.websocket.ClientConnection, http_version: str) -> str:
    described = _ws_handshake(ws, http_version)
    await ws.send("hello, WebSocket")
    _check(await ws.recv(_WS_TIMEOUT) == "hello, WebSocket", "text message not echoed")
    await ws.send(_WS_BINARY)
    _check(await ws.recv(_WS_TIMEOUT) == _WS_BINARY, "binary message not echoed")
    return f"{described}, text and binary echoed"


async def a_ws_echo(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """WebSocket echo on the cleartext port: the HTTP/1.1 Upgrade handshake
    (RFC 6455 section 4), a text and a binary message echoed."""
    async with webwire.websocket.connect(
        _ws_url(ctx.http_url), open_timeout=_WS_TIMEOUT
    ) as ws:
        return await _a_ws_echo(ws, H1)


async def a_ws_echo_h2(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """WebSocket echo over TLS: the server picks HTTP/2 by ALPN and the
    handshake is an extended CONNECT on one of its streams (RFC 8441)."""
    async with webwire.websocket.connect(
        _ws_url(ctx.https_url), verify=ctx.ca_path, open_timeout=_WS_TIMEOUT
    ) as ws:
        return await _a_ws_echo(ws, H2)


async def a_ws_deflate(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """permessage-deflate negotiated (RFC 7692) and a 256 KiB text message
    echoed through it."""
    text = _ws_compressed_text()
    async with webwire.websocket.connect(
        _ws_url(ctx.http_url), compression="deflate", open_timeout=_WS_TIMEOUT
    ) as ws:
        _ws_handshake(ws, H1)
        await ws.send(text)
        return _ws_compression(ws, await ws.recv(_WS_TIMEOUT), text)


async def a_ws_ping_h2(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A ping answered by a pong (RFC 6455 section 5.5.2) over HTTP/2: the
    round-trip time in milliseconds."""
    async with webwire.websocket.connect(
        _ws_url(ctx.https_url), verify=ctx.ca_path, open_timeout=_WS_TIMEOUT
    ) as ws:
        _ws_handshake(ws, H2)
        waiter = await ws.ping()
        return _ws_latency(await waiter.wait(_WS_TIMEOUT))


def _s_ws_echo(ws: webwire.websocket.sync.ClientConnection, http_version: str) -> str:
    described = _ws_handshake(ws, http_version)
    ws.send("hello, WebSocket")
    _check(ws.recv(_WS_TIMEOUT) == "hello, WebSocket", "text message not echoed")
    ws.send(_WS_BINARY)
    _check(ws.recv(_WS_TIMEOUT) == _WS_BINARY, "binary message not echoed")
    return f"{described}, text and binary echoed"


def s_ws_echo(client: webwire.Client, ctx: DemoContext) -> str:
    """WebSocket echo on the cleartext port: the HTTP/1.1 Upgrade handshake
    (RFC 6455 section 4), a text and a binary message echoed."""
    with webwire.websocket.sync.connect(_ws_url(ctx.http_url), open_timeout=_WS_TIMEOUT) as ws:
        return _s_ws_echo(ws, H1)


def s_ws_echo_h2(client: webwire.Client, ctx: DemoContext) -> str:
    """WebSocket echo over TLS: the server picks HTTP/2 by ALPN and the
    handshake is an extended CONNECT on one of its streams (RFC 8441)."""
    with webwire.websocket.sync.connect(
        _ws_url(ctx.https_url), verify=ctx.ca_path, open_timeout=_WS_TIMEOUT
    ) as ws:
        return _s_ws_echo(ws, H2)


def s_ws_deflate(client: webwire.Client, ctx: DemoContext) -> str:
    """permessage-deflate negotiated (RFC 7692) and a 256 KiB text message
    echoed through it."""
    text = _ws_compressed_text()
    with webwire.websocket.sync.connect(
        _ws_url(ctx.http_url), compression="deflate", open_timeout=_WS_TIMEOUT
    ) as ws:
        _ws_handshake(ws, H1)
        ws.send(text)
        return _ws_compression(ws, ws.recv(_WS_TIMEOUT), text)


def s_ws_ping_h2(client: webwire.Client, ctx: DemoContext) -> str:
    """A ping answered by a pong (RFC 6455 section 5.5.2) over HTTP/2: the
    round-trip time in milliseconds."""
    with webwire.websocket.sync.connect(
        _ws_url(ctx.https_url), verify=ctx.ca_path, open_timeout=_WS_TIMEOUT
    ) as ws:
        _ws_handshake(ws, H2)
        return _ws_latency(ws.ping().wait(_WS_TIMEOUT))


# -- WebTransport (draft-ietf-webtrans-http3 over HTTP/3) ------------------------------

_WT_TIMEOUT = 10.0
_WT_PAYLOAD = b"webwire over a WebTransport stream\n" * 64
_WT_DATAGRAM = b"webwire datagram"
_WT_CLOSE_CODE = 4000
_WT_CLOSE_REASON = "demo over"


def _wt_target(ctx: DemoContext, path: str) -> str:
    _check(bool(ctx.wt_url), "no WebTransport server")
    return ctx.wt_url + path


def _wt_options() -> dict[str, Any]:
    from webwire.webtransport import ClientConfig

    config = ClientConfig(read_timeout=_WT_TIMEOUT, write_timeout=_WT_TIMEOUT)
    return {"timeout": _WT_TIMEOUT, "config": config}


def _wt_stream_echoed(echoed: bytes, stream_id: int) -> str:
    _check(echoed == _WT_PAYLOAD, f"{len(echoed)} bytes echoed, not {len(_WT_PAYLOAD)}")
    return f"{len(_WT_PAYLOAD)} bytes echoed on stream {stream_id}"


def _wt_closed(code: int | None, reason: str | None) -> str:
    _check(
        (code, reason) == (_WT_CLOSE_CODE, _WT_CLOSE_REASON),
        f"closed with {code!r} {reason!r}",
    )
    return f"closed by the server: code {code}, reason {reason!r}"


_WT_CLOSE_PATH = f"/close?code={_WT_CLOSE_CODE}&reason=demo%20over"


async def a_wt_stream_echo(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A WebTransport session (extended CONNECT over HTTP/3) and a
    bidirectional stream echoed by the server."""
    session = await client.webtransport(_wt_target(ctx, "/echo"), **_wt_options())
    async with session:
        stream = await session.create_bidirectional_stream()
        await stream.write(_WT_PAYLOAD, end_stream=True)
        return _wt_stream_echoed(await stream.read_all(), stream.stream_id)


async def a_wt_datagram_echo(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """A datagram (RFC 9297 over QUIC DATAGRAM frames, RFC 9221) echoed by
    the server; sent again if lost."""
    session = await client.webtransport(_wt_target(ctx, "/echo"), **_wt_options())
    async with session:
        for attempt in range(1, 11):
            await session.datagrams.send(_WT_DATAGRAM)
            try:
                echoed = await session.datagrams.receive(0.5)
            except webwire.ReadTimeout:
                continue
            _check(echoed == _WT_DATAGRAM, f"datagram {echoed!r} echoed")
            return f"{len(echoed)}-byte datagram echoed (attempt {attempt})"
    raise StepFailed("no datagram echoed in 10 attempts")


async def a_wt_close(client: webwire.AsyncClient, ctx: DemoContext) -> str:
    """The server closes the session with an application code and reason
    (CLOSE_WEBTRANSPORT_SESSION capsule)."""
    session = await client.webtransport(_wt_target(ctx, _WT_CLOSE_PATH), **_wt_options())
    async with session:
        await session.wait_closed(_WT_TIMEOUT)
        return _wt_closed(session.close_code, session.close_reason)


def s_wt_stream_echo(client: webwire.Client, ctx: DemoContext) -> str:
    """As :func:`a_wt_stream_echo`, blocking."""
    with client.webtransport(_wt_target(ctx, "/echo"), **_wt_options()) as session:
        stream = session.create_bidirectional_stream()
        stream.write(_WT_PAYLOAD, end_stream=True)
        return _wt_stream_echoed(stream.read_all(), stream.stream_id)


def s_wt_datagram_echo(client: webwire.Client, ctx: DemoContext) -> str:
    """As :func:`a_wt_datagram_echo`, blocking."""
    with client.webtransport(_wt_target(ctx, "/echo"), **_wt_options()) as session:
        for attempt in range(1, 11):
            session.datagrams.send(_WT_DATAGRAM)
            try:
                echoed = session.datagrams.receive(0.5)
            except webwire.ReadTimeout:
                continue
            _check(echoed == _WT_DATAGRAM, f"datagram {echoed!r} echoed")
            return f"{len(echoed)}-byte datagram echoed (attempt {attempt})"
    raise StepFailed("no datagram echoed in 10 attempts")


def s_wt_close(client: webwire.Client, ctx: DemoContext) -> str:
    """As :func:`a_wt_close`, blocking."""
    with client.webtransport(_wt_target(ctx, _WT_CLOSE_PATH), **_wt_options()) as session:
        session.wait_closed(_WT_TIMEOUT)
        return _wt_closed(session.close_code, session.close_reason)


#: The steps run on asyncio and on trio, in order.
ASYNC_STEPS: list[Step] = [
    Step("GET (http)", a_get_http),
    Step("GET (https, h2 off)", a_get_https_http1),
    Step("POST JSON echo", a_post_json),
    Step("streamed download", a_download),
    Step("redirects", a_redirects),
    Step("cookies", a_cookies),
    Step("timeout", a_timeout, expected=webwire.ReadTimeout),
    Step("server error", a_server_error, expected=webwire.HTTPStatusError),
    Step("GET (https, ALPN)", a_get_h2, http_version=H2),
    Step("20 concurrent GETs", a_multiplex, http_version=H2),
    Step("streamed download (h2)", a_download_h2, http_version=H2),
    Step("POST upload (h2)", a_upload_h2, http_version=H2),
    Step("GET (h2c)", a_get_h2c, http_version=H2),
    Step("GET (h3 after Alt-Svc)", a_get_h3_alt_svc, http_version=H3),
    Step("GET (h3 forced)", a_get_h3_forced, http_version=H3),
    Step("WebSocket echo", a_ws_echo),
    Step("WebSocket echo (h2)", a_ws_echo_h2, http_version=H2),
    Step("WebSocket deflate", a_ws_deflate),
    Step("WebSocket ping (h2)", a_ws_ping_h2, http_version=H2),
    Step("WebTransport stream echo", a_wt_stream_echo, http_version=H3),
    Step("WebTransport datagram echo", a_wt_datagram_echo, http_version=H3),
    Step("WebTransport close", a_wt_close, http_version=H3),
]

#: The steps run on the blocking client, in order (the same scenarios).
SYNC_STEPS: list[Step] = [
    Step("GET (http)", s_get_http),
    Step("GET (https, h2 off)", s_get_https_http1),
    Step("POST JSON echo", s_post_json),
    Step("streamed download", s_download),
    Step("redirects", s_redirects),
    Step("cookies", s_cookies),
    Step("timeout", s_timeout, expected=webwire.ReadTimeout),
    Step("server error", s_server_error, expected=webwire.HTTPStatusError),
    Step("GET (https, ALPN)", s_get_h2, http_version=H2),
    Step("20 concurrent GETs", s_multiplex, http_version=H2),
    Step("streamed download (h2)", s_download_h2, http_version=H2),
    Step("POST upload (h2)", s_upload_h2, http_version=H2),
    Step("GET (h2c)", s_get_h2c, http_version=H2),
    Step("GET (h3 after Alt-Svc)", s_get_h3_alt_svc, http_version=H3),
    Step("GET (h3 forced)", s_get_h3_forced, http_version=H3),
    Step("WebSocket echo", s_ws_echo),
    Step("WebSocket echo (h2)", s_ws_echo_h2, http_version=H2),
    Step("WebSocket deflate", s_ws_deflate),
    Step("WebSocket ping (h2)", s_ws_ping_h2, http_version=H2),
    Step("WebTransport stream echo", s_wt_stream_echo, http_version=H3),
    Step("WebTransport datagram echo", s_wt_datagram_echo, http_version=H3),
    Step("WebTransport close", s_wt_close, http_version=H3),
]


class _Tracker:
    """Counts the bytes of a download step and drives its progress bar.

    Args:
        ctx: The tour's context (its progress display, if any).
        label: The progress bar's label.
        size: Bytes the download must deliver.
    """

    def __init__(self, ctx: DemoContext, label: str, size: int) -> None:
        self.ctx = ctx
        self.size = size
        self.received = 0
        self.started = time.perf_counter()
        self.task: TaskID | None = None
        if ctx.progress is not None:
            self.task = ctx.progress.add_task(label, total=size)

    def advance(self, size: int) -> None:
        """Count ``size`` more bytes received."""
        self.received += size
        if self.ctx.progress is not None and self.task is not None:
            self.ctx.progress.update(self.task, completed=self.received)

    def finish(self) -> str:
        """Remove the progress bar and check the byte count.

        Returns:
            The step's description (size and rate).
        """
        if self.ctx.progress is not None and self.task is not None:
            self.ctx.progress.remove_task(self.task)
        _check(self.received == self.size, f"received {self.received} of {self.size} bytes")
        seconds = max(time.perf_counter() - self.started, 1e-9)
        mib = self.received / (1024 * 1024)
        return f"{mib:.0f} MiB streamed, {mib / seconds:.0f} MiB/s"
