"""Sans-I/O Connection, grouped by RFC 6455 section.  Runs on both codecs
through the selector; the codec itself is tested per implementation."""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import pytest
from conftest import layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parser_utf8 import first_bad

from fastframe import LocalProtocolError, Opcode, encode_frame
from fastframe.handshake import accept_key, build_request
from fastframe.protocol import (
    Closed,
    Connection,
    Fragment,
    Message,
    Opened,
    Ping,
    Pong,
    Rejected,
    Requested,
    State,
)

KEY = b"\x01\x02\x03\x04"


@pytest.fixture(autouse=True)
def codec(protocol_codec: ModuleType) -> ModuleType:
    """Every test here runs on the compiled core and on the pure twin."""
    return protocol_codec
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def frame(op: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return encode_frame(op, payload, fin=fin, mask=KEY)


def server() -> Connection:
    return Connection(client=False, handshake=False)


def sent(conn: Connection) -> bytes:
    return b"".join(conn.data_to_send())


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# -- §4.2 handshake through the connection ------------------------------------------


def test_server_handshake_then_frames_in_same_chunk() -> None:
    c = Connection(subprotocols=["chat"])
    request = build_request("h", "/ws", WS_KEY, subprotocols=["other", "chat"])
    events = c.receive_data(request + frame(Opcode.TEXT, b"hi"))
    assert isinstance(events[0], Opened) and events[0].subprotocol == "chat"
    assert events[1] == Message("hi")
    out = sent(c)
    assert out.startswith(b"HTTP/1.1 101 ")
    assert ("Sec-WebSocket-Accept: " + accept_key(WS_KEY)).encode() in out
    assert b"Sec-WebSocket-Protocol: chat" in out
    assert c.state is State.OPEN and c.request is not None and c.request.path == "/ws"


def test_server_handshake_byte_by_byte() -> None:
    c = Connection()
    data = build_request("h", "/", WS_KEY)
    events: list = []
    for i in range(len(data)):
        events += c.receive_data(data[i : i + 1])
    assert len(events) == 1 and isinstance(events[0], Opened)


def test_server_rejects_bad_version_with_426() -> None:
    c = Connection()
    data = build_request("h", "/", WS_KEY).replace(b"Version: 13", b"Version: 8")
    (ev,) = c.receive_data(data)
    assert isinstance(ev, Rejected) and ev.status == 426
    out = sent(c)
    assert out.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13" in out
    assert c.state is State.CLOSED
    assert c.receive_data(frame(Opcode.TEXT, b"x")) == []


@pytest.mark.parametrize("header, body", [
    (("Transfer-Encoding", "chunked"), b"7\r\n" + frame(Opcode.TEXT, b"x") + b"\r\n0\r\n\r\n"),
    (("Content-Length", "7"), frame(Opcode.TEXT, b"x")),
], ids=["chunked", "content-length"])
def test_server_refuses_an_upgrade_with_a_body(header: tuple[str, str], body: bytes) -> None:
    """RFC 6455 §4.1: the upgrade is a GET; its body would be read as frames."""
    c = Connection()
    (ev,) = c.receive_data(build_request("h", "/", WS_KEY, extra_headers=[header]) + body)
    assert isinstance(ev, Rejected) and ev.status == 400
    assert sent(c).startswith(b"HTTP/1.1 400 ") and c.state is State.CLOSED


def test_server_origin_check() -> None:
    c = Connection(origins=["https://good.example"])
    data = build_request("h", "/", WS_KEY, origin="https://evil.example")
    (ev,) = c.receive_data(data)
    assert isinstance(ev, Rejected) and ev.status == 403


def test_application_can_reject_any_status() -> None:
    c = Connection()
    c.reject(503, "busy")
    assert sent(c).startswith(b"HTTP/1.1 503 ")
    with pytest.raises(LocalProtocolError):
        c.reject(400)


# -- deferred acceptance (the application decides: ASGI) ------------------------------


def test_deferred_accept_holds_frames_until_accepted() -> None:
    request = build_request("h", "/ws?x=1", WS_KEY, subprotocols=["a", "b"])
    data = request + frame(Opcode.TEXT, b"early")  # a frame trailing the request
    # Whole and byte by byte: same outcome.
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        c = Connection(defer_accept=True, compression=None)
        events: list = []
        for chunk in chunks:
            events += c.receive_data(chunk)
        (ev,) = events
        assert isinstance(ev, Requested) and ev.subprotocols == ["a", "b"]
        assert ev.request.path == "/ws?x=1"
        assert c.state is State.CONNECTING and sent(c) == b""  # nothing answered yet
        opened, message = c.accept("b", [("X-Extra", "1")])
        assert isinstance(opened, Opened) and opened.subprotocol == "b"
        assert message == Message("early")
        out = sent(c)
        assert out.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Protocol: b" in out
        assert b"X-Extra: 1" in out and c.state is State.OPEN


def test_deferred_accept_then_reject() -> None:
    c = Connection(defer_accept=True)
    (ev,) = c.receive_data(build_request("h", "/", WS_KEY))
    assert isinstance(ev, Requested)
    (rej,) = c.reject(401, "no", [("X-Why", "token")])
    assert isinstance(rej, Rejected) and rej.status == 401
    out = sent(c)
    assert out.startswith(b"HTTP/1.1 401 ") and b"X-Why: token" in out and out.endswith(b"no")
    with pytest.raises(LocalProtocolError):
        c.accept()
    assert c.receive_data(frame(Opcode.TEXT, b"x")) == []


def test_deferred_accept_negotiates_compression_at_accept() -> None:
    c = Connection(defer_accept=True)
    request = build_request("h", "/", WS_KEY, extensions="permessage-deflate")
    c.receive_data(request)
    (opened,) = c.accept()
    assert opened.compression and b"permessage-deflate" in sent(c)


def test_accept_without_a_deferred_request_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        Connection(defer_accept=True).accept()
    c = Connection()  # accepted at once: nothing to accept later
    c.receive_data(build_request("h", "/", WS_KEY))
    with pytest.raises(LocalProtocolError):
        c.accept()


def test_deferred_accept_bounds_what_it_holds() -> None:
    """§4.1: a client sends no frames before the 101; one that floods is refused."""
    c = Connection(defer_accept=True)
    c.receive_data(build_request("h", "/", WS_KEY))
    assert c.receive_data(b"x" * 65536) == []
    (ev,) = c.receive_data(b"x")
    assert isinstance(ev, Rejected) and ev.status == 400
    assert sent(c).startswith(b"HTTP/1.1 400 ") and c.state is State.CLOSED


def test_deferred_request_still_checked_first() -> None:
    c = Connection(defer_accept=True)
    (ev,) = c.receive_data(build_request("h", "/", WS_KEY).replace(b"Version: 13", b"Version: 8"))
    assert isinstance(ev, Rejected) and ev.status == 426


# -- §5.4 fragmentation ---------------------------------------------------------------


def test_text_message() -> None:
    c = server()
    assert c.receive_data(frame(Opcode.TEXT, "héllo".encode())) == [Message("héllo")]


def test_fragments_with_interleaved_ping() -> None:
    c = server()
    data = frame(Opcode.TEXT, b"Hel", fin=False) + frame(Opcode.PING, b"p") + frame(Opcode.CONTINUATION, b"lo")
    events = c.receive_data(data)
    assert events == [Ping(b"p"), Message("Hello")]
    assert sent(c) == encode_frame(Opcode.PONG, b"p")


def test_fragmented_binary_byte_by_byte() -> None:
    c = server()
    data = b"".join(frame(Opcode.BINARY if i == 0 else 0, bytes([i]) * 3, fin=i == 9) for i in range(10))
    events: list = []
    for i in range(len(data)):
        events += c.receive_data(data[i : i + 1])
    assert events == [Message(b"".join(bytes([i]) * 3 for i in range(10)))]


def test_continuation_without_message_fails_1002() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CONTINUATION, b"x"))
    assert isinstance(ev, Closed) and ev.code == 1002 and ev.error is not None
    out = sent(c)
    assert out[0] == 0x88 and out[2:4] == b"\x03\xea"
    assert c.state is State.CLOSED


