"""URL handling of the HTTP API: parsing and validation, ``base_url``
joining, query parameter merging, credentials in the userinfo, origins and
the ``Host`` header value.

URLs are :class:`yarl.URL` objects everywhere (RFC 3986). Only ``http`` and
``https`` URLs with a host can be requested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Union

from yarl import URL

from webwire._exceptions import InvalidURL, UnsupportedProtocol

__all__ = [
    "DEFAULT_PORTS",
    "ParamValue",
    "QueryParams",
    "build_url",
    "host_header",
    "is_https_upgrade",
    "merge_params",
    "normalize_params",
    "origin",
    "parse_url",
    "remove_dot_segments",
    "split_userinfo",
]

DEFAULT_PORTS = {"http": 80, "https": 443}

ParamValue = Union[str, int, float, bool, None]  # noqa: UP007
QueryParams = Union[  # noqa: UP007
    Mapping[str, ParamValue | Sequence[ParamValue]],
    Sequence[tuple[str, ParamValue]],
    str,
]

# RFC 3986 section 3.2.2 reg-name characters (percent-encoded octets
# included); IP literals in brackets are validated by yarl.
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=]+\Z")
# Never valid in a URL; yarl would silently remove them.
_FORBIDDEN = re.compile(r"[\r\n\t]").search
# What yarl and the idna codec raise on input they cannot parse.
_PARSER_ERRORS = (ValueError, TypeError, IndexError, UnicodeError)


def parse_url(url: str | URL, *, allow_relative: bool = False) -> URL:
    """Parse and validate a URL.

    Args:
        url: A URL string or :class:`yarl.URL`.
        allow_relative: Accept a URL without scheme and host (to be joined to
            a ``base_url`` later).

    Returns:
        The parsed URL.

    Raises:
        InvalidURL: The URL cannot be parsed (bad port, bad IPv6 literal,
            forbidden characters in the host), or it lacks a scheme or host
            while ``allow_relative`` is false.
        UnsupportedProtocol: The scheme is neither ``http`` nor ``https``.
        TypeError: ``url`` is neither ``str`` nor :class:`yarl.URL`.
    """
    if isinstance(url, URL):
        parsed = url
    elif isinstance(url, str):
        if _FORBIDDEN(url) is not None:
            # yarl (as WHATWG parsers do) would silently drop them.
            raise InvalidURL(f"invalid URL {url!r}: CR, LF or TAB in a URL")
        try:
            parsed = URL(url)
        except _PARSER_ERRORS as exc:
            raise InvalidURL(f"invalid URL {url!r}: {exc}") from exc
    else:
        raise TypeError(f"url must be str or yarl.URL, not {type(url).__name__}")
    try:
        if not parsed.scheme:
            if allow_relative:
                return parsed
            raise InvalidURL(f"invalid URL {str(url)!r}: no scheme or host")
        return _check_absolute(parsed, url)
    except _PARSER_ERRORS as exc:
        raise InvalidURL(f"invalid URL {str(url)!r}: {exc}") from exc


def _check_absolute(parsed: URL, original: str | URL) -> URL:
    """Validate an absolute URL: http(s) scheme, a valid host, a port in
    1-65535 (port 0 cannot be connected to)."""
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS:
        if not scheme:
            raise InvalidURL(f"invalid URL {str(original)!r}: no scheme")
        raise UnsupportedProtocol(
            f"unsupported URL scheme {scheme!r} in {str(original)!r} (http or https)"
        )
    host = parsed.raw_host
    if not host:
        raise InvalidURL(f"invalid URL {str(original)!r}: no host")
    if ":" not in host and _REG_NAME.match(host) is None:
        raise InvalidURL(f"invalid URL {str(original)!r}: invalid host {host!r}")
    try:
        port = parsed.explicit_port
    except ValueError as exc:  # pragma: no cover - yarl validates on parse
        raise InvalidURL(f"invalid URL {str(original)!r}: {exc}") from exc
    if port == 0:
        raise InvalidURL(f"invalid URL {str(original)!r}: port 0")
    return parsed


def normalize_params(params: QueryParams) -> list[tuple[str, str]]:
    """Turn query parameters into ``(name, value)`` string pairs.

    ``True``/``False`` become ``"true"``/``"false"``, ``None`` an empty
    value, numbers their ``str()``; a sequence value repeats the name.

    Args:
        params: A mapping (values may be sequences), a sequence of pairs, or
            an already encoded query string.

    Returns:
        The pairs, in order.

    Raises:
        TypeError: A name or value has an unsupported type.
    """
    if isinstance(params, str):
        return list(URL.build(query_string=params).query.items())
    items: list[tuple[str, str]] = []
    pairs = params.items() if isinstance(params, Mapping) else params
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError(f"query parameter names must be str, not {type(name).__name__}")
        if isinstance(value, (list, tuple)):
            items.extend((name, _param_str(v)) for v in value)
        else:
            items.append((name, _param_str(value)))  # type: ignore[arg-type]
    return items


def _param_str(value: ParamValue) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(
        f"query parameter values must be str, int, float, bool or None, not {type(value).__name__}"
    )


def merge_params(url: URL, params: list[tuple[str, str]]) -> URL:
    """Merge parameters into the query of ``url``; a name already in the
    query is replaced by the new value(s), new names are appended.

    Args:
        url: The URL.
        params: Normalized pairs (see :func:`normalize_params`).

    Returns:
        The URL with the merged query (unchanged when ``params`` is empty).
    """
    if not params:
        return url
    if not url.raw_query_string:
        return url.with_query(params)
    return url.update_query(params)


def build_url(base_url: URL | None, url: str | URL) -> URL:
    """Resolve a request URL against the client's ``base_url``.

    A relative ``url`` is appended to the path of ``base_url`` (treated as a
    directory whether or not it ends with ``/``), so ``base_url=
    "https://api.example.com/v1"`` with ``"users"`` or ``"/users"`` gives
    ``https://api.example.com/v1/users``; the query and fragment come from
    ``url``. An absolute ``url`` is used as it is.

    Args:
        base_url: The client's base URL (absolute), or ``None``.
        url: The request URL (absolute, or relative when ``base_url`` is set).

    Returns:
        The absolute URL.

    Raises:
        InvalidURL: The URL is invalid, or relative with no ``base_url``.
        UnsupportedProtocol: The scheme is neither ``http`` nor ``https``.
    """
    parsed = parse_url(url, allow_relative=base_url is not None)
    if parsed.scheme:
        return parsed
    assert base_url is not None
    try:
        if parsed.raw_host:
            # Scheme-relative ("//host/path"): take the scheme of the base.
            return _check_absolute(parsed.with_scheme(base_url.scheme), url)
        base_path = base_url.raw_path
        if not base_path.endswith("/"):
            base_path += "/"
        path = remove_dot_segments(base_path + parsed.raw_path.lstrip("/"))
        # The parts of ``url`` are already percent-encoded: keep them as they
        # are (encoding them again would turn ``%C3`` into ``%25C3``).
        return URL.build(
            scheme=base_url.scheme,
            authority=base_url.raw_authority,
            path=path,
            query_string=parsed.raw_query_string,
            fragment=parsed.raw_fragment,
            encoded=True,
        )
    except _PARSER_ERRORS as exc:
        raise InvalidURL(f"invalid URL {str(url)!r}: {exc}") from exc


def remove_dot_segments(path: str) -> str:
    """Resolve the ``.`` and ``..`` segments of an absolute path (RFC 3986
    section 5.2.4): ``"/a/b/../c"`` -> ``"/a/c"``, ``"/a/./b/."`` ->
    ``"/a/b/"``; ``..`` never climbs above the root."""
    if "." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")
    return "/" + "/".join(out)


def split_userinfo(url: URL) -> tuple[URL, tuple[str, str] | None]:
    """Remove ``user:password@`` from a URL.

    Returns:
        The URL without userinfo, and the decoded ``(user, password)`` (an
        absent password is ``""``) or ``None`` when there was no userinfo.
    """
    if url.raw_user is None and url.raw_password is None:
        return url, None
    return url.with_user(None), (url.user or "", url.password or "")


def origin(url: URL) -> tuple[str, str, int | None]:
    """The origin of a URL (RFC 6454 section 4): scheme, host, port."""
    return (url.scheme, url.raw_host or "", url.port)


def is_https_upgrade(old: URL, new: URL) -> bool:
    """Whether ``new`` is ``old`` moved from ``http`` to ``https`` on the same
    host with both on their default ports (credentials may follow it)."""
    return (
        old.scheme == "http"
        and new.scheme == "https"
        and old.raw_host == new.raw_host
        and old.port == 80
        and new.port == 443
    )


def host_header(url: URL) -> str:
    """The ``Host`` header value for ``url`` (RFC 9110 section 7.2): the
    IDNA-encoded host, IPv6 literals in brackets, and ``:port`` only when the
    port is not the scheme's default."""
    value = url.host_port_subcomponent
    if value is None:  # pragma: no cover - absolute URLs always have a host
        raise InvalidURL(f"invalid URL {str(url)!r}: no host")
    return value
