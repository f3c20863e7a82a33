"""TLS settings of HTTP/3 connections (QUIC's TLS 1.3, RFC 9001): webwire's
``verify`` and ``cert`` options mapped once to what qh3's
:class:`~qh3.quic.configuration.QuicConfiguration` takes.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from qh3.quic.configuration import QuicConfiguration
from qh3.tls import load_pem_private_key, load_pem_x509_certificates

from webwire._exceptions import ConnectError

__all__ = ["QuicTLS", "quic_tls_options"]


@dataclass(frozen=True, slots=True)
class QuicTLS:
    """TLS settings of HTTP/3 connections, built once by
    :func:`quic_tls_options` and shared by every connection of a pool.

    Attributes:
        verify: Whether the server's certificate chain and name are checked.
        check_hostname: Whether the certificate must match the server name.
        cadata: PEM CA certificates to trust (``None`` with ``capath``).
        capath: A directory of CA certificates (OpenSSL hashed layout).
        certificate: The client certificate (qh3 object) or ``None``.
        certificate_chain: Intermediate certificates sent with it.
        private_key: The client certificate's key (qh3 object) or ``None``.
    """

    verify: bool = True
    check_hostname: bool = True
    cadata: bytes | None = None
    capath: str | None = None
    certificate: Any = None
    certificate_chain: tuple[Any, ...] = ()
    private_key: Any = None

    def configure(self, config: QuicConfiguration) -> None:
        """Apply these settings to a qh3 client configuration."""
        if not self.verify:
            config.verify_mode = ssl.CERT_NONE
            config.verify_hostname = False
        else:
            config.verify_mode = ssl.CERT_REQUIRED
            config.verify_hostname = self.check_hostname
            config.cadata = self.cadata
            config.capath = self.capath
        if self.certificate is not None:
            config.certificate = self.certificate
            config.certificate_chain = list(self.certificate_chain)
            config.private_key = self.private_key


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConnectError(f"cannot load {what} from {path!r}: {exc}") from exc


def _default_cadata(trust_env: bool) -> tuple[bytes | None, str | None]:
    if trust_env:
        cafile = os.environ.get("SSL_CERT_FILE")
        capath = os.environ.get("SSL_CERT_DIR")
        if cafile and os.path.isfile(cafile):
            return _read(cafile, "CA certificates"), None
        if capath and os.path.isdir(capath):
            return None, capath
    import certifi

    return _read(certifi.where(), "CA certificates"), None


def quic_tls_options(verify: Any = True, cert: Any = None, trust_env: bool = True) -> QuicTLS:
    """Map webwire's TLS options to HTTP/3 (QUIC's TLS 1.3, RFC 9001).

    Args:
        verify: ``True``: the default CA bundle (certifi, or
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` with ``trust_env``); a path
            to a CA bundle file or directory; ``False``: no verification
            (insecure); an :class:`ssl.SSLContext`: its CA certificates (as
            listed by ``get_ca_certs(binary_form=True)``), its
            ``verify_mode`` and ``check_hostname``. Limits of the last
            form: certificates of a ``capath`` the context loads lazily are
            not listed (the default bundle is used when it lists none), and
            its client certificate, ciphers and other settings are not used
            (QUIC always negotiates TLS 1.3).
        cert: Client certificate: a PEM file holding certificate and key,
            ``(certfile, keyfile)`` or ``(certfile, keyfile, password)``.
        trust_env: Honour ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``.

    Returns:
        A :class:`QuicTLS`, reusable by every HTTP/3 connection.

    Raises:
        ConnectError: The CA certificates or the client certificate cannot
            be loaded.
    """
    kwargs: dict[str, Any] = {}
    if isinstance(verify, ssl.SSLContext):
        if verify.verify_mode == ssl.CERT_NONE:
            kwargs.update(verify=False, check_hostname=False)
        else:
            ders = verify.get_ca_certs(binary_form=True)
            if ders:
                pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders)
                kwargs["cadata"] = pem.encode("ascii")
            else:
                kwargs["cadata"], kwargs["capath"] = _default_cadata(trust_env)
            kwargs["check_hostname"] = verify.check_hostname
    elif verify is False:
        kwargs.update(verify=False, check_hostname=False)
    elif verify is True:
        kwargs["cadata"], kwargs["capath"] = _default_cadata(trust_env)
    else:
        path = os.fspath(verify)
        if os.path.isdir(path):
            kwargs["capath"] = path
        else:
            kwargs["cadata"] = _read(path, "CA certificates")
        cadata = kwargs.get("cadata")
        if cadata is not None and b"-----BEGIN CERTIFICATE-----" not in cadata:
            raise ConnectError(f"cannot load CA certificates from {verify!r}: no PEM certificate")
    if cert is not None:
        kwargs.update(_load_client_cert(cert))
    return QuicTLS(**kwargs)


def _load_client_cert(cert: Any) -> dict[str, Any]:
    if isinstance(cert, str | os.PathLike):
        certfile, keyfile, password = os.fspath(cert), None, None
    else:
        certfile, keyfile = cert[0], cert[1]
        password = cert[2] if len(cert) > 2 else None
    data = _read(certfile, "client certificate")
    key_pem = _read(keyfile, "client key") if keyfile is not None else data
    if b"-----BEGIN CERTIFICATE-----" not in data or b"PRIVATE KEY-----" not in key_pem:
        raise ConnectError(
            f"cannot load client certificate {cert!r}: a PEM certificate and key are needed"
        )
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        certificates = load_pem_x509_certificates(data)
        key = load_pem_private_key(_key_block(key_pem), password=password)
    except BaseException as exc:  # qh3's Rust side may raise a PanicException
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise ConnectError(f"cannot load client certificate {cert!r}: {exc}") from exc
    if not certificates:
        raise ConnectError(f"cannot load client certificate {cert!r}: no certificate")
    return {
        "certificate": certificates[0],
        "certificate_chain": tuple(certificates[1:]),
        "private_key": key,
    }


def _key_block(pem: bytes) -> bytes:
    """The private key block of a PEM file that may also hold certificates."""
    start = pem.find(b"-----BEGIN ")
    while start != -1:
        line_end = pem.find(b"-----", start + 11)
        label = pem[start + 11 : line_end]
        if b"PRIVATE KEY" in label:
            end_marker = b"-----END " + label + b"-----"
            end = pem.find(end_marker, start)
            if end != -1:
                return pem[start : end + len(end_marker)] + b"\n"
        start = pem.find(b"-----BEGIN ", start + 1)
    return pem