def test_new_message_inside_fragmented_one_fails_1002() -> None:
    c = server()
    events = c.receive_data(frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.TEXT, b"b"))
    assert isinstance(events[-1], Closed) and events[-1].code == 1002
    out = sent(c)
    assert out[0] == 0x88 and out[2:4] == b"\x03\xea"


def test_frames_before_violation_are_delivered() -> None:
    c = server()
    events = c.receive_data(frame(Opcode.TEXT, b"ok") + b"\x83\x80" + KEY)
    assert events[0] == Message("ok")
    assert isinstance(events[1], Closed) and events[1].code == 1002


@pytest.mark.parametrize("data, limit, code", [
    (b"\x83\x80" + KEY, 1 << 20, 1002),  # §5.2 reserved opcode
    (b"\xa1\x80" + KEY, 1 << 20, 1002),  # §5.2 RSV2
    (b"\xc1\x80" + KEY, 1 << 20, 1002),  # RSV1 without permessage-deflate (RFC 7692 §6)
    (b"\x09\x80" + KEY, 1 << 20, 1002),  # §5.5 fragmented control frame
    (b"\x89\xfe\x00\x7e" + KEY, 1 << 20, 1002),  # §5.5 control frame over 125 bytes
    (b"\x81\x00", 1 << 20, 1002),  # §5.1 unmasked frame from a client
    (b"\x82\xff\x80" + bytes(7) + KEY, None, 1002),  # §5.2 64-bit length with its MSB set
    (b"\x82\x8b" + KEY, 10, 1009),  # over max_message_size
], ids=["opcode", "rsv2", "rsv1", "fragmented-control", "long-control", "unmasked", "msb", "too-big"])
@pytest.mark.parametrize("path", ["receive_data", "receive_into"])
def test_every_rejection_fails_with_its_code_once(data: bytes, limit: int | None, code: int, path: str) -> None:
    """§7.1.7: the connection is failed with the violation's code, after the
    frames before it; nothing that comes later is parsed."""
    c = Connection(handshake=False, max_message_size=limit)
    got: list = []
    for _ in range(2):
        if path == "receive_data":
            got.extend(c.receive_data(frame(Opcode.BINARY, b"ok") + data))
        else:
            got.extend(c.receive_into(frame(Opcode.BINARY, b"ok") + data,
                                      lambda a, m: got.append(Message(m)), None, None))
    assert [type(e) for e in got] == [Message, Closed] and got[1].code == code
    assert got[0] == Message(b"ok") and c.state is State.CLOSED and c.close_code == code
    assert sent(c) == encode_frame(Opcode.CLOSE, struct.pack("!H", code) + str(got[1].error).encode()[:123])


