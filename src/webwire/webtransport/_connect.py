"""Opening a WebTransport session: :func:`open_session`
(draft-ietf-webtrans-http3 section 3.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yarl

from webwire._config import DEFAULT_LIMITS, Timeout
from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    LocalProtocolError,
    ReadTimeout,
    WebTransportError,
)

from ._session import WebTransportSession

if TYPE_CHECKING:
    from webwire._backends.base import Backend
    from webwire.http._client import AsyncClient

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "open_session"]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds :func:`open_session` allows for the QUIC handshake, the server's
SETTINGS and its answer, unless told otherwise."""

_UNSET: Any = object()


def _check_url(url: str | yarl.URL) -> yarl.URL:
    try:
        parsed = yarl.URL(str(url)) if not isinstance(url, yarl.URL) else url
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"invalid WebTransport URL {url!r}: {exc}") from exc
    if parsed.scheme != "https" or not parsed.host:
        raise InvalidURL(
            f"a WebTransport URL is https://host[:port]/path (HTTP/3), not {str(url)!r}"
        )
    if parsed.fragment:
        raise InvalidURL(f"a WebTransport URL has no fragment: {str(url)!r}")
    return parsed


def _config_value(config: Any, name: str, default: Any) -> Any:
    value = getattr(config, name, None) if config is not None else None
    return default if value is None else value


async def open_session(
    url: str | yarl.URL,
    *,
    client: AsyncClient | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    verify: Any = _UNSET,
    cert: Any = _UNSET,
    config: Any = None,
    _backend: str | Backend | None = None,
) -> WebTransportSession:
    """Establish a WebTransport session with ``url``: a QUIC connection of
    its own (RFC 9000, ALPN ``h3``) offering WebTransport in its SETTINGS,
    then an extended CONNECT with ``:protocol`` for the server's draft
    (``webtransport`` plus ``sec-webtransport-http3-draft02: 1`` for
    draft-02, ``webtransport-h3`` for the current draft) answered ``2xx``
    (draft-ietf-webtrans-http3 section 3.2, RFC 9220 section 3).

    Args:
        url: ``https://host[:port]/path?query``.
        client: The :class:`~webwire.AsyncClient` whose backend, TLS
            settings (``verify``, ``cert``, ``trust_env``) and timeouts
            are used; ``None``: defaults on the running async library.
        headers: Extra CONNECT request fields (``Origin``, ``Authorization``...).
        timeout: Seconds for the whole opening (handshake, SETTINGS,
            answer); default ``config.connect_timeout`` or
            :data:`DEFAULT_CONNECT_TIMEOUT`.
        verify: As the client's ``verify`` (overrides it).
        cert: As the client's ``cert`` (overrides it).
        config: A :class:`webwire.webtransport.ClientConfig` (or any
            object with its field names): ``read_timeout``,
            ``write_timeout`` (seconds per stream operation, ``None`` for
            none), ``close_timeout``, ``max_idle_timeout``, ``user_agent``,
            ``max_incoming_streams`` (streams the server opened that wait
            to be accepted; one more is refused with
            ``WT_BUFFERED_STREAM_REJECTED``), ``max_streams`` (streams
            opened here that may be open at once), ``stream_creation_timeout``
            (seconds :meth:`~WebTransportSession.create_bidirectional_stream`
            and :meth:`~WebTransportSession.create_unidirectional_stream`
            wait for room or the server's stream credit), ``max_datagram_size``
            (largest datagram to send, bytes), ``max_stream_buffer_size``
            (unread bytes of one stream at which receiving pauses),
            ``flow_control_window_size`` / ``initial_max_data`` (receive
            windows, bytes) and ``initial_max_streams_bidi`` / ``_uni``
            (streams the server may open, current draft).

    Returns:
        The established :class:`WebTransportSession`.

    Raises:
        InvalidURL: ``url`` is not an https URL.
        ConnectError: The QUIC handshake failed (certificate, refused) or
            the host does not resolve.
        ConnectTimeout: Not established within ``timeout`` seconds.
        WebTransportError: The server does not support WebTransport, or
            refused the session (its status is in the message).
        LocalProtocolError: A header field is invalid.
    """
    target = _check_url(url)
    backend = _backend_of(client, _backend)
    transport = getattr(client, "_transport", None) if client is not None else None
    if verify is _UNSET:
        verify = getattr(transport, "_verify", True)
    if cert is _UNSET:
        cert = getattr(transport, "_cert", None)
    trust_env = bool(getattr(transport, "_trust_env", True))
    limits = getattr(transport, "_limits", DEFAULT_LIMITS)
    if timeout is None:
        timeout = float(_config_value(config, "connect_timeout", DEFAULT_CONNECT_TIMEOUT))
    fields = _request_fields(headers, config)
    conn = await _connect(
        backend, target, verify, cert, trust_env, limits, timeout, config, _windows(config)
    )
    started = backend.monotonic()
    try:
        session = await _establish(
            conn, target, fields, max(0.0, timeout - (backend.monotonic() - started)), config
        )
    except BaseException:
        await conn.aclose()
        raise
    return session


