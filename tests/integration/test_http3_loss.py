"""HTTP/3 through a lossy network: webwire's client talks to the aioquic
server through a real UDP relay that drops, reorders and duplicates 5% of
the datagrams each way (``udp_relay.LossyUDPRelay``, seeded). QUIC's loss
recovery (qh3) must deliver every byte of a download and of an upload, on
asyncio, trio and the blocking client, and the relay must really have
dropped, reordered and duplicated datagrams.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from app import pattern_bytes

from webwire._sync import run_sync

OpenApi = Callable[..., Any]

DOWNLOAD = 3 * 1024 * 1024
UPLOAD = 1024 * 1024


async def s_lossy_transfer(open_api: OpenApi, server: Any, relay: Any) -> None:
    host, port = relay.address
    url = f"https://{host}:{port}"
    upload = bytes(range(256)) * (UPLOAD // 256)
    async with open_api(http_versions={"HTTP/3"}, verify=server.ca_path) as api:
        r = await api.get(f"{url}/bytes/{DOWNLOAD}")
        assert r.http_version == "HTTP/3"
        assert r.status_code == 200
        assert len(r.content) == DOWNLOAD
        assert r.content == pattern_bytes(DOWNLOAD)
        posted = await api.post(f"{url}/echo", content=upload)
        echoed = json.loads(posted.content)
        assert echoed["body_length"] == UPLOAD
        assert echoed["body_sha256"] == hashlib.sha256(upload).hexdigest()
        # Several streams at once over the same lossy path.
        sizes = [100_000 + i for i in range(6)]
        gathered = await api.gather(
            len(sizes), lambda i: api.get(f"{url}/bytes/{sizes[i]}")
        )
        assert [g.content for g in gathered] == [pattern_bytes(n) for n in sizes]
        assert len(api.pool.connections()) == 1
    counters = relay.counters()
    assert counters.dropped > 0
    assert counters.reordered > 0
    assert counters.duplicated > 0


@pytest.mark.anyio
async def test_lossy_relay(async_api: OpenApi, aioquic_h3: Any, lossy_relay: Any) -> None:
    relay = lossy_relay(aioquic_h3.address, loss=0.05, reorder=0.05, duplicate=0.05, seed=11)
    await s_lossy_transfer(async_api, aioquic_h3, relay)


def test_lossy_relay_sync(sync_api: OpenApi, aioquic_h3: Any, lossy_relay: Any) -> None:
    relay = lossy_relay(aioquic_h3.address, loss=0.05, reorder=0.05, duplicate=0.05, seed=12)
    run_sync(s_lossy_transfer(sync_api, aioquic_h3, relay))
