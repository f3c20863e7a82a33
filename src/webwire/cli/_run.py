"""Sending the request of the command line and writing out the response."""

from __future__ import annotations

import errno
import re
import socket  # noqa: TID251 - only the gaierror type and EAI_* codes, no I/O
import ssl
import sys
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from ._args import RequestSpec, UsageError
from ._download import DownloadError, Plan, plan_download, save
from ._output import Printer, format_request_head, format_response_head

if TYPE_CHECKING:
    import webwire
    from webwire import Client, Request, Response

    from ._session import Session

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_TLS",
    "EXIT_TOO_MANY_REDIRECTS",
    "EXIT_USAGE",
    "classify_error",
    "describe_error",
    "exit_status_for",
    "send",
    "write_out",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_TIMEOUT = 2
EXIT_USAGE = 2
EXIT_TOO_MANY_REDIRECTS = 3
EXIT_CONNECTION = 6
EXIT_TLS = 7

_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
# Status codes curl's --retry treats as transient.
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


def exit_status_for(status_code: int, follow_redirects: bool) -> int:
    """The ``--check-status`` exit status of a final response (as HTTPie).

    Args:
        status_code: The final response's status code.
        follow_redirects: Whether redirects were being followed; a 3xx only
            counts as a failure when they were not.

    Returns:
        3 for an unfollowed 3xx, 4 for 4xx, 5 for 5xx, otherwise 0.
    """
    if 300 <= status_code < 400 and not follow_redirects:
        return 3
    if 400 <= status_code < 500:
        return 4
    if 500 <= status_code < 600:
        return 5
    return EXIT_OK


# --- errors ---------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _origin(exc: webwire.WebwireError) -> str | None:
    request = exc.request
    if request is None:
        match = re.search(r"(?:connect to|connecting to) (\S+?):? ", str(exc) + " ")
        return match.group(1).rstrip(":") if match else None
    url = request.url
    port = url.explicit_port
    return f"{url.host}:{port}" if port is not None else str(url.host)


def _host_of(origin: str | None) -> str:
    if origin is None:
        return "the server"
    host, _, port = origin.rpartition(":")
    return host.strip("[]") if port.isdigit() and host else origin


def _clean(text: str) -> str:
    return _ERRNO.sub("", " ".join(text.split()))


