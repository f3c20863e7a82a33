"""Response body streams and the iterators over them.

The iterators are plain objects, not async generators: leaving one early
never leaves a suspended generator behind for the garbage collector, and
the body's connection is released by :meth:`BodyIterator.aclose` or by
closing the response. The blocking API drives the same iterators with
:func:`webwire._sync.run_sync`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from webwire._exceptions import WebwireError
from webwire._sync import run_sync

from ._decoders import LineDecoder, TextDecoder

if TYPE_CHECKING:
    from ._models import Response

__all__ = [
    "BodyIterator",
    "BytesStream",
    "IterStream",
    "SyncBodyIterator",
    "chunker",
    "line_splitter",
    "text_decoder",
]

T = TypeVar("T")

Step = Callable[[bytes], Iterable[T]]
Flush = Callable[[], Iterable[T]]


class BytesStream:
    """A body held in memory: one chunk."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _OneChunk(self._data)

    async def aclose(self) -> None:
        """Nothing to release."""


class _OneChunk:
    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data or None

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        data, self._data = self._data, None
        if data is None:
            raise StopAsyncIteration
        return data


class IterStream:
    """A body given as a (sync) iterable of bytes."""

    __slots__ = ("_iterable",)

    def __init__(self, iterable: Iterable[bytes]) -> None:
        self._iterable = iterable

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _SyncSource(iter(self._iterable))

    async def aclose(self) -> None:
        """Nothing to release."""


class _SyncSource:
    __slots__ = ("_iterator",)

    def __init__(self, iterator: Iterator[bytes]) -> None:
        self._iterator = iterator

    def __aiter__(self) -> _SyncSource:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None


def chunker(size: int | None) -> tuple[Step[bytes], Flush[bytes]]:
    """Steps cutting bytes into chunks of ``size`` bytes (the last may be
    shorter); ``None`` passes chunks through."""
    if size is None:
        return (lambda chunk: (chunk,)), tuple
    if size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, not {size}")
    buffer = bytearray()

    def step(chunk: bytes) -> list[bytes]:
        buffer.extend(chunk)
        out: list[bytes] = []
        while len(buffer) >= size:
            out.append(bytes(buffer[:size]))
            del buffer[:size]
        return out

    def flush() -> list[bytes]:
        out = [bytes(buffer)] if buffer else []
        buffer.clear()
        return out

    return step, flush


Encoding = Union[str, Callable[[bytes], str]]  # noqa: UP007
"""A codec name, or a function choosing one from the first chunk."""


class _LazyTextDecoder:
    """A :class:`TextDecoder` whose encoding may be chosen from the first
    chunk of the body."""

    __slots__ = ("_choose", "_decoder")

    def __init__(self, encoding: Encoding) -> None:
        self._decoder: TextDecoder | None = None
        self._choose: Callable[[bytes], str] | None = None
        if isinstance(encoding, str):
            self._decoder = TextDecoder(encoding)
        else:
            self._choose = encoding

    def _get(self, sample: bytes) -> TextDecoder:
        decoder = self._decoder
        if decoder is None:
            assert self._choose is not None
            decoder = self._decoder = TextDecoder(self._choose(sample))
        return decoder

    def decode(self, data: bytes) -> str:
        return self._get(data).decode(data)

    def flush(self) -> str:
        return self._get(b"").flush()


def text_decoder(encoding: Encoding) -> tuple[Step[str], Flush[str]]:
    """Steps decoding bytes to text (invalid bytes become U+FFFD)."""
    decoder = _LazyTextDecoder(encoding)

    def step(chunk: bytes) -> tuple[str, ...]:
        text = decoder.decode(chunk)
        return (text,) if text else ()

    def flush() -> tuple[str, ...]:
        text = decoder.flush()
        return (text,) if text else ()

    return step, flush


def line_splitter(encoding: Encoding) -> tuple[Step[str], Flush[str]]:
    """Steps decoding bytes to text and splitting it into lines."""
    decoder = _LazyTextDecoder(encoding)
    lines = LineDecoder()

    def step(chunk: bytes) -> list[str]:
        return lines.decode(decoder.decode(chunk))

    def flush() -> list[str]:
        return lines.decode(decoder.flush()) + lines.flush()

    return step, flush


class BodyIterator(Generic[T], AsyncIterator[T]):
    """Async iterator over a response body.

    Args:
        response: The response.
        decode: Remove the content coding (``False`` for raw chunks).
        step: Turns each body chunk into zero or more items.
        flush: Returns the items left at the end.
        use_content: Iterate the already read ``content`` when there is
            one, instead of the stream.

    Raises (when iterated):
        StreamConsumed: The body stream was already read.
        StreamClosed: The response was closed before being read.
        DecodingError: The content coding is broken or over the size limit.
        TransportError: Reading failed.
    """

    __slots__ = ("_decoder", "_flush", "_pending", "_response", "_source", "_state", "_step")

    def __init__(
        self,
        response: Response,
        *,
        decode: bool,
        step: Step[T],
        flush: Flush[T],
        use_content: bool,
    ) -> None:
        self._response = response
        self._step = step
        self._flush = flush
        self._pending: deque[T] = deque()
        self._source: AsyncIterator[bytes] | None = None
        self._decoder: Any = decode
        # 0: not started, 1: reading the stream, 2: finished.
        self._state = 0
        if use_content and response._content is not None:
            if response._content:  # an empty body yields nothing
                self._pending.extend(step(response._content))
            self._pending.extend(flush())
            self._state = 2

    def __aiter__(self) -> BodyIterator[T]:
        return self

    async def __anext__(self) -> T:
        pending = self._pending
        while not pending:
            if self._state == 2:
                raise StopAsyncIteration
            await self._fill()
        return pending.popleft()

    async def _fill(self) -> None:
        response = self._response
        try:
            if self._state == 0:
                response._start_consuming()
                self._decoder = response._decoder_or_none() if self._decoder else None
                self._source = response._stream.__aiter__()
                response._stream_iter = self._source
                self._state = 1
            assert self._source is not None
            decoder = self._decoder
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._state = 2
                tail = decoder.flush() if decoder is not None else b""
                if tail:
                    self._pending.extend(self._step(tail))
                self._pending.extend(self._flush())
                await response._aclose()
                return
            response._num_bytes_downloaded += len(chunk)
            if decoder is not None:
                chunk = decoder.decode(chunk)
            if chunk:
                self._pending.extend(self._step(chunk))
        except BaseException as exc:
            if isinstance(exc, WebwireError) and exc.request is None:
                exc.request = response._request
            self._state = 2
            await response._aclose()
            raise

    async def aclose(self) -> None:
        """Stop iterating; an unfinished body is closed (its connection is
        not reused)."""
        if self._state != 2:
            self._state = 2
            self._pending.clear()
            await self._response._aclose()


class SyncBodyIterator(Iterator[T]):
    """A :class:`BodyIterator` driven from blocking code."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: BodyIterator[T]) -> None:
        self._iterator = iterator

    def __iter__(self) -> SyncBodyIterator[T]:
        return self

    def __next__(self) -> T:
        try:
            return run_sync(self._iterator.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Stop iterating (see :meth:`BodyIterator.aclose`)."""
        run_sync(self._iterator.aclose())
