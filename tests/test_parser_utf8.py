"""RFC 6455 §8.1 in the parser: ``FrameParser(check_utf8=True)`` fails at the
first invalid byte of a text message as it arrives (Autobahn 6.4.x).

Every vector is fed whole, byte by byte, with trailing bytes and split in
two at every point, on both implementations; the call that brings the first
invalid byte must raise InvalidUTF8 (1007), no call before it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from test_parser import astuple, feed_all_ways
from test_utf8 import INVALID, VALID

from fastframe import InvalidUTF8, ProtocolError

KEY = b"\x37\xfa\x21\x3d"


def prefix_ok(data: bytes) -> bool:
    """Is ``data`` the start of some valid UTF-8 string?  (By brute force:
    a character is at most 4 bytes, so at most 3 are owed.)"""
    tails = [b""]
    for _ in range(4):
        for tail in tails:
            try:
                (data + tail).decode("utf-8")
                return True
            except UnicodeDecodeError:
                pass
        tails = [t + bytes([c]) for t in tails for c in (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)]
    return False


def first_bad(text: bytes) -> int | None:
    """Index of the byte of ``text`` that makes it hopeless, or None when
    every prefix is valid (the text is valid, or ends inside a character)."""
    for i in range(len(text)):
        if not prefix_ok(text[: i + 1]):
            return i
    return None


def message(text: bytes, sizes: list[int], masked: bool = True) -> tuple[bytes, list[int], list[int]]:
    """``text`` as one text message of fragments of the given sizes (the
    last takes the rest): the stream, the stream offset of each text byte,
    and the offset of each frame's last byte."""
    stream = b""
    offsets: list[int] = []
    ends: list[int] = []
    pos = 0
    pieces = []
    for size in sizes:
        pieces.append(text[pos : pos + size])
        pos += size
    pieces.append(text[pos:])
    for i, piece in enumerate(pieces):
        frame = encode(1 if i == 0 else 0, piece, i == len(pieces) - 1, masked)
        head = len(frame) - len(piece)
        offsets += range(len(stream) + head, len(stream) + len(frame))
        stream += frame
        ends.append(len(stream) - 1)
    return stream, offsets, ends


def encode(op: int, payload: bytes, fin: bool, masked: bool) -> bytes:
    from fastframe import _codec_py

    return _codec_py.encode_frame(op, payload, fin=fin, mask=KEY if masked else None)


def expected_failure(text: bytes, offsets: list[int], ends: list[int]) -> int | None:
    """Stream offset of the byte whose call must raise, or None."""
    bad = first_bad(text)
    if bad is not None:
        return offsets[bad]
    try:
        text.decode("utf-8")
        return None
    except UnicodeDecodeError:
        return ends[-1]  # cut short: at the end of the last frame


def parser(impl: ModuleType, masked: bool = True, **kw: Any) -> Any:
    return impl.FrameParser(expect_mask=masked, check_utf8=True, **kw)


# Fragment sizes for a text of n bytes (the last fragment takes the rest).
SHAPES = {
    "one frame": lambda n: [],
    "two fragments": lambda n: [2],
    "three fragments": lambda n: [1, 3],
    "a fragment per byte": lambda n: [1] * max(n - 1, 0),
    "empty fragments": lambda n: [0, 0, 2, 0],
}


# -- valid text ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("text", VALID)
def test_valid_text_is_framed_as_without_the_check(impl: ModuleType, text: bytes, shape: str,
                                                   masked: bool) -> None:
    stream, _, _ = message(text, SHAPES[shape](len(text)), masked)
    checked = feed_all_ways(impl, stream, expect_mask=masked, check_utf8=True)
    assert checked == feed_all_ways(impl, stream, expect_mask=masked)
    assert b"".join(f[1] for f in checked) == text
    for cut in range(len(stream) + 1):
        p = parser(impl, masked)
        assert [astuple(f) for f in p.feed(stream[:cut]) + p.feed(stream[cut:])] == checked


# -- invalid text: the call that brings the first invalid byte raises ------------------------