# -- §8.1 UTF-8 ---------------------------------------------------------------------------


def test_invalid_utf8_single_frame_fails_1007() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.TEXT, b"\xff"))
    assert isinstance(ev, Closed) and ev.code == 1007
    assert sent(c)[2:4] == b"\x03\xef"


def test_invalid_utf8_fails_fast_mid_message() -> None:
    c = server()
    assert c.receive_data(frame(Opcode.TEXT, "κόσμε".encode(), fin=False)) == []
    (ev,) = c.receive_data(frame(0, b"\xf4\x90\x80\x80", fin=False))
    assert isinstance(ev, Closed) and ev.code == 1007


def test_utf8_code_point_split_across_fragments() -> None:
    c = server()
    raw = "😀".encode()
    data = frame(Opcode.TEXT, raw[:1], fin=False) + frame(0, raw[1:3], fin=False) + frame(0, raw[3:])
    assert c.receive_data(data) == [Message("😀")]


KOSME = "κόσμε".encode()


def read(c: Connection, data: bytes, into: bool) -> list:
    """One read through receive_data, or through receive_into with its
    messages routed back as Message events."""
    if not into:
        return c.receive_data(data)
    got: list = []
    events = c.receive_into(data, lambda arg, m: got.append(Message(m)), None, None)
    return got + list(events)