def classify_error(exc: webwire.WebwireError) -> tuple[int, str]:
    """The exit status and one-line message of a failed request.

    The message names the cause in words (connection refused, DNS name not
    found, TLS certificate verify failed and why, timeout), never a raw
    ``socket.gaierror`` or ``Errno`` text.

    Args:
        exc: The webwire exception.

    Returns:
        ``(status, message)``: 2 timeout, 3 too many redirects, 6 connection,
        DNS or proxy error, 7 TLS error, 1 anything else; the message has
        no ``webwire:`` prefix.
    """
    from webwire._exceptions import (
        ConnectTimeout,
        PoolTimeout,
        ProxyError,
        ReadTimeout,
        TimeoutException,
        TooManyRedirects,
        TransportError,
        WriteTimeout,
    )

    origin = _origin(exc)
    where = origin or "the server"
    if isinstance(exc, TooManyRedirects):
        return EXIT_TOO_MANY_REDIRECTS, f"too many redirects: {_clean(str(exc))}"
    chain = _chain(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "unknown reason"
            return EXIT_TLS, f"TLS certificate verify failed for {where}: {reason}"
    for cause in chain:
        if isinstance(cause, ssl.SSLError) and isinstance(exc, TransportError):
            reason = (cause.reason or _clean(str(cause))).replace("_", " ").lower()
            return EXIT_TLS, f"TLS error with {where}: {reason}"
    if isinstance(exc, ConnectTimeout):
        return EXIT_TIMEOUT, f"timed out connecting to {where}"
    if isinstance(exc, ReadTimeout):
        return EXIT_TIMEOUT, f"timed out waiting for the response of {where}"
    if isinstance(exc, WriteTimeout):
        return EXIT_TIMEOUT, f"timed out sending the request to {where}"
    if isinstance(exc, PoolTimeout):
        return EXIT_TIMEOUT, "timed out waiting for a free connection"
    if isinstance(exc, TimeoutException):
        return EXIT_TIMEOUT, f"timed out: {_clean(str(exc))}"
    if isinstance(exc, ProxyError):
        return EXIT_CONNECTION, f"proxy error: {_clean(str(exc))}"
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            host = _host_of(origin)
            code = cause.errno
            if code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
                return EXIT_CONNECTION, f"DNS name not found: {host}"
            if code == socket.EAI_AGAIN:
                return EXIT_CONNECTION, f"DNS lookup of {host} failed for now (no DNS answer)"
            return EXIT_CONNECTION, f"DNS lookup of {host} failed: {cause.strerror or cause}"
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return EXIT_CONNECTION, f"connection refused by {where}"
        if isinstance(cause, ConnectionResetError):
            return EXIT_CONNECTION, f"connection reset by {where}"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return EXIT_CONNECTION, f"cannot reach {where}: {(cause.strerror or '').lower()}"
    from webwire._exceptions import ConnectError

    if isinstance(exc, ConnectError):
        return EXIT_CONNECTION, f"cannot connect to {where}: {_clean(str(exc))}"
    return EXIT_ERROR, describe_error(exc)


def describe_error(exc: webwire.WebwireError) -> str:
    """The one-line message of an error: ``"ClassName: message"``.

    Args:
        exc: The webwire exception.

    Returns:
        The message without the ``webwire:`` prefix, ``Errno`` numbers
        removed.
    """
    text = _clean(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the client -----------------------------------------------------------------


def _credentials(spec: RequestSpec, session: Session | None) -> tuple[str, str] | None:
    """``(type, raw)`` of ``-a``, else of the session; asks for a missing
    password on a terminal."""
    if spec.auth is None:
        if session is not None and session.auth is not None:
            return session.auth["type"], session.auth["raw"]
        return None
    raw = spec.auth
    if spec.auth_type != "bearer" and ":" not in raw:
        if not (sys.stdin is not None and sys.stdin.isatty()):
            raise UsageError(f"-a {raw!r} has no password (use USER:PASSWORD)")
        import getpass

        raw = f"{raw}:{getpass.getpass(f'password for {raw}: ')}"
    return spec.auth_type, raw


def _auth(credentials: tuple[str, str] | None) -> Any:
    if credentials is None:
        return None
    import webwire

    kind, raw = credentials
    if kind == "bearer":
        token = raw
        if any(char in token for char in "\r\n\0"):
            raise UsageError("the bearer token has CR, LF or NUL in it")

        def bearer(request: webwire.Request) -> webwire.Request:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

        return webwire.FunctionAuth(bearer)
    user, _, password = raw.partition(":")
    if kind == "digest":
        return webwire.DigestAuth(user, password)
    return webwire.BasicAuth(user, password)


def _client_options(spec: RequestSpec) -> dict[str, Any]:
    import webwire

    cert: Any = None
    if spec.cert is not None:
        cert = (spec.cert, spec.cert_key) if spec.cert_key else spec.cert
    options: dict[str, Any] = {
        "verify": spec.verify,
        "follow_redirects": spec.follow_redirects,
        "max_redirects": spec.max_redirects,
        "http1": spec.http1,
        "http2": spec.http2,
        "http3": spec.http3,
    }
    if cert is not None:
        options["cert"] = cert
    if spec.timeout is not None or spec.max_time is not None:
        if spec.timeout is not None:
            options["timeout"] = webwire.Timeout(spec.timeout, total=spec.max_time)
        else:
            options["timeout"] = webwire.Timeout(total=spec.max_time)
    if spec.retries:
        options["retries"] = webwire.Retry(
            spec.retries, status_forcelist=_RETRY_STATUSES, backoff_factor=1.0
        )
    general = [url for scheme, url in spec.proxies if scheme is None]
    if general:
        options["proxy"] = general[-1]
    by_scheme = {scheme: url for scheme, url in spec.proxies if scheme is not None}
    if by_scheme:
        options["mounts"] = {
            f"{scheme}://": webwire.HTTPTransport(
                verify=spec.verify,
                cert=cert,
                http1=spec.http1,
                http2=spec.http2,
                http3=spec.http3,
                proxy=url,
            )
            for scheme, url in by_scheme.items()
        }
    return options


def _client(spec: RequestSpec, options: dict[str, Any]) -> Client:
    import webwire

    client = webwire.Client(**options)
    if spec.http3 and (spec.http1 or spec.http2) and client.alt_svc is not None:
        # --http3: try HTTP/3 on the URL's own port before any Alt-Svc field
        # was seen (RFC 7838 section 2.4: TCP when it cannot connect).
        client.alt_svc.add(spec.url)
    return client


# --- printing -------------------------------------------------------------------


def _target(request: Request) -> str:
    return request.url.raw_path_qs or "/"


def _planned_version(spec: RequestSpec) -> str:
    """The HTTP version shown in the head of a request that got no response.

    HTTP/3 with ``--http3-only``, HTTP/2 when it is the only version
    offered (``--http2``), otherwise HTTP/1.1: over TLS with both offered
    the server's ALPN choice is not known without a response.
    """
    if spec.http3 and not (spec.http1 or spec.http2):
        return "HTTP/3"
    return "HTTP/2" if spec.http2 and not spec.http1 else "HTTP/1.1"


def _request_headers(request: Request) -> list[tuple[str, str]]:
    headers = list(request.headers.items())
    if not any(name.lower() == "host" for name, _ in headers):
        url = request.url
        host = url.host or ""
        if url.explicit_port is not None:
            host = f"{host}:{url.explicit_port}"
        headers.insert(0, ("Host", host))
    return headers


def _print_request(
    printer: Printer, spec: RequestSpec, parts: str, request: Request, http_version: str
) -> None:
    """Print a request head (``H``) and body (``B``)."""
    to_stderr = spec.download
    if "H" in parts:
        lines = format_request_head(
            request.method,
            _target(request),
            http_version,
            _request_headers(request),
            show_secrets=spec.show_secrets,
        )
        printer.head(lines, to_stderr=to_stderr)
    if "B" in parts and not to_stderr:
        content: bytes | None
        try:
            content = request.content
        except Exception:
            content = None
        if content:
            printer.body(content, request.headers.get("Content-Type", ""), None)
            printer.separator()


def _print_response_head(printer: Printer, spec: RequestSpec, response: Response) -> None:
    lines = format_response_head(
        response.http_version,
        response.status_code,
        response.reason_phrase,
        list(response.headers.items()),
    )
    printer.head(lines, status_code=response.status_code, to_stderr=spec.download)


def _print_heads(printer: Printer, spec: RequestSpec, parts: str, response: Response) -> None:
    """Print the heads of every hop, as ``parts`` asks.

    Each request head is printed with the HTTP version of the response that
    answered it (``GET / HTTP/2``), which is only known once connected
    (ALPN), so request heads are printed when the response head arrived.
    """
    for hop in [*response.history, response]:
        if "H" in parts or "B" in parts:
            _print_request(printer, spec, parts, hop.request, hop.http_version)
        if "h" in parts:
            _print_response_head(printer, spec, hop)


def _default_parts(spec: RequestSpec, printer: Printer, stdout_tty: bool) -> str:
    if spec.print_parts is not None:
        return spec.print_parts
    if spec.download:
        return "h" if stdout_tty else ""
    return "hb" if stdout_tty else "b"


def write_out(template: str, response: Response, size: int) -> str:
    """Expand a curl ``-w`` template for the final response.

    Args:
        template: Text with ``%{name}`` variables and ``\\n``/``\\t``/``\\r``
            escapes; ``%%`` is a percent sign.
        response: The final response (read or closed).
        size: Body bytes received.

    Returns:
        The expanded text.
    """
    try:
        elapsed = response.elapsed.total_seconds()
    except RuntimeError:
        elapsed = 0.0
    values = {
        "http_code": f"{response.status_code:03d}",
        "response_code": f"{response.status_code:03d}",
        "http_version": response.http_version.removeprefix("HTTP/"),
        "time_total": f"{elapsed:.6f}",
        "size_download": str(size),
        "url_effective": str(response.url),
        "content_type": response.headers.get("Content-Type", ""),
        "num_redirects": str(len(response.history)),
        "method": response.request.method,
    }
    out: list[str] = []
    index = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template) and template[index + 1] in escapes:
            out.append(escapes[template[index + 1]])
            index += 2
        elif template.startswith("%%", index):
            out.append("%")
            index += 2
        elif template.startswith("%{", index) and "}" in template[index:]:
            end = template.index("}", index)
            out.append(values.get(template[index + 2 : end], template[index : end + 1]))
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


# --- sending --------------------------------------------------------------------


def _session(spec: RequestSpec) -> Session | None:
    if spec.session is None:
        return None
    from ._session import load_session, session_path

    return load_session(session_path(spec.session, spec.url))


def send(spec: RequestSpec, printer: Printer, *, stdout_tty: bool = False) -> int:
    """Send the request of ``spec`` with a blocking client and print or save
    the response.

    Args:
        spec: The parsed command line.
        printer: Where output goes.
        stdout_tty: Standard output is a terminal (selects what is printed
            by default: ``hb`` on a terminal, ``b`` otherwise).

    Returns:
        The exit status: 0, or 3/4/5 with ``--check-status`` (a download of
        a non-2xx response always fails with 4/5).

    Raises:
        webwire.WebwireError: The request failed (mapped to an exit status by
            the caller).
        UsageError: Bad credentials or session name.
        OSError: A file could not be written.
    """
    parts = _default_parts(spec, printer, stdout_tty)
    session = _session(spec)
    credentials = _credentials(spec, session)
    auth = _auth(credentials)
    options = _client_options(spec)
    if auth is not None:
        options["auth"] = auth  # otherwise URL userinfo, then .netrc (trust_env)
    if session is not None and session.cookies:
        import webwire

        jar = webwire.Cookies()
        for cookie in session.cookies:
            jar.jar.set_cookie(cookie)
        options["cookies"] = jar
    headers: CIMultiDict[str] = CIMultiDict(spec.headers)
    plan: Plan | None = None
    if spec.download and not spec.offline:
        plan = plan_download(spec.output, spec.url, spec.resume)
        if "Accept-Encoding" not in headers:
            headers["Accept-Encoding"] = "identity"
        if plan.offset > 0:
            headers["Range"] = f"bytes={plan.offset}-"
    with _client(spec, options) as client:
        request = client.build_request(
            spec.method,
            spec.url,
            headers=headers,
            content=spec.content,
            data=spec.data,
            files=spec.files,
        )
        if spec.offline:
            if credentials is not None:
                request = _authorized(credentials, request)
            _print_request(printer, spec, parts or "HB", request, _planned_version(spec))
            return EXIT_OK
        try:
            response = client.send(request, stream=True)
        except Exception:
            if "H" in parts:
                _print_request(printer, spec, "H", request, _planned_version(spec))
            raise
        try:
            _print_heads(printer, spec, parts, response)
            status = _finish(printer, spec, parts, response, plan)
        finally:
            response.close()
        if session is not None and not spec.session_read_only:
            from ._session import save_session

            if spec.auth is not None and credentials is not None:
                session.auth = {"type": credentials[0], "raw": credentials[1]}
            save_session(session, client.cookies.jar)
        return status


def _authorized(credentials: tuple[str, str], request: Request) -> Request:
    """The request with the credentials an offline run would send (Basic,
    RFC 7617, or Bearer, RFC 6750; Digest needs a challenge first)."""
    import base64

    kind, raw = credentials
    if kind == "basic":
        token = base64.b64encode(raw.encode("utf-8")).decode("ascii")
        request.headers["Authorization"] = f"Basic {token}"
    elif kind == "bearer":
        request.headers["Authorization"] = f"Bearer {raw}"
    return request


def _finish(
    printer: Printer, spec: RequestSpec, parts: str, response: Response, plan: Plan | None
) -> int:
    status = exit_status_for(response.status_code, spec.follow_redirects)
    size = 0
    if plan is not None:
        resumable = response.status_code in (206, 416) and plan.offset > 0
        if not (200 <= response.status_code < 300 or resumable):
            printer.error(
                f"webwire: not saving the body: HTTP {response.status_code} "
                f"{response.reason_phrase}".rstrip()
            )
            return status or EXIT_ERROR
        try:
            save(printer, response, plan, printer.err_console.is_terminal and not printer.silent)
        except DownloadError as exc:
            printer.error(f"webwire: {exc}")
            return exc.exit_status
        size = response.num_bytes_downloaded
    elif "b" not in parts or response.request.method == "HEAD":
        pass
    elif printer.pretty and not spec.stream:
        response.read()
        size = len(response.content)
        printer.body(response.content, response.headers.get("Content-Type", ""), response.encoding)
    elif printer.pretty:
        content_type = response.headers.get("Content-Type", "")
        for chunk in response.iter_bytes():
            size += len(chunk)
            printer.text_chunk(chunk, content_type, response.encoding)
    else:
        for chunk in response.iter_bytes():
            size += len(chunk)
            printer.raw(chunk)
    if "m" in parts:
        if size and plan is None:
            printer.separator()
        response.close()
        lines = [
            f"Elapsed time: {response.elapsed.total_seconds():.6f}s",
            f"HTTP version: {response.http_version}",
        ]
        handshake = response.extensions.get("quic_handshake_time")
        if handshake is not None:
            lines.append(f"QUIC handshake time: {handshake:.6f}s")
        printer.meta(lines, to_stderr=spec.download)
    if spec.write_out is not None:
        response.close()
        printer.write(write_out(spec.write_out, response, size))
    if spec.check_status and status and spec.quiet < 2:
        printer.note(f"webwire: warning: HTTP {response.status_code} {response.reason_phrase}")
    return status if spec.check_status else EXIT_OK
