"""What the backends share: limits, error construction and connection details.

The exception factories below hold the wording of every message a backend
raises for a failed or timed-out operation, so the three backends report the
same failure the same way. Callers chain the original error themselves
(``raise read_error(...) from exc``) and call them only on the failure path.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from webwire._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)

WRITE_CHUNK = 256 * 1024
"""Largest piece of one ``write`` handed to the socket under one timeout
window, so a slow but moving peer does not time out a large upload."""

CLOSE_WAIT = 0.1
"""Seconds ``aclose`` may spend closing gracefully before the connection is
closed outright."""


def describe(exc: BaseException) -> str:
    """``"TypeName: message"``, or just the type name when the message is
    empty."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_port(host: str, port: int, kind: str = "TCP") -> None:
    """Raise :class:`~webwire.ConnectError` unless ``port`` is a ``kind``
    (``"TCP"`` or ``"UDP"``) port: 1 to 65535."""
    if not 0 < port < 65536:
        raise connect_error(host, port, f"invalid {kind} port")


def connect_error(host: str, port: int, detail: str) -> ConnectError:
    alert = tls_alert_error(detail)
    if alert is not None:
        detail = str(alert)
    return ConnectError(f"could not connect to {host}:{port}: {detail}")


def connect_timeout(host: str, port: int, timeout: float | None) -> ConnectTimeout:
    return ConnectTimeout(f"could not connect to {host}:{port} within {timeout} seconds")


def unix_connect_error(path: str, detail: str) -> ConnectError:
    return ConnectError(f"could not connect to Unix socket {path!r}: {detail}")


def unix_connect_timeout(path: str, timeout: float | None) -> ConnectTimeout:
    return ConnectTimeout(f"could not connect to Unix socket {path!r} within {timeout} seconds")


# TLS alerts a server sends when it wants a client certificate, by the
# OpenSSL reason in ssl.SSLError's text (RFC 8446 section 6.2; with TLS 1.3
# the alert comes after the client's handshake ended, at the first read).
_TLS_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        "the server requires a client certificate (TLS alert certificate required)"
    ),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (
        "the server refused the TLS handshake (TLS alert handshake failure): it may require "
        "a client certificate, or support none of the client's TLS versions and ciphers"
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": (
        "the server rejected the client certificate (TLS alert bad certificate)"
    ),
}


def tls_alert_error(detail: str) -> ConnectError | None:
    """The ConnectError naming what a TLS alert from the server means when
    ``detail`` (an ``ssl.SSLError``'s text) is one about client
    certificates, else ``None``."""
    if "ALERT" in detail:
        for reason, message in _TLS_ALERTS.items():
            if reason in detail:
                return ConnectError(message)
    return None


def tls_error(detail: str) -> ConnectError:
    return tls_alert_error(detail) or ConnectError(f"TLS handshake failed: {detail}")


def tls_timeout(timeout: float | None) -> ConnectTimeout:
    return ConnectTimeout(f"TLS handshake timed out after {timeout} seconds")


def read_error(detail: str) -> ReadError | ConnectError:
    return tls_alert_error(detail) or ReadError(f"receive failed: {detail}")


def read_timeout(timeout: float | None) -> ReadTimeout:
    return ReadTimeout(f"no data received within {timeout} seconds")


def write_error(detail: str) -> WriteError | ConnectError:
    return tls_alert_error(detail) or WriteError(f"send failed: {detail}")


def write_timeout(timeout: float | None) -> WriteTimeout:
    return WriteTimeout(f"data could not be sent within {timeout} seconds")


def set_nodelay(sock: Any) -> None:
    """Set TCP_NODELAY on ``sock`` (a socket or asyncio's socket view),
    ignoring a socket that refuses it."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def selected_alpn(tls: Any) -> str | None:
    """The ALPN protocol negotiated on ``tls`` (anything offering
    :meth:`ssl.SSLObject.selected_alpn_protocol`), ``None`` without TLS."""
    if tls is None:
        return None
    protocol: str | None = tls.selected_alpn_protocol()
    return protocol


def socket_extra_info(name: str, tls: Any, sock: Any) -> Any:
    """:meth:`NetworkStream.get_extra_info` for a stream made of a socket
    ``sock`` and, when encrypted, a TLS object ``tls`` (``None`` otherwise).
    ``"ssl_object"`` is ``tls`` and ``"socket"`` is ``sock``; a detail the
    socket cannot give (it is closed, for example) is ``None``."""
    try:
        if name == "ssl_object":
            return tls
        if name == "alpn_protocol":
            return selected_alpn(tls)
        if name == "peername":
            return sock.getpeername()
        if name == "sockname":
            return sock.getsockname()
        if name == "socket":
            return sock
    except (OSError, ValueError):
        return None
    return None


def ip_family(host: str) -> int | None:
    """``AF_INET`` or ``AF_INET6`` when ``host`` is an IP literal (IPv6
    without brackets, a zone index allowed), ``None`` for a name."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return None
    return socket.AF_INET6 if version == 6 else socket.AF_INET


MAX_DATAGRAM = 65_536
"""Receive buffer for one datagram, in bytes (a UDP payload is at most
65,507 bytes over IPv4 and 65,527 over IPv6)."""


def open_udp_socket(
    remote_addr: tuple[str, int], local_addr: tuple[str, int] | None
) -> socket.socket:
    """A blocking UDP socket bound to ``local_addr`` (or an ephemeral port)
    and connected to ``remote_addr``, both IP literals.

    Raises:
        ConnectError: The addresses are invalid, or the socket cannot be
            created, bound or connected.
    """
    host, port = remote_addr
    family = ip_family(host)
    if family is None:
        raise connect_error(host, port, "a UDP remote address must be an IP literal")
    check_port(host, port, "UDP")
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise connect_error(host, port, describe(exc)) from exc
    try:
        if local_addr is not None:
            sock.bind(local_addr)
        sock.connect(remote_addr)
    except (OSError, ValueError, OverflowError, TypeError) as exc:
        sock.close()
        raise connect_error(host, port, describe(exc)) from exc
    return sock
