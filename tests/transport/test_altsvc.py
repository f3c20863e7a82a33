"""The Alt-Svc parser and cache (RFC 7838): the grammar of section 3, the
examples of the RFC, freshness (``ma``) and the memory of alternatives that
failed to connect, on the memory backend's fake clock."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webwire._backends.memory import MemoryBackend, memory_test
from webwire._transport.altsvc import (
    BROKEN_BASE_DELAY,
    BROKEN_MAX_DELAY,
    DEFAULT_MAX_AGE,
    AltService,
    AltSvcCache,
    parse_alt_svc,
)
from webwire._transport.connect import Origin

ORIGIN = "https://example.com"
KEY = Origin("https", "example.com", 443)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- parsing -------------------------------------------------------------------


def test_rfc_7838_examples() -> None:
    # Section 3: 'Alt-Svc: h2=":8000"' is an alternative on the same host;
    # only h3 alternatives are kept.
    assert parse_alt_svc('h2=":8000"') == []
    assert parse_alt_svc('h3=":8000"') == [AltService("h3", None, 8000, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3="new.example.org:80"') == [
        AltService("h3", "new.example.org", 80, DEFAULT_MAX_AGE)
    ]
    # Section 3.1: ma and persist.
    assert parse_alt_svc('h3=":443"; ma=3600') == [AltService("h3", None, 443, 3600.0)]
    assert parse_alt_svc('h3=":443"; ma=2592000; persist=1') == [
        AltService("h3", None, 443, 2592000.0, True)
    ]
    # Section 3: several alternatives, in preference order.
    assert parse_alt_svc('h3="alt.example:443", h3=":8443"; ma=60, h2=":443"') == [
        AltService("h3", "alt.example", 443, DEFAULT_MAX_AGE),
        AltService("h3", None, 8443, 60.0),
    ]


def test_clear_and_other_protocols() -> None:
    assert parse_alt_svc("clear") == []
    assert parse_alt_svc("  clear ") == []
    # draft ids are not used
    assert parse_alt_svc('h3-29=":443", h3-Q050=":443"') == []
    # percent-encoded protocol-id: "h%33" is "h3"
    assert parse_alt_svc('h%33=":443"') == [AltService("h3", None, 443, DEFAULT_MAX_AGE)]


def test_parameters() -> None:
    # unknown parameters are ignored, quoted values may hold commas
    assert parse_alt_svc('h3=":443"; foo="a, b"; ma=10; bar=baz') == [
        AltService("h3", None, 443, 10.0)
    ]
    assert parse_alt_svc('h3=":443";ma="20"') == [AltService("h3", None, 443, 20.0)]
    assert parse_alt_svc('h3=":443"; persist=0') == [AltService("h3", None, 443, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3="[::1]:8443"') == [AltService("h3", "::1", 8443, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3=":443", , h3=":444"') == [
        AltService("h3", None, 443, DEFAULT_MAX_AGE),
        AltService("h3", None, 444, DEFAULT_MAX_AGE),
    ]
    assert parse_alt_svc(b'h3=":443"; ma=5') == [AltService("h3", None, 443, 5.0)]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "h3",
        "h3=:443",
        'h3=":443',
        'h3="443"',
        'h3=":0"',
        'h3=":65536"',
        'h3=":44x"',
        'h3=":443"; ma=-1',
        'h3=":443"; ma=1.5',
        'h3=":443"; ma',
        'h3=":443" junk',
        'h3="host name:443"',
        'h3="[zz]:443"',
        "clear, h3=\":443\"",
        'h%3=":443"',
    ],
)
def test_malformed_values_are_ignored(value: str) -> None:
    assert parse_alt_svc(value) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_raises(value: str) -> None:
    result = parse_alt_svc(value)
    assert result is None or all(isinstance(alt, AltService) for alt in result)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["h3", "h2", "h3-29", "x"]),
            st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True)),
            st.integers(1, 65535),
            st.one_of(st.none(), st.integers(0, 10**9)),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_parser_round_trip(alternatives: list[tuple[str, str | None, int, int | None]]) -> None:
    parts = []
    for protocol, host, port, max_age in alternatives:
        part = f'{protocol}="{host or ""}:{port}"'
        if max_age is not None:
            part += f"; ma={max_age}"
        parts.append(part)
    result = parse_alt_svc(", ".join(parts))
    expected = [
        AltService("h3", host, port, float(DEFAULT_MAX_AGE if max_age is None else max_age))
        for protocol, host, port, max_age in alternatives
        if protocol == "h3"
    ]
    assert result == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_cache_update_never_raises(value: bytes) -> None:
    cache = AltSvcCache()
    assert cache.update(ORIGIN, value) in (True, False)


# -- the cache -------------------------------------------------------------------


def test_update_replaces_and_clear_removes() -> None:
    clock = FakeClock()
    cache = AltSvcCache(clock=clock)
    assert cache.update(ORIGIN, 'h3=":8443"; ma=100')
    assert cache.get(ORIGIN) == [AltService("h3", None, 8443, clock.now + 100)]
    # A new value replaces the old alternatives (RFC 7838 section 3).
    assert cache.update(ORIGIN, 'h3=":9443"')
    assert [alt.port for alt in cache.get(ORIGIN)] == [9443]
    # A malformed value changes nothing.
    assert not cache.update(ORIGIN, 'h3=":"')
    assert [alt.port for alt in cache.get(ORIGIN)] == [9443]
    # A value without h3 removes them, as "clear" does.
    assert cache.update(ORIGIN, 'h2=":443"')
    assert cache.get(ORIGIN) == []
    cache.update(ORIGIN, 'h3=":443"')
    assert cache.update(ORIGIN, "clear")
    assert cache.get(ORIGIN) == []
    assert len(cache) == 0


def test_only_https_origins() -> None:
    cache = AltSvcCache()
    assert not cache.update("http://example.com", 'h3=":443"')
    assert cache.get("http://example.com") == []
    with pytest.raises(ValueError, match="https"):
        cache.add("http://example.com")
    with pytest.raises(ValueError):
        cache.get("example.com")


def test_same_host_is_kept_as_none_and_origin_forms_agree() -> None:
    cache = AltSvcCache()
    cache.update("https://Example.COM:443/path?q", 'h3="example.com:8443"')
    assert cache.get(KEY)[0].host is None
    assert cache.lookup(KEY) == cache.get("https://example.com")[0]


def test_add_validates() -> None:
    cache = AltSvcCache()
    with pytest.raises(ValueError):
        cache.add(ORIGIN, port=0)
    with pytest.raises(ValueError):
        cache.add(ORIGIN, max_age=0)
    with pytest.raises(ValueError):
        cache.add(ORIGIN, protocol="h2")
    alt = cache.add(ORIGIN)
    assert (alt.host, alt.port) == (None, 443)
    alt2 = cache.add(ORIGIN, host="alt.example", port=8443)
    assert cache.get(ORIGIN) == [alt2, alt]
    with pytest.raises(ValueError):
        AltSvcCache(0)


def test_ma_zero_removes() -> None:
    cache = AltSvcCache()
    cache.update(ORIGIN, 'h3=":443"')
    cache.update(ORIGIN, 'h3=":443"; ma=0')
    assert cache.get(ORIGIN) == []


def test_bounded_size() -> None:
    clock = FakeClock()
    cache = AltSvcCache(10, clock=clock)
    for n in range(25):
        clock.now += 1
        cache.update(f"https://host{n}.example", f'h3=":443"; ma={1000 + n}')
    assert len(cache) == 10
    # the entries that expire first were dropped
    assert cache.get("https://host24.example")
    assert not cache.get("https://host0.example")


@memory_test
async def test_expiry_on_the_fake_clock() -> None:
    backend = MemoryBackend()
    cache = AltSvcCache()
    cache.add(ORIGIN, port=1111, max_age=10.0)  # on the real clock, then moved
    cache._bind_clock(backend.monotonic)
    cache.update("https://other.example", 'h3=":443"; ma=60')
    assert cache.lookup(KEY) is not None
    await backend.sleep(9.9)
    assert cache.lookup(KEY) is not None
    await backend.sleep(0.2)
    assert cache.lookup(KEY) is None
    assert cache.get(ORIGIN) == []
    assert cache.get("https://other.example")
    await backend.sleep(50.0)
    assert cache.get("https://other.example") == []


@memory_test
async def test_broken_backoff_on_the_fake_clock() -> None:
    backend = MemoryBackend()
    cache = AltSvcCache(clock=backend.monotonic)
    cache.update(ORIGIN, 'h3=":443"; ma=2592000')
    alt = cache.lookup(KEY)
    assert alt is not None
    delays = []
    for _ in range(12):
        delay = cache.mark_broken(KEY, alt)
        delays.append(delay)
        assert cache.lookup(KEY) is None
        await backend.sleep(delay - 0.5)
        assert cache.lookup(KEY) is None  # still waiting
        await backend.sleep(1.0)
        assert cache.lookup(KEY) == alt  # tried again
    assert delays[:4] == [300.0, 600.0, 1200.0, 2400.0]
    assert delays[0] == BROKEN_BASE_DELAY
    assert max(delays) == BROKEN_MAX_DELAY == 48 * 3600.0
    # A success resets the count.
    cache.mark_working(KEY, alt)
    assert cache.mark_broken(KEY, alt) == BROKEN_BASE_DELAY
    assert cache.is_broken(ORIGIN, alt)
    cache.clear(ORIGIN)
    assert not cache.is_broken(ORIGIN, alt)


def test_broken_alternative_skipped_for_the_next_one() -> None:
    clock = FakeClock()
    cache = AltSvcCache(clock=clock)
    cache.update(ORIGIN, 'h3=":8443", h3=":443"')
    first = cache.lookup(KEY)
    assert first is not None and first.port == 8443
    cache.mark_broken(KEY, first)
    second = cache.lookup(KEY)
    assert second is not None and second.port == 443
    # mark_broken with no alternative is the origin's own port: 443
    cache.mark_broken(KEY)
    assert cache.lookup(KEY) is None


def test_rebinding_the_clock_keeps_lifetimes() -> None:
    old = FakeClock()
    cache = AltSvcCache(clock=old)
    cache.update(ORIGIN, 'h3=":443"; ma=100')
    cache.mark_broken(KEY)
    new = FakeClock()
    new.now = 5.0
    cache._bind_clock(new)
    assert cache.get(ORIGIN)[0].expires == 105.0
    assert cache.broken_until(ORIGIN) == 5.0 + BROKEN_BASE_DELAY


def test_many_threads_share_a_cache() -> None:
    cache = AltSvcCache(50)
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(400):
                origin = Origin("https", f"h{(n * 7 + i) % 80}.example", 443)
                cache.update(origin, f'h3=":{1000 + i % 50}"; ma=100, h3=":443"')
                alt = cache.lookup(origin)
                if alt is not None:
                    if i % 3 == 0:
                        cache.mark_broken(origin, alt)
                    else:
                        cache.mark_working(origin, alt)
                cache.get(origin)
                if i % 97 == 0:
                    cache.clear(origin)
                if i % 50 == 0:
                    cache.add(origin, port=2000 + n)
                assert len(cache) <= 50
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50
    assert len(cache._broken) <= 50
