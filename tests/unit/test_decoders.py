from __future__ import annotations

import builtins
import gzip
import importlib
import time
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from webwire import DecodingError
from webwire.http import _decoders
from webwire.http._decoders import (
    CHUNK_SIZE,
    ContentDecoder,
    LineDecoder,
    TextDecoder,
    accept_encoding,
    charset_from_content_type,
    guess_encoding,
    make_decoder,
)

PAYLOAD = b"".join(b"line %d of the body, some text to compress\n" % i for i in range(5000))


def raw_deflate(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS: dict[str, Any] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd,
}


def decode_all(decoder: ContentDecoder, data: bytes, step: int | None = None) -> bytes:
    if step is None:
        return decoder.decode(data) + decoder.flush()
    out = [decoder.decode(data[i : i + step]) for i in range(0, len(data), step)]
    out.append(decoder.flush())
    return b"".join(out)


# --- content codings ---------------------------------------------------------


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_round_trip(coding: str) -> None:
    encoded = ENCODERS[coding](PAYLOAD)
    assert decode_all(make_decoder(coding, max_size=None), encoded) == PAYLOAD


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_one_byte_at_a_time(coding: str) -> None:
    payload = PAYLOAD[:20000]
    encoded = ENCODERS[coding](payload)
    assert decode_all(make_decoder(coding, max_size=None), encoded, step=1) == payload


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_empty_body(coding: str) -> None:
    assert decode_all(make_decoder(coding, max_size=10), b"") == b""


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_header_value_case_and_spaces(coding: str) -> None:
    encoded = ENCODERS[coding](b"hello")
    decoder = make_decoder(f"  {coding.upper()} ", max_size=None)
    assert decode_all(decoder, encoded) == b"hello"


def test_deflate_raw_and_zlib_wrapped() -> None:
    for encoded in (zlib.compress(PAYLOAD), raw_deflate(PAYLOAD)):
        assert decode_all(make_decoder("deflate", max_size=None), encoded) == PAYLOAD
        assert decode_all(make_decoder("deflate", max_size=None), encoded, step=1) == PAYLOAD


def test_deflate_raw_that_looks_like_zlib_header() -> None:
    # A raw stream starting with a non-final stored block of length 1 whose
    # padding bits are set: its first two bytes, 0x78 0x01, are also a valid
    # zlib header, and only decoding reveals that it is raw deflate.
    encoded = bytes([0x78, 0x01, 0x00, 0xFE, 0xFF]) + b"A" + raw_deflate(b"rest")
    with pytest.raises(zlib.error):
        zlib.decompress(encoded)
    assert decode_all(make_decoder("deflate", max_size=None), encoded) == b"Arest"


def test_deflate_one_byte_body_is_an_error() -> None:
    decoder = make_decoder("deflate", max_size=None)
    assert decoder.decode(b"x") == b""
    with pytest.raises(DecodingError):
        decoder.flush()


def test_gzip_concatenated_members() -> None:
    encoded = gzip.compress(b"first ") + gzip.compress(b"second ") + gzip.compress(b"third")
    assert decode_all(make_decoder("gzip", max_size=None), encoded) == b"first second third"
    decoded = decode_all(make_decoder("gzip", max_size=None), encoded, step=1)
    assert decoded == b"first second third"


def test_gzip_trailing_padding_is_ignored() -> None:
    encoded = gzip.compress(b"body") + b"\0" * 10
    assert decode_all(make_decoder("gzip", max_size=None), encoded) == b"body"
    assert decode_all(make_decoder("gzip", max_size=None), encoded, step=3) == b"body"


def test_zstd_multiple_frames() -> None:
    encoded = zstd(b"one ") + zstd(b"two ") + zstd(b"three")
    assert decode_all(make_decoder("zstd", max_size=None), encoded) == b"one two three"
    assert decode_all(make_decoder("zstd", max_size=None), encoded, step=1) == b"one two three"