@pytest.mark.parametrize("into", [False, True], ids=["receive_data", "receive_into"])
@pytest.mark.parametrize(
    "chops",
    [
        # Autobahn 6.4.3: a valid chop, a chop with an invalid sequence, the rest.
        [KOSME, b"\xf4\x90\x80\x80", b"edited"],
        # Autobahn 6.4.4: the invalid byte alone in the second chop.
        [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"],
    ],
)
def test_a_chopped_frame_fails_at_the_read_that_brings_the_bad_byte(chops: list, into: bool) -> None:
    """§8.1: the connection fails (1007) in the read that brings the first
    invalid byte, not when the frame's last byte arrives."""
    data = frame(Opcode.TEXT, b"".join(chops))
    cut1 = len(data) - len(b"".join(chops)) + len(chops[0])
    cut2 = cut1 + len(chops[1])
    c = server()
    assert read(c, frame(Opcode.BINARY, b"before") + data[:cut1], into) == [Message(b"before")]
    assert c.state is State.OPEN and sent(c) == b""
    (ev,) = read(c, data[cut1:cut2], into)
    assert isinstance(ev, Closed) and ev.code == 1007
    out = sent(c)
    assert out[0] == 0x88 and out[2:4] == b"\x03\xef"
    assert c.state is State.CLOSED and c.close_code == 1007
    assert read(c, data[cut2:], into) == []


@pytest.mark.parametrize("into", [False, True], ids=["receive_data", "receive_into"])
@pytest.mark.parametrize("fragments", [False, True])
def test_a_chopped_fragment_fails_at_the_read_that_brings_the_bad_byte(into: bool, fragments: bool) -> None:
    """Autobahn 6.4.1/6.4.2 with each fragment cut into chops too."""
    c = Connection(handshake=False, deliver_fragments=fragments)
    first = frame(Opcode.TEXT, KOSME, fin=False)
    second = frame(0, b"ab\xf4\x90\x80\x80cd", fin=False)
    head = len(second) - 8
    events = read(c, first + second[: head + 3], into)
    assert events == ([Fragment(KOSME, True, False, True)] if fragments else [])
    (ev,) = read(c, second[head + 3 : head + 4], into)
    assert isinstance(ev, Closed) and ev.code == 1007
    assert read(c, second[head + 4 :] + frame(0, b"edited"), into) == []


@pytest.mark.parametrize("into", [False, True], ids=["receive_data", "receive_into"])
def test_a_text_message_cut_short_fails_at_its_last_frame(into: bool) -> None:
    c = server()
    data = frame(Opcode.TEXT, b"ok\xe2\x82", fin=False) + frame(0, b"")
    assert read(c, data[:-1], into) == []
    (ev,) = read(c, data[-1:], into)
    assert isinstance(ev, Closed) and ev.code == 1007


def test_the_connection_s_parser_checks_text_and_its_assembler_does_not_again() -> None:
    c = server()
    assert c._parser.check_utf8 is True
    assert c._assembler.utf8_checked is True
    c.receive_data(frame(Opcode.TEXT, b"half", fin=False))
    assert c._assembler._utf8 is None


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


_TEXTS = st.lists(
    st.one_of(
        st.text(max_size=6).map(str.encode),
        st.sampled_from([b"\xed\xa0\x80", b"\xf4\x90", b"\xe0\x80", b"\xc3", b"\x80", b"\xff"]),
    ),
    max_size=5,
).map(b"".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(st.tuples(st.sampled_from(["text", "text", "binary"]), _TEXTS,
                                st.lists(st.integers(0, 40), max_size=3), st.booleans()), max_size=4),
    cuts=st.lists(st.integers(0, 4000), max_size=10),
    into=st.booleans(),
    fragments=st.booleans(),
)
def test_invalid_text_fails_at_the_read_that_brings_its_first_bad_byte(
    messages: list, cuts: list, into: bool, fragments: bool
) -> None:
    """Any messages, text or not UTF-8, in fragments, with pings between them,
    in any chunking: the connection fails with 1007 in the read that holds
    the first byte that makes a text message invalid (or the last byte of
    one cut short), and every message before it is delivered."""
    stream = b""
    fail_at = None
    delivered: list = []
    for kind, data, sizes, ping in messages:
        pieces, pos = [], 0
        for size in sizes:
            pieces.append(data[pos : pos + size])
            pos += size
        pieces.append(data[pos:])
        offsets = []
        for i, piece in enumerate(pieces):
            op = (Opcode.TEXT if kind == "text" else Opcode.BINARY) if i == 0 else Opcode.CONTINUATION
            f = frame(op, piece, fin=i == len(pieces) - 1)
            offsets += range(len(stream) + len(f) - len(piece), len(stream) + len(f))
            stream += f
            if ping and i < len(pieces) - 1:
                stream += frame(Opcode.PING, b"p")
        if kind == "text" and not _decodes(data):
            bad = first_bad(data)
            fail_at = offsets[bad] if bad is not None else len(stream) - 1
            break
        delivered.append(data.decode() if kind == "text" else data)
    points = sorted({c % (len(stream) + 1) for c in cuts}) + [len(stream)]
    c = Connection(handshake=False, deliver_fragments=fragments)
    got: list = []
    start = 0
    closed_in = None
    for p in points:
        events = read(c, stream[start:p], into)
        got += events
        if any(isinstance(e, Closed) for e in events):
            assert closed_in is None
            closed_in = (start, p)
        start = p
    closes = [e for e in got if isinstance(e, Closed)]
    if fail_at is None:
        assert closes == [] and c.state is State.OPEN
    else:
        assert len(closes) == 1 and closes[0].code == 1007
        assert closed_in is not None and closed_in[0] <= fail_at < closed_in[1]
    if not fragments:
        assert [e.data for e in got if isinstance(e, Message)] == delivered


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size, ok", [(99, True), (100, True), (101, False)])
def test_max_message_size_at_limit(size: int, ok: bool) -> None:
    for fragments in (1, 4, size):
        c = Connection(handshake=False, max_message_size=100)
        payload = b"x" * size
        step = max(1, -(-size // fragments))
        parts = [payload[i : i + step] for i in range(0, size, step)]
        data = b"".join(
            frame(Opcode.BINARY if i == 0 else 0, p, fin=i == len(parts) - 1) for i, p in enumerate(parts)
        )
        events = c.receive_data(data)
        if ok:
            assert events == [Message(payload)]
        else:
            assert isinstance(events[-1], Closed) and events[-1].code == 1009


def test_unlimited_message_size() -> None:
    c = Connection(handshake=False, max_message_size=None)
    payload = bytes(3 << 20)
    assert c.receive_data(frame(Opcode.BINARY, payload)) == [Message(payload)]


# -- §5.5 control frames -----------------------------------------------------------------------


def test_ping_gets_pong_with_same_payload() -> None:
    c = server()
    assert c.receive_data(frame(Opcode.PING, b"abc")) == [Ping(b"abc")]
    assert sent(c) == b"\x8a\x03abc"


def test_our_ping_is_acknowledged() -> None:
    c = server()
    c.send_ping(b"n1")
    assert sent(c) == b"\x89\x02n1"
    assert c.receive_data(frame(Opcode.PONG, b"n1")) == [Pong(b"n1", True)]
    assert c.receive_data(frame(Opcode.PONG, b"n1")) == [Pong(b"n1", False)]


# -- §5.5.1 / §7 close ----------------------------------------------------------------------------


def test_peer_close_is_echoed() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE, close_payload(1000, b"bye")))
    assert ev == Closed(1000, "bye", None)
    assert sent(c) == b"\x88\x02\x03\xe8"
    assert c.state is State.CLOSED


def test_peer_empty_close_gets_empty_close() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE))
    assert ev.code == 1005  # type: ignore[attr-defined]
    assert sent(c) == b"\x88\x00"


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_code_fails_1002(code: int) -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE, close_payload(code)))
    assert isinstance(ev, Closed) and ev.code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_valid_close_codes_echoed(code: int) -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE, close_payload(code)))
    assert ev == Closed(code, "", None)
    assert sent(c)[2:4] == struct.pack("!H", code)


