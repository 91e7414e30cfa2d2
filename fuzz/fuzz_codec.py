"""Differential fuzz target for the frame parser and the UTF-8 validator.

    python fuzz/fuzz_codec.py [libFuzzer options, e.g. -max_total_time=120]

Each input picks the parser's options and how the stream is cut, then feeds
the same bytes to the compiled core and to the pure twin.  Allowed outcomes:
frames, or one of fastframe's documented ProtocolError classes.  A crash,
any other exception, or a disagreement between the two implementations is a
finding.  ``scripts/sanitize.sh`` runs this under AddressSanitizer + UBSan.
"""

from __future__ import annotations

import sys
from typing import Any

import atheris

from fastframe import _codec_c as C
from fastframe import _codec_py as P
from fastframe.exceptions import InvalidUTF8, ProtocolError

LIMITS = [0, 1, 125, 126, 65535, 65536, 1 << 20, None]


def parse(impl: Any, chunks: list[bytes], kw: dict) -> tuple[list, tuple[type, int] | None]:
    p = impl.FrameParser(**kw)
    out: list = []
    try:
        for c in chunks:
            out += [(int(f.opcode), f.payload, f.fin, f.rsv1, f.rsv2, f.rsv3) for f in p.feed(c)]
    except ProtocolError as exc:
        out += [(int(f.opcode), f.payload, f.fin, f.rsv1, f.rsv2, f.rsv3) for f in exc.frames]
        return out, (type(exc), exc.close_code)
    return out, None


def utf8(impl: Any, chunks: list[bytes]) -> tuple[bool, int]:
    v = impl.Utf8Validator()
    for i, c in enumerate(chunks):
        try:
            v.feed(c, final=i == len(chunks) - 1)
        except InvalidUTF8:
            return False, i
    return True, len(chunks)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kw = {
        "expect_mask": fdp.ConsumeBool(),
        "allow_rsv1": fdp.ConsumeBool(),
        "max_frame_size": LIMITS[fdp.ConsumeIntInRange(0, len(LIMITS) - 1)],
        "check_utf8": fdp.ConsumeBool(),
    }
    ncuts = fdp.ConsumeIntInRange(0, 8)
    cuts = sorted(fdp.ConsumeIntInRange(0, 4096) for _ in range(ncuts))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    chunks, prev = [], 0
    for c in cuts + [len(body)]:
        c = min(c, len(body))
        if c >= prev:
            chunks.append(body[prev:c])
            prev = c
    c_res = parse(C, chunks, kw)
    p_res = parse(P, chunks, kw)
    if c_res != p_res:
        raise AssertionError(f"parser disagreement: c={c_res!r} py={p_res!r}")
    u_c, u_p = utf8(C, chunks), utf8(P, chunks)
    if u_c != u_p:
        raise AssertionError(f"utf-8 disagreement: c={u_c} py={u_p}")
    try:
        body.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    if C.validate_utf8(body) != ok or u_c[0] != ok:
        raise AssertionError("validate_utf8 disagrees with bytes.decode")
    key = body[:4].ljust(4, b"\0")
    if C.apply_mask(body, key) != P.apply_mask(body, key):
        raise AssertionError("apply_mask disagreement")


def main() -> None:
    # Coverage comes from the pure twin and this file (Python bytecode); the
    # compiled core is not coverage-instrumented (that needs clang), so the
    # twin's branches steer the fuzzer through the same rules.
    atheris.instrument_func(test_one_input)
    for fn in (P.FrameParser.feed, P.FrameParser._check_header, P.FrameParser._track,
               P.FrameParser._add, P.Utf8Validator.feed, P._xor):
        atheris.instrument_func(fn)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
