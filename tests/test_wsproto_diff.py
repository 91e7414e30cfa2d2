"""Differential tests: fastframe.wsproto against the real wsproto.

The same byte streams, cut at the same places, and the same sends go
through wsproto 1.3 and through the facade; the events (with their
chunking: ``frame_finished``/``message_finished`` and the pieces of a frame
that arrive) and the bytes sent must be equal.  Server frames are compared
byte for byte (hypercorn's tests compare them), compressed ones included;
client frames after unmasking (their keys are random).

Streams that break the protocol are compared by the close code that ends
them, where the two agree by design; the cases where fastframe is stricter
(docs/wsproto.md) are in test_wsproto.py.  Every test runs on the compiled
codec and on the pure twin.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

wsproto = pytest.importorskip("wsproto")

import wsproto.connection as real_connection  # noqa: E402
import wsproto.events as real_events  # noqa: E402
import wsproto.extensions as real_extensions  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_wsproto import facade_codec, frame  # noqa: E402, F401 - the fixture, used below

import fastframe.wsproto as ff_wsproto  # noqa: E402
import fastframe.wsproto.connection as ff_connection  # noqa: E402
import fastframe.wsproto.events as ff_events  # noqa: E402
import fastframe.wsproto.extensions as ff_extensions  # noqa: E402

# Every test here runs on the compiled codec and on the pure twin.
pytestmark = pytest.mark.usefixtures("facade_codec")

if wsproto.__name__ != "wsproto" or not wsproto.__version__.startswith("1.3"):
    pytest.skip("needs the real wsproto 1.3 beside fastframe.wsproto", allow_module_level=True)

IMPLS: dict[str, tuple[Any, Any, Any]] = {
    "wsproto": (real_connection, real_events, real_extensions),
    "facade": (ff_connection, ff_events, ff_extensions),
}


def _frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, key: bytes | None = None) -> bytes:
    """A frame as a client (``key`` given: masked) or a server sends it."""
    return frame(opcode, payload, fin, rsv1, masked=key is not None)


def _pair(side: str, deflate: dict[str, Any] | None = None) -> dict[str, Any]:
    """A wsproto and a facade Connection on the same side, negotiated alike."""
    out = {}
    for name, (conn_mod, _, ext_mod) in IMPLS.items():
        extensions = []
        if deflate is not None:
            ext = ext_mod.PerMessageDeflate(**deflate)
            ext.finalize("permessage-deflate; " + ext.offer())
            extensions.append(ext)
        out[name] = conn_mod.Connection(getattr(conn_mod.ConnectionType, side), extensions)
    return out


def _norm(event: Any) -> tuple[Any, ...]:
    """An event as comparable data: its class name and fields."""
    name = type(event).__name__
    fields = tuple(sorted(vars(event).items()))
    return (name, *fields)


def _feed(pair: dict[str, Any], chunks: list[bytes]) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {name: [] for name in pair}
    for chunk in chunks:
        for name, conn in pair.items():
            if conn.state in (real_connection.ConnectionState.CLOSED, ff_connection.ConnectionState.CLOSED):
                continue
            conn.receive_data(chunk)
            seen[name].extend((_norm(e), conn.state.name) for e in conn.events())
    return seen


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


# -- messages as a client sends them -------------------------------------------

_text = st.text(max_size=300)
_blob = st.binary(max_size=300)
_big = st.integers(min_value=126, max_value=70000).map(os.urandom)
_message = st.one_of(
    st.tuples(st.just("text"), _text),
    st.tuples(st.just("bytes"), st.one_of(_blob, _big)),
    st.tuples(st.just("ping"), st.binary(max_size=125)),
    st.tuples(st.just("pong"), st.binary(max_size=125)),
    st.tuples(st.just("frag"), st.lists(_text, min_size=1, max_size=4)),
    st.tuples(st.just("fragb"), st.lists(_blob, min_size=1, max_size=4)),
)
_close = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([1000, 1001, 1003, 1008, 1011, 1012, 3000, 4999]), st.text(max_size=40)),
)


def _client_stream(messages: list[tuple[str, Any]], close: Any, *, ping_inside: bool = False) -> bytes:
    key = os.urandom(4)
    out = []
    for kind, value in messages:
        if kind == "text":
            out.append(_frame(1, value.encode(), key=key))
        elif kind == "bytes":
            out.append(_frame(2, value, key=key))
        elif kind == "ping":
            out.append(_frame(9, value, key=key))
        elif kind == "pong":
            out.append(_frame(10, value, key=key))
        else:
            op = 1 if kind == "frag" else 2
            raw = [v.encode() if isinstance(v, str) else v for v in value]
            if kind == "frag" and len(raw) > 1:
                # Cut the text inside a character sometimes (valid as a whole).
                joined = b"".join(raw)
                raw = [joined[: len(joined) // 2], joined[len(joined) // 2 :]]
            for i, part in enumerate(raw):
                out.append(_frame(op if i == 0 else 0, part, fin=i == len(raw) - 1, key=key))
                if ping_inside and i == 0:
                    out.append(_frame(9, b"mid", key=key))
    if close is not None:
        code, reason = close
        out.append(_frame(8, struct.pack("!H", code) + reason.encode()[:123], key=key))
        out.append(_frame(1, b"after the close: never parsed", key=key))
    return b"".join(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(_message, max_size=8), close=_close, cuts=st.lists(st.integers(0, 10**6), max_size=12),
       ping_inside=st.booleans())
def test_server_receives_the_same_events(messages: list[Any], close: Any, cuts: list[int], ping_inside: bool
) -> None:
    stream = _client_stream(messages, close, ping_inside=ping_inside)
    seen = _feed(_pair("SERVER"), _cut(stream, cuts))
    assert seen["facade"] == seen["wsproto"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(_message, max_size=6), cuts=st.lists(st.integers(0, 10**6), max_size=8),
       params=st.sampled_from([{}, {"client_no_context_takeover": True, "server_no_context_takeover": True},
                               {"client_max_window_bits": 9, "server_max_window_bits": 10}]))
def test_compressed_both_ways(messages: list[Any], cuts: list[int],
                              params: dict[str, Any]) -> None:
    """Server frames compressed are wsproto's bytes; the client's compressed
    frames (made by a real wsproto client) give the same events."""
    servers = _pair("SERVER", params)
    real_client = _pair("CLIENT", params)["wsproto"]
    stream = b""
    for kind, value in messages:
        if kind in ("frag", "fragb"):
            for i, part in enumerate(value):
                event = real_events.Message(data=part, message_finished=i == len(value) - 1)
                sent = {n: s.send(ff_events.Message(data=part, message_finished=i == len(value) - 1)
                                  if n == "facade" else event) for n, s in servers.items()}
                assert sent["facade"] == sent["wsproto"]
                stream += real_client.send(event)
            continue
        cls = {"text": "TextMessage", "bytes": "BytesMessage", "ping": "Ping", "pong": "Pong"}[kind]
        arg = {"data": value} if kind in ("text", "bytes") else {"payload": value}
        sent = {n: s.send(getattr(IMPLS[n][1], cls)(**arg)) for n, s in servers.items()}
        assert sent["facade"] == sent["wsproto"]
        assert type(sent["facade"]) is bytes
        stream += real_client.send(getattr(real_events, cls)(**arg))
    seen = _feed(servers, _cut(stream, cuts))
    assert seen["facade"] == seen["wsproto"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(_message, max_size=8), close=_close, cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_client_receives_the_same_events(messages: list[Any], close: Any,
                                         cuts: list[int]) -> None:
    """What a server sends (the facade's bytes, equal to wsproto's) parsed
    by a client of each kind."""
    servers = _pair("SERVER")
    stream = b""
    for kind, value in messages:
        if kind in ("frag", "fragb"):
            for i, part in enumerate(value):
                last = i == len(value) - 1
                sent = {n: s.send(IMPLS[n][1].Message(data=part, message_finished=last)) for n, s in servers.items()}
                assert sent["facade"] == sent["wsproto"]
                stream += sent["facade"]
            continue
        cls = {"text": "TextMessage", "bytes": "BytesMessage", "ping": "Ping", "pong": "Pong"}[kind]
        arg = {"data": value} if kind in ("text", "bytes") else {"payload": value}
        sent = {n: s.send(getattr(IMPLS[n][1], cls)(**arg)) for n, s in servers.items()}
        assert sent["facade"] == sent["wsproto"]
        stream += sent["facade"]
    if close is not None:
        sent = {n: s.send(IMPLS[n][1].CloseConnection(*close)) for n, s in servers.items()}
        assert sent["facade"] == sent["wsproto"]
        stream += sent["facade"]
    seen = _feed(_pair("CLIENT"), _cut(stream, cuts))
    assert seen["facade"] == seen["wsproto"]


@pytest.mark.parametrize(
    "event",
    [
        ("CloseConnection", (1000, "bye")),
        ("CloseConnection", (1001, None)),
        ("CloseConnection", (1005, None)),  # the int: wsproto sends 1000
        ("CloseConnection", ("NO_STATUS_RCVD", None)),  # the member: no code
        ("CloseConnection", (1006, "x")),
        ("CloseConnection", (1015, None)),
        ("CloseConnection", (4000, "é" * 100)),  # cut to 123 bytes on a character
        ("Ping", (b"",)),
        ("Pong", (b"x" * 125,)),
        ("TextMessage", ("",)),
        ("BytesMessage", (bytearray(b"\x00" * 65536),)),
        ("BytesMessage", (memoryview(b"abc"),)),
        ("Message", ("text through the base class",)),
    ],
)
@pytest.mark.parametrize("side", ["SERVER", "CLIENT"])
def test_sends_are_wsprotos_bytes(event: tuple[str, tuple[Any, ...]], side: str) -> None:
    name, args = event
    outputs = {}
    for impl_name, (_, ev_mod, _) in IMPLS.items():
        given = args
        if args and args[0] == "NO_STATUS_RCVD":
            reasons = (real_connection if impl_name == "wsproto" else ff_connection).CloseReason
            given = (reasons.NO_STATUS_RCVD, *args[1:])
        conn = _pair(side)[impl_name]
        outputs[impl_name] = conn.send(getattr(ev_mod, name)(*given))
        if name == "CloseConnection":
            assert conn.state.name == "LOCAL_CLOSING"
        if side == "SERVER":
            continue
        # Client frames: compare what a wsproto server reads from them.
        server = real_connection.Connection(real_connection.ConnectionType.SERVER)
        server.receive_data(outputs[impl_name])
        outputs[impl_name] = [_norm(e) for e in server.events()]
    assert outputs["facade"] == outputs["wsproto"]


def _violations() -> list[tuple[str, bytes, int]]:
    k = os.urandom(4)
    return [
        ("reserved opcode", _frame(3, b"", key=k), 1002),
        ("unmasked", _frame(1, b"hi"), 1002),
        ("fragmented control", _frame(9, b"", fin=False, key=k), 1002),
        ("long control", _frame(9, b"x" * 126, key=k), 1002),
        ("rsv1 without deflate", _frame(1, b"x", rsv1=True, key=k), 1002),
        ("continuation first", _frame(0, b"x", key=k), 1002),
        ("new message inside one", _frame(1, b"a", fin=False, key=k) + _frame(1, b"b", key=k), 1002),
        ("bad utf-8", _frame(1, b"\xff", key=k), 1007),
        ("bad utf-8 across frames", _frame(1, b"\xce", fin=False, key=k) + _frame(0, b"A", key=k), 1007),
        ("1-byte close", _frame(8, b"\x03", key=k), 1002),
        ("close code 999", _frame(8, struct.pack("!H", 999), key=k), 1002),
        ("close code 1004", _frame(8, struct.pack("!H", 1004), key=k), 1002),
        ("close code 1005", _frame(8, struct.pack("!H", 1005), key=k), 1002),
        ("close code 2999", _frame(8, struct.pack("!H", 2999), key=k), 1002),
        ("close code 5000", _frame(8, struct.pack("!H", 5000), key=k), 1002),
        ("close reason not utf-8", _frame(8, struct.pack("!H", 1000) + b"\xff", key=k), 1007),
    ]


@pytest.mark.parametrize("case", _violations(), ids=lambda c: c[0])
@pytest.mark.parametrize("split", [False, True])
def test_violations_end_with_the_same_code(case: tuple[str, bytes, int],
                                           split: bool) -> None:
    _, data, code = case
    pair = _pair("SERVER")
    good = _frame(2, b"before", key=os.urandom(4))
    chunks = [good + data] if not split else [bytes([b]) for b in good + data]
    results = {}
    for name, conn in pair.items():
        events = []
        for chunk in chunks:
            conn.receive_data(chunk)
            events.extend(conn.events())
        results[name] = events
        assert conn.state.name == "OPEN"  # wsproto leaves the answer to the caller
    for name, events in results.items():
        binary = [e for e in events if type(e).__name__ == "BytesMessage"]
        assert b"".join(e.data for e in binary) == b"before", name
        assert binary[-1].message_finished, name
        assert type(events[-1]).__name__ == "CloseConnection", name
        assert events[-1].code == code, (name, events[-1])
    # Nothing after the violation is parsed, by either.
    for name, conn in pair.items():
        conn.receive_data(_frame(2, b"later", key=os.urandom(4)))
        assert list(conn.events()) == [], name


# -- the handshake -----------------------------------------------------------------

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nX-Extra: 1\r\n\r\n"
)


def _ws(name: str, side: str) -> Any:
    module = wsproto if name == "wsproto" else ff_wsproto
    return module.WSConnection(getattr(IMPLS[name][0].ConnectionType, side))


@pytest.mark.parametrize("answer", ["accept", "reject", "reject with body"])
def test_server_handshake_bytes(answer: str) -> None:
    """The same request gives the same Request event, and the answers the
    same bytes (the 101 with the negotiated permessage-deflate included)."""
    seen: dict[str, list[Any]] = {}
    for name, (_, ev, ext) in IMPLS.items():
        server = _ws(name, "SERVER")
        server.receive_data(REQUEST)
        out: list[Any] = [_norm(e) for e in server.events()]
        if answer == "accept":
            out.append(server.send(ev.AcceptConnection(subprotocol="superchat", extensions=[ext.PerMessageDeflate()],
                                                       extra_headers=[(b"X-Server", b"ff")])))
            out.append(server.send(ev.TextMessage("compressed " * 20)))
        elif answer == "reject":
            out.append(server.send(ev.RejectConnection(status_code=403)))
        else:
            out.append(server.send(ev.RejectConnection(status_code=400, headers=[(b"content-length", b"3")],
                                                       has_body=True)))
            out.append(server.send(ev.RejectData(b"bad")))
        out.append(server.state.name)
        seen[name] = out
    assert seen["facade"] == seen["wsproto"]


def test_client_handshake_bytes() -> None:
    """The same Request gives the same request bytes, but for the random key."""
    seen = {}
    for name, (_, ev, ext) in IMPLS.items():
        client = _ws(name, "CLIENT")
        data = client.send(ev.Request(host="example.com", target="/x?y=1", subprotocols=["a", "b"],
                                      extensions=[ext.PerMessageDeflate(client_max_window_bits=10)],
                                      extra_headers=[(b"Origin", b"http://example.com")]))
        head, _, tail = data.partition(b"Sec-WebSocket-Key: ")
        seen[name] = head + tail[tail.index(b"\r\n"):]
    assert seen["facade"] == seen["wsproto"]
