"""WebTransport codepoints, capsules (RFC 9297 section 3) and error-code
mapping (draft-ietf-webtrans-http3 section 4.3), without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webwire._exceptions import RemoteProtocolError, WebwireError
from webwire._proto import webtransport as wt


def test_varint_sizes() -> None:
    assert wt.encode_varint(0x3F) == b"\x3f"
    assert wt.encode_varint(0x40) == b"\x40\x40"
    assert len(wt.encode_varint(0x2843)) == 2
    assert len(wt.encode_varint(0x190B4D3D)) == 4
    assert len(wt.encode_varint(1 << 40)) == 8
    with pytest.raises(ValueError):
        wt.encode_varint(-1)
    with pytest.raises(ValueError):
        wt.encode_varint(1 << 62)


def test_close_capsule_round_trip() -> None:
    capsule = wt.encode_close(4242, "closed by the server")
    parser = wt.CapsuleParser()
    assert parser.feed(capsule[:3]) == []
    assert parser.pending == 3
    [(kind, payload)] = parser.feed(capsule[3:])
    assert kind == wt.CAPSULE_CLOSE_SESSION
    assert wt.decode_close(payload) == (4242, "closed by the server")


def test_close_capsule_limits() -> None:
    with pytest.raises(ValueError):
        wt.encode_close(1 << 32)
    with pytest.raises(ValueError):
        wt.encode_close(0, "x" * 1025)
    with pytest.raises(RemoteProtocolError):
        wt.decode_close(b"\x00\x00")
    with pytest.raises(RemoteProtocolError):
        wt.decode_close(b"\x00\x00\x00\x01\xff")
    with pytest.raises(RemoteProtocolError):
        wt.decode_close(b"\x00" * 4 + b"x" * 1025)


def test_several_capsules_and_drain() -> None:
    data = (
        wt.encode_capsule(wt.CAPSULE_DRAIN_SESSION)
        + wt.encode_capsule(0x1234, b"unknown")
        + wt.encode_capsule(wt.CAPSULE_WT_MAX_DATA, wt.encode_varint(1 << 30))
    )
    capsules = wt.CapsuleParser().feed(data)
    kinds = [kind for kind, _ in capsules]
    assert kinds == [wt.CAPSULE_DRAIN_SESSION, 0x1234, wt.CAPSULE_WT_MAX_DATA]
    assert wt.decode_varint_payload(capsules[2][1]) == 1 << 30
    with pytest.raises(RemoteProtocolError):
        wt.decode_varint_payload(b"\x01\x02")


def test_oversized_capsule_refused() -> None:
    parser = wt.CapsuleParser(max_size=10)
    with pytest.raises(RemoteProtocolError, match="11 bytes"):
        parser.feed(wt.encode_capsule(1, b"x" * 11))


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_parser_never_raises_outside_webwire_errors(data: bytes, step: int) -> None:
    parser = wt.CapsuleParser(max_size=64)
    try:
        for index in range(0, len(data), step):
            for _, payload in parser.feed(data[index : index + step]):
                assert len(payload) <= 64
                try:
                    wt.decode_close(payload)
                except RemoteProtocolError:
                    pass
    except WebwireError:
        pass


@given(st.lists(st.tuples(st.integers(0, (1 << 62) - 1), st.binary(max_size=40)), max_size=8))
def test_capsules_round_trip_in_any_split(capsules: list[tuple[int, bytes]]) -> None:
    data = b"".join(wt.encode_capsule(kind, payload) for kind, payload in capsules)
    parser = wt.CapsuleParser()
    out = []
    for byte in range(len(data)):
        out += parser.feed(data[byte : byte + 1])
    assert out == capsules
    assert parser.pending == 0


@given(st.integers(0, 0xFFFFFFFF))
def test_error_code_mapping_round_trips(code: int) -> None:
    h3 = wt.webtransport_code_to_http(code)
    assert wt.APP_ERROR_FIRST <= h3 <= wt.APP_ERROR_LAST
    assert (h3 - 0x21) % 0x1F != 0  # never a reserved code
    assert wt.http_code_to_webtransport(h3) == code


def test_error_code_mapping_edges() -> None:
    assert wt.webtransport_code_to_http(0) == wt.APP_ERROR_FIRST
    assert wt.webtransport_code_to_http(0xFFFFFFFF) == wt.APP_ERROR_LAST
    assert wt.http_code_to_webtransport(0x10C) is None  # H3_REQUEST_CANCELLED
    assert wt.http_code_to_webtransport(wt.WT_SESSION_GONE) is None
    with pytest.raises(ValueError):
        wt.webtransport_code_to_http(-1)


def test_drafts_from_settings() -> None:
    assert wt.draft_of({}) is None
    assert wt.draft_of({wt.SETTINGS_ENABLE_WEBTRANSPORT: 1}) is wt.Draft.DRAFT02
    current = {wt.SETTINGS_ENABLE_WEBTRANSPORT: 1, wt.SETTINGS_WT_ENABLED: 1}
    assert wt.draft_of(current) is wt.Draft.CURRENT
    assert wt.Draft.CURRENT.protocol == "webtransport-h3" and wt.Draft.CURRENT.flow_control
    assert wt.Draft.DRAFT02.fields == (("sec-webtransport-http3-draft02", "1"),)
    assert wt.quarter_stream_id(8) == 2


def test_state_transitions() -> None:
    S = wt.SessionState
    assert wt.next_state(S.CONNECTING, S.CONNECTED) is S.CONNECTED
    assert wt.next_state(S.CONNECTED, S.DRAINING) is S.DRAINING
    assert wt.next_state(S.CLOSING, S.DRAINING) is S.CLOSING
    assert wt.next_state(S.CLOSED, S.CONNECTED) is S.CLOSED


def test_client_settings_carry_the_session_limits() -> None:
    from webwire._proto.webtransport import client_settings

    settings = client_settings(1 << 20, 7, 9)
    assert settings == {
        wt.SETTINGS_WT_ENABLED: 1,
        wt.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 20,
        wt.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 7,
        wt.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 9,
    }
    with pytest.raises(ValueError):
        client_settings(-1, 1, 1)
    with pytest.raises(ValueError):
        client_settings(1, 1 << 62, 1)
