"""UTF-8 validation (RFC 3629 §4, RFC 6455 §8.1): whole and incremental, fail-fast."""

from __future__ import annotations

from types import ModuleType

import pytest

from fastframe import InvalidUTF8

VALID = [
    b"",
    b"hello",
    "κόσμε".encode(),
    "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode(),
    "\ud7ff\ue000".encode(),
    b"a" * 1000 + "é".encode() + b"b" * 7,
    "😀 emoji ✓".encode() * 50,
]

INVALID = [
    b"\x80",  # lone continuation
    b"\xbf",
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\x80",  # overlong
    b"\xe0\x9f\xbf",  # overlong
    b"\xf0\x80\x80\x80",  # overlong
    b"\xf0\x8f\xbf\xbf",  # overlong
    b"\xed\xa0\x80",  # U+D800 surrogate
    b"\xed\xbf\xbf",  # U+DFFF surrogate
    b"\xf4\x90\x80\x80",  # U+110000
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"\xfe",
    b"\xc3",  # truncated
    b"\xe2\x82",  # truncated
    b"\xf0\x9f\x98",  # truncated
    b"abc\xc3(",  # bad continuation
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
]


@pytest.mark.parametrize("data", VALID)
def test_valid(impl: ModuleType, data: bytes) -> None:
    assert impl.validate_utf8(data) is True
    v = impl.Utf8Validator()
    v.feed(data, final=True)
    v = impl.Utf8Validator()
    for i in range(len(data)):
        v.feed(data[i : i + 1])
    v.feed(b"", final=True)


@pytest.mark.parametrize("data", INVALID)
def test_invalid(impl: ModuleType, data: bytes) -> None:
    assert impl.validate_utf8(data) is False
    with pytest.raises(InvalidUTF8):
        impl.Utf8Validator().feed(data, final=True)
    v = impl.Utf8Validator()
    with pytest.raises(InvalidUTF8) as info:
        for i in range(len(data)):
            v.feed(data[i : i + 1])
        v.feed(b"", final=True)
    assert info.value.close_code == 1007


def reference_prefix_ok(data: bytes) -> bool:
    """Is ``data`` a prefix of some valid UTF-8 string? (brute force)"""
    # A 2-byte prefix needs at most 2 more bytes to finish its code point.
    for tail_len in range(3):
        for tail in _tails(tail_len):
            try:
                (data + tail).decode("utf-8")
                return True
            except UnicodeDecodeError:
                pass
    return False


def _tails(n: int) -> list[bytes]:
    if n == 0:
        return [b""]
    conts = [bytes([b]) for b in (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)]
    return [c + t for c in conts for t in _tails(n - 1)]


def test_fail_fast_on_every_two_byte_prefix(impl: ModuleType) -> None:
    """The validator raises at the first byte that makes the input hopeless."""
    for b0 in range(0x80, 0x100):
        for b1 in range(0x100):
            data = bytes([b0, b1])
            v = impl.Utf8Validator()
            try:
                v.feed(data)
                ok = True
            except InvalidUTF8:
                ok = False
            assert ok == reference_prefix_ok(data), data


# Autobahn 6.4.x: the invalid byte arrives mid-message; it must fail there.
@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", b"\xf4\x90\x80\x80", b"edited"],
        [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", b"\x90", b"\x80\x80edited"],
    ],
)
def test_fail_fast_mid_message(impl: ModuleType, chunks: list[bytes]) -> None:
    v = impl.Utf8Validator()
    v.feed(chunks[0])
    with pytest.raises(InvalidUTF8):
        v.feed(chunks[1])
    with pytest.raises(InvalidUTF8):  # stays failed
        v.feed(b"a")


def test_truncated_only_fails_when_final(impl: ModuleType) -> None:
    v = impl.Utf8Validator()
    v.feed(b"abc\xe2\x82")
    with pytest.raises(InvalidUTF8):
        v.feed(b"", final=True)


def test_reset(impl: ModuleType) -> None:
    v = impl.Utf8Validator()
    with pytest.raises(InvalidUTF8):
        v.feed(b"\xff")
    v.reset()
    v.feed(b"ok", final=True)


def test_bytes_like(impl: ModuleType) -> None:
    data = "naïve".encode()
    for wrapped in (bytearray(data), memoryview(data), memoryview(b"x" + data)[1:]):
        assert impl.validate_utf8(wrapped)
        impl.Utf8Validator().feed(wrapped, final=True)
    with pytest.raises(TypeError):
        impl.validate_utf8("str")