def test_multiple_codings_decoded_in_reverse_order() -> None:
    encoded = brotli.compress(gzip.compress(PAYLOAD))
    assert decode_all(make_decoder("gzip, br", max_size=None), encoded) == PAYLOAD
    encoded = zlib.compress(zstd(gzip.compress(PAYLOAD)))
    decoder = make_decoder("gzip, identity, zstd,deflate", max_size=None)
    assert decode_all(decoder, encoded, step=777) == PAYLOAD


@pytest.mark.parametrize("value", [None, "", "identity", "IDENTITY", " , "])
def test_identity_passes_through(value: str | None) -> None:
    decoder = make_decoder(value, max_size=1)
    assert type(decoder) is ContentDecoder
    assert decoder.decode(b"not limited by max_size") == b"not limited by max_size"
    assert decoder.flush() == b""


def test_unknown_coding_passes_through() -> None:
    assert decode_all(make_decoder("compress", max_size=None), b"\x1f\x9dxyz") == b"\x1f\x9dxyz"
    # gzip was applied before the unknown coding: it cannot be undone either.
    data = b"opaque"
    assert decode_all(make_decoder("gzip, foo", max_size=None), data) == data
    # The unknown coding was applied first: the gzip layer on top is removed.
    encoded = gzip.compress(b"foo-coded")
    assert decode_all(make_decoder("foo, gzip", max_size=None), encoded) == b"foo-coded"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_corrupt_data_raises_decoding_error(coding: str) -> None:
    decoder = make_decoder(coding, max_size=None)
    with pytest.raises(DecodingError) as info:
        decode_all(decoder, b"this is not compressed data at all" * 10)
    assert info.value.__cause__ is not None


