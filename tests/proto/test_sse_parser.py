"""The event-stream parser (HTML Living Standard, 9.2.6): field rules, line
ends split across chunks, every split point of sample streams, and
hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webwire import RemoteProtocolError
from webwire._proto.sse import ServerSentEvent, SSEParser


def parse(*chunks: bytes, parser: SSEParser | None = None) -> list[ServerSentEvent]:
    parser = parser or SSEParser()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events.extend(parser.events())
    return events


def every_split(stream: bytes) -> list[list[ServerSentEvent]]:
    """The events of ``stream`` fed in two pieces at every split point, and
    byte by byte."""
    results = [parse(stream[:i], stream[i:]) for i in range(len(stream) + 1)]
    results.append(parse(*(stream[i : i + 1] for i in range(len(stream)))))
    return results


def test_simple_message() -> None:
    assert parse(b"data: hello\n\n") == [ServerSentEvent("message", "hello", "", None)]


def test_event_type_id_and_multiline_data() -> None:
    stream = b"event: update\nid: 7\ndata: line one\ndata: line two\n\n"
    assert parse(stream) == [ServerSentEvent("update", "line one\nline two", "7", None)]


def test_event_type_resets_after_dispatch_but_id_persists() -> None:
    stream = b"event: a\nid: 1\ndata: x\n\ndata: y\n\n"
    assert parse(stream) == [
        ServerSentEvent("a", "x", "1", None),
        ServerSentEvent("message", "y", "1", None),
    ]


def test_empty_id_resets_last_event_id() -> None:
    parser = SSEParser()
    assert parse(b"id: 5\ndata: a\n\nid\ndata: b\n\n", parser=parser) == [
        ServerSentEvent("message", "a", "5", None),
        ServerSentEvent("message", "b", "", None),
    ]
    assert parser.last_event_id == ""


def test_id_with_nul_ignored() -> None:
    parser = SSEParser()
    events = parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", parser=parser)
    assert [event.id for event in events] == ["1", "1"]
    assert parser.last_event_id == "1"


def test_id_without_data_sets_last_event_id_without_dispatch() -> None:
    parser = SSEParser()
    assert parse(b"id: 42\n\n", parser=parser) == []
    assert parser.last_event_id == "42"
    assert parse(b"data: z\n\n", parser=parser) == [ServerSentEvent("message", "z", "42")]


def test_retry_digits_only() -> None:
    parser = SSEParser()
    events = parse(b"retry: 2500\ndata: a\n\n", parser=parser)
    assert events == [ServerSentEvent("message", "a", "", 2500)]
    assert parser.retry == 2500
    for bad in (b"retry: 1.5\n", b"retry: -1\n", b"retry: 12a\n", b"retry:\n", b"retry:  10\n",
                b"retry: \xd9\xa1\n"):
        parse(bad, b"\n", parser=parser)
        assert parser.retry == 2500, bad
    # A retry field alone changes the reconnection time without an event.
    assert parse(b"retry: 10\n\n", parser=parser) == []
    assert parser.retry == 10
    # Only the event whose block had the field carries it.
    assert parse(b"data: b\n\n", parser=parser) == [ServerSentEvent("message", "b", "", None)]


def test_comments_and_unknown_fields_ignored() -> None:
    stream = b": keep-alive\n:\nfoo: bar\nevent\ndata: v\n\n"
    assert parse(stream) == [ServerSentEvent("message", "v", "", None)]


def test_field_without_colon_has_empty_value() -> None:
    # "data" alone appends an empty line; two of them give "\n".
    assert parse(b"data\n\n") == [ServerSentEvent("message", "")]
    assert parse(b"data\ndata\n\n") == [ServerSentEvent("message", "\n")]


def test_only_one_leading_space_removed() -> None:
    assert parse(b"data:  two\n\n")[0].data == " two"
    assert parse(b"data:no-space\n\n")[0].data == "no-space"
    assert parse(b"data: a: b\n\n")[0].data == "a: b"


def test_empty_data_buffer_not_dispatched() -> None:
    assert parse(b"event: x\n\n\n\n") == []
    # ... and the event type does not leak into the next event.
    assert parse(b"event: x\n\ndata: y\n\n") == [ServerSentEvent("message", "y")]


def test_incomplete_event_at_end_not_dispatched() -> None:
    parser = SSEParser()
    assert parse(b"data: a\n\ndata: b\n", parser=parser) == [ServerSentEvent("message", "a")]
    parser.reset()
    # The partial event of the old stream is gone; the id is kept.
    assert parse(b"data: c\n\n", parser=parser) == [ServerSentEvent("message", "c")]


def test_reset_keeps_last_event_id_and_retry() -> None:
    parser = SSEParser(last_event_id="start")
    assert parse(b"data: a\n\n", parser=parser)[0].id == "start"
    parse(b"id: 9\nretry: 100\ndata: b\n\ndata: partial", parser=parser)
    parser.reset()
    assert parser.last_event_id == "9"
    assert parser.retry == 100
    events = parse(b"\xef\xbb\xbfdata: c\n\n", parser=parser)
    assert events == [ServerSentEvent("message", "c", "9")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_ends(eol: bytes) -> None:
    stream = eol.join([b"event: e", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    expected = [ServerSentEvent("e", "1\n2"), ServerSentEvent("message", "3")]
    for events in every_split(stream):
        assert events == expected


def test_mixed_line_ends_every_split() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\n: c\r\rid: x\r\ndata: \xc3\xa9\xe2\x82\xac\n\n"
    expected = [ServerSentEvent("message", "a\nb\nc"), ServerSentEvent("message", "é€", "x")]
    for events in every_split(stream):
        assert events == expected


def test_cr_then_lf_in_next_chunk_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\n", b"\r\n") == [ServerSentEvent("message", "a")]
    # CR, then an empty chunk, then LF.
    assert parse(b"data: a\r", b"", b"\n\n") == [ServerSentEvent("message", "a")]
    # CR at the end, then a CR: a blank line.
    assert parse(b"data: a\r", b"\r") == [ServerSentEvent("message", "a")]


def test_bom_stripped_only_at_start() -> None:
    bom = b"\xef\xbb\xbf"
    for events in every_split(bom + b"data: x\n\n"):
        assert events == [ServerSentEvent("message", "x")]
    # A second BOM is part of the field name: an unknown field.
    assert parse(bom + bom + b"data: x\n\n") == []
    # A BOM later in the stream is ordinary text.
    assert parse(b"data: x\n\n" + bom + b"data: y\n\n") == [ServerSentEvent("message", "x")]


def test_invalid_utf8_replaced() -> None:
    assert parse(b"data: a\xffb\n\n") == [ServerSentEvent("message", "a\ufffdb")]
    # A multi-byte character split across chunks is decoded whole.
    assert parse(b"data: \xe2\x82", b"\xac\n\n") == [ServerSentEvent("message", "€")]


def test_json_helper() -> None:
    event = parse(b'data: {"a": [1, 2]}\n\n')[0]
    assert event.json() == {"a": [1, 2]}


def test_size_limit() -> None:
    parser = SSEParser(max_event_size=100)
    parse(b"data: " + b"x" * 50 + b"\n", parser=parser)
    with pytest.raises(RemoteProtocolError):
        parse(b"data: " + b"y" * 30, b"z" * 30, parser=parser)
    parser = SSEParser(max_event_size=100)
    with pytest.raises(RemoteProtocolError):
        parse(b"data: " + b"x" * 200 + b"\n", parser=parser)


# -- hypothesis ----------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
    max_size=12,
)
_event = st.tuples(
    st.one_of(st.just(""), _text.filter(lambda s: s != "")),  # event type
    st.lists(_text, min_size=1, max_size=4),  # data lines
    st.one_of(st.none(), _text),  # id
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),  # retry
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_event, max_size=6),
    eols=st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=5),
    bom=st.booleans(),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_round_trip(
    events: list[tuple[str, list[str], str | None, int | None]],
    eols: list[str],
    bom: bool,
    comments: bool,
    cuts: list[int],
) -> None:
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id = ""
    for event_type, data, event_id, retry in events:
        if comments:
            lines.append(": comment")
        if event_type:
            lines.append(f"event: {event_type}")
        for value in data:
            lines.append(f"data: {value}")
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines.append("")
        expected.append(ServerSentEvent(event_type or "message", "\n".join(data), last_id, retry))
    text = ""
    for i, line in enumerate(lines):
        eol = eols[i % len(eols)]
        if not line and text.endswith("\r") and eol.startswith("\n"):
            # CR then LF would be one line end: the blank line needs its own.
            eol = "\r"
        text += line + eol
    stream = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert parse(*chunks) == expected