def _backend_of(client: AsyncClient | None, spec: str | Backend | None) -> Backend:
    if client is not None:
        backend = client._backend or client._init_backend()
        return backend
    from webwire._backends import get_backend

    if spec is not None and not isinstance(spec, str):
        return spec
    return get_backend(spec)


DEFAULT_WINDOW = 8 * 1024 * 1024
"""Connection and session receive window without a config, bytes."""

DEFAULT_INCOMING_STREAM_LIMIT = 100
"""Streams of each kind the server may open before it is granted more
(current draft), without a config."""


def _windows(config: Any) -> tuple[int, int, dict[int, int]]:
    """``(stream_window, connection_window, wt_settings)`` from ``config``:
    the QUIC receive windows (``initial_max_data`` or else
    ``flow_control_window_size``) and the current draft's session limits."""
    from webwire._proto.h3 import STREAM_WINDOW
    from webwire._proto.webtransport import client_settings

    window = int(_config_value(config, "initial_max_data", 0)) or int(
        _config_value(config, "flow_control_window_size", DEFAULT_WINDOW)
    )
    bidi = int(_config_value(config, "initial_max_streams_bidi", 0))
    uni = int(_config_value(config, "initial_max_streams_uni", 0))
    settings = client_settings(
        window, bidi or DEFAULT_INCOMING_STREAM_LIMIT, uni or DEFAULT_INCOMING_STREAM_LIMIT
    )
    return min(STREAM_WINDOW, window), window, settings


def _session_limits(config: Any) -> dict[str, Any]:
    """The :class:`~webwire._transport._wt_session.WTSessionCore` limits
    ``config`` sets (none without a config)."""
    incoming = _config_value(config, "max_incoming_streams", None)
    if incoming is None:
        incoming = _config_value(config, "stream_buffer_size", 128)
    limits: dict[str, Any] = {"max_incoming": int(incoming)}
    streams = _config_value(config, "max_streams", None)
    if streams is not None:
        limits["max_local_streams"] = int(streams)
    creation = _config_value(config, "stream_creation_timeout", None)
    if creation is not None:
        limits["creation_timeout"] = float(creation)
    datagram = _config_value(config, "max_datagram_size", None)
    if datagram is not None:
        limits["datagram_limit"] = int(datagram)
    buffered = _config_value(config, "max_stream_buffer_size", None)
    if buffered is not None:
        limits["stream_buffer_limit"] = int(buffered)
    return limits


def _request_fields(headers: Mapping[str, str] | None, config: Any) -> list[tuple[bytes, bytes]]:
    from webwire import __version__
    from webwire.http._request import validate_headers

    fields: list[tuple[str, str]] = []
    config_headers = _config_value(config, "headers", None)
    if config_headers:
        fields += validate_headers(config_headers)
    if headers:
        fields += validate_headers(headers)
    names = {name.lower() for name, _ in fields}
    for name in names:
        if name.startswith(":") or name == "host":
            raise LocalProtocolError(
                f"the {name!r} field of a WebTransport request is set by webwire"
            )
    if "user-agent" not in names:
        agent = _config_value(config, "user_agent", f"webwire/{__version__}")
        fields.append(("user-agent", str(agent)))
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in fields]


