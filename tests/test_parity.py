"""The compiled core and the pure twin agree on every input (hypothesis).

For random valid frame streams in random chunkings, and for random garbage,
both return equal frames or raise the same class with the same close code
after the same frames.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastframe import FastFrameError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DATA_OPS = [0, 1, 2]
CONTROL_OPS = [8, 9, 10]


@st.composite
def frame_specs(draw: Any) -> tuple[int, bytes, bool, bool]:
    op = draw(st.sampled_from(DATA_OPS + CONTROL_OPS))
    if op >= 8:
        payload = draw(st.binary(max_size=125))
        fin = True
    else:
        size = draw(st.sampled_from([0, 1, 5, 125, 126, 200, 65535, 65536, 70000]) | st.integers(0, 300))
        payload = draw(st.binary(min_size=min(size, 64), max_size=min(size, 64)))
        payload = (payload * (size // max(len(payload), 1) + 1))[:size] if payload else bytes(size)
        fin = draw(st.booleans())
    rsv1 = draw(st.booleans())
    return op, payload, fin, rsv1


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


def run(impl: ModuleType, chunks: list[bytes], **kw: Any) -> tuple[list[Any], tuple[type, int] | None]:
    p = impl.FrameParser(**kw)
    frames: list[Any] = []
    try:
        for c in chunks:
            frames += p.feed(c)
    except FastFrameError as exc:
        frames += exc.frames
        return [astuple(f) for f in frames], (type(exc), exc.close_code)
    return [astuple(f) for f in frames], None


def astuple(f: Any) -> tuple[Any, ...]:
    return (int(f.opcode), f.payload, f.fin, f.rsv1, f.rsv2, f.rsv3)


@SETTINGS
@given(
    specs=st.lists(frame_specs(), max_size=12),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=20),
    masked=st.booleans(),
    allow_rsv1=st.booleans(),
    key=st.binary(min_size=4, max_size=4),
)
def test_valid_streams_agree(
    c_impl: ModuleType,
    py_impl: ModuleType,
    specs: list[tuple[int, bytes, bool, bool]],
    cuts: list[int],
    masked: bool,
    allow_rsv1: bool,
    key: bytes,
) -> None:
    stream = b"".join(
        c_impl.encode_frame(op, payload, fin=fin, rsv1=rsv1, mask=key if masked else None)
        for op, payload, fin, rsv1 in specs
    )
    py_stream = b"".join(
        py_impl.encode_frame(op, payload, fin=fin, rsv1=rsv1, mask=key if masked else None)
        for op, payload, fin, rsv1 in specs
    )
    assert stream == py_stream
    chunks = chunked(stream, cuts)
    kw = {"expect_mask": masked, "allow_rsv1": allow_rsv1, "max_frame_size": None}
    c_res = run(c_impl, chunks, **kw)
    py_res = run(py_impl, chunks, **kw)
    assert c_res == py_res
    if allow_rsv1:
        assert c_res[1] is None
        assert c_res[0] == [(op, p, fin, rsv1, False, False) for op, p, fin, rsv1 in specs]


@SETTINGS
@given(
    data=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=10),
    expect_mask=st.booleans(),
    allow_rsv1=st.booleans(),
    max_frame_size=st.sampled_from([0, 10, 125, 300, None]),
    max_uncompressed=st.sampled_from([0, 10, 125, None]),
)
def test_garbage_agrees(
    c_impl: ModuleType,
    py_impl: ModuleType,
    data: bytes,
    cuts: list[int],
    expect_mask: bool,
    allow_rsv1: bool,
    max_frame_size: int | None,
    max_uncompressed: int | None,
) -> None:
    chunks = chunked(data, cuts)
    kw = {"expect_mask": expect_mask, "allow_rsv1": allow_rsv1, "max_frame_size": max_frame_size,
          "max_uncompressed_frame_size": max_uncompressed}
    assert run(c_impl, chunks, **kw) == run(py_impl, chunks, **kw)


@SETTINGS
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4), start=st.integers(0, 7))
def test_mask_agrees(c_impl: ModuleType, py_impl: ModuleType, data: bytes, key: bytes, start: int) -> None:
    assert c_impl.apply_mask(data, key) == py_impl.apply_mask(data, key)
    a = bytearray(data)
    b = bytearray(data)
    c_impl.mask_inplace(memoryview(a)[start:], key)
    py_impl.mask_inplace(memoryview(b)[start:], key)
    assert a == b


def utf8_result(impl: ModuleType, chunks: list[bytes]) -> tuple[bool, int]:
    v = impl.Utf8Validator()
    for i, c in enumerate(chunks):
        try:
            v.feed(c, final=i == len(chunks) - 1)
        except FastFrameError:
            return False, i
    return True, len(chunks)


utf8ish = st.lists(
    st.one_of(
        st.text(max_size=8).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.binary(max_size=4),
        st.sampled_from([b"\xed\xa0", b"\xf4\x90", b"\xe0\x80", b"\xf0\x8f", b"\xc2", b"\x80"]),
    ),
    max_size=12,
)


@SETTINGS
@given(parts=utf8ish, cuts=st.lists(st.integers(0, 200), max_size=6))
def test_utf8_agrees(c_impl: ModuleType, py_impl: ModuleType, parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    chunks = chunked(data, cuts)
    assert c_impl.validate_utf8(data) == py_impl.validate_utf8(data)
    try:
        data.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    assert c_impl.validate_utf8(data) == ok
    assert utf8_result(c_impl, chunks) == utf8_result(py_impl, chunks)
    assert utf8_result(c_impl, chunks)[0] == ok


@SETTINGS
@given(
    op=st.sampled_from(DATA_OPS + CONTROL_OPS + [3, 11, 20]),
    payload=st.binary(max_size=200),
    fin=st.booleans(),
    rsv1=st.booleans(),
    key=st.none() | st.binary(min_size=4, max_size=4),
)
def test_encode_agrees(
    c_impl: ModuleType, py_impl: ModuleType, op: int, payload: bytes, fin: bool, rsv1: bool, key: bytes | None
) -> None:
    def enc(impl: ModuleType) -> Any:
        try:
            return impl.encode_frame(op, payload, fin=fin, rsv1=rsv1, mask=key)
        except FastFrameError as exc:
            return type(exc)

    assert enc(c_impl) == enc(py_impl)


def run_messages(impl: ModuleType, chunks: list[bytes], fail_on: bytes | None, reuse: bool = False,
                 **kw: Any) -> list[Any]:
    """feed_messages over the chunks: one log of what went to the sink, to
    the error hook and back as frames, in order, and how it ended.  With
    ``reuse``, each chunk is read into one bytearray over stale bytes and
    given with its length (``size``), as the asyncio protocol does."""
    p = impl.FrameParser(**kw)
    buf = bytearray(b"\xa5" * (max(map(len, chunks), default=0) + 7))
    log: list[Any] = []

    def on_message(arg: Any, message: Any) -> None:
        assert arg == "arg"
        log.append(("msg", message))
        if fail_on is not None and message == fail_on:
            raise ValueError("sink failed")

    def on_error(arg: Any, exc: Exception) -> None:
        log.append(("error", type(exc).__name__))

    try:
        for c in chunks:
            if reuse:
                buf[: len(c)] = c
                rest = p.feed_messages(buf, on_message, on_error, "arg", len(c))
            else:
                rest = p.feed_messages(c, on_message, on_error, "arg")
            log += [("frame", astuple(f)) for f in rest]
    except FastFrameError as exc:
        log += [("frame", astuple(f)) for f in exc.frames]
        log.append(("raised", type(exc).__name__, exc.close_code))
    buf.append(0)  # the parser let go of the buffer, however the call ended
    return log


@SETTINGS
@given(
    specs=st.lists(frame_specs(), max_size=12),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=20),
    allow_rsv1=st.booleans(),
    text=st.lists(st.text(max_size=5), max_size=3),
    tail=st.binary(max_size=20),
    fail=st.booleans(),
    reuse=st.booleans(),
)
def test_feed_messages_agrees(
    c_impl: ModuleType,
    py_impl: ModuleType,
    specs: list[tuple[int, bytes, bool, bool]],
    cuts: list[int],
    allow_rsv1: bool,
    text: list[str],
    tail: bytes,
    fail: bool,
    reuse: bool,
) -> None:
    """Same sink calls, same frames back, same error, for any stream (valid
    text, invalid UTF-8, garbage after it) in any chunking, and a sink that
    raises; given as bytes or as a reused read buffer and a length."""
    key = b"\x01\x02\x03\x04"
    frames = [c_impl.encode_frame(op, p, fin=fin, rsv1=rsv1, mask=key) for op, p, fin, rsv1 in specs]
    frames += [c_impl.encode_frame(1, t.encode(), mask=key) for t in text]
    frames.insert(len(frames) // 2, c_impl.encode_frame(1, b"\xff\xfe", mask=key))
    stream = b"".join(frames) + tail
    chunks = chunked(stream, cuts)
    fail_on = specs[0][1] if fail and specs else None
    kw = {"expect_mask": True, "allow_rsv1": allow_rsv1, "max_frame_size": None}
    c_log = run_messages(c_impl, chunks, fail_on, reuse, **kw)
    assert c_log == run_messages(py_impl, chunks, fail_on, reuse, **kw)
    assert c_log == run_messages(c_impl, chunks, fail_on, not reuse, **kw)
    # Whatever feed_messages delivers or returns, feed alone returns as frames.
    plain = run(c_impl, chunks, **kw)
    n_out = sum(1 for entry in c_log if entry[0] in ("msg", "frame"))
    assert n_out == len(plain[0])


@st.composite
def text_streams(draw: Any) -> list[tuple[int, bytes, bool, bool]]:
    """Frame specs (opcode, payload, fin, rsv1) of a few messages, mostly
    text that may not be UTF-8, in fragments of any size, with control
    frames between them and now and then a frame that breaks §5.4."""
    specs: list[tuple[int, bytes, bool, bool]] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "text", "text", "binary", "compressed", "stray"]))
        data = b"".join(draw(utf8ish))
        if kind == "stray":
            specs.append((draw(st.sampled_from(DATA_OPS)), data, draw(st.booleans()), draw(st.booleans())))
            continue
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        for i, piece in enumerate(pieces):
            op = (2 if kind == "binary" else 1) if i == 0 else 0
            specs.append((op, piece, i == len(pieces) - 1, kind == "compressed" and i == 0))
            if i < len(pieces) - 1 and draw(st.booleans()):
                specs.append((9, draw(st.binary(max_size=3)), True, False))
    return specs


@SETTINGS
@given(
    specs=text_streams(),
    cuts=st.lists(st.integers(0, 1 << 12), max_size=12),
    masked=st.booleans(),
    allow_rsv1=st.booleans(),
    tail=st.binary(max_size=6),
    reuse=st.booleans(),
)
def test_text_streams_agree_with_check_utf8(
    c_impl: ModuleType,
    py_impl: ModuleType,
    specs: list[tuple[int, bytes, bool, bool]],
    cuts: list[int],
    masked: bool,
    allow_rsv1: bool,
    tail: bytes,
    reuse: bool,
) -> None:
    """check_utf8: text split at random points fails in the same call, with
    the same frames before it, in both implementations; and the frames are
    those of the parser without the check, up to the failure."""
    key = b"\x9a\x02\xe3\x4c" if masked else None
    stream = b"".join(
        c_impl.encode_frame(op, p, fin=fin, rsv1=rsv1, mask=key) for op, p, fin, rsv1 in specs
    ) + tail
    chunks = chunked(stream, cuts)
    kw = {"expect_mask": masked, "allow_rsv1": allow_rsv1, "max_frame_size": None}
    checked = run(c_impl, chunks, check_utf8=True, **kw)
    assert checked == run(py_impl, chunks, check_utf8=True, **kw)
    log = run_messages(c_impl, chunks, None, reuse, check_utf8=True, **kw)
    assert log == run_messages(py_impl, chunks, None, reuse, check_utf8=True, **kw)
    plain = run(c_impl, chunks, **kw)
    if checked[1] is None or checked[1][1] != 1007:
        assert checked == plain
    else:
        assert checked[0] == plain[0][: len(checked[0])]
