"""The argument parser of the ``webwire`` command: its options and help
text (:func:`build_parser`), and :class:`UsageError`."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["UsageError", "build_parser"]


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


_DESCRIPTION = """\
Send an HTTP request and print the response. The request is written as in
HTTPie (METHOD URL ITEMS); common curl options work too. Over TLS, HTTP/2 and
HTTP/1.1 are both offered and the server picks one (ALPN); --http2 and
--http1.1 force one; --http3 tries HTTP/3 (QUIC) first and falls back to TCP,
--http3-only uses nothing else. 'webwire ws URL' talks to a WebSocket server (see
'webwire ws --help'), 'webwire wt URL' to a WebTransport server (see
'webwire wt --help'). Run 'webwire demo' for a tour of the client against
local servers.
"""

_EPILOG = """\
request items:
  Name:value      header                key==value   query parameter
  key=value       JSON string field (form field with --form/--multipart)
  key:=json       raw JSON field        key=@file    field read from a file
  key:=@file      raw JSON from a file  field@file   file upload (multipart)
  nested JSON names: user[name]=Ada tags[]=a points[0][x]:=1
  With no item, --data or -F, a body piped on standard input is sent
  (as JSON, or as a form with --form) unless --ignore-stdin.

short options shared with curl, with HTTPie's meaning where the two differ:
  -h  response headers only (HTTPie; curl's help is --help)
  -d  --download (HTTPie; curl's -d is --data here)
  -v  print the whole exchange on standard output (HTTPie)
  -b  response body only (HTTPie; curl's -b/-c cookie files: use --session)
  -c  --continue (HTTPie; curl's -C -)
  -S  --stream (HTTPie)
  -F  multipart field as in curl (HTTPie's --follow is --follow or -L)
  -s  silent as in curl (HTTPie's --style has only its long form)

exit status:
  0 success, 1 other error, 2 timeout or usage error, 3 too many redirects
  (or an unfollowed 3xx with --check-status), 4 a 4xx and 5 a 5xx response
  with --check-status (always when downloading), 6 connection, DNS or proxy
  error, 7 TLS error, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``webwire [METHOD] URL [ITEM ...]``.

    Returns:
        A parser whose errors raise :class:`UsageError`; options are never
        abbreviated.
    """
    parser = _Parser(
        prog="webwire",
        usage=(
            "webwire [METHOD] URL [ITEM ...] [OPTIONS]\n"
            "       webwire ws URL [OPTIONS]\n"
            "       webwire wt URL [OPTIONS]\n"
            "       webwire demo [--backend NAME] [--download-size BYTES] "
            "[--h2-download-size BYTES]"
        ),
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_help=False,
    )
    add = parser.add_argument
    add("args", nargs="+", metavar="[METHOD] URL [ITEM ...]", help="method, URL and items")
    add("--help", action="help", help="show this help and exit")
    add("--version", action="store_true", help="print the versions of webwire and its engines")

    _add_request_options(parser)
    _add_auth_options(parser)
    _add_output_options(parser)
    _add_download_options(parser)
    _add_network_options(parser)
    return parser


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    """The options of the request: method, header fields and body."""
    req = parser.add_argument_group("request")
    req.add_argument("-X", "--request", dest="method", metavar="METHOD", help="request method")
    req.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    req.add_argument("--json", metavar="JSON", help="send this JSON document as the body")
    req.add_argument(
        "--data", "--data-ascii", dest="data", action="append", default=[], metavar="DATA",
        help="raw body as in curl (form type); @FILE reads a file without its newlines, "
        "@- standard input; repeated values are joined with '&'",
    )
    req.add_argument(
        "--data-raw", dest="data_raw", action="append", default=[], metavar="DATA",
        help="raw body, '@' not special",
    )
    req.add_argument(
        "--data-binary", dest="data_binary", action="append", default=[], metavar="DATA",
        help="raw body; @FILE reads a file byte for byte",
    )
    req.add_argument(
        "-F", "--form-field", dest="form_fields", action="append", default=[],
        metavar="NAME=VALUE",
        help="multipart field as in curl: name=value, name=@file[;type=T][;filename=F], "
        "name=<file (file text as value)",
    )
    req.add_argument("-f", "--form", action="store_true", help="send fields as a form")
    req.add_argument(
        "--multipart", action="store_true", help="send fields as multipart/form-data"
    )
    req.add_argument(
        "--ignore-stdin", action="store_true", help="never read the body from standard input"
    )
    req.add_argument(
        "-I", "--head", action="store_true",
        help="send HEAD and print the response headers (curl)",
    )


def _add_auth_options(parser: argparse.ArgumentParser) -> None:
    """The options of credentials and session files."""
    auth = parser.add_argument_group("authentication and sessions")
    auth.add_argument(
        "-a", "-u", "--auth", "--user", dest="auth", metavar="USER[:PASS]|TOKEN",
        help="credentials (asks for the password on a terminal when it is missing)",
    )
    auth.add_argument(
        "-A", "--auth-type", choices=("basic", "digest", "bearer"), default=None,
        help="authentication scheme (default basic)",
    )
    auth.add_argument(
        "--session", metavar="NAME|PATH",
        help="keep cookies and credentials in a session file (NAME is stored per host "
        "under the configuration directory, a PATH with '/' is used as is)",
    )
    auth.add_argument(
        "--session-read-only", metavar="NAME|PATH", help="use a session without updating it"
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """The options of what is printed and how."""
    out = parser.add_argument_group("output")
    out.add_argument(
        "-p", "--print", dest="print_parts", metavar="WHAT",
        help="what to print: H request headers, B request body, h response headers, "
        "b response body, m metadata (default hb on a terminal, b otherwise)",
    )
    out.add_argument("-h", "--headers", action="store_true", help="print response headers only")
    out.add_argument("-b", "--body", action="store_true", help="print response body only")
    out.add_argument(
        "-v", "--verbose", action="store_true",
        help="print the whole exchange: requests as sent, responses, HTTP version and timing",
    )
    out.add_argument(
        "-q", "--quiet", action="count", default=0,
        help="print nothing on standard output (-qq: no warnings either)",
    )
    out.add_argument(
        "-s", "--silent", action="store_true", help="no progress bar and no notes (curl)"
    )
    out.add_argument(
        "--pretty", choices=("all", "colors", "format", "none"), default=None,
        help="colours and formatting (default all on a terminal, none otherwise)",
    )
    out.add_argument("--style", metavar="STYLE", help="Pygments style of highlighted bodies")
    out.add_argument(
        "--stream", "-S", action="store_true", help="print the body as it arrives"
    )
    out.add_argument(
        "--show-secrets", action="store_true",
        help="print Authorization values unmasked with -v",
    )
    out.add_argument("--offline", action="store_true", help="print the request, send nothing")
    out.add_argument(
        "-w", "--write-out", metavar="FORMAT",
        help="print FORMAT after the transfer, with %%{http_code}, %%{http_version}, "
        "%%{time_total}, %%{size_download}, %%{url_effective}, %%{content_type}, "
        "%%{num_redirects}",
    )
    out.add_argument(
        "--check-status", action="store_true",
        help="exit with 3, 4 or 5 on an unfollowed 3xx, a 4xx or a 5xx response",
    )


def _add_download_options(parser: argparse.ArgumentParser) -> None:
    """The options of saving the body to a file."""
    dl = parser.add_argument_group("downloads")
    dl.add_argument(
        "-d", "--download", action="store_true",
        help="save the body to a file named by Content-Disposition or the URL, never "
        "overwriting (-1, -2 suffixes)",
    )
    dl.add_argument("-o", "--output", metavar="FILE", help="save the body to FILE")
    dl.add_argument(
        "-O", "--remote-name", action="store_true", help="like --download (curl)"
    )
    dl.add_argument(
        "-c", "--continue", dest="resume", action="store_true",
        help="resume a partial download (Range request)",
    )


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    """The options of redirects, time limits, retries, proxies, TLS and HTTP versions."""
    net = parser.add_argument_group("network")
    net.add_argument(
        "--follow", "-L", action="store_true", help="follow redirects (off by default)"
    )
    net.add_argument(
        "--max-redirects", type=int, default=30, metavar="N", help="most redirects followed"
    )
    net.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="connect, read, write and pool timeout in seconds",
    )
    net.add_argument(
        "--max-time", type=float, metavar="SECONDS", help="bound on the whole exchange (curl)"
    )
    net.add_argument(
        "--retry", type=int, default=0, metavar="N",
        help="retry up to N times on connection errors, timeouts and 408/429/5xx",
    )
    net.add_argument(
        "--proxy", action="append", default=[], metavar="[SCHEME:]URL",
        help="proxy of every request, or of one scheme (http:http://p:3128); "
        "http, https and socks5 proxy URLs",
    )
    net.add_argument(
        "--verify", metavar="yes|no|PATH", help="verify TLS certificates (or with this CA bundle)"
    )
    net.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates"
    )
    net.add_argument("--cacert", metavar="PATH", help="CA bundle to verify certificates with")
    net.add_argument("--cert", metavar="FILE", help="client certificate (PEM)")
    net.add_argument("--cert-key", "--key", dest="cert_key", metavar="FILE",
                     help="private key of --cert")
    protocol = net.add_mutually_exclusive_group()
    protocol.add_argument(
        "--http2", dest="protocol", action="store_const", const="http2",
        help="HTTP/2 only: ALPN on https:// URLs, h2c with prior knowledge on http:// URLs",
    )
    protocol.add_argument(
        "--http1.1", dest="protocol", action="store_const", const="http1.1",
        help="HTTP/1.1 only: do not offer HTTP/2",
    )
    protocol.add_argument(
        "--http3", dest="protocol", action="store_const", const="http3",
        help="try HTTP/3 (QUIC, RFC 9114) on the URL's port first, fall back to TCP "
        "(HTTP/2 or HTTP/1.1) when the QUIC handshake fails; https:// URLs only",
    )
    protocol.add_argument(
        "--http3-only", dest="protocol", action="store_const", const="http3-only",
        help="HTTP/3 only: fail when the QUIC handshake fails; https:// URLs only",
    )