def test_close_payload_of_one_byte_fails_1002() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE, b"\x03"))
    assert isinstance(ev, Closed) and ev.code == 1002


def test_close_reason_must_be_utf8() -> None:
    c = server()
    (ev,) = c.receive_data(frame(Opcode.CLOSE, close_payload(1000, b"\xff")))
    assert isinstance(ev, Closed) and ev.code == 1007


def test_we_close_then_peer_answers() -> None:
    c = server()
    c.send_close(1001, "going")
    assert sent(c) == b"\x88\x07\x03\xe9going"
    assert c.state is State.CLOSING
    # §5.5.1: after sending close, no pong is sent for a ping.
    assert c.receive_data(frame(Opcode.PING, b"x")) == [Ping(b"x")]
    assert sent(c) == b""
    (ev,) = c.receive_data(frame(Opcode.CLOSE, close_payload(1001)))
    assert ev == Closed(1001, "", None)
    assert sent(c) == b""
    assert c.state is State.CLOSED


def test_data_after_close_is_ignored() -> None:
    c = server()
    c.receive_data(frame(Opcode.CLOSE, close_payload(1000)) + frame(Opcode.TEXT, b"late"))
    assert c.receive_data(frame(Opcode.TEXT, b"later")) == []


def test_eof_without_close_is_1006() -> None:
    c = server()
    assert c.receive_eof() == [Closed(1006, "", None)]
    assert c.receive_eof() == []