def outcome(impl: ModuleType, chunks: list[bytes], masked: bool) -> tuple[int | None, list[Any]]:
    """Feed the chunks: the index of the chunk that raised InvalidUTF8 (None:
    none did), and every frame returned or attached to the exception."""
    p = parser(impl, masked)
    frames: list[Any] = []
    for i, chunk in enumerate(chunks):
        try:
            frames += p.feed(chunk)
        except InvalidUTF8 as exc:
            assert exc.close_code == 1007
            frames += exc.frames
            assert p.failed
            with pytest.raises(InvalidUTF8):  # stays failed
                p.feed(b"\x81\x80" + KEY)
            return i, [astuple(f) for f in frames]
    return None, [astuple(f) for f in frames]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("text", INVALID + [b"ok\xc3", "κόσμε".encode() + b"\xed\xa0\x80edited"])
def test_invalid_text_fails_in_the_call_that_brings_the_bad_byte(
    impl: ModuleType, text: bytes, shape: str, masked: bool
) -> None:
    stream, offsets, ends = message(text, SHAPES[shape](len(text)), masked)
    plain = [astuple(f) for f in impl.FrameParser(expect_mask=masked).feed(stream)]
    bad = expected_failure(text, offsets, ends)
    assert bad is not None

    def check(chunks: list[bytes]) -> None:
        failed, frames = outcome(impl, chunks, masked)
        starts = [sum(map(len, chunks[:i])) for i in range(len(chunks))]
        if len(plain) == 1 and any(s <= offsets[0] and s + len(c) >= len(stream)
                                   for s, c in zip(starts, chunks)):
            # A one-frame message whose payload comes in one call is left to
            # decoding, which fails in that same call.
            assert failed is None and frames == plain
            return
        assert failed == max(i for i, s in enumerate(starts) if s <= bad)
        # The frames completed before the bad byte are returned or attached.
        assert frames == [f for f, end in zip(plain, ends) if end < bad]

    check([stream])
    check([stream + b"\x81"])  # the start of a next frame
    check([stream[i : i + 1] for i in range(len(stream))])
    for cut in range(1, len(stream)):
        check([stream[:cut], stream[cut:]])


# -- the Autobahn 6.4.x shapes -------------------------------------------------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"


