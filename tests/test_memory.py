"""A loop of a million frames must not grow memory (parse, encode, validate)."""

from __future__ import annotations

import gc
import sys
from types import ModuleType

import pytest

from fastframe import Opcode, ProtocolError

# Resident memory is read from /proc; the wheel tests on macOS and Windows skip this.
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

KEY = b"\x01\x02\x03\x04"


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() // 1024


def test_million_frames_do_not_grow_memory(impl: ModuleType) -> None:
    frame = impl.encode_frame(Opcode.BINARY, b"0123456789abcdef", mask=KEY)
    split = impl.encode_frame(Opcode.TEXT, b"x" * 3000, mask=KEY)
    chunk = frame * 1000
    parser = impl.FrameParser(expect_mask=True)
    v = impl.Utf8Validator()

    def work(rounds: int) -> None:
        for _ in range(rounds):
            assert len(parser.feed(chunk)) == 1000
            parser.feed(split[:1500])
            (f,) = parser.feed(split[1500:])
            v.feed(f.payload)
            impl.encode_frame(Opcode.BINARY, f.payload, mask=True)
            impl.apply_mask(f.payload, KEY)
            try:
                impl.FrameParser(expect_mask=True).feed(frame + b"\x83\x80")
            except ProtocolError:
                pass

    work(100)  # warm up caches, freelists and the allocator
    gc.collect()
    before = rss_kib()
    work(1000)  # 1,000,000 small frames plus 1,000 split ones
    gc.collect()
    grown = rss_kib() - before
    assert grown < 4096, f"RSS grew by {grown} KiB"
