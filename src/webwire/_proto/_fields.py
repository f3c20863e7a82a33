"""Validation of request methods, targets and header fields, for every HTTP
version (RFC 9110 sections 5 and 9, RFC 9112 section 3.2).

The one place where webwire decides what a request may carry: the HTTP/1.1
serialiser (:mod:`webwire._proto._h1_request`), the HTTP/2 state machine
(:func:`validate_request` and :func:`field_kind`, :mod:`webwire._proto.h2`)
and the ``http`` layer (on the latin-1 bytes of the user's strings) all call
into it; HTTP/3 is to do the same.

* A method and a field name are tokens (RFC 9110 section 5.6.2): visible
  ASCII without separators, so no whitespace, CR, LF, NUL or other control.
* A field value holds no control character but HTAB (RFC 9110 section 5.5):
  CR, LF and NUL would split or smuggle requests; bytes 0x80-0xFF
  (obs-text) are allowed.
* A request target is non-empty and holds no whitespace or control
  character (RFC 9112 section 3.2).

Methods and field names repeat from request to request: the ones already
checked are remembered (with what a field name means for framing), so a
well-formed request pays little for its validation.
"""

from __future__ import annotations

import re
from typing import NoReturn

from webwire._exceptions import LocalProtocolError

__all__ = [
    "FIELD_CONNECTION",
    "FIELD_CONNECTION_SPECIFIC",
    "FIELD_CONTENT_LENGTH",
    "FIELD_HOST",
    "FIELD_OTHER",
    "FIELD_TE",
    "FIELD_TRANSFER_ENCODING",
    "FIELD_UPGRADE",
    "check_extended_connect",
    "check_field",
    "check_fields",
    "check_method",
    "check_target",
    "explain_invalid",
    "field_kind",
    "framing_fields",
    "has_token",
    "is_token",
    "last_token",
    "multiplexed_request_fields",
    "validate_request",
]

Headers = list[tuple[bytes, bytes]]

# What a field name means for the connection and the framing. HTTP/2 and
# HTTP/3 drop FIELD_CONNECTION, FIELD_CONNECTION_SPECIFIC, FIELD_UPGRADE and
# FIELD_TRANSFER_ENCODING (RFC 9113 section 8.2.2) and send FIELD_HOST as
# ":authority".
FIELD_OTHER = 0
FIELD_CONTENT_LENGTH = 1
FIELD_TRANSFER_ENCODING = 2
FIELD_CONNECTION = 3
FIELD_UPGRADE = 4
FIELD_CONNECTION_SPECIFIC = 5
FIELD_TE = 6
FIELD_HOST = 7

_SPECIAL_NAMES = {
    b"content-length": FIELD_CONTENT_LENGTH,
    b"transfer-encoding": FIELD_TRANSFER_ENCODING,
    b"connection": FIELD_CONNECTION,
    b"upgrade": FIELD_UPGRADE,
    b"keep-alive": FIELD_CONNECTION_SPECIFIC,
    b"proxy-connection": FIELD_CONNECTION_SPECIFIC,
    b"te": FIELD_TE,
    b"host": FIELD_HOST,
}

# Field names already validated, with their meaning, and methods already
# validated. Bounded: cleared when full.
_known_names: dict[bytes, int] = {}
_known_methods: set[bytes] = set()
_KNOWN_MAX = 1024

# RFC 9110 section 5.6.2: tchar.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 section 5.5: controls a field value may not hold (all but HTAB).
_VALUE_CONTROLS = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
# RFC 9112 section 3.2: the request target holds no whitespace or controls.
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]").search


def is_token(value: bytes) -> bool:
    """Whether ``value`` is a non-empty token (RFC 9110 section 5.6.2)."""
    return bool(value) and not value.translate(None, _TCHAR)


def last_token(value: bytes) -> bytes:
    """The last comma-separated element of a field value, stripped and
    lower-cased (``Transfer-Encoding: gzip, chunked`` gives ``b"chunked"``)."""
    return value.rpartition(b",")[2].strip().lower()


