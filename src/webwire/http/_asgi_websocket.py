"""WebSocket connections to an ASGI application in process (the ASGI
WebSocket scope, spec 2.4, with the ``websocket.http.response`` extension).

The client side is webwire's unchanged WebSocket engine: the transport
answers the opening handshake with a ``101`` response whose
``extensions["detach"]`` hands over one end of an in-memory byte stream
pair (:class:`PipeStream`, two bounded backend channels, so it works on
any backend). At the other end a :class:`WebSocketSession` runs the
``websockets`` Sans-I/O server protocol: it parses the client's frames into
``websocket.receive`` messages for the app and frames the app's
``websocket.send``/``websocket.close`` messages, answering pings and
completing the closing handshake (RFC 6455 section 5.5, 7.1.2). No
extension (permessage-deflate) is negotiated in process.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from webwire._backends.base import ChannelClosed, NetworkStream
from webwire._exceptions import ReadError, RemoteProtocolError, WriteError, WriteTimeout

if TYPE_CHECKING:
    from webwire._backends.base import Backend, Channel

__all__ = ["PipeStream", "WebSocketSession"]

Message = MutableMapping[str, Any]
_PIPE_SIZE = 16
_READ_SIZE = 65536
_log = logging.getLogger("webwire.asgi")


class _Failure:
    """Queued in a pipe instead of bytes: the reading end raises
    :class:`~webwire.ReadError` caused by ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class PipeStream(NetworkStream):
    """One end of an in-memory byte stream pair: reads from ``incoming``,
    writes to ``outgoing`` (bounded channels of byte chunks, so a writer
    waits while the reader is :data:`_PIPE_SIZE` chunks behind). Closing a
    direction is the end of stream for the peer; :meth:`abort` closes both.
    """

    def __init__(
        self,
        incoming: Channel[Any],
        outgoing: Channel[Any],
        sockname: Any = None,
        peername: Any = None,
    ) -> None:
        self._in = incoming
        self._out = outgoing
        self._buffer = b""
        self._closed = False
        self._eof_sent = False
        self._extra = {"sockname": sockname, "peername": peername}

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at the end of stream.

        Raises:
            ReadTimeout: Nothing arrived within ``timeout`` seconds.
            ReadError: This end was closed, or the peer failed.
        """
        if not self._buffer:
            if self._closed:
                raise ReadError("receive failed: the in-process stream is closed")
            try:
                item = await self._in.receive(timeout)
            except ChannelClosed:
                return b""
            if isinstance(item, _Failure):
                raise ReadError("receive failed: the in-process peer failed") from item.error
            self._buffer = item
        data, self._buffer = self._buffer[:max_bytes], self._buffer[max_bytes:]
        return data

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Queue ``data`` for the peer.

        Raises:
            WriteError: This end or the peer's reading end is closed.
            WriteTimeout: No room within ``timeout`` seconds.
        """
        if self._closed or self._eof_sent:
            raise WriteError("send failed: the in-process stream is closed")
        if not data:
            return
        try:
            queued = await self._out.send(bytes(data), timeout)
        except ChannelClosed:
            raise WriteError("send failed: the in-process peer closed the stream") from None
        if not queued:
            raise WriteTimeout(f"data could not be sent within {timeout} seconds")

    async def send_eof(self) -> None:
        """End the writing direction; the peer reads the end of stream."""
        self._eof_sent = True
        self._out.close()

    async def fail(self, error: BaseException) -> None:
        """End the writing direction with a failure: the peer's next read
        (after the data queued before) raises ReadError caused by ``error``."""
        if not self._closed and not self._eof_sent:
            try:
                await self._out.send(_Failure(error))
            except ChannelClosed:
                pass
        await self.send_eof()

    async def aclose(self) -> None:
        """Close both directions."""
        self.abort()

    def abort(self) -> None:
        """Close both directions at once (idempotent)."""
        self._closed = True
        self._out.close()
        self._in.close()

    def is_readable(self) -> bool:
        """Whether data (or the end of stream) is waiting."""
        return bool(self._buffer) or self._closed or len(self._in) > 0

    async def start_tls(self, *args: Any, **kwargs: Any) -> NetworkStream:
        """Not supported in process.

        Raises:
            WriteError: Always.
        """
        raise WriteError("TLS is not available on an in-process stream")

    def get_extra_info(self, name: str) -> Any:
        """``"sockname"`` and ``"peername"`` (addresses as the app sees
        them); ``None`` otherwise."""
        return self._extra.get(name)