# -- caller misuse: LocalProtocolError, state unchanged ------------------------------------------


def test_send_after_close_refused_state_unchanged() -> None:
    c = server()
    c.send_close()
    for call in (lambda: c.send_text("x"), lambda: c.send_binary(b"x"), c.send_ping, c.send_close):
        with pytest.raises(LocalProtocolError):
            call()
        assert c.state is State.CLOSING


def test_send_text_needs_str() -> None:
    c = server()
    with pytest.raises(TypeError):
        c.send_text(b"bytes")  # type: ignore[arg-type]
    assert c.state is State.OPEN


@pytest.mark.parametrize("code", [1005, 1006, 999, 5000])
def test_send_close_with_reserved_code_refused(code: int) -> None:
    c = server()
    with pytest.raises(LocalProtocolError):
        c.send_close(code)
    assert c.state is State.OPEN


def test_send_close_reason_too_long() -> None:
    c = server()
    with pytest.raises(LocalProtocolError):
        c.send_close(1000, "x" * 124)
    assert c.state is State.OPEN


def test_large_server_frame_is_header_plus_payload() -> None:
    c = server()
    payload = bytes(100_000)
    c.send_binary(payload)
    chunks = c.data_to_send()
    assert len(chunks) == 2 and chunks[1] is payload
    assert b"".join(chunks) == encode_frame(Opcode.BINARY, payload)


def test_client_frames_are_masked() -> None:
    c = Connection(client=True, handshake=False)
    c.send_text("hi")
    out = sent(c)
    assert out[1] == 0x82
    events = c.receive_data(encode_frame(Opcode.TEXT, b"yo"))
    assert events == [Message("yo")]
    (ev,) = Connection(client=True, handshake=False).receive_data(frame(Opcode.TEXT, b"masked"))
    assert isinstance(ev, Closed) and ev.code == 1002


def test_events_are_typed() -> None:
    evs: list[object] = server().receive_data(frame(Opcode.BINARY, b"\x00"))
    assert evs == [Message(b"\x00")] and isinstance(evs[0], Message)


def test_fragment_delivery_for_large_messages() -> None:
    from fastframe.protocol import Fragment

    c = Connection(handshake=False, deliver_fragments=True, max_message_size=10)
    data = frame(Opcode.TEXT, "hé".encode(), fin=False) + frame(0, b"llo", fin=False) + frame(0, b"!")
    assert c.receive_data(data) == [
        Fragment("hé".encode(), True, False, True),
        Fragment(b"llo", False, False, True),
        Fragment(b"!", False, True, True),
    ]
    # Unfragmented messages still come whole; the limit counts whole messages.
    assert c.receive_data(frame(Opcode.BINARY, b"abc")) == [Message(b"abc")]
    events = c.receive_data(frame(Opcode.BINARY, b"123456", fin=False) + frame(0, b"78901"))
    assert events[0] == Fragment(b"123456", True, False, False)
    assert isinstance(events[-1], Closed) and events[-1].code == 1009


