"""``MemoryDatagramSocket.receive_many`` on the fake clock: what is due is
taken at once, what is still in flight is not."""

from __future__ import annotations

import pytest

from webwire._backends.memory import MemoryBackend, datagram_pair, memory_test
from webwire._exceptions import ReadError, ReadTimeout


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@memory_test
async def test_receive_many_takes_what_is_due_in_order(backend: MemoryBackend) -> None:
    first, second = datagram_pair(delay=0.1)
    for index in range(5):
        await first.send(b"%d" % index)
    await backend.sleep(0.05)
    await first.send(b"later")  # due at 0.15
    assert await second.receive_many(3, 1) == [b"0", b"1", b"2"]
    assert await second.receive_many(8, 1) == [b"3", b"4"]
    start = backend.monotonic()
    assert await second.receive_many(8, 1) == [b"later"]
    assert backend.monotonic() - start == pytest.approx(0.05)
    assert second.received == 6
    with pytest.raises(ReadTimeout):
        await second.receive_many(8, 0.5)
    with pytest.raises(ValueError):
        await second.receive_many(0)
    second.close()
    with pytest.raises(ReadError):
        await second.receive_many(8, 1)
