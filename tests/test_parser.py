"""RFC 6455 §5.1-§5.5: FrameParser, grouped by section.

Every vector is fed whole, byte by byte, and followed by trailing bytes (the
start of a next frame, which must stay buffered and not be returned).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from types import ModuleType
from typing import Any

import pytest

from fastframe import Opcode, PayloadTooBig, ProtocolError

KEY = b"\x37\xfa\x21\x3d"
T = tuple[Any, ...]


def astuple(f: Any) -> T:
    return (int(f.opcode), f.payload, f.fin, f.rsv1, f.rsv2, f.rsv3)


def feed_all_ways(impl: ModuleType, data: bytes, **kw: Any) -> list[T]:
    """Parse ``data`` whole, byte by byte and with trailing bytes; all must agree."""
    whole = impl.FrameParser(**kw).feed(data)
    p = impl.FrameParser(**kw)
    bytewise: list[Any] = []
    for i in range(len(data)):
        bytewise += p.feed(data[i : i + 1])
    # Trailing bytes: the first byte of another frame is kept, not returned.
    p = impl.FrameParser(**kw)
    trailing = p.feed(data + b"\x81")
    assert [astuple(f) for f in whole] == [astuple(f) for f in bytewise] == [
        astuple(f) for f in trailing
    ]
    for f in whole:
        assert type(f.payload) is bytes
    return [astuple(f) for f in whole]


def fail_all_ways(impl: ModuleType, data: bytes, exc: type, **kw: Any) -> None:
    """``data`` must raise ``exc`` whole, byte by byte, and with trailing bytes."""
    for tail in (b"", b"\x81\x80" + KEY, b"garbage" * 3):
        with pytest.raises(exc) as info:
            impl.FrameParser(**kw).feed(data + tail)
        assert type(info.value) is exc
    p = impl.FrameParser(**kw)
    with pytest.raises(exc):
        for i in range(len(data)):
            p.feed(data[i : i + 1])


# -- §5.7 examples -----------------------------------------------------------


def test_client_receives_rfc_unmasked_text(impl: ModuleType) -> None:
    assert feed_all_ways(impl, b"\x81\x05Hello", expect_mask=False) == [
        (1, b"Hello", True, False, False, False)
    ]


def test_server_receives_rfc_masked_text(impl: ModuleType) -> None:
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    assert feed_all_ways(impl, data, expect_mask=True) == [(1, b"Hello", True, False, False, False)]


def test_client_receives_rfc_fragments(impl: ModuleType) -> None:
    assert feed_all_ways(impl, b"\x01\x03Hel\x80\x02lo", expect_mask=False) == [
        (1, b"Hel", False, False, False, False),
        (0, b"lo", True, False, False, False),
    ]


def test_client_receives_rfc_ping(impl: ModuleType) -> None:
    assert feed_all_ways(impl, b"\x89\x05Hello", expect_mask=False) == [
        (9, b"Hello", True, False, False, False)
    ]


def test_server_receives_rfc_masked_pong(impl: ModuleType) -> None:
    data = bytes.fromhex("8a8537fa213d7f9f4d5158")
    assert feed_all_ways(impl, data, expect_mask=True) == [(10, b"Hello", True, False, False, False)]


def test_client_receives_rfc_256_bytes_binary(impl: ModuleType) -> None:
    payload = bytes(range(256))
    assert feed_all_ways(impl, b"\x82\x7e\x01\x00" + payload, expect_mask=False) == [
        (2, payload, True, False, False, False)
    ]


def test_client_receives_rfc_64k_binary(impl: ModuleType) -> None:
    payload = bytes(range(256)) * 256
    data = b"\x82\x7f" + struct.pack("!Q", 65536) + payload
    p = impl.FrameParser(expect_mask=False)
    assert [astuple(f) for f in p.feed(data)] == [(2, payload, True, False, False, False)]
    p = impl.FrameParser(expect_mask=False)
    out: list[Any] = []
    for i in range(0, len(data), 7):
        out += p.feed(data[i : i + 7])
    assert [astuple(f) for f in out] == [(2, payload, True, False, False, False)]


# -- §5.2 base framing ---------------------------------------------------------


def test_parser_returns_opcode_members(impl: ModuleType) -> None:
    frames = impl.FrameParser(expect_mask=False).feed(b"\x82\x00\x88\x00\x8a\x00")
    assert [f.opcode for f in frames] == [Opcode.BINARY, Opcode.CLOSE, Opcode.PONG]
    assert frames[0].opcode is Opcode.BINARY


def test_empty_payloads(impl: ModuleType) -> None:
    assert feed_all_ways(impl, b"\x81\x80" + KEY + b"\x82\x80" + KEY, expect_mask=True) == [
        (1, b"", True, False, False, False),
        (2, b"", True, False, False, False),
    ]


def test_non_minimal_length_accepted(impl: ModuleType) -> None:
    data = b"\x82\x7e\x00\x03abc" + b"\x82\x7f" + struct.pack("!Q", 2) + b"de"
    assert feed_all_ways(impl, data, expect_mask=False) == [
        (2, b"abc", True, False, False, False),
        (2, b"de", True, False, False, False),
    ]


def test_many_frames_in_one_chunk(impl: ModuleType) -> None:
    frames = b"".join(
        impl.encode_frame(Opcode.BINARY, bytes([i]) * i, mask=KEY) for i in range(200)
    )
    out = feed_all_ways(impl, frames, expect_mask=True)
    assert [f[1] for f in out] == [bytes([i]) * i for i in range(200)]


@pytest.mark.parametrize("op", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_is_protocol_error(impl: ModuleType, op: int) -> None:
    fail_all_ways(impl, bytes([0x80 | op, 0x80]) + KEY, ProtocolError, expect_mask=True)


@pytest.mark.parametrize("b0", [0xA1, 0x91, 0xB1, 0xF1, 0x92])
def test_rsv2_rsv3_always_protocol_error(impl: ModuleType, b0: int) -> None:
    fail_all_ways(impl, bytes([b0, 0x80]) + KEY, ProtocolError, expect_mask=True, allow_rsv1=True)


def test_rsv1_needs_extension(impl: ModuleType) -> None:
    data = b"\xc1\x80" + KEY
    fail_all_ways(impl, data, ProtocolError, expect_mask=True)
    assert feed_all_ways(impl, data, expect_mask=True, allow_rsv1=True) == [
        (1, b"", True, True, False, False)
    ]


def test_64bit_length_msb_set_is_protocol_error(impl: ModuleType) -> None:
    data = b"\x82\xff" + b"\x80" + b"\x00" * 7 + KEY
    fail_all_ways(impl, data, ProtocolError, expect_mask=True, max_frame_size=None)


# -- §5.1 masking by role ------------------------------------------------------


def test_server_receives_unmasked_frame(impl: ModuleType) -> None:
    fail_all_ways(impl, b"\x81\x05Hello", ProtocolError, expect_mask=True)


def test_client_receives_masked_frame(impl: ModuleType) -> None:
    fail_all_ways(impl, bytes.fromhex("818537fa213d7f9f4d5158"), ProtocolError, expect_mask=False)


# -- §5.5 control frames -------------------------------------------------------


@pytest.mark.parametrize("op", [8, 9, 10])
def test_fragmented_control_frame(impl: ModuleType, op: int) -> None:
    fail_all_ways(impl, bytes([op, 0x80]) + KEY, ProtocolError, expect_mask=True)


@pytest.mark.parametrize("op", [8, 9, 10])
@pytest.mark.parametrize("length", [126, 127])
def test_control_frame_too_long(impl: ModuleType, op: int, length: int) -> None:
    fail_all_ways(impl, bytes([0x80 | op, 0x80 | length]), ProtocolError, expect_mask=True)


def test_control_frame_125_bytes_ok(impl: ModuleType) -> None:
    payload = bytes(125)
    data = impl.encode_frame(Opcode.PING, payload, mask=KEY)
    assert feed_all_ways(impl, data, expect_mask=True) == [(9, payload, True, False, False, False)]


def test_control_frame_between_fragments(impl: ModuleType) -> None:
    data = b"\x01\x03Hel\x89\x00\x80\x02lo"
    assert [f[0] for f in feed_all_ways(impl, data, expect_mask=False)] == [1, 9, 0]


# -- limits ----------------------------------------------------------------------


def test_frame_at_limit_accepted(impl: ModuleType) -> None:
    data = impl.encode_frame(Opcode.BINARY, bytes(1000), mask=KEY)
    assert len(feed_all_ways(impl, data, expect_mask=True, max_frame_size=1000)) == 1


def test_frame_over_limit_refused_from_header(impl: ModuleType) -> None:
    header = impl.encode_frame(Opcode.BINARY, bytes(1001), mask=KEY)[:8]
    # Only the header: refused before any payload byte is buffered.
    fail_all_ways(impl, header, PayloadTooBig, expect_mask=True, max_frame_size=1000)
    with pytest.raises(PayloadTooBig) as info:
        impl.FrameParser(expect_mask=True, max_frame_size=1000).feed(header)
    assert info.value.close_code == 1009


def test_huge_announced_frame_reserves_little(impl: ModuleType) -> None:
    import tracemalloc

    header = b"\x82\xff" + struct.pack("!Q", 1 << 40) + KEY
    p = impl.FrameParser(expect_mask=True, max_frame_size=None)
    tracemalloc.start()
    try:
        assert p.feed(header + b"x" * 10) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_uncompressed_frames_have_their_own_limit(impl: ModuleType) -> None:
    # RFC 7692 §6.1: a text or binary frame without RSV1 starts an
    # uncompressed message; compressed frames and continuations may be
    # larger (deflate's overhead), within max_frame_size.
    kw = {"expect_mask": True, "max_frame_size": 2000, "allow_rsv1": True, "max_uncompressed_frame_size": 100}
    for op, fin, rsv1 in ((Opcode.TEXT, True, False), (Opcode.BINARY, True, False), (Opcode.BINARY, False, False)):
        fail_all_ways(impl, impl.encode_frame(op, bytes(101), fin=fin, rsv1=rsv1, mask=KEY)[:8],
                      PayloadTooBig, **kw)
        assert len(feed_all_ways(impl, impl.encode_frame(op, bytes(100), fin=fin, mask=KEY), **kw)) == 1
    with pytest.raises(PayloadTooBig, match=r"exceeds max_frame_size 100$"):
        impl.FrameParser(**kw).feed(impl.encode_frame(Opcode.BINARY, bytes(101), mask=KEY))
    for op, rsv1 in ((Opcode.BINARY, True), (Opcode.TEXT, True), (Opcode.CONTINUATION, False)):
        assert len(feed_all_ways(impl, impl.encode_frame(op, bytes(2000), rsv1=rsv1, mask=KEY), **kw)) == 1
        with pytest.raises(PayloadTooBig, match=r"exceeds max_frame_size 2000$"):
            impl.FrameParser(**kw).feed(impl.encode_frame(op, bytes(2001), rsv1=rsv1, mask=KEY))
    p = impl.FrameParser(expect_mask=True, max_frame_size=50, max_uncompressed_frame_size=100)
    assert (p.max_frame_size, p.max_uncompressed_frame_size) == (50, 50)
    p = impl.FrameParser(expect_mask=True, max_frame_size=50)
    assert p.max_uncompressed_frame_size == 50
    with pytest.raises(ValueError):
        impl.FrameParser(expect_mask=True, max_uncompressed_frame_size=-1)


def test_no_limit(impl: ModuleType) -> None:
    data = impl.encode_frame(Opcode.BINARY, bytes(3 << 20), mask=KEY)
    with pytest.raises(PayloadTooBig):
        impl.FrameParser(expect_mask=True).feed(data)
    assert len(impl.FrameParser(expect_mask=True, max_frame_size=None).feed(data)) == 1


def test_max_frame_size_negative(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.FrameParser(expect_mask=True, max_frame_size=-1)


# -- error handling ----------------------------------------------------------------


def test_frames_before_error_are_attached(impl: ModuleType) -> None:
    good = impl.encode_frame(Opcode.TEXT, b"first", mask=KEY)
    with pytest.raises(ProtocolError) as info:
        impl.FrameParser(expect_mask=True).feed(good + good + b"\x83\x80" + KEY)
    assert [f.payload for f in info.value.frames] == [b"first", b"first"]
    assert info.value.close_code == 1002


def test_parser_stays_failed(impl: ModuleType) -> None:
    p = impl.FrameParser(expect_mask=True)
    with pytest.raises(ProtocolError):
        p.feed(b"\x83\x80")
    assert p.failed
    good = impl.encode_frame(Opcode.TEXT, b"x", mask=KEY)
    for _ in range(3):
        with pytest.raises(ProtocolError):
            p.feed(good)
    with pytest.raises(ProtocolError):
        p.feed(b"")
    p = impl.FrameParser(expect_mask=True, max_frame_size=1)
    with pytest.raises(PayloadTooBig):
        p.feed(impl.encode_frame(Opcode.TEXT, b"xx", mask=KEY))
    with pytest.raises(PayloadTooBig):
        p.feed(good)


# Every way the parser refuses a stream, with the close code it names.
REJECTIONS = {
    "reserved-opcode": (b"\x83\x80" + KEY, {}, ProtocolError, 1002),  # §5.2
    "rsv2": (b"\xa1\x80" + KEY, {}, ProtocolError, 1002),  # §5.2
    "rsv1-not-negotiated": (b"\xc1\x80" + KEY, {}, ProtocolError, 1002),  # §5.2, RFC 7692 §6
    "fragmented-control": (b"\x09\x80" + KEY, {}, ProtocolError, 1002),  # §5.5
    "control-too-long": (b"\x89\xfe\x00\x7e" + KEY, {}, ProtocolError, 1002),  # §5.5
    "unmasked-from-client": (b"\x81\x00", {}, ProtocolError, 1002),  # §5.1
    "length-msb-set": (b"\x82\xff\x80" + bytes(7) + KEY, {"max_frame_size": None}, ProtocolError, 1002),
    "too-big": (b"\x82\x8b" + KEY, {"max_frame_size": 10}, PayloadTooBig, 1009),
    "too-big-uncompressed": (b"\x82\x8b" + KEY, {"allow_rsv1": True, "max_uncompressed_frame_size": 10},
                             PayloadTooBig, 1009),
}


@pytest.mark.parametrize("kind", REJECTIONS)
@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])
def test_parser_stays_failed_after_every_rejection(impl: ModuleType, kind: str, split: bool) -> None:
    data, kw, exc, code = REJECTIONS[kind]
    good = impl.encode_frame(Opcode.BINARY, b"good", mask=KEY)
    p = impl.FrameParser(expect_mask=True, **kw)
    with pytest.raises(exc) as info:
        for chunk in [data[i : i + 1] for i in range(len(data))] if split else [good + data]:
            p.feed(chunk)
    assert type(info.value) is exc and info.value.close_code == code and p.failed
    for again in (good, b"", good * 3):
        with pytest.raises(exc) as info:
            p.feed(again)
        assert type(info.value) is exc and info.value.close_code == code
        with pytest.raises(exc) as info:
            p.feed_messages(again, lambda a, m: pytest.fail("delivered after failing"), None, None)
        assert type(info.value) is exc and info.value.close_code == code and info.value.frames == []
    assert p.failed


def test_feed_messages_fails_for_good_when_the_error_hook_raises(impl: ModuleType) -> None:
    """The hook raising ends the call mid-read: the parser cannot know where
    the stream stands, so it stays failed rather than parse from there."""
    p = impl.FrameParser(expect_mask=True)
    stream = b"".join(impl.encode_frame(Opcode.BINARY, m, mask=KEY) for m in (b"a", b"b", b"c"))

    def sink(arg: Any, m: Any) -> None:
        raise RuntimeError("listener bug")

    def hook(arg: Any, exc: Exception) -> None:
        raise ValueError("hook bug")

    with pytest.raises(ValueError, match="hook bug"):
        p.feed_messages(stream, sink, hook, None)
    assert p.failed
    for again in (stream, b""):
        with pytest.raises(ValueError, match="hook bug"):
            p.feed(again)
        with pytest.raises(ValueError, match="hook bug"):
            p.feed_messages(again, sink, hook, None)


# Run in a child process under an address-space limit: a payload that grows
# past it raises MemoryError; before the parser kept that failure, the next
# feed of the compiled parser wrote through a NULL payload (a crash).
_OOM_SCRIPT = r"""
import importlib, resource, sys
impl = importlib.import_module(sys.argv[1])

