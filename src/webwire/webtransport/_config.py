"""Settings of the WebTransport clients (:class:`ClientConfig`)."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webwire._exceptions import ConfigurationError

__all__ = ["ClientConfig"]


def _default_user_agent() -> str:
    from webwire import __version__

    return f"webwire/{__version__}"


_VERIFY_MODES = {
    "CERT_NONE": ssl.CERT_NONE,
    "CERT_OPTIONAL": ssl.CERT_OPTIONAL,
    "CERT_REQUIRED": ssl.CERT_REQUIRED,
}

_REQUIRED_TIMEOUTS = ("connect_timeout", "close_timeout", "stream_creation_timeout")
_OPTIONAL_TIMEOUTS = ("read_timeout", "write_timeout")
_POSITIVE_INTS = (
    "max_streams",
    "max_incoming_streams",
    "stream_buffer_size",
    "max_stream_buffer_size",
    "flow_control_window_size",
)
_NON_NEGATIVE_INTS = ("initial_max_data", "initial_max_streams_bidi", "initial_max_streams_uni")


@dataclass
class ClientConfig:
    """What a :class:`~webwire.webtransport.WebTransportClient` and the
    clients built on it use: TLS, timeouts, reconnection, limits, flow
    control and the header fields of the extended CONNECT request
    (draft-ietf-webtrans-http3 section 3.2). Field names are those of
    pywebtransport's ``ClientConfig``. A new or changed config is checked
    by :meth:`validate`.

    Attributes:
        verify_mode: Server certificate check: ``ssl.CERT_REQUIRED`` (the
            default; also ``None``) or ``ssl.CERT_NONE`` (no check: testing
            only). ``ssl.CERT_OPTIONAL`` is taken as ``CERT_REQUIRED``.
        ca_certs: PEM file of the certificate authorities to trust instead
            of the system's, or ``None``.
        certfile: PEM client certificate (with its key unless ``keyfile``),
            or ``None``.
        keyfile: PEM private key of ``certfile``, or ``None``.
        connect_timeout: Seconds allowed to establish a session (QUIC and
            TLS handshakes, SETTINGS and the CONNECT response).
        read_timeout: Seconds a read may wait, ``None`` for no limit.
        write_timeout: Seconds a write may wait for flow-control credit,
            ``None`` for no limit.
        close_timeout: Seconds allowed for a graceful close.
        stream_creation_timeout: Seconds ``create_bidirectional_stream()``
            and ``create_unidirectional_stream()`` wait for the server's
            stream credit (QUIC MAX_STREAMS, RFC 9000 section 4.6; on the
            current draft also WT_MAX_STREAMS) or for ``max_streams`` to
            allow one more, before :class:`~webwire.WriteTimeout` (a
            :class:`~webwire.TimeoutException`) naming this field.
        auto_reconnect: :meth:`WebTransportClient.create` returns a
            :class:`~webwire.webtransport.ReconnectingClient`.
        max_retries: Failed attempts in a row a reconnecting client makes
            before it gives up (0: none after the first).
        retry_delay: Seconds before the first retry.
        retry_backoff: Factor (>= 1) the delay grows by after each failure.
        max_retry_delay: Upper bound of the delay in seconds.
        max_streams: Streams opened by this side that a session may have
            open at once (a stream counts until it is over both ways); one
            more waits up to ``stream_creation_timeout``.
        max_incoming_streams: Streams opened by the server that wait to be
            accepted, per session; one more is refused (STOP_SENDING and,
            bidirectional, RESET_STREAM with ``WT_BUFFERED_STREAM_REJECTED``,
            draft-ietf-webtrans-http3 section 4.4) and counted in the
            session's ``streams_refused`` statistic.
        max_datagram_size: Largest datagram payload to send, bytes (1 to
            65535): ``session.datagrams.max_datagram_size`` is the lower of
            this and what one QUIC packet carries (RFC 9221 section 5);
            larger datagrams raise :class:`~webwire.DatagramTooLarge`.
        stream_buffer_size: Bytes a stream buffers before it stops reading.
        max_stream_buffer_size: Unread bytes one stream may hold before the
            session's connection stops receiving until the application
            reads it below half of that (>= ``stream_buffer_size``). While
            another task of the session waits on the connection it keeps
            receiving, up to 64 MiB unread on that stream, beyond which the
            stream is reset and its reader gets :class:`~webwire.ReadError`.
        flow_control_window_size: Receive window in bytes, used when
            ``initial_max_data`` is 0: the QUIC ``initial_max_data``
            transport parameter (RFC 9000 section 18.2; each stream's
            ``initial_max_stream_data_*`` is the lower of it and 2 MiB)
            and, on the current draft, the session's
            ``SETTINGS_WT_INITIAL_MAX_DATA`` (draft-ietf-webtrans-http3
            section 5.5), raised by WT_MAX_DATA capsules each time the
            application has read half of it.
        initial_max_data: That window in bytes instead of
            ``flow_control_window_size`` when not 0.
        initial_max_streams_bidi: Bidirectional streams the server may
            open in a session before it is granted more, 0 for 100: the
            current draft's ``SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI``, raised
            by WT_MAX_STREAMS as those streams end. Draft-02 has no session
            stream limit and qh3 advertises fixed QUIC limits
            (``initial_max_streams_bidi`` 100, ``_uni`` 103), so there it
            has no effect.
        initial_max_streams_uni: The same for unidirectional streams
            (``SETTINGS_WT_INITIAL_MAX_STREAMS_UNI``).
        headers: Header fields sent with every CONNECT request (names
            lower-cased).
        user_agent: ``user-agent`` field value, unless ``headers`` has one.
    """

    verify_mode: ssl.VerifyMode | None = ssl.CERT_REQUIRED
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    connect_timeout: float = 30.0
    read_timeout: float | None = 60.0
    write_timeout: float | None = 30.0
    close_timeout: float = 5.0
    stream_creation_timeout: float = 10.0
    auto_reconnect: bool = False
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    max_retry_delay: float = 30.0
    max_streams: int = 100
    max_incoming_streams: int = 100
    max_datagram_size: int = 65535
    stream_buffer_size: int = 65536
    max_stream_buffer_size: int = 4 * 1024 * 1024
    flow_control_window_size: int = 8 * 1024 * 1024
    initial_max_data: int = 0
    initial_max_streams_bidi: int = 0
    initial_max_streams_uni: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    user_agent: str = field(default_factory=_default_user_agent)

    def __post_init__(self) -> None:
        if isinstance(self.verify_mode, str):
            self.verify_mode = _verify_mode(self.verify_mode)
        if not isinstance(self.headers, Mapping):
            raise ConfigurationError("headers", self.headers, "must be a mapping of str to str")
        self.headers = {str(k).lower(): str(v) for k, v in self.headers.items()}
        self.validate()

    # -- construction ------------------------------------------------------------

    @classmethod
    def create(cls, **kwargs: Any) -> ClientConfig:
        """A config with the defaults, overridden by ``kwargs``.

        Raises:
            ConfigurationError: An unknown field or an invalid value.
        """
        return cls.from_dict(kwargs)

    @classmethod
    def from_dict(cls, config_dict: Mapping[str, Any]) -> ClientConfig:
        """A config from a mapping of field names to values (what
        :meth:`to_dict` returns; ``verify_mode`` may be its name,
        ``"CERT_NONE"``...).

        Raises:
            ConfigurationError: An unknown field or an invalid value.
        """
        _check_keys(config_dict)
        values = dict(config_dict)
        if isinstance(values.get("verify_mode"), str):
            values["verify_mode"] = _verify_mode(values["verify_mode"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (``verify_mode`` as its name, headers
        copied)."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ssl.VerifyMode):
                value = value.name
            elif isinstance(value, dict):
                value = dict(value)
            result[f.name] = value
        return result

    def copy(self) -> ClientConfig:
        """A deep copy."""
        return copy.deepcopy(self)

    def update(self, **kwargs: Any) -> ClientConfig:
        """A copy with the given fields changed (checked).

        Raises:
            ConfigurationError: An unknown field or an invalid value.
        """
        return self.merge(kwargs)

    def merge(self, other: ClientConfig | Mapping[str, Any]) -> ClientConfig:
        """A copy of this config with ``other``'s values on top: every key
        of a mapping, or every field of another config that differs from
        the default. Header fields are combined (``other``'s win).

        Raises:
            ConfigurationError: An unknown field or an invalid value.
            TypeError: ``other`` is neither a config nor a mapping.
        """
        if isinstance(other, ClientConfig):
            defaults = ClientConfig()
            changes = {
                f.name: getattr(other, f.name)
                for f in dataclasses.fields(other)
                if getattr(other, f.name) != getattr(defaults, f.name)
            }
        elif isinstance(other, Mapping):
            _check_keys(other)
            changes = dict(other)
        else:
            raise TypeError(f"merge() takes a ClientConfig or a mapping, not {type(other)!r}")
        values = self.to_dict()
        headers = dict(self.headers)
        extra = changes.pop("headers", None) or {}
        headers.update({str(k).lower(): str(v) for k, v in extra.items()})
        values.update(changes)
        values["headers"] = headers
        return ClientConfig.from_dict(values)

    # -- checks ------------------------------------------------------------------

    def validate(self) -> None:
        """Check every field.

        Raises:
            ConfigurationError: A timeout is not a positive number of
                seconds, a count or size is out of range, a retry setting
                is invalid, a certificate file does not exist, ``keyfile``
                is set without ``certfile``, ``verify_mode`` is not a
                :class:`ssl.VerifyMode`, or a header field or the user
                agent holds CR, LF, NUL or an invalid name.
        """
        for name in _REQUIRED_TIMEOUTS:
            _check_seconds(name, getattr(self, name), optional=False)
        for name in _OPTIONAL_TIMEOUTS:
            _check_seconds(name, getattr(self, name), optional=True)
        for name in _POSITIVE_INTS:
            _check_int(name, getattr(self, name), 1)
        for name in _NON_NEGATIVE_INTS:
            _check_int(name, getattr(self, name), 0)
        _check_int("max_retries", self.max_retries, 0)
        _check_int("max_datagram_size", self.max_datagram_size, 1)
        if self.max_datagram_size > 65535:
            raise ConfigurationError("max_datagram_size", self.max_datagram_size, "must be 1-65535")
        if self.max_stream_buffer_size < self.stream_buffer_size:
            raise ConfigurationError(
                "max_stream_buffer_size",
                self.max_stream_buffer_size,
                "must be >= stream_buffer_size",
            )
        _check_seconds("retry_delay", self.retry_delay, optional=False)
        _check_seconds("max_retry_delay", self.max_retry_delay, optional=False)
        if not _is_number(self.retry_backoff) or not 1.0 <= self.retry_backoff < math.inf:
            raise ConfigurationError("retry_backoff", self.retry_backoff, "must be a number >= 1.0")
        if not isinstance(self.auto_reconnect, bool):
            raise ConfigurationError("auto_reconnect", self.auto_reconnect, "must be a bool")
        if self.verify_mode is not None and self.verify_mode not in _VERIFY_MODES.values():
            raise ConfigurationError("verify_mode", self.verify_mode, "must be an ssl.VerifyMode")
        for name in ("ca_certs", "certfile", "keyfile"):
            path = getattr(self, name)
            readable = isinstance(path, (str, os.PathLike)) and os.path.isfile(path)
            if path is not None and not readable:
                raise ConfigurationError(name, path, "no such file")
        if self.keyfile is not None and self.certfile is None:
            raise ConfigurationError("keyfile", self.keyfile, "needs certfile")
        if not isinstance(self.user_agent, str) or _bad_text(self.user_agent):
            raise ConfigurationError("user_agent", self.user_agent, "holds CR, LF or NUL")
        self._check_headers()

    def _check_headers(self) -> None:
        from webwire._exceptions import LocalProtocolError
        from webwire.http._request import validate_headers

        try:
            validate_headers(self.headers)
        except (LocalProtocolError, TypeError) as exc:
            raise ConfigurationError("headers", self.headers, str(exc)) from exc
        for name in self.headers:
            if name.startswith(":"):
                raise ConfigurationError("headers", name, "pseudo-header fields are set by webwire")

    # -- what the session opener is given -------------------------------------------

    def request_headers(self) -> dict[str, str]:
        """The configured CONNECT header fields with ``user-agent`` added
        when absent."""
        headers = dict(self.headers)
        headers.setdefault("user-agent", self.user_agent)
        return headers

    def tls_verify(self) -> bool | str:
        """The ``verify=`` value of webwire's clients: ``False`` for
        ``CERT_NONE``, the ``ca_certs`` path, else ``True``."""
        if self.verify_mode == ssl.CERT_NONE:
            return False
        return self.ca_certs if self.ca_certs is not None else True

    def tls_cert(self) -> str | tuple[str, str] | None:
        """The ``cert=`` value of webwire's clients: ``(certfile,
        keyfile)``, ``certfile`` or ``None``."""
        if self.certfile is None:
            return None
        return (self.certfile, self.keyfile) if self.keyfile is not None else self.certfile


def _check_keys(values: Mapping[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(ClientConfig)}
    for key in values:
        if key not in known:
            raise ConfigurationError(str(key), values[key], "unknown configuration key")


def _verify_mode(name: str) -> ssl.VerifyMode:
    try:
        return _VERIFY_MODES[name.upper()]
    except KeyError:
        raise ConfigurationError(
            "verify_mode", name, "must be CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED"
        ) from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_seconds(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not _is_number(value) or not 0 < value < math.inf:  # type: ignore[operator]
        allowed = "a positive number of seconds" + (" or None" if optional else "")
        raise ConfigurationError(name, value, f"must be {allowed}")


def _check_int(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigurationError(name, value, f"must be an integer >= {low}")


def _bad_text(text: str) -> bool:
    return any(c in text for c in "\r\n\0")
