"""RFC 6455 §5.3: client-to-server masking."""

from __future__ import annotations

import array
from types import ModuleType

import pytest


def reference_mask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


KEY = b"\x37\xfa\x21\x3d"
SIZES = list(range(80)) + [125, 126, 127, 255, 256, 1023, 1024, 4095, 65535, 65536, 100003]


@pytest.mark.parametrize("size", SIZES)
def test_apply_mask_matches_reference(impl: ModuleType, size: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    assert impl.apply_mask(data, KEY) == reference_mask(data, KEY)


@pytest.mark.parametrize("size", [0, 1, 5, 16, 63, 64, 65, 200, 4099])
def test_mask_inplace_matches_reference(impl: ModuleType, size: int) -> None:
    data = bytes((i * 13) & 0xFF for i in range(size))
    buf = bytearray(data)
    assert impl.mask_inplace(buf, KEY) is None
    assert bytes(buf) == reference_mask(data, KEY)


def test_mask_inplace_unaligned_slice(impl: ModuleType) -> None:
    buf = bytearray(range(256)) * 4
    view = memoryview(buf)[3:1000]
    expected = reference_mask(bytes(view), KEY)
    impl.mask_inplace(view, KEY)
    assert bytes(buf[3:1000]) == expected
    assert bytes(buf[:3]) == bytes(range(3))
    assert bytes(buf[1000:]) == (bytes(range(256)) * 4)[1000:]


def test_mask_is_an_involution(impl: ModuleType) -> None:
    data = b"The quick brown fox jumps over the lazy dog" * 9
    assert impl.apply_mask(impl.apply_mask(data, KEY), KEY) == data


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b)), lambda b: array.array("B", b)],
    ids=["bytes", "bytearray", "memoryview", "memoryview-rw", "array"],
)
def test_apply_mask_accepts_bytes_like(impl: ModuleType, wrap: object) -> None:
    data = bytes(range(100))
    assert impl.apply_mask(wrap(data), wrap(KEY)) == reference_mask(data, KEY)  # type: ignore[operator]


def test_apply_mask_non_contiguous_memoryview(impl: ModuleType) -> None:
    data = bytes(range(200))
    view = memoryview(data)[::2]
    assert impl.apply_mask(view, KEY) == reference_mask(data[::2], KEY)


def test_apply_mask_wrong_key_length(impl: ModuleType) -> None:
    for key in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError):
            impl.apply_mask(b"data", key)


def test_apply_mask_not_bytes(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.apply_mask("text", KEY)
    with pytest.raises(TypeError):
        impl.apply_mask(b"data", "abcd")


def test_mask_inplace_read_only(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.mask_inplace(b"read only", KEY)
    with pytest.raises(TypeError):
        impl.mask_inplace(memoryview(bytearray(8)).toreadonly(), KEY)


def test_mask_inplace_non_contiguous(impl: ModuleType) -> None:
    with pytest.raises(BufferError):
        impl.mask_inplace(memoryview(bytearray(16))[::2], KEY)