def vm_size():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

chunk = bytes(4 << 20)
p = impl.FrameParser(expect_mask=False, max_frame_size=None)
p.feed(b"\x82\x7f" + (256 << 20).to_bytes(8, "big"))  # a 256 MiB frame
limit = vm_size() + (48 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    for _ in range(64):
        p.feed(chunk)
except MemoryError:
    pass
else:
    sys.exit("no MemoryError")
assert p.failed
for again in (chunk, b"\x82\x00", b""):
    for call in (p.feed, lambda d: p.feed_messages(d, print, print, None)):
        try:
            call(again)
        except MemoryError:
            pass
        else:
            sys.exit("a feed after the MemoryError did not raise it")
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status")
def test_parser_stays_failed_after_memory_error(impl: ModuleType) -> None:
    out = subprocess.run([sys.executable, "-c", _OOM_SCRIPT, impl.__name__],
                         capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout) == (0, "ok\n"), out.stderr[-2000:]


@pytest.mark.parametrize("length", [60000, 1 << 30])
def test_partial_frame_holds_about_what_arrived(impl: ModuleType, length: int) -> None:
    """An idle connection with the start of a large frame holds about the
    bytes that came, not the announced length; as more comes, at most
    twice what came (geometric growth)."""
    header = (b"\x82\xfe" + struct.pack("!H", length) if length < 1 << 16
              else b"\x82\xff" + struct.pack("!Q", length)) + KEY
    p = impl.FrameParser(expect_mask=True, max_frame_size=None)
    first = header + b"x" * 15
    pieces = [b"y" * 1000 for _ in range(10)]
    tracemalloc.start()
    try:
        assert p.feed(first) == []
        assert tracemalloc.get_traced_memory()[0] < 1024
        arrived = 15
        for piece in pieces:
            assert p.feed(piece) == []
            arrived += len(piece)
            assert tracemalloc.get_traced_memory()[0] < 2 * arrived + 1024
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("head", [0, 15])
def test_rest_of_a_frame_in_one_read_is_one_allocation(impl: ModuleType, head: int) -> None:
    """The payload's remaining bytes all in one read: no reservation made
    before is copied around, the payload is built once (at its size)."""
    length = 1 << 20
    data = impl.encode_frame(Opcode.BINARY, bytes(range(256)) * (length // 256))
    cut = 10 + head
    p = impl.FrameParser(expect_mask=False, max_frame_size=None)
    first, rest = data[:cut], data[cut:]
    tracemalloc.start()
    try:
        assert p.feed(first) == []
        (frame,) = p.feed(rest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frame.payload == data[10:]
    assert peak < length + 4096


def test_feed_accepts_bytes_like(impl: ModuleType) -> None:
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    for wrapped in (bytearray(data), memoryview(data), memoryview(b"\x00" + data)[1:]):
        assert [astuple(f) for f in impl.FrameParser(expect_mask=True).feed(wrapped)] == [
            (1, b"Hello", True, False, False, False)
        ]
    with pytest.raises(TypeError):
        impl.FrameParser(expect_mask=True).feed("text")


def test_feed_from_reused_buffer(impl: ModuleType) -> None:
    """Payloads are copies: reusing the read buffer must not change frames."""
    buf = bytearray(impl.encode_frame(Opcode.BINARY, b"abcdef", mask=KEY))
    p = impl.FrameParser(expect_mask=True)
    frames = p.feed(memoryview(buf)[:9])
    buf[:] = b"\x00" * len(buf)
    buf[:3] = impl.encode_frame(Opcode.BINARY, b"abcdef", mask=KEY)[9:]
    frames += p.feed(memoryview(buf)[:3])
    assert [f.payload for f in frames] == [b"abcdef"]


# -- Frame ---------------------------------------------------------------------------


def test_frame_value_semantics(impl: ModuleType) -> None:
    a = impl.Frame(Opcode.TEXT, b"hi")
    b = impl.Frame(1, b"hi", True, False, False, False)
    assert a == b
    assert a != impl.Frame(Opcode.TEXT, b"hi", fin=False)
    assert a.opcode is Opcode.TEXT
    assert (a.fin, a.rsv1, a.rsv2, a.rsv3, a.payload) == (True, False, False, False, b"hi")
    assert repr(a) == "<Frame TEXT [fin] 2 bytes b'hi'>"
    assert "..." in repr(impl.Frame(Opcode.BINARY, bytes(100)))
    assert (a == object()) is False


# -- feed_messages: whole messages to a sink, the rest as frames ---------------------------


def _sink_run(impl: ModuleType, chunks: list[bytes]) -> list[Any]:
    """One ordered log: messages as the sink gets them, frames as returned."""
    p = impl.FrameParser(expect_mask=True)
    log: list[Any] = []

    def sink(arg: Any, m: Any) -> None:
        log.append((arg, m))

    for chunk in chunks:
        rest = p.feed_messages(chunk, sink, None, 7)
        log += [(int(f.opcode), f.payload, f.fin) for f in rest]
    return log


def test_feed_messages_vectors_whole_bytewise_and_with_trailing_bytes(impl: ModuleType) -> None:
    key = b"\x37\xfa\x21\x3d"
    stream = (
        impl.encode_frame(Opcode.TEXT, b"Hello", mask=key)      # RFC 6455 §5.7 masked text
        + impl.encode_frame(Opcode.BINARY, b"\x00\x01", mask=key)
        + impl.encode_frame(Opcode.PING, b"p", mask=key)                 # a control frame: returned...
        + impl.encode_frame(Opcode.BINARY, b"after", mask=key)           # ...and so is all after it
    )
    expect = [(7, "Hello"), (7, b"\x00\x01"), (9, b"p", True), (2, b"after", True)]
    assert _sink_run(impl, [stream]) == expect
    # Byte by byte, "after" completes in a later call than the ping, so it
    # goes to the sink; arrival order is kept either way.
    bytewise = [(7, "Hello"), (7, b"\x00\x01"), (9, b"p", True), (7, b"after")]
    assert _sink_run(impl, [stream[i : i + 1] for i in range(len(stream))]) == bytewise
    # Trailing bytes of an unfinished frame wait for the rest.
    partial = impl.encode_frame(Opcode.TEXT, b"tail", mask=key)
    assert _sink_run(impl, [stream + partial[:3]]) == expect
    assert _sink_run(impl, [stream + partial[:3], partial[3:]]) == expect + [(7, "tail")]


def _log_as_seven(log: list[Any], m: Any) -> None:
    log.append((7, m))  # as _sink_run logs its sink's calls


def test_feed_messages_size_reads_only_the_head_of_a_reused_buffer(impl: ModuleType) -> None:
    """``size``: the first bytes of a read buffer count, stale bytes after
    them never do, whole, byte by byte and with a frame cut at the edge."""
    key = b"\x37\xfa\x21\x3d"
    stream = (impl.encode_frame(Opcode.TEXT, b"Hello", mask=key)
              + impl.encode_frame(Opcode.PING, b"p", mask=key)
              + impl.encode_frame(Opcode.BINARY, b"x" * 300, mask=key))
    stale = impl.encode_frame(Opcode.BINARY, b"stale", mask=key)  # would parse, if it counted
    for cuts in ([len(stream)], [1] * len(stream), [7, len(stream) - 7]):
        p = impl.FrameParser(expect_mask=True)
        log: list[Any] = []
        fill = (stale * (len(stream) // len(stale) + 2))[: len(stream) + len(stale)]
        buf = bytearray(fill)
        pos = 0
        for n in cuts:
            buf[:] = fill
            buf[:n] = stream[pos : pos + n]
            pos += n
            rest = p.feed_messages(buf, _log_as_seven, None, log, n)
            log += [(int(f.opcode), f.payload, f.fin) for f in rest]
        starts = [sum(cuts[:i]) for i in range(len(cuts))]
        assert log == _sink_run(impl, [stream[a : a + n] for a, n in zip(starts, cuts)])
        assert (7, b"x" * 300) in log or (2, b"x" * 300, True) in log
    p = impl.FrameParser(expect_mask=True)
    got: list[Any] = []
    assert p.feed_messages(stream, lambda a, m: got.append(m), None, None, 0) == [] and got == []
    # A size past the end is the whole buffer, as a slice would be.
    assert p.feed_messages(stream, lambda a, m: got.append(m), None, None, 1 << 30) != [] and got == ["Hello"]


def _grow_sink(arg: Any, m: Any) -> None:
    buf, got, _ = arg
    got.append(m)
    buf.extend(b"x")


def _error_types(arg: Any, exc: Exception) -> None:
    arg[2].append(type(exc))


def test_feed_messages_holds_a_bytearray_against_resizing(impl: ModuleType) -> None:
    """The sink cannot resize the buffer being parsed (BufferError, to the
    error hook); once the call returns, the buffer is free again."""
    key = b"\x01\x02\x03\x04"
    for size in (-1, 9, 1 << 20):
        buf = bytearray(impl.encode_frame(Opcode.BINARY, b"abc", mask=key) * 2)
        p = impl.FrameParser(expect_mask=True)
        got: list[Any] = []
        errors: list[Any] = []
        assert p.feed_messages(buf, _grow_sink, _error_types, (buf, got, errors), size) == []
        assert got == ([b"abc"] if size == 9 else [b"abc", b"abc"])
        assert errors == [BufferError] * len(got)
        buf.extend(b"ok")  # released
        assert len(buf) == 20
    # Released after a violation too (the failed parser keeps its error).
    for size in (-1, 2):
        buf = bytearray(b"\x00\x00" + bytes(7))  # an unmasked client frame: 1002
        p = impl.FrameParser(expect_mask=True)
        with pytest.raises(ProtocolError):
            p.feed_messages(buf, _grow_sink, _error_types, (buf, [], []), size)
        buf.append(0)


def test_feed_messages_keeps_fragments_compressed_and_bad_text_as_frames(impl: ModuleType) -> None:
    key = b"\x01\x02\x03\x04"
    p = impl.FrameParser(expect_mask=True, allow_rsv1=True)
    got: list[Any] = []
    stream = (
        impl.encode_frame(Opcode.TEXT, b"\xff", mask=key)                 # invalid UTF-8: the caller fails it
        + impl.encode_frame(Opcode.TEXT, b"ok", mask=key)
    )
    rest = p.feed_messages(stream, lambda a, m: got.append(m), None, None)
    assert got == [] and [f.payload for f in rest] == [b"\xff", b"ok"]
    for frame in (
        impl.encode_frame(Opcode.BINARY, b"part", fin=False, mask=key),   # fragmented
        impl.encode_frame(Opcode.BINARY, b"z", rsv1=True, mask=key),      # compressed
    ):
        p = impl.FrameParser(expect_mask=True, allow_rsv1=True)
        assert len(p.feed_messages(frame, lambda a, m: got.append(m), None, None)) == 1
        assert got == []


def test_feed_messages_sink_errors_go_to_the_hook_and_parsing_goes_on(impl: ModuleType) -> None:
    key = b"\x01\x02\x03\x04"
    p = impl.FrameParser(expect_mask=True)
    seen: list[Any] = []

    def sink(arg: Any, m: Any) -> None:
        seen.append(m)
        if m == b"boom":
            raise RuntimeError("listener bug")

    errors: list[Any] = []
    stream = b"".join(impl.encode_frame(Opcode.BINARY, m, mask=key) for m in (b"a", b"boom", b"c"))
    assert p.feed_messages(stream, sink, lambda arg, exc: errors.append((arg, str(exc))), "x") == []
    assert seen == [b"a", b"boom", b"c"] and errors == [("x", "listener bug")]


def test_feed_messages_violation_after_messages(impl: ModuleType) -> None:
    key = b"\x01\x02\x03\x04"
    p = impl.FrameParser(expect_mask=True)
    got: list[Any] = []
    stream = impl.encode_frame(Opcode.BINARY, b"first", mask=key) + impl.encode_frame(Opcode.TEXT, b"unmasked")
    with pytest.raises(ProtocolError) as info:
        p.feed_messages(stream, lambda a, m: got.append(m), None, None)
    assert got == [b"first"] and info.value.frames == [] and info.value.close_code == 1002
    with pytest.raises(ProtocolError):  # failed for good
        p.feed_messages(b"", lambda a, m: None, None, None)


def test_frame_attributes_are_settable_in_both_implementations(impl: ModuleType) -> None:
    # The compiled Frame and the twin's agree on mutability (both plain
    # settable attributes), so code written against one runs on the other.
    f = impl.Frame(1, b"x")
    f.payload = b"y"
    f.fin = False
    f.rsv1 = True
    assert (f.payload, f.fin, f.rsv1, f.rsv2) == (b"y", False, True, False)
    assert f == impl.Frame(1, b"y", fin=False, rsv1=True)
    with pytest.raises(AttributeError):
        f.extra = 1  # type: ignore[attr-defined]