def test_corrupt_gzip_in_the_middle() -> None:
    encoded = bytearray(gzip.compress(PAYLOAD))
    encoded[len(encoded) // 2 : len(encoded) // 2 + 20] = b"\xff" * 20
    with pytest.raises(DecodingError):
        decode_all(make_decoder("gzip", max_size=None), bytes(encoded), step=1000)


def test_negative_max_size_rejected() -> None:
    with pytest.raises(ValueError):
        make_decoder("gzip", max_size=-1)


# --- size limit and decompression bombs --------------------------------------


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_limit_exact_size_allowed(coding: str) -> None:
    encoded = ENCODERS[coding](PAYLOAD)
    assert decode_all(make_decoder(coding, max_size=len(PAYLOAD)), encoded) == PAYLOAD
    with pytest.raises(DecodingError, match=f"decoded body exceeds {len(PAYLOAD) - 1} bytes"):
        decode_all(make_decoder(coding, max_size=len(PAYLOAD) - 1), encoded)


BOMB_SIZE = 100 * 1024 * 1024
LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zeros = b"\0" * BOMB_SIZE
    bombs = {
        "gzip": gzip.compress(zeros, compresslevel=9),
        "deflate": zlib.compress(zeros, 9),
        "br": brotli.compress(zeros, quality=5),
        "zstd": zstandard.ZstdCompressor(level=3).compress(zeros),
    }
    bombs["deflate-raw"] = raw_deflate(zeros)
    bombs["gzip, br"] = brotli.compress(bombs["gzip"])
    return bombs


@pytest.mark.parametrize("coding", ["gzip", "deflate", "deflate-raw", "br", "zstd", "gzip, br"])
@pytest.mark.parametrize("step", [None, 4096])
def test_decompression_bomb_stops_early(
    bombs: dict[str, bytes], coding: str, step: int | None
) -> None:
    encoded = bombs[coding]
    assert len(encoded) < 200 * 1024
    decoder = make_decoder(coding.replace("-raw", ""), max_size=LIMIT)
    produced = 0
    largest = 0
    started = time.monotonic()
    with pytest.raises(DecodingError, match=f"decoded body exceeds {LIMIT} bytes"):
        for i in range(0, len(encoded), step or len(encoded)):
            out = decoder.decode(encoded[i : i + (step or len(encoded))])
            produced += len(out)
            largest = max(largest, len(out))
        decoder.flush()
    assert produced <= LIMIT
    assert largest <= LIMIT + CHUNK_SIZE
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, br"])
def test_bomb_memory_stays_low(bombs: dict[str, bytes], coding: str) -> None:
    import tracemalloc

    decoder = make_decoder(coding, max_size=LIMIT)
    tracemalloc.start()
    try:
        with pytest.raises(DecodingError):
            decoder.decode(bombs[coding])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT


def test_nested_bomb_limits_intermediate_data() -> None:
    # The br layer expands to a tiny gzip member followed by 64 MiB of
    # padding that the gzip layer ignores: the final body is one byte, the
    # intermediate data is bounded all the same.
    inner = gzip.compress(b"x") + b"\0" * (64 * 1024 * 1024)
    encoded = brotli.compress(inner, quality=5)
    assert decode_all(make_decoder("gzip, br", max_size=None), encoded) == b"x"
    with pytest.raises(DecodingError, match="exceeds"):
        decode_all(make_decoder("gzip, br", max_size=LIMIT), encoded)


def test_limit_counts_across_calls() -> None:
    encoded = gzip.compress(b"a" * 1000)
    decoder = make_decoder("gzip", max_size=999)
    with pytest.raises(DecodingError):
        for i in range(0, len(encoded), 2):
            decoder.decode(encoded[i : i + 2])
        decoder.flush()


# --- optional libraries ------------------------------------------------------


def block_import(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__
    real_import_module = importlib.import_module

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    def fake_import_module(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(importlib, "import_module", fake_import_module)


def test_missing_brotli_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    block_import(monkeypatch, "brotli", "brotlicffi")
    with pytest.raises(DecodingError, match=r"webwire\[brotli\]"):
        make_decoder("br", max_size=None)
    # Other codings keep working.
    assert decode_all(make_decoder("gzip", max_size=None), gzip.compress(b"x")) == b"x"


def test_missing_zstandard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    block_import(monkeypatch, "zstandard")
    with pytest.raises(DecodingError, match=r"webwire\[zstd\]"):
        make_decoder("zstd", max_size=None)


def test_accept_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    accept_encoding.cache_clear()
    try:
        assert accept_encoding() == "gzip, deflate, br, zstd"
        accept_encoding.cache_clear()
        block_import(monkeypatch, "brotli", "brotlicffi", "zstandard")
        assert accept_encoding() == "gzip, deflate"
        monkeypatch.undo()
        # Cached: the result does not change when the imports come back.
        assert accept_encoding() == "gzip, deflate"
    finally:
        accept_encoding.cache_clear()
    assert accept_encoding() == "gzip, deflate, br, zstd"


def test_brotli_without_output_limit_support(monkeypatch: pytest.MonkeyPatch) -> None:
    class OldDecompressor:
        def __init__(self) -> None:
            self._inner = brotli.Decompressor()

        def process(self, data: bytes) -> bytes:
            return bytes(self._inner.process(data))

        def is_finished(self) -> bool:
            return bool(self._inner.is_finished())

    class OldBrotli:
        Decompressor = OldDecompressor

    monkeypatch.setattr(_decoders, "_try_import", lambda *names: OldBrotli)
    encoded = brotli.compress(PAYLOAD)
    assert decode_all(make_decoder("br", max_size=None), encoded, step=100) == PAYLOAD
    with pytest.raises(DecodingError, match="exceeds 100 bytes"):
        decode_all(make_decoder("br", max_size=100), encoded)


# --- text --------------------------------------------------------------------


def test_text_decoder_split_multibyte_character() -> None:
    data = "naïve — 日本語 🎉".encode()
    decoder = TextDecoder("utf-8")
    text = "".join(decoder.decode(data[i : i + 1]) for i in range(len(data)))
    assert text + decoder.flush() == "naïve — 日本語 🎉"


def test_text_decoder_replaces_invalid_bytes() -> None:
    decoder = TextDecoder()
    assert decoder.decode(b"ok\xff") == "ok\ufffd"
    assert decoder.decode(b"\xe6\x97") == ""
    assert decoder.flush() == "\ufffd"


def test_text_decoder_other_codecs() -> None:
    assert TextDecoder("iso-8859-1").decode(b"caf\xe9") == "café"
    data = "héllo".encode("utf-16")
    decoder = TextDecoder("utf-16")
    assert "".join(decoder.decode(data[i : i + 1]) for i in range(len(data))) == "héllo"


def test_text_decoder_unknown_encoding() -> None:
    with pytest.raises(DecodingError, match="no-such-codec"):
        TextDecoder("no-such-codec")
    with pytest.raises(DecodingError, match="not a text encoding"):
        TextDecoder("base64")


def feed_lines(chunks: list[str]) -> list[str]:
    decoder = LineDecoder()
    lines: list[str] = []
    for chunk in chunks:
        lines.extend(decoder.decode(chunk))
    return lines + decoder.flush()


@pytest.mark.parametrize(
    "text",
    [
        "a\nb\r\nc\rd",
        "a\n\nb\n",
        "\r\n\r\n",
        "\r\r\n\n",
        "one line",
        "x\r",
        "",
        "trailing\r\n",
        "mixed\r\n\rlines\n\r\n end",
    ],
)
def test_line_decoder_matches_splitlines_for_every_split(text: str) -> None:
    expected = text.splitlines()
    assert feed_lines([text]) == expected
    assert feed_lines(list(text)) == expected
    for cut in range(len(text) + 1):
        assert feed_lines([text[:cut], text[cut:]]) == expected, cut


def test_line_decoder_crlf_split_across_chunks() -> None:
    decoder = LineDecoder()
    assert decoder.decode("first\r") == ["first"]
    assert decoder.decode("\nsecond\r") == ["second"]
    assert decoder.decode("\r") == [""]
    assert decoder.decode("third") == []
    assert decoder.flush() == ["third"]
    assert decoder.flush() == []


def test_line_decoder_only_http_line_endings() -> None:
    assert feed_lines(["a\x0bb\x0cc\u2028d\x85e\n"]) == ["a\x0bb\x0cc\u2028d\x85e"]


def test_line_decoder_long_line_in_many_pieces() -> None:
    assert feed_lines(["ab"] * 1000 + ["\n"]) == ["ab" * 1000]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/html; charset=ISO-8859-1", "iso-8859-1"),
        ("text/html;charset=utf-8", "utf-8"),
        ('text/plain; format=flowed; CHARSET="UTF-8"', "utf-8"),
        ('text/plain; name="a;charset=latin-1"; charset=koi8-r', "koi8-r"),
        ("text/plain; charset = ' windows-1252 '", None),
        ("text/plain; charset=windows-1252 ", "windows-1252"),
        ("text/plain; charset=no-such-charset", None),
        ("text/plain; charset=base64", None),
        ("text/plain; charset=rot13", None),
        ("text/plain; charset=", None),
        ('text/plain; charset=""', None),
        ("text/plain", None),
        ("charset=utf-8", None),
        ("", None),
        (None, None),
    ],
)
def test_charset_from_content_type(value: str | None, expected: str | None) -> None:
    assert charset_from_content_type(value) == expected


def test_guess_encoding() -> None:
    assert guess_encoding(b"") == "utf-8"
    assert guess_encoding(b"plain ascii") == "utf-8"
    assert guess_encoding("日本語のテキスト".encode()) == "utf-8"
    text = "Привет, как дела? Это длинный русский текст для проверки кодировки. " * 20
    guessed = guess_encoding(text.encode("cp1251"))
    assert guessed != "utf-8"
    assert text.encode("cp1251").decode(guessed) == text


def test_guess_encoding_falls_back_to_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    import charset_normalizer

    class NoMatch:
        def best(self) -> None:
            return None

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda content: NoMatch())
    assert guess_encoding(b"\xff\xfe\xfd") == "utf-8"
