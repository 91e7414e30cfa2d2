"""RFC 6455 §5.2 frame encoding: encode_frame and encode_header."""

from __future__ import annotations

import struct
from types import ModuleType

import pytest

from fastframe import LocalProtocolError, Opcode

KEY = b"\x37\xfa\x21\x3d"


# RFC 6455 §5.7 examples, byte for byte.
def test_server_encodes_rfc_unmasked_hello(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.TEXT, b"Hello") == b"\x81\x05Hello"


def test_client_encodes_rfc_masked_hello(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.TEXT, b"Hello", mask=KEY) == bytes.fromhex(
        "818537fa213d7f9f4d5158"
    )


def test_encodes_rfc_fragments(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.TEXT, b"Hel", fin=False) == b"\x01\x03Hel"
    assert impl.encode_frame(Opcode.CONTINUATION, b"lo") == b"\x80\x02lo"


def test_encodes_rfc_ping_and_pong(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.PING, b"Hello") == b"\x89\x05Hello"
    assert impl.encode_frame(Opcode.PONG, b"Hello", mask=KEY) == bytes.fromhex(
        "8a8537fa213d7f9f4d5158"
    )


@pytest.mark.parametrize(
    "size, header",
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (256, b"\x82\x7e\x01\x00"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f" + struct.pack("!Q", 65536)),
        (70000, b"\x82\x7f" + struct.pack("!Q", 70000)),
    ],
)
def test_length_uses_shortest_encoding(impl: ModuleType, size: int, header: bytes) -> None:
    payload = bytes(size)
    assert impl.encode_frame(Opcode.BINARY, payload) == header + payload
    assert impl.encode_header(Opcode.BINARY, size) == header
    masked = impl.encode_frame(Opcode.BINARY, payload, mask=KEY)
    assert masked[0] == header[0]
    assert masked[1] == header[1] | 0x80
    assert masked[2 : len(header)] == header[2:]
    assert masked[len(header) : len(header) + 4] == KEY
    assert masked[len(header) + 4 :] == impl.apply_mask(payload, KEY)


def test_rsv1_and_fin_bits(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.TEXT, b"", rsv1=True) == b"\xc1\x00"
    assert impl.encode_frame(Opcode.TEXT, b"", fin=False, rsv1=True) == b"\x41\x00"
    assert impl.encode_header(Opcode.TEXT, 3, fin=False, rsv1=True) == b"\x41\x03"
    assert impl.encode_frame(Opcode.BINARY, b"") == b"\x82\x00"


def test_opcode_as_plain_int(impl: ModuleType) -> None:
    assert impl.encode_frame(2, b"ab") == b"\x82\x02ab"


@pytest.mark.parametrize("payload", [bytearray(b"abc"), memoryview(b"abc"), memoryview(b"aXbXc")[::2]])
def test_payload_bytes_like(impl: ModuleType, payload: object) -> None:
    assert impl.encode_frame(Opcode.BINARY, payload) == b"\x82\x03abc"
    assert impl.encode_frame(Opcode.BINARY, payload, mask=KEY) == impl.encode_frame(
        Opcode.BINARY, b"abc", mask=KEY
    )


def test_mask_true_draws_fresh_keys(impl: ModuleType) -> None:
    keys = set()
    for _ in range(3000):  # crosses the 1024-key pool boundary
        frame = impl.encode_frame(Opcode.BINARY, b"payload", mask=True)
        assert frame[1] == 0x80 | 7
        key = frame[2:6]
        assert impl.apply_mask(frame[6:], key) == b"payload"
        keys.add(key)
    # 3000 draws of 32 random bits: a repeat is possible but a handful is not.
    assert len(keys) > 2990


def test_mask_false_means_unmasked(impl: ModuleType) -> None:
    assert impl.encode_frame(Opcode.TEXT, b"a", mask=False) == b"\x81\x01a"


# RFC 6455 §5.5: control frames are never fragmented and carry ≤ 125 bytes.
@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_control_frame_too_long_refused(impl: ModuleType, opcode: Opcode) -> None:
    assert impl.encode_frame(opcode, bytes(125))[1] == 125
    with pytest.raises(LocalProtocolError, match="125"):
        impl.encode_frame(opcode, bytes(126))
    with pytest.raises(LocalProtocolError, match="125"):
        impl.encode_header(opcode, 126)


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_control_frame_fragmented_refused(impl: ModuleType, opcode: Opcode) -> None:
    with pytest.raises(LocalProtocolError, match="fragmented"):
        impl.encode_frame(opcode, b"", fin=False)
    with pytest.raises(LocalProtocolError, match="fragmented"):
        impl.encode_header(opcode, 0, fin=False)


@pytest.mark.parametrize("opcode", [3, 7, 0xB, 0xF, 16, -1, 256])
def test_reserved_opcode_refused(impl: ModuleType, opcode: int) -> None:
    with pytest.raises(LocalProtocolError, match="opcode"):
        impl.encode_frame(opcode, b"")
    with pytest.raises(LocalProtocolError, match="opcode"):
        impl.encode_header(opcode, 0)


def test_bad_argument_types(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.encode_frame(Opcode.TEXT, "str is not bytes")
    with pytest.raises(TypeError):
        impl.encode_frame("1", b"")
    with pytest.raises(TypeError):
        impl.encode_header(Opcode.TEXT, "5")
    with pytest.raises(ValueError):
        impl.encode_header(Opcode.TEXT, -1)
    with pytest.raises(ValueError):
        impl.encode_frame(Opcode.TEXT, b"", mask=b"abc")


def test_header_plus_payload_equals_frame(impl: ModuleType) -> None:
    for size in (0, 10, 125, 126, 5000, 65535, 65536, 200000):
        payload = bytes(size)
        assert impl.encode_header(Opcode.BINARY, size) + payload == impl.encode_frame(
            Opcode.BINARY, payload
        )


def test_encode_header_large_length(impl: ModuleType) -> None:
    assert impl.encode_header(Opcode.BINARY, (1 << 63) - 1) == b"\x82\x7f" + b"\x7f" + b"\xff" * 7
    with pytest.raises(LocalProtocolError):
        impl.encode_header(Opcode.BINARY, 1 << 63)
