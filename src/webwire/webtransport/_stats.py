"""Connection statistics of a WebTransport client (:class:`ClientStats`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """Counters of one client's session attempts.

    Attributes:
        created_at: Wall-clock time the statistics started (seconds since
            the epoch).
        connections_attempted: Sessions asked for with ``connect``.
        connections_successful: Sessions established.
        connections_failed: Attempts that raised.
        total_connect_time: Seconds spent establishing the successful
            sessions, summed.
        min_connect_time: Fastest successful establishment in seconds
            (``inf`` before the first).
        max_connect_time: Slowest successful establishment in seconds.
    """

    created_at: float = field(default_factory=time.time)
    connections_attempted: int = 0
    connections_successful: int = 0
    connections_failed: int = 0
    total_connect_time: float = 0.0
    min_connect_time: float = math.inf
    max_connect_time: float = 0.0

    @property
    def avg_connect_time(self) -> float:
        """Mean seconds per successful establishment (0.0 before one)."""
        if not self.connections_successful:
            return 0.0
        return self.total_connect_time / self.connections_successful

    @property
    def success_rate(self) -> float:
        """Successful over attempted, from 0.0 to 1.0 (1.0 before any
        attempt)."""
        if not self.connections_attempted:
            return 1.0
        return self.connections_successful / self.connections_attempted

    def record_success(self, connect_time: float) -> None:
        """Count an established session that took ``connect_time`` seconds."""
        self.connections_successful += 1
        self.total_connect_time += connect_time
        self.min_connect_time = min(self.min_connect_time, connect_time)
        self.max_connect_time = max(self.max_connect_time, connect_time)

    def to_dict(self) -> dict[str, Any]:
        """The statistics as plain data.

        Returns:
            ``{"created_at", "uptime" (seconds), "connections": {"attempted",
            "successful", "failed", "success_rate"}, "performance":
            {"avg_connect_time", "min_connect_time", "max_connect_time"}}``
            (times in seconds; ``min_connect_time`` is 0.0 before the first
            success).
        """
        low = self.min_connect_time
        return {
            "created_at": self.created_at,
            "uptime": max(0.0, time.time() - self.created_at),
            "connections": {
                "attempted": self.connections_attempted,
                "successful": self.connections_successful,
                "failed": self.connections_failed,
                "success_rate": self.success_rate,
            },
            "performance": {
                "avg_connect_time": self.avg_connect_time,
                "min_connect_time": 0.0 if math.isinf(low) else low,
                "max_connect_time": self.max_connect_time,
            },
        }
