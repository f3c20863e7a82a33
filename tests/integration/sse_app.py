"""A Starlette application serving server-sent events with sse-starlette's
``EventSourceResponse`` (served by hypercorn in the integration tests).

Routes:

* ``/events?key=K&n=N&total=T&retry=MS``: events ``tick`` with ids
  ``last+1 ... last+N`` (``last`` from ``Last-Event-ID``, 0 without), JSON
  data ``{"n": id}``, the first with a ``retry`` field of ``MS``
  milliseconds; then the stream ends. Once ``last`` reaches ``T``: ``204``.
* ``/multi``: a comment, a multi-line data event, a named event and an event
  with an empty data line, then the stream ends; a reconnection gets ``204``.
* ``/endless?key=K``: an event every 10 ms until the client goes away; the
  app records the disconnect.
* ``/wrong-type``: ``200`` with ``text/plain``.
* ``/status/{code}``: an empty response with that status.
* ``/seen?key=K``: JSON ``{"last_event_ids": [...], "disconnected": bool}``:
  the ``Last-Event-ID`` of each request with that key (``null`` when
  absent) and whether ``/endless`` saw its client go away.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SEEN: dict[str, list[str | None]] = defaultdict(list)
DISCONNECTED: dict[str, bool] = {}


def _record(request: Request) -> str:
    key = request.query_params.get("key", "")
    SEEN[key].append(request.headers.get("last-event-id"))
    return key


async def events(request: Request) -> Response:
    _record(request)
    n = int(request.query_params.get("n", "3"))
    total = int(request.query_params.get("total", "1000000"))
    retry = int(request.query_params.get("retry", "10"))
    last = int(request.headers.get("last-event-id") or 0)
    if last >= total:
        return Response(status_code=204)

    async def produce() -> AsyncIterator[ServerSentEvent]:
        for i in range(last + 1, min(last + n, total) + 1):
            first = i == last + 1
            yield ServerSentEvent(
                data=json.dumps({"n": i}), event="tick", id=str(i), retry=retry if first else None
            )

    return EventSourceResponse(produce(), ping=0)


async def multi(request: Request) -> Response:
    if request.headers.get("last-event-id") is not None:
        return Response(status_code=204)

    async def produce() -> AsyncIterator[ServerSentEvent | dict[str, Any]]:
        yield ServerSentEvent(comment="hello")
        yield ServerSentEvent(data="line one\nline two\r\nline three", id="m1", retry=10)
        yield ServerSentEvent(data="named", event="custom")
        yield ServerSentEvent(data="", event="empty")

    return EventSourceResponse(produce(), ping=0)


async def endless(request: Request) -> Response:
    key = _record(request)
    DISCONNECTED[key] = False

    async def produce() -> AsyncIterator[ServerSentEvent]:
        i = 0
        try:
            while True:
                i += 1
                yield ServerSentEvent(data=str(i), id=str(i))
                await anyio.sleep(0.01)
        finally:
            DISCONNECTED[key] = True

    async def on_close(message: Any) -> None:
        DISCONNECTED[key] = True

    return EventSourceResponse(produce(), ping=0, client_close_handler_callable=on_close)


async def wrong_type(request: Request) -> Response:
    return PlainTextResponse("data: not an event stream\n\n")


async def status(request: Request) -> Response:
    return Response(status_code=int(request.path_params["code"]))


async def seen(request: Request) -> Response:
    key = request.query_params.get("key", "")
    return JSONResponse(
        {"last_event_ids": SEEN.get(key, []), "disconnected": DISCONNECTED.get(key, False)}
    )


app = Starlette(
    routes=[
        Route("/events", events),
        Route("/multi", multi),
        Route("/endless", endless),
        Route("/wrong-type", wrong_type),
        Route("/status/{code:int}", status),
        Route("/seen", seen),
    ]
)
