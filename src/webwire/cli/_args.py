"""Parsing of the ``webwire`` command line into a :class:`RequestSpec`.

The request items follow HTTPie's syntax; each item is split at its first
separator (a backslash escapes a separator character)::

    Name:value      request header            (RFC 9110 section 5)
    key==value      query parameter           (RFC 3986 section 3.4)
    key=value       JSON string field, or form field with --form
    key:=json       raw JSON field (number, bool, null, list, object)
    key=@path       field whose value is the text of a file
    key:=@path      raw JSON field read from a file
    field@path      file upload (multipart/form-data, RFC 7578)

JSON field names may nest: ``user[name]=Ada``, ``tags[]=a``,
``points[0][x]:=1``.

Several curl options are understood as well (``-X``, ``-H``, ``--data``,
``-F``, ``-o``, ``-O``, ``-L``, ``-k``, ``-u``, ``-I``, ``-s``,
``--max-time``, ``--retry``, ``-w``); where the two tools give one short
option different meanings HTTPie's wins (``-h``, ``-d``, ``-v``, ``-b``),
except ``-F`` and ``-s`` whose HTTPie meanings have long forms
(``--follow``, ``--style``).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yarl

from webwire._exceptions import InvalidURL

from ._parser import UsageError, build_parser

__all__ = [
    "PRINT_CHARS",
    "WRITE_OUT_VARIABLES",
    "Item",
    "RequestSpec",
    "UsageError",
    "build_parser",
    "check_session_name",
    "is_method",
    "normalize_url",
    "parse_header",
    "parse_item",
    "parse_request",
]

# Methods recognised in any case as the first word; any other RFC 9110 token
# (PURGE, PROPFIND, ...) is taken as a method when written in upper case or
# when the next word is not a request item.
_KNOWN_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT")

# Longest first, so that "==" wins over "=" and ":=" over ":" at one position.
_SEPARATORS = (":=@", "==", "=@", ":=", "=", ":", "@")
_KINDS = {
    "==": "query",
    ":=@": "json-file",
    "=@": "field-file",
    ":=": "json",
    "=": "field",
    ":": "header",
    "@": "file",
}
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_JSON_TYPE = "application/json"
_JSON_ACCEPT = "application/json, */*;q=0.5"
_FORM_TYPE = "application/x-www-form-urlencoded"
PRINT_CHARS = frozenset("HBhbm")
WRITE_OUT_VARIABLES = frozenset(
    {
        "http_code",
        "response_code",
        "http_version",
        "time_total",
        "size_download",
        "url_effective",
        "content_type",
        "num_redirects",
        "method",
    }
)
_WRITE_OUT_VARIABLE = re.compile(r"%\{([a-z_]+)\}")
_NESTED = re.compile(r"\[([^\[\]]*)\]")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Item:
    """One request item of the command line.

    Attributes:
        kind: ``"header"``, ``"query"``, ``"field"``, ``"json"``,
            ``"field-file"``, ``"json-file"`` or ``"file"``.
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
        method: Request method, an RFC 9110 token.
        url: Absolute ``http``/``https`` URL with the query items appended.
        headers: Header fields in order; a repeated name is sent repeatedly.
        content: Raw body bytes, or ``None``.
        data: Form fields of a multipart body (with ``files``).
        files: Multipart parts ``(field, (filename, bytes, type))``.
        timeout: Seconds for connect/read/write/pool, ``None`` for the
            client's default.
        max_time: Bound on the whole exchange in seconds (``Timeout.total``).
        follow_redirects: Whether to follow 3xx responses (off by default,
            as in HTTPie and curl).
        max_redirects: Most redirects followed.
        verify: ``True``, ``False`` (``--verify=no``) or a CA bundle path.
        cert: Client certificate file, or ``None``.
        cert_key: Private key of ``cert`` when not in the same file.
        http1: Offer HTTP/1.1 (``False`` with ``--http2`` and
            ``--http3-only``).
        http2: Offer HTTP/2 (``False`` with ``--http1.1`` and
            ``--http3-only``).
        http3: Try HTTP/3 first (``--http3``: the URL's origin is added to
            the Alt-Svc cache with its own port, RFC 7838, and TCP is used
            when QUIC cannot connect), or only HTTP/3 (``--http3-only``).
        print_parts: What to print (``HBhbm``: request head, request body,
            response head, response body, metadata), ``None`` for the
            default (``hb`` on a terminal, ``b`` otherwise).
        quiet: ``-q`` count: 1 prints nothing on standard output, 2 also
            drops warnings.
        silent: No progress bar and no notes on standard error.
        offline: Print the request, send nothing.
        stream: Print the response body chunk by chunk, as it arrives.
        download: Save the body to a file (``--download``, ``-o``, ``-O``).
        output: File name of the download, ``None``: derived from the
            response (``Content-Disposition``) or the URL.
        resume: Resume a partial download with a Range request.
        check_status: Exit with 3/4/5 on 3xx/4xx/5xx responses.
        pretty: ``"all"``, ``"colors"``, ``"format"``, ``"none"`` or ``None``
            (``all`` on a terminal, ``none`` otherwise).
        style: Pygments style name of highlighted bodies, or ``None``.
        auth_type: ``"basic"``, ``"digest"`` or ``"bearer"``.
        auth: ``user:password`` or a bearer token, or ``None``.
        session: Session name or path, or ``None``.
        session_read_only: Use the session without saving it back.
        show_secrets: Print credentials of ``-v`` heads unmasked.
        proxies: ``(scheme or None, proxy URL)`` pairs.
        retries: Retries of failed attempts (``--retry``).
        write_out: ``-w`` template, or ``None``.
        ignore_stdin: Never read the body from standard input.
    """

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    data: dict[str, str | list[str]] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    timeout: float | None = None
    max_time: float | None = None
    follow_redirects: bool = False
    max_redirects: int = 30
    verify: bool | str = True
    cert: str | None = None
    cert_key: str | None = None
    http1: bool = True
    http2: bool = True
    http3: bool = False
    print_parts: str | None = None
    quiet: int = 0
    silent: bool = False
    offline: bool = False
    stream: bool = False
    download: bool = False
    output: str | None = None
    resume: bool = False
    check_status: bool = False
    pretty: str | None = None
    style: str | None = None
    auth_type: str = "basic"
    auth: str | None = None
    session: str | None = None
    session_read_only: bool = False
    show_secrets: bool = False
    proxies: list[tuple[str | None, str]] = field(default_factory=list)
    retries: int = 0
    write_out: str | None = None
    ignore_stdin: bool = False


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
            ``"q==search"``, ``"name=Ada"``, ``"age:=36"``, ``"bio=@bio.txt"``
            or ``"doc@a.txt"``.

    Returns:
        The :class:`Item`; at one position the longer separator wins, so
        ``a==b`` is a query item, ``a:=1`` a raw JSON field and ``a:=@f``
        a raw JSON field read from a file.

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
        "key:=json, key=@file, key:=@file or field@path)"
    )


def is_method(text: str) -> bool:
    """Whether ``text`` is a valid method name, an RFC 9110 token
    (section 9.1).

    Args:
        text: The candidate, for example ``"PURGE"``.

    Returns:
        ``True`` for a non-empty token.
    """
    return bool(text) and all(char in _TOKEN_CHARS for char in text)


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


def _read_file(path: str, what: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from exc


def _read_text(path: str, what: str) -> str:
    data = _read_file(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path!r} is not UTF-8 text") from exc


def _json_value(item: Item) -> Any:
    text = _read_text(item.value, "JSON file") if item.kind == "json-file" else item.value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{item.key}:= value is not valid JSON: {exc}") from exc


def _field_value(item: Item) -> Any:
    if item.kind in ("json", "json-file"):
        return _json_value(item)
    if item.kind == "field-file":
        return _read_text(item.value, "field file")
    return item.value


def _key_path(key: str) -> list[str | int | None]:
    """``a[b][0][]`` -> ``["a", "b", 0, None]`` (``None`` appends)."""
    first = key.find("[")
    if first <= 0 or not key.endswith("]"):
        return [key]
    rest = key[first:]
    parts = _NESTED.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        return [key]
    path: list[str | int | None] = [key[:first]]
    for part in parts:
        path.append(None if part == "" else int(part) if part.isdigit() else part)
    return path


def _set_path(document: dict[str, Any], key: str, value: Any) -> None:
    path = _key_path(key)
    if len(path) == 1:
        name = key
        if name in document:
            previous = document[name]
            document[name] = [*previous, value] if isinstance(previous, list) else [
                previous,
                value,
            ]
        else:
            document[name] = value
        return
    container: Any = document
    for index, step in enumerate(path):
        last = index == len(path) - 1
        following = None if last else path[index + 1]
        fresh: Any = [] if isinstance(following, int) or (following is None and not last) else {}
        if isinstance(container, dict):
            if not isinstance(step, str):
                raise UsageError(f"field {key!r}: an index used on an object")
            if last:
                container[step] = value
            else:
                container = container.setdefault(step, fresh)
        elif isinstance(container, list):
            if isinstance(step, str):
                raise UsageError(f"field {key!r}: a name used on an array")
            if step is None:
                container.append(value if last else fresh)
                container = container[-1]
            else:
                while len(container) <= step:
                    container.append(None)
                if last:
                    container[step] = value
                else:
                    if container[step] is None:
                        container[step] = fresh
                    container = container[step]
        else:
            raise UsageError(f"field {key!r} nests into a value that is not an object or array")


def _has_header(headers: list[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name.lower() for key, _ in headers)


def _default_header(spec: RequestSpec, name: str, value: str) -> None:
    if not _has_header(spec.headers, name):
        spec.headers.append((name, value))


def _stdin_has_body() -> bool:
    """Whether standard input is a pipe or a file (not a terminal, not
    ``/dev/null`` or a closed descriptor)."""
    stream = sys.stdin
    if stream is None:
        return False
    try:
        if stream.isatty():
            return False
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def _curl_data(ns: argparse.Namespace) -> bytes | None:
    parts: list[bytes] = []
    for text in ns.data:
        if text.startswith("@"):
            parts.append(_read_file(text[1:], "file").replace(b"\r", b"").replace(b"\n", b""))
        else:
            parts.append(text.encode())
    parts.extend(text.encode() for text in ns.data_raw)
    for text in ns.data_binary:
        parts.append(_read_file(text[1:], "file") if text.startswith("@") else text.encode())
    return b"&".join(parts) if parts else None


def _curl_form_field(text: str) -> tuple[str, str | tuple[str, bytes, str]]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise UsageError(f"-F {text!r} must look like name=value or name=@file")
    if value.startswith("<"):
        return name, _read_text(value[1:], "file")
    if not value.startswith("@"):
        return name, value
    path, *options = value[1:].split(";")
    filename = os.path.basename(path) or name
    kind = ""
    for option in options:
        key, _, setting = option.partition("=")
        if key.strip() == "type":
            kind = setting.strip()
        elif key.strip() == "filename":
            filename = setting.strip().strip('"')
        else:
            raise UsageError(f"-F {text!r}: unknown option {option!r}")
    kind = kind or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return name, (filename, _read_file(path, "file"), kind)


def _body(ns: argparse.Namespace, items: list[Item], spec: RequestSpec) -> None:
    fields = [i for i in items if i.kind in ("field", "json", "field-file", "json-file")]
    files = [i for i in items if i.kind == "file"]
    data = _curl_data(ns)
    options = (("--json", ns.json), ("--data", data), ("-F", ns.form_fields or None))
    given = [name for name, value in options if value is not None]
    if len(given) > 1:
        raise UsageError(f"{given[0]} cannot be combined with {given[1]}")
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
    elif data is not None:
        spec.content = data
        _default_header(spec, "Content-Type", _FORM_TYPE)
    elif ns.form_fields:
        _multipart([_curl_form_field(text) for text in ns.form_fields], spec)
    elif files or (fields and (ns.form or ns.multipart)):
        _form_body(fields, files, spec, ns.multipart)
    elif fields:
        document: dict[str, Any] = {}
        for item in fields:
            _set_path(document, item.key, _field_value(item))
        spec.content = json.dumps(document, ensure_ascii=False).encode()
        _default_header(spec, "Content-Type", _JSON_TYPE)
        _default_header(spec, "Accept", _JSON_ACCEPT)
    elif not ns.ignore_stdin and _stdin_has_body():
        spec.content = sys.stdin.buffer.read()
        if ns.form or ns.multipart:
            _default_header(spec, "Content-Type", _FORM_TYPE)
        else:
            _default_header(spec, "Content-Type", _JSON_TYPE)
            _default_header(spec, "Accept", _JSON_ACCEPT)
    elif ns.multipart:
        _multipart([], spec)


def _multipart(parts: list[tuple[str, str | tuple[str, bytes, str]]], spec: RequestSpec) -> None:
    data: dict[str, str | list[str]] = {}
    uploads: list[tuple[str, tuple[str, bytes, str]]] = []
    for name, value in parts:
        if isinstance(value, tuple):
            uploads.append((name, value))
            continue
        previous = data.get(name)
        if previous is None:
            data[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            data[name] = [previous, value]
    spec.data = data
    spec.files = uploads


def _form_body(fields: list[Item], files: list[Item], spec: RequestSpec, multipart: bool) -> None:
    raw = [i.key for i in fields if i.kind in ("json", "json-file")]
    if raw:
        raise UsageError(f"raw JSON field {raw[0]}:= cannot be sent in a form")
    pairs = [(i.key, str(_field_value(i))) for i in fields]
    if not files and not multipart:
        spec.content = urlencode(pairs).encode()
        _default_header(spec, "Content-Type", _FORM_TYPE)
        return
    parts: list[tuple[str, str | tuple[str, bytes, str]]] = list(pairs)
    for item in files:
        name = os.path.basename(item.value) or item.key
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        parts.append((item.key, (name, _read_file(item.value, "file"), kind)))
    _multipart(parts, spec)


def _split_method(args: list[str]) -> tuple[str | None, str, list[str]]:
    first = args[0]
    if len(args) > 1 and is_method(first) and not any(c in first for c in ".:/[]"):
        if first.upper() in _KNOWN_METHODS:
            return first.upper(), args[1], args[2:]
        try:
            parse_item(args[1])
        except UsageError:
            return first.upper(), args[1], args[2:]
        if first.isupper():
            return first, args[1], args[2:]
    return None, first, args[1:]


def _parse_print(ns: argparse.Namespace) -> str | None:
    if ns.print_parts is not None:
        bad = set(ns.print_parts) - PRINT_CHARS
        if bad or not ns.print_parts:
            raise UsageError(f"--print takes letters of HBhbm, not {ns.print_parts!r}")
        return str(ns.print_parts)
    if ns.verbose:
        return "HBhbm"
    if ns.head or ns.headers:
        return "h"
    if ns.body:
        return "b"
    if ns.offline:
        return "HB"
    return None


def _parse_verify(ns: argparse.Namespace) -> bool | str:
    chosen = [name for name, value in (("--verify", ns.verify), ("--insecure", ns.insecure),
                                       ("--cacert", ns.cacert)) if value]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} cannot be combined")
    if ns.insecure:
        return False
    text = ns.verify if ns.verify else ns.cacert
    if not text:
        return True
    if ns.verify and text.lower() in ("yes", "true", "1"):
        return True
    if ns.verify and text.lower() in ("no", "false", "0"):
        return False
    if not Path(text).expanduser().exists():
        raise UsageError(f"CA bundle {text!r} does not exist")
    return str(Path(text).expanduser())


def _parse_proxies(values: list[str]) -> list[tuple[str | None, str]]:
    proxies: list[tuple[str | None, str]] = []
    for value in values:
        scheme, colon, rest = value.partition(":")
        if colon and scheme.lower() in ("http", "https") and not rest.startswith("//"):
            proxies.append((scheme.lower(), rest))
        else:
            proxies.append((None, value))
    for _, url in proxies:
        parsed = yarl.URL(url if "://" in url else "http://" + url)
        if parsed.scheme not in ("http", "https", "socks5", "socks5h", "socks4", "socks4a"):
            raise UsageError(f"--proxy {url!r}: unsupported proxy scheme {parsed.scheme!r}")
    return proxies


def _check_write_out(template: str) -> None:
    for name in _WRITE_OUT_VARIABLE.findall(template):
        if name not in WRITE_OUT_VARIABLES:
            known = ", ".join(sorted(WRITE_OUT_VARIABLES))
            raise UsageError(f"-w: unknown variable %{{{name}}} (known: {known})")


def _check_style(style: str) -> None:
    import importlib

    from rich.syntax import RICH_SYNTAX_THEMES

    styles: Any = importlib.import_module("pygments.styles")  # installed with rich
    known = {*RICH_SYNTAX_THEMES, *styles.get_all_styles()}
    if style not in known:
        raise UsageError(f"--style: unknown style {style!r} (known: {', '.join(sorted(known))})")


def check_session_name(name: str) -> None:
    """Check a ``--session`` value: a name of letters, digits and ``_.-``
    (not starting with ``.``), or a path containing a ``/``.

    Args:
        name: The option value.

    Raises:
        UsageError: Neither a valid name nor a path.
    """
    if "/" in name or os.sep in name:
        return
    if not _SESSION_NAME.fullmatch(name):
        raise UsageError(
            f"--session {name!r}: a name has letters, digits, '_', '.' and '-', "
            "or give a path with '/'"
        )


def parse_request(argv: list[str]) -> RequestSpec:
    """Parse ``[METHOD] URL [ITEM ...] [OPTIONS]`` into a :class:`RequestSpec`.

    Without a method the request is a GET, or a POST when it has a body
    (field or file items, ``--json``, ``--data``, ``-F`` or a body piped on
    standard input). The method is any RFC 9110 token (``PURGE``).

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
    if ns.method is not None:
        if not is_method(ns.method):
            raise UsageError(f"-X {ns.method!r} is not a method name (RFC 9110 section 9.1)")
        if method is not None and method != ns.method:
            raise UsageError(f"method {method} given twice (-X {ns.method})")
        method = ns.method
    if ns.head:
        if method not in (None, "HEAD"):
            raise UsageError(f"-I sends HEAD, not {method}")
        method = "HEAD"
    items = [parse_item(text) for text in item_texts]
    spec = RequestSpec(method=method or "GET", url="")
    spec.headers = [parse_header(h) for h in ns.header]
    spec.headers += [_check_header(i.key, i.value) for i in items if i.kind == "header"]
    url = normalize_url(url_text)
    query = [(i.key, i.value) for i in items if i.kind == "query"]
    spec.url = str(url.extend_query(query) if query else url)
    _body(ns, items, spec)
    if method is None and (spec.content is not None or spec.files is not None):
        spec.method = "POST"
    for name, seconds in (("--timeout", ns.timeout), ("--max-time", ns.max_time)):
        if seconds is not None and seconds <= 0:
            raise UsageError(f"{name} must be a positive number of seconds")
    if ns.max_redirects < 0:
        raise UsageError("--max-redirects must be >= 0")
    if ns.retry < 0:
        raise UsageError("--retry must be >= 0")
    if ns.cert_key and not ns.cert:
        raise UsageError("--cert-key needs --cert")
    for name, path in (("--cert", ns.cert), ("--cert-key", ns.cert_key)):
        if path and not Path(path).expanduser().is_file():
            raise UsageError(f"{name} file {path!r} does not exist")
    if ns.session and ns.session_read_only:
        raise UsageError("--session and --session-read-only cannot be combined")
    for name in (ns.session, ns.session_read_only):
        if name is not None:
            check_session_name(name)
    if ns.write_out is not None:
        _check_write_out(ns.write_out)
    if ns.style is not None:
        _check_style(ns.style)
    spec.timeout = ns.timeout
    spec.max_time = ns.max_time
    spec.follow_redirects = ns.follow
    spec.max_redirects = ns.max_redirects
    spec.verify = _parse_verify(ns)
    spec.cert = ns.cert
    spec.cert_key = ns.cert_key
    spec.http1 = ns.protocol not in ("http2", "http3-only")
    spec.http2 = ns.protocol not in ("http1.1", "http3-only")
    spec.http3 = ns.protocol in ("http3", "http3-only")
    if spec.http3 and not spec.url.lower().startswith("https:"):
        flag = "--http3-only" if ns.protocol == "http3-only" else "--http3"
        raise UsageError(f"{flag} needs an https:// URL (HTTP/3 runs over TLS in QUIC)")
    spec.print_parts = _parse_print(ns)
    spec.quiet = ns.quiet
    spec.silent = ns.silent
    spec.offline = ns.offline
    spec.stream = ns.stream
    spec.download = bool(ns.download or ns.remote_name or ns.output)
    spec.output = ns.output
    spec.resume = ns.resume
    if spec.resume and not spec.download:
        raise UsageError("--continue needs --download or --output")
    spec.check_status = ns.check_status
    spec.pretty = ns.pretty
    spec.style = ns.style
    spec.auth = ns.auth
    spec.auth_type = ns.auth_type or "basic"
    spec.session = ns.session or ns.session_read_only
    spec.session_read_only = ns.session_read_only is not None
    spec.show_secrets = ns.show_secrets
    spec.proxies = _parse_proxies(ns.proxy)
    spec.retries = ns.retry
    spec.write_out = ns.write_out
    spec.ignore_stdin = ns.ignore_stdin
    return spec