async def _connect(
    backend: Backend,
    url: yarl.URL,
    verify: Any,
    cert: Any,
    trust_env: bool,
    limits: Any,
    timeout: float,
    config: Any,
    windows: tuple[int, int, dict[int, int]],
) -> Any:
    from webwire._transport._h3_route import load_engine, require_qh3
    from webwire._transport.connect import Origin

    require_qh3()
    connect, tls_options, _ = load_engine()
    host = url.raw_host or ""
    port = url.port or 443
    tls = tls_options(verify, cert, trust_env)
    started = backend.monotonic()
    if _is_ip(host):
        addresses = [host]
    else:
        resolved = await backend.resolve(host, port, timeout=timeout)
        addresses = list(dict.fromkeys(ip for _, ip in resolved))[:2]
        if not addresses:
            raise ConnectError(f"cannot connect to {host}:{port}: no address found")
    idle = float(_config_value(config, "max_idle_timeout", 30.0))
    origin = Origin("https", host, port)
    error: BaseException | None = None
    for ip in addresses:
        left = max(0.0, timeout - (backend.monotonic() - started))
        try:
            return await connect(
                backend,
                origin,
                address=(ip, port),
                server_name=url.host or host,
                tls=tls,
                limits=limits,
                connect_timeout=left,
                tickets=None,
                on_release=_ignore,
                idle_timeout=idle,
                webtransport=True,
                windows=windows,
            )
        except ConnectError as exc:
            error = exc
            if "certificate" in str(exc):
                raise
        except ConnectTimeout as exc:
            # The attempt had only what was left of ``timeout``: name the
            # whole budget, not the remainder.
            raise ConnectTimeout(
                f"no QUIC handshake with {host}:{port} within {timeout} seconds "
                "(UDP blocked or dropped?)"
            ) from exc
    assert error is not None
    raise error


def _ignore(conn: Any) -> None:
    return None


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _establish(
    conn: Any,
    url: yarl.URL,
    fields: list[tuple[bytes, bytes]],
    timeout: float,
    config: Any,
) -> WebTransportSession:
    from webwire._transport._types import StaleConnection, TransportRequest
    from webwire._transport._wt_session import WTRegistry, WTSessionCore

    backend = conn._backend
    deadline = backend.monotonic() + timeout
    limit = Timeout(timeout)
    where = f"{url.host}:{url.port or 443}"
    try:
        await conn.connect_protocol_enabled(limit, deadline)
    except ReadTimeout as exc:
        raise ConnectTimeout(f"{where} sent no HTTP/3 SETTINGS within {timeout} seconds") from exc
    draft = conn._proto.webtransport_draft
    if draft is None:
        raise WebTransportError(
            f"{where} does not support WebTransport (no SETTINGS_ENABLE_WEBTRANSPORT or "
            "SETTINGS_WT_ENABLED in its HTTP/3 SETTINGS)"
        )
    if not conn._proto.datagrams_supported:
        raise WebTransportError(f"{where} does not support QUIC datagrams (RFC 9221)")
    if conn._wt is None:
        conn._wt = WTRegistry(conn)
    path = url.raw_path_qs or "/"
    authority = url.raw_authority
    headers = [(b"host", authority.encode("ascii"))]
    headers += [(n.encode(), v.encode()) for n, v in draft.fields]
    headers += fields
    request = TransportRequest(
        b"CONNECT",
        url,
        path.encode("ascii"),
        headers,
        None,
        limit,
        deadline,
        {"protocol": draft.protocol},
    )
    conn.reserve()
    try:
        response = await conn.handle_request(request)
    except StaleConnection as stale:
        raise ConnectError(f"the WebTransport session to {where} failed: {stale.error}") from (
            stale.error
        )
    except ReadTimeout as exc:
        raise ConnectTimeout(f"{where} did not answer the WebTransport session request within "
                             f"{timeout} seconds") from exc
    status = response.status_code
    if not 200 <= status < 300:
        await response.stream.aclose()
        raise WebTransportError(f"{where} refused the WebTransport session to {path}: {status}")
    stream_id = response.extensions["stream_id"]
    with conn._lock:
        state = conn._streams.pop(stream_id)
        core = WTSessionCore(conn, stream_id, draft, **_session_limits(config))
        conn._wt.sessions[stream_id] = core
        # The CONNECT stream's data is now read by the registry, as capsules.
        for event in state.events:
            conn._wt.dispatch_locked(event)
        state.events = []
        conn._wt.replay_early_locked(stream_id)
        if state.error is not None:
            core.end_locked(core._closed_by_server())
    response_headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in response.headers
    }
    return WebTransportSession(
        conn,
        core,
        path=path,
        headers=response_headers,
        status_code=status,
        read_timeout=_config_value(config, "read_timeout", None),
        write_timeout=_config_value(config, "write_timeout", None),
        close_timeout=float(_config_value(config, "close_timeout", 2.0)),
    )