def test_fragment_delivery_still_fails_fast_on_bad_utf8() -> None:
    c = Connection(handshake=False, deliver_fragments=True)
    events = c.receive_data(frame(Opcode.TEXT, b"ok", fin=False) + frame(0, b"\xff", fin=False))
    assert isinstance(events[-1], Closed) and events[-1].code == 1007


# -- receive_into: the asyncio layer's per-message fast path ----------------------------------

_PIECES = st.sampled_from([
    frame(Opcode.TEXT, "héllo".encode()),
    frame(Opcode.BINARY, b"\x00" * 300),
    frame(Opcode.TEXT, b"\xff"),                          # 1007
    frame(Opcode.TEXT, b"fr", fin=False),                 # a fragmented message...
    frame(Opcode.CONTINUATION, b"ag", fin=False),
    frame(Opcode.CONTINUATION, b"ment"),                          # ...ends here
    frame(Opcode.PING, b"p"),
    frame(Opcode.PONG, b"q"),
    frame(Opcode.CLOSE, close_payload(1000, b"bye")),
    encode_frame(Opcode.BINARY, b"unmasked"),             # 1002
    b"\x8f\x80",                                          # reserved opcode
])


def _as_log(events: list) -> list:
    return [("message", e.data) if isinstance(e, Message) else repr(e) for e in events]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_PIECES, max_size=10), cuts=st.lists(st.integers(0, 2000), max_size=6),
       reuse=st.booleans())
def test_receive_into_is_receive_data_with_messages_routed(pieces: list, cuts: list, reuse: bool) -> None:
    """Any stream in any chunking: the same messages, events, bytes out and
    state as receive_data, in the same order; also when each chunk is read
    into one buffer over stale bytes and given with its length."""
    stream = b"".join(pieces)
    points = sorted({c % (len(stream) + 1) for c in cuts}) + [len(stream)]
    chunks, prev = [], 0
    for p in points:
        chunks.append(stream[prev:p])
        prev = p
    a, b, d = server(), server(), server()
    expect: list = []
    for chunk in chunks:
        expect += _as_log(a.receive_data(chunk))
    got: list = []
    stale = bytearray(b"\x82\x85" * (len(stream) + 2))
    for chunk in chunks:
        stale[: len(chunk)] = chunk
        got += _as_log(d.receive_data(stale, len(chunk)))
    assert got == expect, "receive_data(buffer, size) reads only the first size bytes"
    out_a = sent(a)
    assert out_a == sent(d) and a.state is d.state and a.close_code == d.close_code
    got = []

    def sink(arg: object, m: object) -> None:
        got.append(("message", m))

    buf = bytearray(b"\x82\x85" * (len(stream) + 2))  # stale bytes that would parse
    for chunk in chunks:
        if reuse:
            buf[: len(chunk)] = chunk
            events = b.receive_into(buf, sink, None, None, len(chunk))
        else:
            events = b.receive_into(chunk, sink, None, None)
        got += _as_log(events)
    assert got == expect
    assert out_a == sent(b) and a.state is b.state and a.close_code == b.close_code


def test_receive_data_size_during_the_handshake() -> None:
    """Before the handshake (the request parser) and while a fragmented
    message is open (the long path), ``size`` counts too: what follows the
    length in the buffer is never read."""
    request = build_request("h", "/ws", WS_KEY)
    stream = request + frame(Opcode.TEXT, b"he", fin=False) + frame(Opcode.CONTINUATION, b"llo")
    buf = bytearray(len(stream) + 64)
    c = Connection()
    events: list = []
    for piece in (stream[:10], stream[10 : len(request) + 3], stream[len(request) + 3 :]):
        buf[:] = piece + b"GARBAGE\r\n\r\n\x88\x80" * 4  # stale bytes a parser would choke on
        events += c.receive_data(buf, len(piece))
    assert isinstance(events[0], Opened)
    assert [e.data for e in events[1:]] == ["hello"]
    assert c.state is State.OPEN


