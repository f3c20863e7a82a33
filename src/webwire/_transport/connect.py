"""Opening connections: TLS configuration and TCP/TLS connect.

TLS verification is on by default, against certifi's Mozilla CA bundle (or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when ``trust_env`` is on). ALPN offers
the HTTP versions the client enables (RFC 7301; ``h2`` per RFC 9113
section 3.2, ``http/1.1``).
"""

from __future__ import annotations

import os
import ssl
from typing import NamedTuple, Union

from webwire._backends.base import Backend, NetworkStream
from webwire._exceptions import ConnectError, UnsupportedProtocol

from ._dns import DNSCache
from ._types import TraceHook, bound_timeout

__all__ = ["CertTypes", "Origin", "VerifyTypes", "create_ssl_context", "open_stream"]

VerifyTypes = Union[bool, str, os.PathLike[str], ssl.SSLContext]  # noqa: UP007
CertTypes = Union[str, tuple[str, str], tuple[str, str, str], None]  # noqa: UP007

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """Where a connection goes: scheme, host (IDNA/ASCII, IPv6 without
    brackets) and port (RFC 6454 section 4)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(scheme: str, host: str | None, port: int | None) -> Origin:
    """Build the :class:`Origin` of a URL's parts.

    Raises:
        UnsupportedProtocol: The scheme is not ``http`` or ``https``.
        ConnectError: The URL has no host.
    """
    default = _DEFAULT_PORTS.get(scheme)
    if default is None:
        raise UnsupportedProtocol(f"unsupported URL scheme {scheme!r}: use http or https")
    if not host:
        raise ConnectError("the URL has no host")
    return Origin(scheme, host, port or default)


def create_ssl_context(
    verify: VerifyTypes = True,
    cert: CertTypes = None,
    *,
    alpn_protocols: tuple[str, ...] = ("http/1.1",),
    trust_env: bool = True,
) -> ssl.SSLContext:
    """Build the client TLS context.

    Args:
        verify: ``True`` to verify the server against the default CA bundle
            (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when
            ``trust_env``), a path to a CA bundle file or directory, an
            :class:`ssl.SSLContext` used as is (ALPN is still set), or
            ``False`` to skip verification (insecure).
        cert: Client certificate: a PEM file holding cert and key, a
            ``(certfile, keyfile)`` pair, or ``(certfile, keyfile,
            password)``.
        alpn_protocols: ALPN protocol ids to offer, most preferred first.
        trust_env: Honour ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``.

    Returns:
        A client-side :class:`ssl.SSLContext` (TLS 1.2 minimum).

    Raises:
        ConnectError: The CA bundle or client certificate cannot be loaded.
    """
    if isinstance(verify, ssl.SSLContext):
        ctx = verify
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if verify is False:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif verify is True:
                _load_default_verify(ctx, trust_env)
            else:
                path = os.fspath(verify)
                if os.path.isdir(path):
                    ctx.load_verify_locations(capath=path)
                else:
                    ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot load CA certificates from {verify!r}: {exc}") from exc
        if cert is not None:
            try:
                if isinstance(cert, str):
                    ctx.load_cert_chain(cert)
                elif len(cert) == 2:
                    ctx.load_cert_chain(cert[0], cert[1])
                else:
                    ctx.load_cert_chain(cert[0], cert[1], cert[2])  # type: ignore[misc]
            except (OSError, ssl.SSLError) as exc:
                raise ConnectError(f"cannot load client certificate {cert!r}: {exc}") from exc
    if alpn_protocols:
        ctx.set_alpn_protocols(list(alpn_protocols))
    return ctx


def _load_default_verify(ctx: ssl.SSLContext, trust_env: bool) -> None:
    if trust_env:
        cafile = os.environ.get("SSL_CERT_FILE")
        capath = os.environ.get("SSL_CERT_DIR")
        if cafile and os.path.isfile(cafile):
            ctx.load_verify_locations(cafile=cafile)
            return
        if capath and os.path.isdir(capath):
            ctx.load_verify_locations(capath=capath)
            return
    import certifi

    ctx.load_verify_locations(cafile=certifi.where())


async def open_stream(
    backend: Backend,
    origin: Origin,
    *,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float | None,
    deadline: float | None,
    local_address: str | None = None,
    dns: DNSCache | None = None,
    trace: TraceHook | None = None,
) -> NetworkStream:
    """Open a TCP connection to ``origin``, inside TLS for ``https``.

    Args:
        backend: The concurrency backend.
        origin: Scheme, host and port.
        ssl_context: Context for ``https`` origins (SNI is the origin host).
        connect_timeout: Seconds for DNS, TCP and TLS together.
        deadline: Absolute ``backend.monotonic()`` bound, or ``None``.
        local_address: Local IP to bind.
        dns: The pool's DNS cache: a host name is resolved through it and
            its addresses handed to the backend. ``None`` (and no
            ``trace``): the backend resolves.
        trace: The request's trace hook, told about resolution.

    Raises:
        ConnectTimeout: Not connected in time.
        ConnectError: DNS, TCP or TLS failure.
    """
    now = backend.monotonic()
    timeout = bound_timeout(connect_timeout, deadline, now)
    host, port = origin.host, origin.port
    addresses = None
    if (dns is not None or trace is not None) and not _is_ip(host):
        cache = dns if dns is not None else _NO_CACHE
        addresses = await cache.resolve(backend, host, port, timeout, trace)
        if timeout is not None:
            timeout = max(0.0, timeout - (backend.monotonic() - now))
    try:
        return await backend.connect_tcp(
            host,
            port,
            timeout=timeout,
            ssl_context=ssl_context if origin.scheme == "https" else None,
            server_hostname=host if origin.scheme == "https" else None,
            local_address=local_address,
            addresses=addresses,
        )
    except ConnectError:
        if addresses is not None and dns is not None:
            dns.forget(host, port)
        raise


_NO_CACHE = DNSCache(None)


def _is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (IPv6 without brackets)."""
    if ":" in host:
        return True
    return host.replace(".", "").isdigit() and host.count(".") == 3