def has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated field value lists ``token`` (given in lower
    case), case-insensitively (``Connection: keep-alive, Close``)."""
    lowered = value.lower()
    if token not in lowered:
        return False
    return any(item.strip() == token for item in lowered.split(b","))


def framing_fields(headers: Headers) -> tuple[bytes | None, bytes | None]:
    """The ``Content-Length`` and ``Transfer-Encoding`` values of a header
    section (the last of each; RFC 9112 section 6), ``None`` where absent."""
    content_length: bytes | None = None
    transfer_encoding: bytes | None = None
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            content_length = value
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            transfer_encoding = value
    return content_length, transfer_encoding


def _check_token(kind: str, value: object) -> None:
    """Raise LocalProtocolError unless ``value`` is a non-empty token."""
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"{kind} must be bytes, not {type(value).__name__}")
    if not value or value.translate(None, _TCHAR):
        raise LocalProtocolError(
            f"invalid {kind} {value!r}: it must be a non-empty token "
            "(RFC 9110 section 5.6.2; no whitespace, CR, LF, NUL or separators)"
        )


def check_method(method: object) -> None:
    """Check a request method (RFC 9110 section 9.1: a token).

    Raises:
        LocalProtocolError: ``method`` is not ``bytes`` or not a token.
    """
    if method not in _known_methods:
        _check_token("method", method)
        assert isinstance(method, bytes)
        if len(_known_methods) >= _KNOWN_MAX:
            _known_methods.clear()
        _known_methods.add(method)


def field_kind(name: object) -> int:
    """Validate a field name and say what it means for the connection.

    Args:
        name: The field name, as sent.

    Returns:
        ``FIELD_CONTENT_LENGTH``, ``FIELD_TRANSFER_ENCODING``,
        ``FIELD_CONNECTION``, ``FIELD_UPGRADE``,
        ``FIELD_CONNECTION_SPECIFIC`` (``Keep-Alive``,
        ``Proxy-Connection``), ``FIELD_TE``, ``FIELD_HOST`` or
        ``FIELD_OTHER`` (names compared case-insensitively).

    Raises:
        LocalProtocolError: ``name`` is not ``bytes`` or not a token
            (RFC 9110 section 5.1).
    """
    kind = _known_names.get(name) if type(name) is bytes else None
    if kind is not None:
        return kind
    _check_token("header name", name)
    assert isinstance(name, bytes)
    kind = _SPECIAL_NAMES.get(name.lower(), FIELD_OTHER)
    if len(_known_names) >= _KNOWN_MAX:
        _known_names.clear()
    _known_names[name] = kind
    return kind


def _check_value(name: object, value: object) -> None:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"value of header {name!r} must be bytes")
    if len(value.translate(None, _VALUE_CONTROLS)) != len(value):
        raise LocalProtocolError(
            f"invalid value for header {name!r}: {value!r} holds CR, LF, NUL or another "
            "control character (RFC 9110 section 5.5)"
        )


def check_field(name: object, value: object) -> None:
    """Check one header field line.

    Raises:
        LocalProtocolError: The name is not a token (RFC 9110 section 5.1),
            or the value holds a control character other than HTAB (CR, LF
            and NUL included; RFC 9110 section 5.5), or either is not
            ``bytes``.
    """
    field_kind(name)
    _check_value(name, value)


def check_target(target: object) -> None:
    """Check a request target (RFC 9112 section 3.2).

    Raises:
        LocalProtocolError: ``target`` is not ``bytes``, is empty, or holds
            whitespace or a control character.
    """
    if not isinstance(target, bytes):
        raise LocalProtocolError(f"target must be bytes, not {type(target).__name__}")
    if not target or _BAD_TARGET(target):
        raise LocalProtocolError(
            f"invalid request target {target!r}: it must be non-empty and hold no "
            "whitespace or control characters (RFC 9112 section 3.2)"
        )


def explain_invalid(method: object, target: object, headers: object) -> NoReturn:
    """Raise the LocalProtocolError that names what makes a request invalid
    (the slow path behind the whole-request checks).

    Raises:
        LocalProtocolError: Always; about the method, the target, the shape
            of ``headers`` (a list of pairs of bytes) or a field.
    """
    check_method(method)
    check_target(target)
    shape = "headers must be a list of (name, value) pairs of bytes"
    try:
        pairs = [(name, value) for name, value in headers]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(shape) from exc
    for name, value in pairs:
        check_field(name, value)
    raise LocalProtocolError(shape)


def check_fields(headers: Headers) -> None:
    """Check header field lines as a whole (the fast path of
    :func:`check_field` for many fields).

    Args:
        headers: ``(name, value)`` pairs of bytes, in a list.

    Raises:
        LocalProtocolError: A name is not a token (RFC 9110 section 5.1), a
            value holds a control character other than HTAB (RFC 9110
            section 5.5), or the fields are not a list of pairs of bytes.
    """
    known = _known_names
    try:
        for name, _ in headers:
            if name not in known:
                field_kind(name)
        values = b"".join([value for _, value in headers])
    except (TypeError, ValueError):
        explain_invalid(b"GET", b"/", headers)
    if type(headers) is not list or len(values.translate(None, _VALUE_CONTROLS)) != len(values):
        explain_invalid(b"GET", b"/", headers)


def validate_request(method: bytes, target: bytes, headers: Headers) -> None:
    """Check a request's method, target and header fields, whatever the
    HTTP version.

    Framing and connection-specific fields are not judged here: each
    version driver decides what it sends of them.

    Args:
        method: The method token, e.g. ``b"GET"``.
        target: The request target (``:path`` in HTTP/2 and HTTP/3), e.g.
            ``b"/a?b=1"``, or ``b"host:port"`` for ``CONNECT``.
        headers: ``(name, value)`` pairs of bytes, in a list.

    Raises:
        LocalProtocolError: The method or a name is not a token (RFC 9110
            sections 5.6.2 and 9.1), a value holds CR, LF, NUL or another
            control but HTAB (RFC 9110 section 5.5), the target is empty or
            holds whitespace or controls (RFC 9112 section 3.2), or the
            arguments have the wrong types.
    """
    if method not in _known_methods:
        check_method(method)
    if type(target) is not bytes or not target or _BAD_TARGET(target):
        check_target(target)
    check_fields(headers)


def check_extended_connect(method: bytes, protocol: bytes, enabled: bool, version: str) -> None:
    """Check an extended CONNECT (``:protocol``, RFC 8441 section 4 for
    HTTP/2, RFC 9220 section 3 for HTTP/3) before it is sent.

    Args:
        method: The request method.
        protocol: The ``:protocol`` value, e.g. ``b"websocket"``.
        enabled: Whether the server sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1.
        version: ``"HTTP/2"`` or ``"HTTP/3"`` (for the message and the RFC).

    Raises:
        LocalProtocolError: The method is not ``CONNECT``, ``protocol`` is
            not a token, or the server did not enable extended CONNECT.
    """
    rfc = "RFC 8441 section 4" if version == "HTTP/2" else "RFC 9220 section 3"
    if method != b"CONNECT":
        raise LocalProtocolError(
            f"the :protocol pseudo-header goes with CONNECT only, not {method!r} ({rfc})"
        )
    if not protocol or not is_token(protocol):
        raise LocalProtocolError(f"invalid :protocol {protocol!r}: it must be a token")
    if not enabled:
        settings_rfc = "RFC 8441 section 3" if version == "HTTP/2" else "RFC 9220 section 3"
        raise LocalProtocolError(
            "the server did not enable extended CONNECT "
            f"(no SETTINGS_ENABLE_CONNECT_PROTOCOL=1, {settings_rfc}): "
            f"cannot open a {protocol.decode('ascii', 'replace')} stream over {version}"
        )


def multiplexed_request_fields(
    method: bytes,
    scheme: bytes,
    target: bytes,
    headers: Headers,
    protocol: bytes | None,
    version: str,
) -> Headers:
    """The field section of an HTTP/2 or HTTP/3 request: the pseudo-header
    fields (RFC 9113 section 8.3.1, RFC 9114 section 4.3.1; ``:protocol``
    for an extended CONNECT), then the header fields with names lower-cased,
    ``Host`` turned into ``:authority`` and connection-specific fields
    dropped (RFC 9113 section 8.2.2, RFC 9114 section 4.2) but ``TE:
    trailers``. Call :func:`validate_request` first.

    Raises:
        LocalProtocolError: The request has no ``Host`` (and is not a plain
            ``CONNECT``, whose authority is its target).
    """
    authority: bytes | None = None
    fields: Headers = []
    for name, value in headers:
        kind = field_kind(name)
        if kind in (FIELD_OTHER, FIELD_CONTENT_LENGTH):
            fields.append((name.lower(), value))
        elif kind == FIELD_HOST:
            authority = value
        elif kind == FIELD_TE and value.strip().lower() == b"trailers":
            fields.append((b"te", b"trailers"))
    if method == b"CONNECT" and protocol is None:
        return [(b":method", method), (b":authority", target), *fields]
    if authority is None:
        raise LocalProtocolError(f"an {version} request needs a Host (:authority)")
    pseudo: Headers = [
        (b":method", method),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", target),
    ]
    if protocol is not None:
        pseudo.insert(1, (b":protocol", protocol))
    return pseudo + fields
