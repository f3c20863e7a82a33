"""Request serialisation and validation for HTTP/1.1 (RFC 9112 sections 3
and 5, RFC 9110 section 5).

Used by :class:`webwire._proto.h1.H1Connection`: a request head is written
in one pass and checked as a whole afterwards, so well-formed requests pay
almost nothing for the validation. Field names and methods repeat from
request to request; the ones already checked are remembered.
"""

from __future__ import annotations

import re
from typing import NoReturn

from webwire._exceptions import LocalProtocolError

Headers = list[tuple[bytes, bytes]]

# What a request field name means for the connection.
_NAME_OTHER, _NAME_LENGTH, _NAME_CODING, _NAME_CONNECTION, _NAME_UPGRADE = range(5)
_SPECIAL_NAMES = {
    b"content-length": _NAME_LENGTH,
    b"transfer-encoding": _NAME_CODING,
    b"connection": _NAME_CONNECTION,
    b"upgrade": _NAME_UPGRADE,
}
# Field names already validated, with their meaning, and methods already
# validated. They repeat from request to request, so most are checked once.
_known_names: dict[bytes, int] = {}
_known_methods: set[bytes] = set()
_KNOWN_MAX = 1024


# RFC 9110 section 5.6.2: tchar.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 section 5.5: a field value holds no control character but HTAB.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
# Controls a serialised head may not hold anywhere (CR and LF are counted).
_CONTROLS = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# RFC 9112 section 3.2: the request target holds no whitespace or controls.
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]").search
_DIGITS = re.compile(rb"[0-9]+").fullmatch



def _last_token(value: bytes) -> bytes:
    """The last comma-separated token of a field value, lower-cased."""
    return value.rpartition(b",")[2].strip().lower()


def _has_token(value: bytes, token: bytes) -> bool:
    """Whether the comma-separated field value lists ``token`` (lower-case)."""
    lowered = value.lower()
    if token not in lowered:
        return False
    return any(item.strip() == token for item in lowered.split(b","))


def _check_token(kind: str, value: object) -> None:
    """Raise LocalProtocolError unless ``value`` is a non-empty token."""
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"{kind} must be bytes, not {type(value).__name__}")
    if not value or value.translate(None, _TCHAR):
        raise LocalProtocolError(
            f"invalid {kind} {value!r}: it must be a non-empty token "
            "(RFC 9110 section 5.6.2; no whitespace, CR, LF, NUL or separators)"
        )


def _learn_name(name: object) -> int:
    """Validate a field name not seen before and remember it.

    Returns:
        What the name means for the connection (``_NAME_*``).
    """
    _check_token("header name", name)
    assert isinstance(name, bytes)
    meaning = _SPECIAL_NAMES.get(name.lower(), _NAME_OTHER)
    if len(_known_names) >= _KNOWN_MAX:
        _known_names.clear()
    _known_names[name] = meaning
    return meaning


def _learn_method(method: object) -> None:
    """Validate a method not seen before and remember it."""
    _check_token("method", method)
    assert isinstance(method, bytes)
    if len(_known_methods) >= _KNOWN_MAX:
        _known_methods.clear()
    _known_methods.add(method)


def _explain_invalid(method: bytes, target: object, headers: object) -> NoReturn:
    """Raise LocalProtocolError naming what makes a request invalid (the slow
    path behind the whole-head checks)."""
    _check_token("method", method)
    if not isinstance(target, bytes):
        raise LocalProtocolError(f"target must be bytes, not {type(target).__name__}")
    if not target or _BAD_TARGET(target):
        raise LocalProtocolError(
            f"invalid request target {target!r}: it must be non-empty and hold no "
            "whitespace or control characters (RFC 9112 section 3.2)"
        )
    shape = "headers must be a list of (name, value) pairs of bytes"
    try:
        pairs = [(name, value) for name, value in headers]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(shape) from exc
    for name, value in pairs:
        _check_token("header name", name)
        if not isinstance(value, bytes):
            raise LocalProtocolError(f"value of header {name!r} must be bytes")
        if _BAD_VALUE(value):
            raise LocalProtocolError(
                f"invalid value for header {name!r}: {value!r} holds CR, LF, NUL or another "
                "control character (RFC 9110 section 5.5)"
            )
    raise LocalProtocolError(shape)


_RequestHead = tuple[bytes, "bytes | None", "bytes | None", bool, bool]


def _serialise_head(method: bytes, target: bytes, headers: Headers) -> _RequestHead:
    """Serialise and validate a request line and header section.

    Returns:
        The head's bytes, its Content-Length and Transfer-Encoding values
        (or ``None``), whether it asks for ``Connection: close`` and whether
        it has an ``Upgrade`` field.
    """
    if method not in _known_methods:
        _learn_method(method)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    content_length: bytes | None = None
    transfer_encoding: bytes | None = None
    close = upgrade = False
    known = _known_names.get
    try:
        for name, value in headers:
            meaning = known(name)
            if meaning is None:
                meaning = _learn_name(name)
            if meaning:
                if meaning == _NAME_LENGTH:
                    if content_length is not None and value != content_length:
                        raise LocalProtocolError("conflicting Content-Length header fields")
                    content_length = value
                elif meaning == _NAME_CODING:
                    transfer_encoding = value
                elif meaning == _NAME_CONNECTION:
                    close = close or _has_token(value, b"close")
                else:
                    upgrade = True
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        data = b"".join(parts)
        lines = len(headers) + 2
    except (TypeError, ValueError, AttributeError):
        _explain_invalid(method, target, headers)
    # Every CR and LF must be a line end written here, and no other control
    # may appear (RFC 9110 section 5.5, RFC 9112 sections 3 and 5).
    if (
        data.count(10) != lines  # LF
        or data.count(13) != lines  # CR
        or len(data.translate(None, _CONTROLS)) != len(data)
        or not target
        or 32 in target  # SP
        or 9 in target  # HTAB
    ):
        _explain_invalid(method, target, headers)
    return data, content_length, transfer_encoding, close, upgrade