@pytest.mark.parametrize(
    "chops",
    [
        [KOSME, b"\xf4\x90\x80\x80", b"edited"],  # 6.4.3: the bad sequence in the second chop
        [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"],  # 6.4.4: one bad byte in the second chop
    ],
)
@pytest.mark.parametrize("masked", [True, False])
def test_a_chopped_frame_fails_at_the_chop_with_the_bad_byte(
    impl: ModuleType, chops: list[bytes], masked: bool
) -> None:
    frame = encode(1, b"".join(chops), True, masked)
    head = len(frame) - len(b"".join(chops))
    p = parser(impl, masked)
    assert p.feed(frame[: head + len(chops[0])]) == []
    assert p.in_frame
    with pytest.raises(InvalidUTF8) as info:
        p.feed(frame[head + len(chops[0]) : head + len(chops[0]) + len(chops[1])])
    assert info.value.frames == []
    with pytest.raises(InvalidUTF8):
        p.feed(chops[2])


@pytest.mark.parametrize(
    "fragments",
    [
        [KOSME, b"\xf4\x90\x80\x80", b"edited"],  # 6.4.1
        [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"],  # 6.4.2
    ],
)
def test_a_fragment_with_the_bad_byte_fails_with_the_fragments_before(
    impl: ModuleType, fragments: list[bytes]
) -> None:
    frames = [encode(1 if i == 0 else 0, f, i == 2, True) for i, f in enumerate(fragments)]
    p = parser(impl)
    with pytest.raises(InvalidUTF8) as info:
        p.feed(b"".join(frames))
    assert [astuple(f) for f in info.value.frames] == [(1, fragments[0], False, False, False, False)]
    # Fed one fragment at a time, the first is returned and the second fails.
    p = parser(impl)
    assert len(p.feed(frames[0])) == 1
    with pytest.raises(InvalidUTF8) as info:
        p.feed(frames[1])
    assert info.value.frames == []


# -- what is not checked -----------------------------------------------------------------


def test_off_by_default(impl: ModuleType) -> None:
    p = impl.FrameParser(expect_mask=True)
    assert p.check_utf8 is False
    frame = encode(1, b"ab\xff", False, True)
    assert p.feed(frame[:-1]) == []
    assert [astuple(f) for f in p.feed(frame[-1:])] == [(1, b"ab\xff", False, False, False, False)]
    assert parser(impl).check_utf8 is True


def test_binary_and_control_frames_are_not_checked(impl: ModuleType) -> None:
    stream = (encode(2, b"\xff\xfe", False, True) + encode(9, b"\xff", True, True)
              + encode(0, b"\xc0", True, True) + encode(10, b"\xed\xa0\x80", True, True))
    assert len(feed_all_ways(impl, stream, expect_mask=True, check_utf8=True)) == 4


def test_control_frames_between_fragments_keep_the_text_state(impl: ModuleType) -> None:
    raw = "€".encode()
    stream = (encode(1, raw[:1], False, True) + encode(9, b"\xff", True, True)
              + encode(0, raw[1:], True, True))
    assert len(feed_all_ways(impl, stream, expect_mask=True, check_utf8=True)) == 3
    bad = encode(1, raw[:1], False, True) + encode(9, b"", True, True) + encode(0, b"A", True, True)
    for chunks in ([bad], [bad[i : i + 1] for i in range(len(bad))]):
        assert outcome(impl, chunks, True)[0] is not None


def test_compressed_messages_are_left_to_the_assembler(impl: ModuleType) -> None:
    # RSV1: compressed (RFC 7692); the bytes are not text until inflated.
    stream = b"\x41\x83" + KEY + bytes(b ^ k for b, k in zip(b"\xff\xfe\xfd", KEY))
    stream += encode(0, b"\xff", True, True)
    assert len(feed_all_ways(impl, stream, expect_mask=True, allow_rsv1=True, check_utf8=True)) == 2


@pytest.mark.parametrize(
    "stream",
    [
        # A continuation with no message open (§5.4: the caller fails 1002).
        encode(0, b"ab\xff", True, True),
        # A new text message while one is open.
        encode(1, b"ok", False, True) + encode(1, b"\xc3\x28", True, True),
        # RSV1 on a continuation of a text message (RFC 7692 §6.1).
        encode(1, b"ok", False, True) + b"\xc0\x82" + KEY + bytes(b ^ k for b, k in zip(b"\xff\xfe", KEY)),
    ],
)
def test_frames_that_break_fragmentation_rules_are_left_to_the_caller(impl: ModuleType, stream: bytes) -> None:
    """They are the caller's to refuse with 1002, not 1007."""
    frames = feed_all_ways(impl, stream, expect_mask=True, allow_rsv1=True, check_utf8=True)
    assert frames == feed_all_ways(impl, stream, expect_mask=True, allow_rsv1=True)
    # After them, the next text message is checked again.
    p = parser(impl, allow_rsv1=True)
    p.feed(stream + encode(0, b"", True, True))
    with pytest.raises(InvalidUTF8):
        p.feed(encode(1, b"\xff", False, True))


def test_a_message_that_ends_inside_a_character_fails_at_its_last_frame(impl: ModuleType) -> None:
    p = parser(impl)
    assert len(p.feed(encode(1, b"ok\xe2\x82", False, True))) == 1
    assert p.feed(encode(9, b"", True, True))[0].opcode == 9  # not the end yet
    with pytest.raises(InvalidUTF8) as info:
        p.feed(encode(0, b"", True, True))
    assert "ends inside" in str(info.value)


def test_feed_messages_delivers_what_came_before_the_bad_byte(impl: ModuleType) -> None:
    got: list[Any] = []
    frame = encode(1, b"fine \xff", True, True)
    p = parser(impl)
    p.feed_messages(encode(2, b"bin", True, True) + frame[:-2], lambda a, m: got.append(m), None, None)
    assert got == [b"bin"]
    with pytest.raises(InvalidUTF8) as info:
        p.feed_messages(frame[-2:] + encode(2, b"after", True, True), lambda a, m: got.append(m), None, None)
    assert info.value.frames == [] and got == [b"bin"]
    # Whole in one read, a bad one-frame message stays a frame for the caller.
    p = parser(impl)
    rest = p.feed_messages(encode(2, b"bin", True, True) + frame, lambda a, m: got.append(m), None, None)
    assert [astuple(f) for f in rest] == [(1, b"fine \xff", True, False, False, False)]


def test_a_violation_still_wins_when_it_comes_first(impl: ModuleType) -> None:
    p = parser(impl)
    with pytest.raises(ProtocolError) as info:
        p.feed(b"\x8f\x80" + encode(1, b"\xff\xff", False, True))
    assert type(info.value) is ProtocolError
