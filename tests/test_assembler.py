"""MessageAssembler on its own: data frames in, messages out (RFC 6455 §5.4,
§5.6; RFC 7692 §6).  Runs on both codecs (its UTF-8 validator is the
codec's); Connection's tests cover it through the connection."""

from __future__ import annotations

import zlib
from types import ModuleType
from typing import Any

import pytest
from conftest import layer

from fastframe.deflate import DeflateParams, PerMessageDeflate
from fastframe.exceptions import InvalidUTF8, PayloadTooBig, ProtocolError
from fastframe.protocol import Fragment, Message

CONT, TEXT, BINARY = 0, 1, 2


@pytest.fixture(autouse=True)
def codec(protocol_codec: ModuleType) -> ModuleType:
    """Every test here runs on the compiled core and on the pure twin."""
    return protocol_codec


def assembler(**kw: Any) -> Any:
    return layer("_protocol").MessageAssembler(**kw)


def feed(a: Any, *frames: tuple[int, bytes, bool] | tuple[int, bytes, bool, bool]) -> list[Any]:
    """(opcode, payload, fin[, rsv1]) frames in; the events out."""
    events: list[Any] = []
    for f in frames:
        op, payload, fin = f[:3]
        a.frame(op, payload, fin, len(f) == 4 and bool(f[3]), events)
    return events


# -- whole messages: the whole-message rule -------------------------------------------


def test_a_final_frame_with_no_message_open_is_a_whole_message() -> None:
    a = assembler()
    assert feed(a, (TEXT, "héllo".encode(), True), (BINARY, b"\x00\xff", True)) == [
        Message("héllo"), Message(b"\x00\xff")]
    assert a.op == -1


def test_a_whole_text_message_that_is_not_utf8_fails_1007() -> None:
    with pytest.raises(InvalidUTF8) as info:
        feed(assembler(), (TEXT, b"ok \xff", True))
    assert info.value.close_code == 1007


def test_a_whole_message_is_left_to_the_parser_s_limit() -> None:
    # The connection's frame parser keeps uncompressed frames within the
    # limit; the assembler counts only what it assembles.
    assert feed(assembler(max_size=2), (BINARY, b"abc", True)) == [Message(b"abc")]


# -- fragments (§5.4) --------------------------------------------------------------


def test_fragments_make_one_message() -> None:
    a = assembler()
    assert feed(a, (TEXT, b"he", False)) == []
    assert a.op == TEXT
    assert feed(a, (CONT, b"ll", False), (CONT, b"o", True)) == [Message("hello")]
    assert a.op == -1
    assert feed(a, (BINARY, b"", False), (CONT, b"", True)) == [Message(b"")]


def test_a_character_split_between_fragments() -> None:
    raw = "€uro".encode()
    assert feed(assembler(), (TEXT, raw[:1], False), (CONT, raw[1:2], False), (CONT, raw[2:], True)) == [
        Message("€uro")]


@pytest.mark.parametrize(
    "frames, message",
    [
        ([(CONT, b"x", True)], "continuation frame without a message to continue"),
        ([(TEXT, b"a", False), (TEXT, b"b", True)], "new message started before the previous one finished"),
        ([(BINARY, b"a", False), (BINARY, b"b", False)], "new message started before the previous one finished"),
        ([(TEXT, b"", False, True), (CONT, b"", True, True)], "RSV1 set on a continuation frame"),
    ],
)
def test_frames_out_of_order_fail_1002(frames: list[Any], message: str) -> None:
    deflate = PerMessageDeflate(DeflateParams(), client=False)
    with pytest.raises(ProtocolError) as info:
        feed(assembler(deflate=deflate), *frames)
    assert type(info.value) is ProtocolError and info.value.close_code == 1002
    assert str(info.value) == message


def test_clear_drops_the_open_message() -> None:
    a = assembler()
    feed(a, (TEXT, b"half", False))
    a.clear()
    assert a.op == -1
    assert feed(a, (TEXT, b"new", True)) == [Message("new")]


