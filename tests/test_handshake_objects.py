"""ServerHandshake and ClientHandshake on their own: each side of the opening
handshake (RFC 6455 §4.1, §4.2), driving the Connection it is given.  Runs
on both codecs; test_protocol.py covers the same through Connection's API."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from conftest import layer

from fastframe import LocalProtocolError, Opcode, encode_frame
from fastframe.handshake import accept_key, build_request, build_response
from fastframe.protocol import Connection, Message, Opened, Rejected, Requested, State

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x01\x02\x03\x04"


@pytest.fixture(autouse=True)
def codec(protocol_codec: ModuleType) -> ModuleType:
    """Every test here runs on the compiled core and on the pure twin."""
    return protocol_codec


def server_side(**kw: Any) -> tuple[Any, Connection]:
    """A fresh ServerHandshake and a server connection for it to complete."""
    return layer("_protocol").ServerHandshake(), Connection(**kw)


def client_side(**kw: Any) -> tuple[Any, Connection]:
    return layer("_protocol").ClientHandshake(), Connection(client=True, **kw)


def sent(conn: Connection) -> bytes:
    return b"".join(conn.data_to_send())


# -- which object, when ---------------------------------------------------------------


def test_a_connection_holds_its_side_s_handshake_until_it_opens() -> None:
    protocol = layer("_protocol")
    server, client = Connection(), Connection(client=True)
    assert type(server._handshake) is protocol.ServerHandshake
    assert type(client._handshake) is protocol.ClientHandshake
    assert Connection(handshake=False)._handshake is None
    server.receive_data(build_request("h", "/", WS_KEY))
    assert server.state is State.OPEN and server._handshake is None


# -- server side (§4.2) ----------------------------------------------------------------


def test_server_parses_in_pieces_then_answers_101() -> None:
    h, conn = server_side(subprotocols=["chat"], compression=None)
    request = build_request("h", "/ws", WS_KEY, subprotocols=["other", "chat"])
    assert h.receive(conn, request[:10]) == [] and conn.state is State.CONNECTING
    opened, message = h.receive(conn, request[10:] + encode_frame(Opcode.TEXT, b"hi", mask=MASK))
    assert isinstance(opened, Opened) and opened.subprotocol == "chat" and not opened.compression
    assert message == Message("hi")  # what followed the request, parsed once open
    assert h.key == WS_KEY and h.parser is None and h.pending is None
    assert conn.state is State.OPEN and conn.subprotocol == "chat" and conn.request is not None
    out = sent(conn)
    assert out.startswith(b"HTTP/1.1 101 ") and f"Sec-WebSocket-Accept: {accept_key(WS_KEY)}".encode() in out


def test_server_agrees_to_compression_for_both_directions() -> None:
    h, conn = server_side()
    (opened,) = h.receive(conn, build_request("h", "/", WS_KEY, extensions="permessage-deflate"))
    assert opened.compression and conn.compressed
    assert conn._assembler.deflate is conn._deflate is not None  # the one object, both ways
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in sent(conn)


def test_process_request_answers_instead() -> None:
    h, conn = server_side(process_request=lambda request: (404, [("X-Why", "none")], b"not here"))
    (ev,) = h.receive(conn, build_request("h", "/missing", WS_KEY))
    assert ev == Rejected(404, "not here") and conn.state is State.CLOSED
    out = sent(conn)
    assert out.startswith(b"HTTP/1.1 404 ") and b"X-Why: none" in out and out.endswith(b"not here")


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (build_request("h", "/", WS_KEY, origin="https://evil.example"), 403),  # §10.2
        (build_request("h", "/", WS_KEY).replace(b"13", b"12"), 426),  # §4.2.2: the version
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 426),  # no upgrade at all
    ],
)
def test_server_refuses_a_bad_request(request_bytes: bytes, status: int) -> None:
    h, conn = server_side(origins=["https://good.example"])
    (ev,) = h.receive(conn, request_bytes)
    assert isinstance(ev, Rejected) and ev.status == status
    assert sent(conn).startswith(f"HTTP/1.1 {status} ".encode()) and conn.state is State.CLOSED


def test_server_defers_and_holds_what_follows() -> None:
    h, conn = server_side(defer_accept=True, compression=None)
    early = encode_frame(Opcode.BINARY, b"early", mask=MASK)
    requested, *rest = h.receive(conn, build_request("h", "/", WS_KEY, subprotocols=["a"]) + early[:3])
    assert isinstance(requested, Requested) and requested.subprotocols == ["a"] and rest == []
    assert h.receive(conn, early[3:]) == []
    assert bytes(h.pending) == early and sent(conn) == b"" and conn.state is State.CONNECTING
    opened, message = h.accept(conn, "a", [("X-Extra", "1")], bytes(h.pending))
    assert isinstance(opened, Opened) and opened.subprotocol == "a" and message == Message(b"early")
    assert h.pending is None and b"X-Extra: 1" in sent(conn)


def test_server_refuses_a_client_that_floods_before_the_101() -> None:
    h, conn = server_side(defer_accept=True)
    h.receive(conn, build_request("h", "/", WS_KEY))
    assert h.receive(conn, bytes(1 << 16)) == []  # held, up to the bound
    (ev,) = h.receive(conn, b"x")
    assert isinstance(ev, Rejected) and ev.status == 400 and h.pending is None
    assert conn.state is State.CLOSED


def test_server_reject() -> None:
    h, conn = server_side()
    assert h.reject(conn, 503, "busy\n", [("Retry-After", "1")]) == [Rejected(503, "busy")]
    out = sent(conn)
    assert out.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in out and conn.state is State.CLOSED
    with pytest.raises(LocalProtocolError):  # the state table: a connection is rejected once
        h.reject(conn, 400)


# -- client side (§4.1) ----------------------------------------------------------------


def answer(key: str, *headers: tuple[str, str]) -> bytes:
    return build_response(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                ("Sec-WebSocket-Accept", accept_key(key)), *headers])


def test_client_sends_the_request_then_opens() -> None:
    h, conn = client_side(subprotocols=["chat"], compression=None)
    assert h.parser is None
    h.connect(conn, "example.com", "/ws", "https://example.com")
    request = sent(conn)
    assert request.startswith(b"GET /ws HTTP/1.1\r\n") and h.key and f"Sec-WebSocket-Key: {h.key}".encode() in request
    assert b"Origin: https://example.com" in request and b"Sec-WebSocket-Protocol: chat" in request
    assert h.parser is not None
    response = answer(h.key, ("Sec-WebSocket-Protocol", "chat"))
    assert h.receive(conn, response[:5]) == []
    opened, message = h.receive(conn, response[5:] + encode_frame(Opcode.TEXT, b"hi"))
    assert isinstance(opened, Opened) and opened.subprotocol == "chat" and opened.response is conn.response
    assert message == Message("hi") and conn.state is State.OPEN and h.parser is None


def test_client_offers_and_accepts_compression() -> None:
    h, conn = client_side()
    h.connect(conn, "h", "/", None)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in sent(conn)
    agreed = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    (opened,) = h.receive(conn, answer(h.key, ("Sec-WebSocket-Extensions", agreed)))
    assert opened.compression and conn._assembler.deflate is conn._deflate is not None


def test_client_receives_before_connect_is_a_local_error() -> None:
    h, conn = client_side()
    with pytest.raises(LocalProtocolError):
        h.receive(conn, answer(WS_KEY))


@pytest.mark.parametrize(
    "compression, response, status",
    [
        (None, lambda key: answer(key, ("Sec-WebSocket-Extensions", "permessage-deflate")), 101),  # §4.1 step 5
        (None, lambda key: answer(WS_KEY), 101),  # §4.1 step 4: the wrong accept key
        (None, lambda key: build_response(403, [], b"no"), 403),  # §4.1 step 1: not 101
    ],
)
def test_client_refuses_a_bad_response(compression: Any, response: Any, status: int) -> None:
    h, conn = client_side(compression=compression)
    h.connect(conn, "h", "/", None)
    (ev,) = h.receive(conn, response(h.key))
    assert isinstance(ev, Rejected) and ev.status == status
    assert conn.state is State.CLOSED and conn.response is not None  # kept, for the error's details
