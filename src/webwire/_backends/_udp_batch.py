"""Sending several UDP datagrams in one system call with generic
segmentation offload (Linux ``UDP_SEGMENT``, kernel 4.18+): datagrams of
one size (the last of a run may be shorter) are joined into one buffer
that the kernel cuts back into the same datagrams. Where the option is
missing or the kernel refuses it, the backends send one datagram per call.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Sequence

__all__ = ["GSO_FALLBACK_ERRNOS", "gso_ancillary", "gso_groups", "gso_supported"]

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)

MAX_SEGMENTS = 64
"""Most datagrams in one segmented send (the kernel's ``UDP_MAX_SEGMENTS``)."""

MAX_GSO_BYTES = 65000
"""Most payload bytes in one segmented send (one UDP datagram's limit,
65,507, less room to spare)."""

GSO_FALLBACK_ERRNOS = frozenset(
    code
    for code in (
        errno.EIO,  # the device cannot checksum segmented datagrams
        errno.EINVAL,  # segment larger than the path MTU, too many segments
        errno.EMSGSIZE,
        errno.ENOPROTOOPT,
        errno.EOPNOTSUPP,
        getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
    )
)
"""Errors of a segmented send after which the socket sends one datagram per
call instead (the datagrams are then sent again that way)."""


def gso_supported(sock: object) -> bool:
    """Whether ``sock`` (a standard UDP socket) can send segmented batches:
    Linux with ``UDP_SEGMENT`` accepted by the kernel."""
    if not sys.platform.startswith("linux") or not isinstance(sock, socket.socket):
        return False
    if sock.type != socket.SOCK_DGRAM:
        return False
    try:
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:
        return False
    return True


def gso_ancillary(segment: int) -> list[tuple[int, int, bytes]]:
    """The ``sendmsg`` ancillary data asking the kernel to cut the buffer
    into datagrams of ``segment`` bytes."""
    return [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", segment))]


def gso_groups(datagrams: Sequence[bytes]) -> list[tuple[int, int]]:
    """Split ``datagrams`` into runs sendable as one segmented buffer, in
    order: ``(start, end)`` index pairs; within a run every datagram but
    the last has the first one's size, the last is not longer, and the
    run holds at most :data:`MAX_SEGMENTS` datagrams and
    :data:`MAX_GSO_BYTES` bytes. Empty datagrams stand alone."""
    groups: list[tuple[int, int]] = []
    count = len(datagrams)
    start = 0
    while start < count:
        size = len(datagrams[start])
        end = start + 1
        if size:
            total = size
            while end < count and end - start < MAX_SEGMENTS:
                length = len(datagrams[end])
                if length > size or length == 0 or total + length > MAX_GSO_BYTES:
                    break
                total += length
                end += 1
                if length < size:
                    break  # a shorter datagram ends the run
        groups.append((start, end))
        start = end
    return groups