# -- the size budget ----------------------------------------------------------------


@pytest.mark.parametrize("fragments", [False, True])
def test_the_budget_counts_the_whole_message(fragments: bool) -> None:
    a = assembler(max_size=10, deliver_fragments=fragments)
    feed(a, (BINARY, b"12345", False), (CONT, b"6789", False))
    with pytest.raises(PayloadTooBig) as info:
        feed(a, (CONT, b"ab", True))  # the byte that passes 10 fails it
    assert info.value.close_code == 1009


def test_the_budget_admits_a_message_of_exactly_the_limit() -> None:
    a = assembler(max_size=10)
    assert feed(a, (BINARY, b"12345", False), (CONT, b"67890", True)) == [Message(b"1234567890")]
    # and starts again with the next message
    assert feed(a, (BINARY, b"1234567890", False), (CONT, b"", True)) == [Message(b"1234567890")]


def test_many_tiny_fragments_cost_their_bytes() -> None:
    a = assembler(max_size=1000)
    events = feed(a, (BINARY, b"", False), *[(CONT, b"x", False)] * 1000, (CONT, b"", True))
    assert events == [Message(b"x" * 1000)]
    with pytest.raises(PayloadTooBig):
        feed(a, (BINARY, b"", False), *[(CONT, b"x", False)] * 1001)


def test_no_limit() -> None:
    assert feed(assembler(max_size=None), (BINARY, b"a" * 5000, False), (CONT, b"b", True)) == [
        Message(b"a" * 5000 + b"b")]


# -- UTF-8: fail fast (§8.1) -----------------------------------------------------------


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90"])
@pytest.mark.parametrize("fragments", [False, True])
def test_invalid_utf8_fails_at_the_fragment_that_brings_it(bad: bytes, fragments: bool) -> None:
    a = assembler(deliver_fragments=fragments)
    feed(a, (TEXT, b"fine ", False))
    with pytest.raises(InvalidUTF8) as info:
        feed(a, (CONT, bad, False))  # not final: no need to wait for the end
    assert info.value.close_code == 1007


def test_a_character_cut_short_by_the_last_fragment_fails() -> None:
    a = assembler()
    feed(a, (TEXT, b"\xe2\x82", False))
    with pytest.raises(InvalidUTF8):
        feed(a, (CONT, b"", True))


def test_binary_is_not_validated() -> None:
    assert feed(assembler(), (BINARY, b"\xff", False), (CONT, b"\xfe", True)) == [Message(b"\xff\xfe")]


def test_utf8_checked_leaves_uncompressed_text_to_the_parser() -> None:
    # The connection's parser (check_utf8) validated the text as it came:
    # fragments go out as they are, with no second pass here.
    a = assembler(utf8_checked=True, deliver_fragments=True)
    raw = "κόσμε".encode()
    assert feed(a, (TEXT, raw[:3], False), (CONT, raw[3:], True)) == [
        Fragment(raw[:3], True, False, True), Fragment(raw[3:], False, True, True)]
    assert a._utf8 is None


def test_utf8_checked_still_decodes_the_whole_message() -> None:
    # Were it claimed wrongly, text that is not UTF-8 still fails 1007 (never
    # a UnicodeDecodeError) when the message is made.
    a = assembler(utf8_checked=True)
    feed(a, (TEXT, b"ok \xff", False))
    with pytest.raises(InvalidUTF8) as info:
        feed(a, (CONT, b"", True))
    assert info.value.close_code == 1007
    with pytest.raises(InvalidUTF8):
        feed(assembler(utf8_checked=True), (TEXT, b"\xc3", True))


# -- deliver_fragments ---------------------------------------------------------------