def test_receive_into_sink_error_goes_to_the_hook() -> None:
    c = server()
    errors: list = []

    def sink(arg: object, m: object) -> None:
        raise KeyError(m)

    stream = frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.CONTINUATION, b"b") + frame(Opcode.BINARY, b"c")
    # Nothing but messages: an empty tuple (no list allocated per read).
    assert c.receive_into(stream, sink, lambda arg, exc: errors.append((arg, exc.args)), "ws") == ()
    assert errors == [("ws", ("ab",)), ("ws", (b"c",))]
    assert c.state is State.OPEN


def test_the_per_message_path_runs_the_codec_the_connection_was_made_with(
    protocol_codec: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection takes the codec's per-message functions when it is made
    # (compiled, module globals cost a dict lookup per use on Python 3.12+):
    # what the module holds then is what its fast paths run, so that a codec
    # swapped in (conftest.swap_codec) is the one under test.
    protocol = layer("_protocol")
    calls: list[str] = []
    encode, feed = protocol_codec.encode_frame, protocol_codec.FrameParser.feed_messages

    def spy_encode(*args: Any, **kwargs: Any) -> bytes:
        calls.append("encode")
        return encode(*args, **kwargs)

    def spy_feed(*args: Any) -> Any:
        calls.append("feed")
        return feed(*args)

    before = server()
    monkeypatch.setattr(protocol, "_encode_frame", spy_encode)
    monkeypatch.setattr(protocol, "_feed_messages", spy_feed)
    after = server()
    got: list = []
    for c in (before, after):
        assert c.receive_into(frame(Opcode.BINARY, b"hi"), lambda arg, m: got.append(m), None, None) == ()
        c.send(b"back")
        c.send("text")
    assert got == [b"hi", b"hi"]
    assert sent(before) == sent(after) == encode(Opcode.BINARY, b"back") + encode(Opcode.TEXT, b"text")
    assert calls == ["feed", "encode", "encode"]


# -- §7.1.7 failing, deferred (defer_failure) ----------------------------------------------


@pytest.mark.parametrize("receive", ["receive_data", "receive_into"])
@pytest.mark.parametrize("bad", [
    encode_frame(1, b"x", rsv1=True, mask=KEY),  # RSV1 without an extension (3.2)
    b"\x85\x80" + KEY,  # reserved opcode 5 (4.1.3)
    frame(0, b"lost"),  # a continuation with no message (5.15)
])
def test_server_defers_failure_until_asked(protocol_codec: ModuleType, receive: str, bad: bytes) -> None:
    from fastframe.protocol import Closed, Failing

    c = Connection(client=False, handshake=False, defer_failure=True)
    got: list[Any] = []
    stream = frame(1, b"first") + bad + frame(9, b"ping after")
    if receive == "receive_data":
        events = c.receive_data(stream)
    else:
        events = list(c.receive_into(stream, lambda arg, m: got.append(m), lambda arg, exc: None, None))
    messages = got + [ev.data for ev in events if isinstance(ev, Message)]
    assert messages == ["first"]  # what came before the violation is handed over
    (failing,) = [ev for ev in events if isinstance(ev, Failing)]
    assert failing.code == 1002 and c.failure is failing.error
    assert c.state is State.OPEN and sent(c) == b""  # no close yet, nor a pong after it
    assert c.receive_data(frame(1, b"ignored")) == []  # input is over
    c.send("answer")  # the application answers what came first
    (closed,) = c.fail()
    assert isinstance(closed, Closed) and closed.code == 1002 and c.state is State.CLOSED
    out = sent(c)
    assert out.startswith(encode_frame(1, b"answer")) and out[len(encode_frame(1, b"answer")):][:1] == b"\x88"
    assert out.endswith(b"") and struct.unpack("!H", out[len(encode_frame(1, b"answer")) + 2:][:2])[0] == 1002


def test_without_defer_failure_the_connection_fails_at_once(protocol_codec: ModuleType) -> None:
    from fastframe.protocol import Closed

    c = server()
    events = c.receive_data(frame(1, b"first") + b"\x85\x80" + KEY)
    assert [type(ev) for ev in events] == [Message, Closed] and c.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        c.fail()
