"""RFC 7692 permessage-deflate: negotiation, round trips in every mode, limits."""

from __future__ import annotations

import itertools
import random
import zlib
from types import ModuleType
from typing import Any

import pytest

from fastframe import Opcode, ProtocolError, encode_frame
from fastframe.deflate import (
    DeflateConfig,
    DeflateParams,
    PerMessageDeflate,
    accept_client,
    negotiate_server,
    parse_extensions,
)
from fastframe.protocol import Closed, Connection, Message, Opened, Rejected, State

KEY = b"\x0a\x0b\x0c\x0d"


@pytest.fixture(autouse=True)
def codec(protocol_codec: ModuleType) -> ModuleType:
    """Every test here runs on the compiled core and on the pure twin."""
    return protocol_codec


# -- parsing the header (RFC 6455 §9.1) -------------------------------------------


def test_parse_extensions() -> None:
    assert parse_extensions(["permessage-deflate; client_max_window_bits, foo;a=1;b=\"2\""]) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("foo", [("a", "1"), ("b", "2")]),
    ]
    with pytest.raises(ValueError):
        parse_extensions(["permessage-deflate; =3"])


# -- §7.1 server side negotiation -------------------------------------------------------

CFG = DeflateConfig()
OPEN = DeflateConfig(server_max_window_bits=None, client_max_window_bits=None)