def test_fragments_are_handed_over_as_they_come() -> None:
    a = assembler(deliver_fragments=True)
    raw = "a€b".encode()
    assert feed(a, (TEXT, raw[:2], False), (CONT, raw[2:], False), (CONT, b"", True)) == [
        Fragment(raw[:2], True, False, True), Fragment(raw[2:], False, False, True), Fragment(b"", False, True, True)]
    assert a.op == -1 and a._buf == b""  # nothing held
    # A whole message is still one Message.
    assert feed(a, (BINARY, b"x", True)) == [Message(b"x")]
    assert feed(a, (BINARY, b"y", False), (CONT, b"z", True)) == [
        Fragment(b"y", True, False, False), Fragment(b"z", False, True, False)]


# -- permessage-deflate (RFC 7692 §6.2) ------------------------------------------------


def compress(data: bytes) -> bytes:
    """One message compressed as a peer sends it: the tail of the sync flush
    left off (RFC 7692 §7.2.1)."""
    z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    body = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    return body[:-4]


def inflating(**kw: Any) -> Any:
    return assembler(deflate=PerMessageDeflate(DeflateParams(), client=False), **kw)


@pytest.mark.parametrize("checked", [False, True])
def test_inflated_text_is_validated_as_it_comes(checked: bool) -> None:
    # The parser cannot read compressed text: the assembler validates it
    # once inflated, utf8_checked or not, and fails at the fragment.
    a = inflating(utf8_checked=checked, deliver_fragments=True)
    body = compress(b"fine " + b"\xed\xa0\x80" + b"x" * 50)
    feed(a, (TEXT, body[:0], False, True))
    with pytest.raises(InvalidUTF8):
        feed(a, (CONT, body, False))


def test_a_compressed_message_in_one_frame() -> None:
    a = inflating()
    assert feed(a, (TEXT, compress("héllo".encode()), True, True)) == [Message("héllo")]
    assert a.op == -1


@pytest.mark.parametrize("fragments", [False, True])
def test_a_compressed_message_in_fragments(fragments: bool) -> None:
    data = b"compressed in pieces " * 100
    body = compress(data)
    a = inflating(deliver_fragments=fragments)
    third = len(body) // 3
    events = feed(a, (BINARY, body[:third], False, True), (CONT, body[third:2 * third], False),
                  (CONT, body[2 * third:], True))
    if fragments:
        assert all(type(e) is Fragment for e in events) and events[-1].last
        assert b"".join(e.data for e in events) == data
    else:
        assert events == [Message(data)]


def test_the_budget_counts_inflated_bytes() -> None:
    body = compress(b"a" * 10001)  # a few dozen bytes on the wire
    assert feed(inflating(max_size=10001), (BINARY, body, True, True)) == [Message(b"a" * 10001)]
    with pytest.raises(PayloadTooBig):
        feed(inflating(max_size=10000), (BINARY, body, True, True))


def test_compressed_text_is_validated_after_inflating() -> None:
    with pytest.raises(InvalidUTF8):
        feed(inflating(), (TEXT, compress(b"ok \xff"), True, True))


def test_data_that_does_not_inflate_fails_1002() -> None:
    with pytest.raises(ProtocolError) as info:
        feed(inflating(), (BINARY, b"\xff\xff\xff\xff", True, True))
    assert info.value.close_code == 1002


# -- in the connection ----------------------------------------------------------------


def test_the_connection_s_settings_are_its_assembler_s() -> None:
    from fastframe import encode_frame
    from fastframe.protocol import Closed, Connection

    c = Connection(handshake=False, max_message_size=10, deliver_fragments=True)
    assert (c.max_message_size, c.deliver_fragments) == (10, True)
    c.max_message_size, c.deliver_fragments = 5, False  # read when a message is assembled
    key = b"\x01\x02\x03\x04"
    events = c.receive_data(encode_frame(BINARY, b"123", fin=False, mask=key) + encode_frame(CONT, b"456", mask=key))
    assert isinstance(events[-1], Closed) and events[-1].code == 1009
