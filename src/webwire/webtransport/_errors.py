"""Errors of the WebTransport client package (:mod:`webwire.webtransport`).

Both are :class:`~webwire.WebwireError` subclasses: misuse of a client
object (a closed client, a session returned to the wrong pool) raises
:class:`ClientError`, a bad :class:`~webwire.webtransport.ClientConfig`
value raises :class:`ConfigurationError`.
"""

from __future__ import annotations

from typing import Any

from webwire._exceptions import WebwireError

__all__ = ["ClientError", "ConfigurationError"]


class ClientError(WebwireError):
    """A WebTransport client object cannot do what was asked: it is closed,
    a session does not belong to it, or connecting failed for a reason
    that is not a transport error (the original is ``__cause__``)."""


class ConfigurationError(ClientError, ValueError):
    """A :class:`~webwire.webtransport.ClientConfig` value is invalid.

    Attributes:
        key: The field name (``"connect_timeout"``...).
        value: The rejected value.
    """

    def __init__(self, key: str, value: Any, reason: str) -> None:
        super().__init__(f"invalid ClientConfig.{key} = {value!r}: {reason}")
        self.key = key
        self.value = value
