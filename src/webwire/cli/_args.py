"""Parsing of the ``webwire`` command line into a :class:`RequestSpec`.

The request items follow HTTPie's syntax; each item is split at its first
separator (a backslash escapes a separator character)::

    Name:value      request header            (RFC 9110 section 5)
    key==value      query parameter           (RFC 3986 section 3.4)
    key=value       JSON string field, or form field with --form
    key:=json       raw JSON field (number, bool, null, list, object)
    field@path      file upload (multipart/form-data, RFC 7578)
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import yarl

from webwire._exceptions import InvalidURL

__all__ = [
    "METHODS",
    "Item",
    "RequestSpec",
    "UsageError",
    "build_parser",
    "normalize_url",
    "parse_header",
    "parse_item",
    "parse_request",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# Longest first, so that "==" wins over "=" and ":=" over ":" at one position.
_SEPARATORS = ("==", ":=", "=", ":", "@")
_KINDS = {"==": "query", ":=": "json", "=": "field", ":": "header", "@": "file"}
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_JSON_TYPE = "application/json"
_JSON_ACCEPT = "application/json, */*;q=0.5"
_FORM_TYPE = "application/x-www-form-urlencoded"


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Item:
    """One request item of the command line.

    Attributes:
        kind: ``"header"``, ``"query"``, ``"field"``, ``"json"`` or ``"file"``.
        key: The header name, parameter, field name (escapes removed).
        value: The value as written (escapes removed).
    """

    kind: str
    key: str
    value: str


@dataclass
class RequestSpec:
    """Everything the command line asks for, ready to hand to the client.

    Attributes:
        method: Request method, upper case.
        url: Absolute ``http``/``https`` URL with the query items appended.
        headers: Header fields in order; a repeated name is sent repeatedly.
        content: Raw body bytes, or ``None``.
        data: Form fields for a multipart body (only with ``files``).
        files: Multipart file parts: field -> ``(filename, bytes, type)``.
        timeout: Seconds for connect/read/write/pool, ``None`` for the
            client's default.
        follow_redirects: Whether to follow 3xx responses.
        max_redirects: Most redirects followed.
        verify: ``True``, ``False`` (``--insecure``) or a CA bundle path.
        http1: Offer HTTP/1.1 (``False`` with ``--http2``).
        http2: Offer HTTP/2 (``False`` with ``--http1.1``). With both
            offered, TLS ALPN lets the server choose (RFC 7301); HTTP/2
            alone on an ``http://`` URL is h2c with prior knowledge
            (RFC 9113 section 3.3).
        verbose: Print the request and response heads.
        headers_only: Print the response head only, not the body.
        download: Path the body is saved to, or ``None``.
        check_status: Exit with 3/4/5 on 3xx/4xx/5xx responses.
        pretty: Colours and formatting: ``True``, ``False`` or ``None`` (when
            standard output is a terminal).
    """

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    data: dict[str, str | list[str]] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    timeout: float | None = None
    follow_redirects: bool = True
    max_redirects: int = 20
    verify: bool | str = True
    http1: bool = True
    http2: bool = True
    verbose: bool = False
    headers_only: bool = False
    download: str | None = None
    check_status: bool = False
    pretty: bool | None = None


def _unescape(text: str) -> str:
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out)


def parse_item(text: str) -> Item:
    """Split one request item at its first unescaped separator.

    Args:
        text: The item as typed, for example ``"X-Api-Key:abc"``,
            ``"q==search"``, ``"name=Ada"``, ``"age:=36"`` or ``"doc@a.txt"``.

    Returns:
        The :class:`Item`; at one position the longer separator wins, so
        ``a==b`` is a query item and ``a:=1`` a raw JSON field.

    Raises:
        UsageError: No separator, or an empty key.
    """
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        for separator in _SEPARATORS:
            if text.startswith(separator, index):
                key = _unescape(text[:index])
                value = _unescape(text[index + len(separator) :])
                if not key:
                    raise UsageError(f"request item {text!r} has an empty name")
                return Item(_KINDS[separator], key, value)
        index += 1
    raise UsageError(
        f"{text!r} is not a request item (Name:value, key==value, key=value, "
        "key:=json or field@path)"
    )


def _check_header(name: str, value: str) -> tuple[str, str]:
    if not name or any(char not in _TOKEN_CHARS for char in name):
        raise UsageError(f"invalid header name {name!r} (RFC 9110 section 5.1)")
    if any(char in value for char in "\r\n\0"):
        raise UsageError(f"header {name!r} has CR, LF or NUL in its value")
    return name, value.strip(" \t")


def parse_header(text: str) -> tuple[str, str]:
    """Parse a ``-H`` option value, ``"Name: value"`` (RFC 9110 section 5).

    Args:
        text: The option value; whitespace around the value is dropped.

    Returns:
        ``(name, value)``.

    Raises:
        UsageError: No colon, a name that is not a token, or a CR, LF or NUL
            in the value.
    """
    name, colon, value = text.partition(":")
    if not colon:
        raise UsageError(f"header {text!r} must look like 'Name: value'")
    return _check_header(name.strip(), value)


def normalize_url(text: str) -> yarl.URL:
    """Turn the URL argument into an absolute ``http``/``https`` URL.

    ``example.org/path`` gets ``http://``; ``:8000/path`` means
    ``http://localhost:8000/path`` (as in HTTPie).

    Args:
        text: The URL as typed.

    Returns:
        The parsed URL.

    Raises:
        InvalidURL: The text cannot be parsed, has no host, or a scheme other
            than ``http``/``https`` (RFC 9110 section 4.2).
    """
    candidate = text.strip()
    if candidate.startswith(":"):
        candidate = "http://localhost" + candidate
    elif "://" not in candidate:
        candidate = "http://" + candidate
    try:
        url = yarl.URL(candidate)
        host = url.host
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"invalid URL {text!r}: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise InvalidURL(f"invalid URL {text!r}: scheme must be http or https")
    if not host:
        raise InvalidURL(f"invalid URL {text!r}: no host")
    return url


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``webwire [METHOD] URL [ITEM ...]``.

    Returns:
        A parser whose errors raise :class:`UsageError`.
    """
    parser = _Parser(
        prog="webwire",
        usage=(
            "webwire [METHOD] URL [ITEM ...] [OPTIONS]\n"
            "       webwire demo [--backend NAME] [--download-size BYTES] "
            "[--h2-download-size BYTES]"
        ),
        description=(
            "Send an HTTP request and print the response. Over TLS, HTTP/2 and "
            "HTTP/1.1 are both offered and the server picks one (ALPN); --http2 and "
            "--http1.1 force one. Run 'webwire demo' for a tour of the client "
            "against local servers."
        ),
        epilog=(
            "Request items: Name:value (header), key==value (query), key=value (JSON "
            "string field, form field with --form), key:=json (raw JSON field), "
            "field@path (file upload, implies --form). Exit status: 0 success, 1 "
            "network or protocol error, 2 usage error or bad URL, 3/4/5 a 3xx/4xx/5xx "
            "response with --check-status, 6 too many redirects."
        ),
    )
    add = parser.add_argument
    add("args", nargs="+", metavar="[METHOD] URL [ITEM ...]", help="method, URL and items")
    add(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--json", metavar="JSON", help="send this JSON document as the body")
    body.add_argument(
        "-d",
        "--data",
        metavar="DATA",
        help="send DATA as the raw body; @FILE reads a file, @- standard input",
    )
    add("-f", "--form", action="store_true", help="send fields as a form instead of JSON")
    add(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="connect, read, write and pool timeout in seconds",
    )
    add(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow redirects (default: yes)",
    )
    add("--max-redirects", type=int, default=20, metavar="N", help="most redirects followed")
    add(
        "-v",
        "--verbose",
        action="store_true",
        help="print request and response heads, with the HTTP version used",
    )
    add(
        "-I",
        "--print-headers",
        action="store_true",
        help="print the response status line and headers only",
    )
    add("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    add("--cacert", metavar="PATH", help="verify TLS certificates against this CA bundle")
    add("-o", "--download", metavar="FILE", help="save the body to FILE with a progress bar")
    add(
        "--check-status",
        action="store_true",
        help="exit with 3, 4 or 5 on a 3xx, 4xx or 5xx response",
    )
    add(
        "--pretty",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force colours and formatting on or off (default: when a terminal)",
    )
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument(
        "--http2",
        dest="protocol",
        action="store_const",
        const="http2",
        help=(
            "HTTP/2 only: negotiated with TLS ALPN on https:// URLs, h2c with "
            "prior knowledge on http:// URLs"
        ),
    )
    protocol.add_argument(
        "--http1.1",
        dest="protocol",
        action="store_const",
        const="http1.1",
        help="HTTP/1.1 only: do not offer HTTP/2",
    )
    add("--version", action="version", version=_version())
    return parser


def _version() -> str:
    from webwire import __version__

    return f"webwire {__version__}"


def _read_file(path: str, what: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from exc


def _json_value(item: Item) -> Any:
    try:
        return json.loads(item.value)
    except ValueError as exc:
        raise UsageError(f"{item.key}:= value is not valid JSON: {exc}") from exc


def _has_header(headers: list[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name.lower() for key, _ in headers)


def _body(ns: argparse.Namespace, items: list[Item], spec: RequestSpec) -> None:
    fields = [i for i in items if i.kind in ("field", "json")]
    files = [i for i in items if i.kind == "file"]
    options = (("--json", ns.json), ("--data", ns.data))
    given = [name for name, value in options if value is not None]
    if given and (fields or files):
        raise UsageError(f"{given[0]} cannot be combined with field or file items")
    if ns.json is not None:
        try:
            json.loads(ns.json)
        except ValueError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from exc
        spec.content = ns.json.encode()
        _default_header(spec, "Content-Type", _JSON_TYPE)
        _default_header(spec, "Accept", _JSON_ACCEPT)
    elif ns.data is not None:
        text: str = ns.data
        spec.content = _read_file(text[1:], "file") if text.startswith("@") else text.encode()
    elif files or (fields and ns.form):
        _form_body(fields, files, spec)
    elif fields:
        document = {i.key: _json_value(i) if i.kind == "json" else i.value for i in fields}
        spec.content = json.dumps(document, ensure_ascii=False).encode()
        _default_header(spec, "Content-Type", _JSON_TYPE)
        _default_header(spec, "Accept", _JSON_ACCEPT)


def _default_header(spec: RequestSpec, name: str, value: str) -> None:
    if not _has_header(spec.headers, name):
        spec.headers.append((name, value))


def _form_body(fields: list[Item], files: list[Item], spec: RequestSpec) -> None:
    raw = [i.key for i in fields if i.kind == "json"]
    if raw:
        raise UsageError(f"raw JSON field {raw[0]}:= cannot be sent in a form")
    pairs = [(i.key, i.value) for i in fields]
    if not files:
        spec.content = urlencode(pairs).encode()
        _default_header(spec, "Content-Type", _FORM_TYPE)
        return
    data: dict[str, str | list[str]] = {}
    for key, value in pairs:
        previous = data.get(key)
        if previous is None:
            data[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            data[key] = [previous, value]
    spec.data = data
    spec.files = {}
    for item in files:
        name = os.path.basename(item.value) or item.key
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        spec.files[item.key] = (name, _read_file(item.value, "file"), kind)


def _split_method(args: list[str]) -> tuple[str | None, str, list[str]]:
    first = args[0]
    if first.upper() in METHODS and len(args) > 1:
        return first.upper(), args[1], args[2:]
    if first.isalpha() and first.isupper() and len(args) > 1:
        raise UsageError(f"unknown method {first!r}; use one of {', '.join(METHODS)}")
    return None, first, args[1:]


def parse_request(argv: list[str]) -> RequestSpec:
    """Parse ``[METHOD] URL [ITEM ...] [OPTIONS]`` into a :class:`RequestSpec`.

    Without a method the request is a GET, or a POST when it has a body
    (field or file items, ``--json`` or ``--data``).

    Args:
        argv: The arguments after the program name.

    Returns:
        The request to send.

    Raises:
        UsageError: A bad option, item, header or file.
        InvalidURL: The URL is not an absolute ``http``/``https`` URL.
    """
    ns = build_parser().parse_intermixed_args(argv)
    positional: list[str] = ns.args
    method, url_text, item_texts = _split_method(positional)
    items = [parse_item(text) for text in item_texts]
    spec = RequestSpec(method=method or "GET", url="")
    spec.headers = [parse_header(h) for h in ns.header]
    spec.headers += [_check_header(i.key, i.value) for i in items if i.kind == "header"]
    url = normalize_url(url_text)
    query = [(i.key, i.value) for i in items if i.kind == "query"]
    spec.url = str(url.extend_query(query) if query else url)
    _body(ns, items, spec)
    if method is None and (spec.content is not None or spec.files):
        spec.method = "POST"
    if ns.timeout is not None and ns.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if ns.max_redirects < 0:
        raise UsageError("--max-redirects must be >= 0")
    if ns.insecure and ns.cacert:
        raise UsageError("--insecure and --cacert cannot be combined")
    if ns.cacert and not Path(ns.cacert).is_file():
        raise UsageError(f"--cacert file {ns.cacert!r} does not exist")
    spec.timeout = ns.timeout
    spec.follow_redirects = ns.follow
    spec.max_redirects = ns.max_redirects
    spec.verify = False if ns.insecure else (ns.cacert or True)
    spec.http1 = ns.protocol != "http2"
    spec.http2 = ns.protocol != "http1.1"
    spec.verbose = ns.verbose
    spec.headers_only = ns.print_headers
    spec.download = ns.download
    spec.check_status = ns.check_status
    spec.pretty = ns.pretty
    return spec