def pipe_pair(backend: Backend, client: Any, server: Any) -> tuple[PipeStream, PipeStream]:
    """``(client_end, server_end)`` of a new in-memory stream."""
    up: Channel[Any] = backend.create_channel(_PIPE_SIZE)
    down: Channel[Any] = backend.create_channel(_PIPE_SIZE)
    return PipeStream(down, up, client, server), PipeStream(up, down, server, client)


def _misuse(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"{message} (ASGI WebSocket protocol)")


def _disconnected() -> OSError:
    return OSError("the WebSocket client is disconnected")


class WebSocketSession:
    """The app's side of one in-process WebSocket connection.

    The outcome of the handshake reaches the transport through
    :attr:`handshake`: ``("accept", subprotocol, headers)``, ``("close",)``
    (refused before acceptance: ``403``), ``("start", status, headers)``
    then ``("body", bytes)``... ``("end",)`` (a ``websocket.http.response``
    denial), or ``("error", exception | None)`` (the app failed or returned
    first).

    Args:
        app: The ASGI application.
        backend: The backend.
        group: The task group the frame reader runs in.
        server_end: The app's end of the stream pair.
        raise_app_exceptions: After acceptance, an app exception fails the
            connection with 1011 in any case; when this is on, the client's
            stream also fails with a ReadError caused by the app's exception,
            so it is the cause of the client's ``ConnectionClosedError``.
    """

    def __init__(
        self,
        app: Any,
        backend: Backend,
        group: Any,
        server_end: PipeStream,
        raise_app_exceptions: bool,
    ) -> None:
        self.app = app
        self.backend = backend
        self.group = group
        self.stream = server_end
        self.raise_app_exceptions = raise_app_exceptions
        self.handshake: Channel[Any] = backend.create_channel(_PIPE_SIZE)
        self.to_app: Channel[Message] = backend.create_channel(_PIPE_SIZE)
        self.protocol = ServerProtocol(state=State.OPEN, max_size=None, logger=_log)
        self.write_lock = backend.create_lock()
        self.state = "connecting"  # -> open | denying | refused | closed
        self.connect_sent = False
        self.close_code = 1006
        self.close_reason = ""

    # -- the app's receive and send ------------------------------------------

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        try:
            return await self.to_app.receive()
        except ChannelClosed:
            return {
                "type": "websocket.disconnect",
                "code": self.close_code,
                "reason": self.close_reason,
            }

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == "connecting":
            if kind == "websocket.accept":
                headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
                self.state = "open"
                self.group.start_soon(self._read_frames)
                await self.handshake.send(("accept", message.get("subprotocol"), headers))
            elif kind == "websocket.close":
                self.state = "refused"
                self.to_app.close()
                await self.handshake.send(("close",))
            elif kind == "websocket.http.response.start":
                status = message.get("status")
                if not isinstance(status, int) or not 100 <= status <= 999:
                    raise _misuse(f"ASGI app sent an invalid status {status!r}")
                headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
                self.state = "denying"
                await self.handshake.send(("start", status, headers))
            else:
                raise _misuse(f"ASGI app sent {kind!r} before accepting the WebSocket")
        elif state == "denying":
            if kind != "websocket.http.response.body":
                raise _misuse(f"ASGI app sent {kind!r} during a denial response")
            data = bytes(message.get("body", b""))
            if data:
                await self.handshake.send(("body", data))
            if not message.get("more_body", False):
                self.state = "refused"
                self.to_app.close()
                await self.handshake.send(("end",))
        elif state == "open":
            if kind == "websocket.send":
                await self._send_data(message)
            elif kind == "websocket.close":
                code = message.get("code") or 1000
                reason = message.get("reason") or ""
                await self._write(lambda: self.protocol.send_close(code, reason))
            else:
                raise _misuse(f"ASGI app sent an unexpected message {kind!r}")
        else:
            raise _disconnected()

    async def _send_data(self, message: Message) -> None:
        text = message.get("text")
        data = message.get("bytes")
        if text is not None:
            if not isinstance(text, str):
                raise _misuse("'websocket.send' text must be a str")
            payload = text.encode()
            await self._write(lambda: self.protocol.send_text(payload))
        elif data is not None:
            binary = bytes(data)
            await self._write(lambda: self.protocol.send_binary(binary))
        else:
            raise _misuse("'websocket.send' carries neither text nor bytes")

    async def _write(self, step: Any) -> None:
        """Run ``step`` (a protocol call) and write its frames, in order."""
        async with self.write_lock:
            if self.protocol.state is not State.OPEN:
                raise _disconnected()
            step()
            await self._flush_locked()

    async def _flush(self) -> None:
        async with self.write_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        for chunk in self.protocol.data_to_send():
            try:
                if chunk:
                    await self.stream.write(chunk, None)
                else:
                    await self.stream.send_eof()
            except WriteError:
                self.disconnect()
                raise _disconnected() from None

    def disconnect(self) -> None:
        """The client is gone: the app's ``receive`` gives
        ``websocket.disconnect`` and its ``send`` raises OSError."""
        self.state = "closed"
        self.to_app.close()

    # -- the frame reader (after acceptance) -------------------------------------

    async def _read_frames(self) -> None:
        protocol = self.protocol
        parts: list[bytes] = []
        text = False
        try:
            while True:
                try:
                    data = await self.stream.read(_READ_SIZE, None)
                except ReadError:
                    data = b""
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
                try:
                    await self._flush()
                except OSError:
                    pass
                for frame in events:
                    if not isinstance(frame, Frame):
                        continue
                    opcode = frame.opcode
                    if opcode in (Opcode.TEXT, Opcode.BINARY):
                        text = opcode is Opcode.TEXT
                        parts = [bytes(frame.data)]
                    elif opcode is Opcode.CONT:
                        parts.append(bytes(frame.data))
                    else:
                        continue
                    if frame.fin:
                        await self._deliver(b"".join(parts), text)
                        parts = []
                if not data or protocol.state is State.CLOSED:
                    break
        finally:
            rcvd = protocol.close_rcvd
            if rcvd is not None:
                self.close_code, self.close_reason = int(rcvd.code), rcvd.reason
            self.disconnect()
            # What was written stays readable by the client; then its end
            # of stream.
            self.stream.abort()

    async def _deliver(self, payload: bytes, text: bool) -> None:
        message: Message
        if text:
            try:
                message = {"type": "websocket.receive", "text": payload.decode()}
            except UnicodeDecodeError:
                async with self.write_lock:
                    self.protocol.fail(1007, "invalid UTF-8")
                    await self._flush_locked()
                return
        else:
            message = {"type": "websocket.receive", "bytes": payload}
        try:
            await self.to_app.send(message)
        except ChannelClosed:
            pass

    # -- the app's task -------------------------------------------------------------

    async def run(self, scope: dict[str, Any]) -> None:
        """Run the app; never raises (the outcome goes to the transport or
        to the client as a close frame)."""
        error: Exception | None = None
        try:
            await self.app(scope, self.receive, self.send)
        except Exception as exc:
            error = exc
        except BaseException:
            # Cancelled (the transport closed): the client's end of stream.
            self.disconnect()
            self.stream.abort()
            self.handshake.close()
            raise
        state = self.state
        if state in ("connecting", "denying"):
            self.state = "closed"
            self.to_app.close()
            try:
                await self.handshake.send(("error", error))
            except ChannelClosed:
                pass
            return
        if state != "open":
            return
        try:
            if error is not None:
                _log.error("ASGI app failed on an open WebSocket", exc_info=error)
                async with self.write_lock:
                    self.protocol.fail(1011, "Internal Server Error")
                    for chunk in self.protocol.data_to_send():
                        if chunk:
                            await self.stream.write(chunk, None)
                    if self.raise_app_exceptions:
                        await self.stream.fail(error)
                    else:
                        await self.stream.send_eof()
            elif self.protocol.state is State.OPEN:
                # The app returned without closing: close normally.
                await self._write(lambda: self.protocol.send_close(1000, ""))
        except (OSError, WriteError):
            pass
