"""The ``Link`` header field (RFC 8288): :func:`parse_links`."""

from __future__ import annotations

import re

__all__ = ["parse_links"]

_LINK_PARAM = re.compile(
    r"[ \t]*;[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+\*?)[ \t]*"
    r"""(?:=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;,"]*)))?"""
)


def parse_links(value: str) -> list[dict[str, str]]:
    """Parse a ``Link`` field value (RFC 8288 section 3) into one dict per
    link: ``"url"`` (the target as written) and the link parameters (names
    lower-cased, quoted values unescaped). Malformed links are skipped.

    Args:
        value: The field value (several fields joined with ``", "``).

    Returns:
        The links, in order.
    """
    links: list[dict[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        start = value.find("<", pos)
        if start < 0:
            break
        close = value.find(">", start)
        if close < 0:
            break
        link = {"url": value[start + 1 : close].strip()}
        pos = close + 1
        while True:
            match = _LINK_PARAM.match(value, pos)
            if match is None:
                break
            name = match[1].lower()
            if match[2] is not None:
                param = re.sub(r"\\(.)", r"\1", match[2])
            else:
                param = (match[3] or "").strip()
            link.setdefault(name, param)  # RFC 8288 3.3: only the first rel counts
            pos = match.end()
        links.append(link)
        comma = value.find(",", pos)
        if comma < 0:
            break
        pos = comma + 1
    return links
