"""Cross-checks against independent implementations: websockets and wsproto."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from fastframe import Opcode

websockets_frames = pytest.importorskip("websockets.frames")
from websockets.streams import StreamReader  # noqa: E402

wsproto_fp = pytest.importorskip("wsproto.frame_protocol")

CASES = [
    (Opcode.TEXT, "héllo".encode(), True),
    (Opcode.BINARY, bytes(range(256)) * 3, True),
    (Opcode.BINARY, b"", True),
    (Opcode.TEXT, b"part", False),
    (Opcode.CONTINUATION, b"x" * 70000, True),
    (Opcode.PING, b"ping!", True),
    (Opcode.PONG, b"", True),
    (Opcode.CLOSE, b"\x03\xe8bye", True),
]


def ws_parse(data: bytes, mask: bool) -> list[Any]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while True:
        gen = websockets_frames.Frame.parse(reader.read_exact, mask=mask, extensions=[])
        try:
            next(gen)
        except StopIteration as stop:
            frames.append(stop.value)
        else:  # pragma: no cover - needs more data
            break
        if reader.at_eof():
            break
    return frames


@pytest.mark.parametrize("opcode, payload, fin", CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_websockets_frames_parse_in_fastframe(
    impl: ModuleType, opcode: Opcode, payload: bytes, fin: bool, masked: bool
) -> None:
    frame = websockets_frames.Frame(websockets_frames.Opcode(int(opcode)), payload, fin=fin)
    data = frame.serialize(mask=masked, extensions=[])
    out = impl.FrameParser(expect_mask=masked, max_frame_size=None).feed(data)
    assert len(out) == 1
    f = out[0]
    assert (f.opcode, f.payload, f.fin, f.rsv1) == (opcode, payload, fin, False)


@pytest.mark.parametrize("opcode, payload, fin", CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_fastframe_frames_parse_in_websockets(
    impl: ModuleType, opcode: Opcode, payload: bytes, fin: bool, masked: bool
) -> None:
    data = impl.encode_frame(opcode, payload, fin=fin, mask=True if masked else None)
    (f,) = ws_parse(data, masked)
    assert (int(f.opcode), f.data, f.fin, f.rsv1) == (int(opcode), payload, fin, False)


@pytest.mark.parametrize("opcode, payload, fin", [c for c in CASES if c[0] != Opcode.CLOSE])
@pytest.mark.parametrize("masked", [False, True])
def test_fastframe_frames_parse_in_wsproto(
    impl: ModuleType, opcode: Opcode, payload: bytes, fin: bool, masked: bool
) -> None:
    # wsproto's FrameDecoder: client=True means "I am the client", so it
    # expects unmasked frames.
    decoder = wsproto_fp.FrameDecoder(client=not masked, extensions=[])
    if opcode == Opcode.CONTINUATION:
        # wsproto tracks fragmentation: open the message first.
        decoder.receive_bytes(impl.encode_frame(Opcode.BINARY, b"", fin=False, mask=True if masked else None))
        decoder.process_buffer()
    decoder.receive_bytes(impl.encode_frame(opcode, payload, fin=fin, mask=True if masked else None))
    f = decoder.process_buffer()
    assert f is not None
    assert int(f.opcode) == int(opcode)
    assert bytes(f.payload) == payload
    assert f.frame_finished and f.message_finished == fin


def test_fastframe_close_frame_parses_in_wsproto(impl: ModuleType) -> None:
    decoder = wsproto_fp.FrameDecoder(client=True, extensions=[])
    decoder.receive_bytes(impl.encode_frame(Opcode.CLOSE, b"\x03\xe8bye"))
    f = decoder.process_buffer()
    assert f.opcode == wsproto_fp.Opcode.CLOSE
    assert bytes(f.payload) == b"\x03\xe8bye"