@pytest.mark.parametrize(
    "offer, config, response",
    [
        ("permessage-deflate", OPEN, "permessage-deflate"),
        ("permessage-deflate", CFG, "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; client_max_window_bits", CFG,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        ("permessage-deflate; client_max_window_bits", OPEN, "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=10", CFG,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"),
        ("permessage-deflate; client_max_window_bits=8", CFG,
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=8"),
        ("permessage-deflate; server_max_window_bits=10", CFG,
         "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=15", CFG,
         "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=15", OPEN,
         "permessage-deflate; server_max_window_bits=15"),
        ("permessage-deflate; server_no_context_takeover", OPEN,
         "permessage-deflate; server_no_context_takeover"),
        ("permessage-deflate; client_no_context_takeover", OPEN,
         "permessage-deflate; client_no_context_takeover"),
        ("permessage-deflate", DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True,
                                             server_max_window_bits=None, client_max_window_bits=None),
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        # First acceptable offer wins; an unsupported one is skipped.
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate", OPEN, "permessage-deflate"),
        ("permessage-deflate; unknown=1, permessage-deflate; client_no_context_takeover", OPEN,
         "permessage-deflate; client_no_context_takeover"),
        ("x-webkit-deflate-frame, permessage-deflate", OPEN, "permessage-deflate"),
    ],
)
def test_server_negotiation(offer: str, config: DeflateConfig, response: str) -> None:
    got = negotiate_server([offer], config)
    assert got is not None
    assert got[0] == response


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=8",  # zlib cannot compress with 256 bytes
        "permessage-deflate; server_max_window_bits",  # needs a value
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; mystery",
        "x-webkit-deflate-frame",
        "",
    ],
)
def test_server_declines(offer: str) -> None:
    assert negotiate_server([offer], OPEN) is None


@pytest.mark.parametrize("bits", range(8, 16))
def test_every_legal_client_window(bits: int) -> None:
    got = negotiate_server([f"permessage-deflate; client_max_window_bits={bits}"], OPEN)
    assert got is not None and got[1].client_max_window_bits == bits


@pytest.mark.parametrize("bits", range(9, 16))
def test_every_legal_server_window(bits: int) -> None:
    got = negotiate_server([f"permessage-deflate; server_max_window_bits={bits}"], OPEN)
    assert got is not None and got[1].server_max_window_bits == bits


# -- §7.1 client side --------------------------------------------------------------------


def test_client_accepts_valid_response() -> None:
    p = accept_client(["permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"], CFG)
    assert p == DeflateParams(False, False, 12, 10)
    assert accept_client([], CFG) is None


def test_client_keeps_its_smaller_window_when_server_allows_more() -> None:
    # Autobahn's fuzzingserver answers client_max_window_bits=15 to an offer of 12.
    p = accept_client(["permessage-deflate; server_max_window_bits=12; client_max_window_bits=15"], CFG)
    assert p is not None and p.client_max_window_bits == 12


@pytest.mark.parametrize(
    "response",
    [
        "x-other",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate",  # ignored our server_max_window_bits=12
        "permessage-deflate; server_max_window_bits=13",
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=12; bogus",
    ],
)
def test_client_fails_bad_response(response: str) -> None:
    with pytest.raises(ProtocolError):
        accept_client([response], CFG)


# -- round trips through two Connections ---------------------------------------------------------


def pump(a: Connection, b: Connection) -> tuple[list, list]:
    """Move bytes both ways until quiet; return the events each side saw."""
    ea: list = []
    eb: list = []
    for _ in range(10):
        out_a = b"".join(a.data_to_send())
        out_b = b"".join(b.data_to_send())
        if not out_a and not out_b:
            break
        if out_a:
            eb += b.receive_data(out_a)
        if out_b:
            ea += a.receive_data(out_b)
    return ea, eb


def pair(server_cfg: DeflateConfig | None, client_cfg: DeflateConfig | None, **kw: object) -> tuple[Connection, Connection]:
    s = Connection(compression=server_cfg, **kw)  # type: ignore[arg-type]
    c = Connection(client=True, compression=client_cfg, **kw)  # type: ignore[arg-type]
    c.connect("localhost", "/")
    ec, es = pump(c, s)
    assert isinstance(es[0], Opened) and isinstance(ec[0], Opened)
    return s, c


MODES = list(
    itertools.product(
        [False, True],  # server_no_context_takeover
        [False, True],  # client_no_context_takeover
        [None, 9, 12, 15],  # server_max_window_bits
        [None, 9, 15],  # client_max_window_bits
    )
)


@pytest.mark.parametrize("snct, cnct, smwb, cmwb", MODES)
def test_round_trip_in_every_mode(snct: bool, cnct: bool, smwb: int | None, cmwb: int | None) -> None:
    cfg = DeflateConfig(snct, cnct, smwb, cmwb)
    s, c = pair(cfg, cfg)
    assert s.compressed and c.compressed
    messages = ["hello " * 100, b"\x00\x01" * 3000, "", b"", "ünïcödé " * 500, bytes(range(256)) * 40]
    for m in messages * 2:  # twice: context takeover matters on repeats
        c.send(m)
        out = c.data_to_send()
        assert out[0][0] & 0x40  # RSV1 set
        es = s.receive_data(b"".join(out))
        assert es == [Message(m)]
        s.send(m)
        ec = c.receive_data(b"".join(s.data_to_send()))
        assert ec == [Message(m)]


def test_the_configured_level_reaches_the_compressor() -> None:
    """Level 2 by default (docs/performance.md); the level the config gives is
    the one each side compresses with, and the peer inflates any level."""
    assert DeflateConfig().level == 2
    text = "".join(f'{{"id": {i}, "name": "user{i % 97}", "score": {i * 7 % 1000}}}, ' for i in range(200))
    sizes = {}
    for level in (0, 2, 9):
        cfg = DeflateConfig(level=level)
        s, c = pair(cfg, cfg)
        s.send(text)
        out = b"".join(s.data_to_send())
        assert c.receive_data(out) == [Message(text)]
        reference = zlib.compressobj(level, zlib.DEFLATED, -12, 5)
        body = reference.compress(text.encode()) + reference.flush(zlib.Z_SYNC_FLUSH)
        sizes[level] = len(out)
        if level == 0:  # stored blocks: the same bytes from any zlib
            assert out.endswith(body[:-4])
    assert sizes[0] > len(text) > sizes[2] >= sizes[9]


def test_compression_opt_out_per_message() -> None:
    s, c = pair(CFG, CFG)
    s.send("plain", compress=False)
    out = b"".join(s.data_to_send())
    assert out == b"\x81\x05plain"
    assert c.receive_data(out) == [Message("plain")]


def test_no_compression_when_either_side_declines() -> None:
    s, c = pair(None, CFG)
    assert not s.compressed and not c.compressed
    s, c = pair(CFG, None)
    assert not s.compressed and not c.compressed


def compressed_fragments(data: bytes, n: int, op: int = Opcode.BINARY) -> bytes:
    z = zlib.compressobj(wbits=-15)
    body = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]
    step = max(1, -(-len(body) // n))
    parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    return b"".join(
        encode_frame(op if i == 0 else 0, p, fin=i == len(parts) - 1, rsv1=i == 0, mask=KEY)
        for i, p in enumerate(parts)
    )


def server_with_deflate(limit: int | None = 1 << 20) -> Connection:
    params = DeflateParams()
    return Connection(handshake=False, max_message_size=limit, deflate=PerMessageDeflate(params, client=False))


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_fragmented_compressed_message(n: int) -> None:
    s = server_with_deflate()
    data = ("fragmented and compressed " * 200).encode()
    assert s.receive_data(compressed_fragments(data, n, Opcode.TEXT)) == [Message(data.decode())]


@pytest.mark.parametrize("size, ok", [(9999, True), (10000, True), (10001, False)])
@pytest.mark.parametrize("n", [1, 5])
def test_inflation_bounded_by_budget(size: int, ok: bool, n: int) -> None:
    s = server_with_deflate(limit=10000)
    events = s.receive_data(compressed_fragments(b"a" * size, n))
    if ok:
        assert events == [Message(b"a" * size)]
    else:
        assert isinstance(events[-1], Closed) and events[-1].code == 1009


def test_deflate_bomb_is_refused_without_inflating() -> None:
    import tracemalloc

    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    body = b"".join(z.compress(chunk) for _ in range(1024)) + z.flush(zlib.Z_SYNC_FLUSH)
    frame = encode_frame(Opcode.BINARY, body[:-4], rsv1=True, mask=KEY)  # 1 GiB of zeros, ~1 MiB
    s = server_with_deflate(limit=1 << 20)
    tracemalloc.start()
    try:
        events = s.receive_data(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(events[-1], Closed) and events[-1].code == 1009
    assert peak < 8 << 20  # the frame itself and at most the budget, not 1 GiB


@pytest.mark.parametrize(
    "data",
    [
        encode_frame(Opcode.TEXT, b"a", fin=False, rsv1=True, mask=KEY)
        + encode_frame(0, b"b", rsv1=True, mask=KEY),  # RSV1 on a continuation
        encode_frame(Opcode.PING, b"", rsv1=True, mask=KEY),  # RSV1 on a control frame
    ],
)
def test_rsv1_misuse_fails_1002(data: bytes) -> None:
    s = server_with_deflate()
    events = s.receive_data(data)
    assert isinstance(events[-1], Closed) and events[-1].code == 1002


def test_rsv1_without_negotiation_fails_1002() -> None:
    s = Connection(handshake=False)
    (ev,) = s.receive_data(encode_frame(Opcode.TEXT, b"\x00", rsv1=True, mask=KEY))
    assert isinstance(ev, Closed) and ev.code == 1002


def test_corrupt_compressed_data_fails() -> None:
    s = server_with_deflate()
    (ev,) = s.receive_data(encode_frame(Opcode.BINARY, b"\xff\xff\xff\xff", rsv1=True, mask=KEY))
    assert isinstance(ev, Closed) and ev.code == 1002


def test_invalid_utf8_inside_compressed_text_fails_1007() -> None:
    s = server_with_deflate()
    events = s.receive_data(compressed_fragments(b"ok\xff", 1, Opcode.TEXT))
    assert isinstance(events[-1], Closed) and events[-1].code == 1007


# -- client handshake paths ------------------------------------------------------------------------


def test_client_rejects_unoffered_subprotocol_and_bad_accept() -> None:
    c = Connection(client=True, subprotocols=["a"])
    c.connect("h", "/")
    resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n"
    (ev,) = c.receive_data(resp)
    assert isinstance(ev, Rejected) and c.state is State.CLOSED


def test_client_gets_server_rejection_status() -> None:
    s = Connection(origins=["https://ok"])
    c = Connection(client=True)
    c.connect("h", "/")
    ec, es = pump(c, s)
    assert isinstance(es[0], Rejected) and es[0].status == 403
    assert isinstance(ec[0], Rejected) and ec[0].status == 403


def receive(s: Connection, data: bytes, path: str) -> list:
    """Feed ``data`` through ``receive_data``, or through ``receive_into``
    with a sink (what the sink got comes first, as Message events)."""
    if path == "receive_data":
        return s.receive_data(data)
    got: list = []
    events = s.receive_into(data, lambda a, m: got.append(Message(m)), lambda a, e: got.append(e), None)
    return got + list(events)


# RFC 7692 §6.1: only a compressed message has RSV1 on its first frame, so an
# uncompressed text or binary frame is the message's own bytes and the
# message limit holds for it as on a connection without deflate.
@pytest.mark.parametrize("op", [Opcode.TEXT, Opcode.BINARY])
@pytest.mark.parametrize("fin", [True, False], ids=["whole", "first-fragment"])
@pytest.mark.parametrize("path", ["receive_data", "receive_into"])
def test_uncompressed_frame_over_limit_fails_1009_with_deflate(op: int, fin: bool, path: str) -> None:
    frame = encode_frame(op, b"a" * 1124, fin=fin, mask=KEY)
    closes = []
    for s in (server_with_deflate(limit=100), Connection(handshake=False, max_message_size=100)):
        events = receive(s, frame, path)
        assert [type(e) for e in events] == [Closed] and events[0].code == 1009
        assert s.state is State.CLOSED
        closes.append((events[0].code, events[0].reason))
    assert closes[0] == closes[1]  # exactly as without deflate


@pytest.mark.parametrize("path", ["receive_data", "receive_into"])
def test_limit_with_deflate_still_admits_compressed_overhead(path: str) -> None:
    """Incompressible data grows a little when deflated: a compressed frame
    (or continuation frame) a bit over the limit holds a message within it,
    and an uncompressed frame at the limit passes."""
    data = random.Random(7).randbytes(1024)  # deflate cannot shrink these
    one = compressed_fragments(data, 1)
    two = compressed_fragments(data, 2)
    assert len(one) - 8 > 1024  # the compressed payload is over the limit
    plain = encode_frame(Opcode.BINARY, data, mask=KEY)
    for stream in (one, two, plain):
        assert receive(server_with_deflate(limit=1024), stream, path) == [Message(data)]


def deflate_finished(data: bytes) -> bytes:
    """``data`` as a whole DEFLATE stream: its last block has BFINAL set."""
    z = zlib.compressobj(wbits=-15)
    return z.compress(data) + z.flush(zlib.Z_FINISH)


def deflate_synced(z: Any, data: bytes) -> bytes:
    """``data`` through ``z``, sync-flushed and the tail stripped (§7.2.1)."""
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# RFC 7692 §7.2.3.4: a sender may end a message's data with a DEFLATE block
# that has BFINAL set, which ends its DEFLATE stream; the messages after it
# start a new stream, and context takeover goes on within that one.
@pytest.mark.parametrize("first", [
    deflate_finished(b"Hello"),
    bytes.fromhex("f348cdc9c90700") + b"\x00",  # the RFC's example: BFINAL block, then an empty block's header
    deflate_finished(b"Hel") + deflate_finished(b"lo"),  # two whole streams in one message
], ids=["finished", "rfc-example", "two-streams"])
@pytest.mark.parametrize("split", [None, 3, -1], ids=["one-frame", "two-frames", "empty-last-frame"])
def test_messages_after_a_bfinal_block_are_inflated(first: bytes, split: int | None) -> None:
    s = server_with_deflate()
    if split is None:
        stream = encode_frame(Opcode.TEXT, first, rsv1=True, mask=KEY)
    else:
        cut = len(first) if split == -1 else split
        stream = (encode_frame(Opcode.TEXT, first[:cut], fin=False, rsv1=True, mask=KEY)
                  + encode_frame(Opcode.CONTINUATION, first[cut:], mask=KEY))
    z = zlib.compressobj(wbits=-15)
    later = [b"World, hello World", b"World, hello World!", b"hello World"]  # back-references
    for text in later:
        stream += encode_frame(Opcode.TEXT, deflate_synced(z, text), rsv1=True, mask=KEY)
    assert s.receive_data(stream) == [Message("Hello")] + [Message(t.decode()) for t in later]
    assert s.state is State.OPEN
    # And after them, a finished stream again, then a message on a new one.
    stream = encode_frame(Opcode.BINARY, deflate_finished(b"x" * 100), rsv1=True, mask=KEY)
    stream += encode_frame(Opcode.BINARY, deflate_synced(zlib.compressobj(wbits=-15), b"y" * 50), rsv1=True, mask=KEY)
    assert s.receive_data(stream) == [Message(b"x" * 100), Message(b"y" * 50)]


def test_bfinal_streams_stay_within_the_budget() -> None:
    # Two streams in one message: the second counts towards the same budget.
    s = server_with_deflate(limit=150)
    payload = deflate_finished(b"a" * 100) + deflate_finished(b"b" * 100)
    (ev,) = s.receive_data(encode_frame(Opcode.BINARY, payload, rsv1=True, mask=KEY))
    assert isinstance(ev, Closed) and ev.code == 1009


# -- zlib backends: zlib-ng and the standard library, each side either --------------------

_BACKENDS = ["zlib", "zlib_ng.zlib_ng"]


def _backend(name: str) -> ModuleType:
    import importlib

    return importlib.import_module(name)


def test_zlib_ng_is_the_backend_when_installed() -> None:
    import fastframe.deflate as deflate

    pytest.importorskip("zlib_ng")  # in the test extra: CI has it
    assert deflate.backend.__name__ == "zlib_ng.zlib_ng"


@pytest.mark.parametrize("sender", _BACKENDS)
@pytest.mark.parametrize("receiver", _BACKENDS)
@pytest.mark.parametrize(("bits", "takeover"), [(15, True), (12, True), (9, True), (12, False)])
def test_backends_read_each_others_streams(monkeypatch: pytest.MonkeyPatch, sender: str, receiver: str,
                                           bits: int, takeover: bool) -> None:
    """RFC 7692 §7.2: whatever zlib wrote a message, the other side inflates
    it, with any window and with or without context takeover."""
    pytest.importorskip("zlib_ng")
    import fastframe.deflate as deflate

    params = DeflateParams(server_no_context_takeover=not takeover, client_no_context_takeover=not takeover,
                           server_max_window_bits=bits, client_max_window_bits=bits)
    monkeypatch.setattr(deflate, "backend", _backend(sender))
    server = PerMessageDeflate(params, client=False)
    monkeypatch.setattr(deflate, "backend", _backend(receiver))
    client = PerMessageDeflate(params, client=True)
    rnd = random.Random(bits)
    for i in range(200):
        words = [rnd.choice(["alpha", "beta", "gamma", '{"id":', str(i), "}", " "]) for _ in range(rnd.randrange(0, 600))]
        message = "".join(words).encode()
        assert client.decompress(server.compress(message), None, True) == message
        assert server.decompress(client.compress(message), None, True) == message


@pytest.mark.parametrize("backend", _BACKENDS)
def test_backend_errors_and_budget_hold(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    pytest.importorskip("zlib_ng")
    import fastframe.deflate as deflate

    monkeypatch.setattr(deflate, "backend", _backend(backend))
    d = PerMessageDeflate(DeflateParams(), client=False)
    with pytest.raises(ProtocolError):
        d.decompress(b"\xff\xff\xff\xff not deflate", None, True)
    d = PerMessageDeflate(DeflateParams(), client=False)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\x00" * (1 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(ProtocolError) as info:
        d.decompress(data[:-4], 1000, True)
    assert info.value.close_code == 1009


@pytest.mark.parametrize("takeover", [True, False])
def test_zlib_state_exists_only_while_a_message_needs_it(takeover: bool) -> None:
    """An idle compressed connection holds no zlib state (30 KiB with zlib,
    165 KiB with zlib-ng); without context takeover none is kept between
    messages either, and with it the context carries over."""
    params = DeflateParams(server_no_context_takeover=not takeover, client_no_context_takeover=not takeover,
                           server_max_window_bits=12, client_max_window_bits=12)
    server = PerMessageDeflate(params, client=False)
    client = PerMessageDeflate(params, client=True)
    assert server._compressor is None and server._decompressor is None
    text = b'{"id": 1, "user": "alice", "symbol": "ABC", "price": 12.5, "qty": 100} ' * 8
    sizes = []
    for _ in range(3):
        out = server.compress(text)
        sizes.append(len(out))
        assert client.decompress(out, None, True) == text
        assert (server._compressor is not None) is takeover
        assert (client._decompressor is not None) is takeover
        back = client.compress(text)
        assert server.decompress(back[:5], None, False) + server.decompress(back[5:], None, True) == text
        assert (server._decompressor is not None) is takeover
    if takeover:
        assert sizes[1] < sizes[0] // 2  # the window still held the first message
    else:
        assert sizes[0] == sizes[1] == sizes[2]
    # An empty final piece on a fresh side inflates to nothing.
    fresh = PerMessageDeflate(params, client=False)
    assert fresh.decompress(b"", None, True) == b""
