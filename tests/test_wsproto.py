"""fastframe.wsproto: wsproto 1.3's API on fastframe's codec (issue 19).

What consumers rely on (the API, the lazy ``events()``, the states, the
close codes), where the facade is stricter than wsproto and why
(docs/wsproto.md), the memory bounds, and the switch (``install()`` and
``python -m fastframe.wsproto``).  Tests that parse frames run on the
compiled codec and on the pure twin (``facade_codec``).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import subprocess
import sys
import zlib
from types import ModuleType
from typing import Any

import pytest

import fastframe.wsproto as facade
from fastframe import apply_mask
from fastframe.wsproto import WSConnection
from fastframe.wsproto import connection as ff_connection
from fastframe.wsproto.connection import CLIENT, SERVER, Connection, ConnectionState, ConnectionType
from fastframe.wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from fastframe.wsproto.extensions import Extension, PerMessageDeflate
from fastframe.wsproto.frame_protocol import CloseReason, Opcode, RsvBits
from fastframe.wsproto.utilities import LocalProtocolError, RemoteProtocolError


@pytest.fixture
def facade_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run the facade on ``impl``'s codec: compiled (``c``) or pure (``py``)."""
    for name in ("FrameParser", "Utf8Validator", "apply_mask", "encode_frame"):
        monkeypatch.setattr(ff_connection, name, getattr(impl, name))
    return impl


def frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, masked: bool = True) -> bytes:
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def events(conn: Any, data: bytes | None = None) -> list[Any]:
    if data is not None:
        conn.receive_data(data)
    return list(conn.events())


def deflate_pair() -> tuple[Connection, Connection]:
    exts = []
    for _ in range(2):
        ext = PerMessageDeflate()
        ext.finalize("permessage-deflate")
        exts.append(ext)
    return Connection(CLIENT, [exts[0]]), Connection(SERVER, [exts[1]])


# -- the API -------------------------------------------------------------------


def test_surface() -> None:
    assert tuple(int(p) for p in facade.__version__.split(".")) == (1, 3, 2)
    assert facade.ConnectionType is ConnectionType
    assert {m.name: m.value for m in ConnectionState} == {
        "CONNECTING": 0, "OPEN": 1, "REMOTE_CLOSING": 2, "LOCAL_CLOSING": 3, "CLOSED": 4, "REJECTING": 5
    }
    assert CLIENT is ConnectionType.CLIENT and SERVER is ConnectionType.SERVER
    fields = {
        Request: ["host", "target", "extensions", "extra_headers", "subprotocols"],
        AcceptConnection: ["subprotocol", "extensions", "extra_headers"],
        RejectConnection: ["status_code", "headers", "has_body"],
        RejectData: ["data", "body_finished"],
        CloseConnection: ["code", "reason"],
        Message: ["data", "frame_finished", "message_finished"],
        TextMessage: ["data", "frame_finished", "message_finished"],
        BytesMessage: ["data", "frame_finished", "message_finished"],
        Ping: ["payload"],
        Pong: ["payload"],
    }
    for cls, names in fields.items():
        assert [f.name for f in dataclasses.fields(cls)] == names
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    message = BytesMessage(b"x", False)
    assert message == BytesMessage(data=b"x", frame_finished=False, message_finished=True)
    assert repr(message) == "BytesMessage(data=b'x', frame_finished=False, message_finished=True)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.data = b"y"  # type: ignore[misc]
    assert Ping(b"p").response() == Pong(b"p")
    assert CloseConnection(1000, "r").response() == CloseConnection(code=1000, reason="r")
    assert Opcode.PING.iscontrol() and not Opcode.TEXT.iscontrol()
    assert RemoteProtocolError("m", event_hint=RejectConnection()).event_hint == RejectConnection()


def test_close_reasons_are_wsprotos() -> None:
    real = pytest.importorskip("wsproto.frame_protocol")
    if real.__name__ != "wsproto.frame_protocol" or not sys.modules["wsproto"].__version__.startswith("1.3"):
        pytest.skip("the real wsproto 1.3 is not importable here")
    assert {m.name: m.value for m in CloseReason} == {m.name: m.value for m in real.CloseReason}


def test_received_messages_equal_constructed_ones(facade_codec: ModuleType) -> None:
    """The events made on the fast path are the dataclass's own instances."""
    server = Connection(SERVER)
    got = events(server, frame(2, b"abc") + frame(1, "é".encode()))
    assert got == [BytesMessage(b"abc"), TextMessage("é")]
    assert type(got[0]) is BytesMessage and hash(got[0].data) == hash(b"abc")
    assert dataclasses.replace(got[1], data="x") == TextMessage("x")


# -- wsproto's behaviour -----------------------------------------------------------


def test_events_is_lazy(facade_codec: ModuleType) -> None:
    """Events not taken stay queued; the state moves when the close is yielded."""
    server = Connection(SERVER)
    server.receive_data(frame(2, b"1") + frame(2, b"2") + frame(8, struct.pack("!H", 1000)) + frame(2, b"3"))
    assert next(server.events()) == BytesMessage(b"1")
    gen = server.events()
    assert next(gen) == BytesMessage(b"2")
    assert server.state is ConnectionState.OPEN
    close = next(gen)
    assert close == CloseConnection(CloseReason.NORMAL_CLOSURE, "")
    assert server.state is ConnectionState.REMOTE_CLOSING
    assert list(gen) == []  # nothing after the close frame is parsed
    server.receive_data(frame(2, b"4"))
    assert not server._in  # nor kept
    assert server.send(close.response()) == b"\x88\x02\x03\xe8"
    assert server.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more")


def test_nothing_is_parsed_after_a_violation(facade_codec: ModuleType) -> None:
    """Bytes that arrive between the violation and the event that reports
    it are dropped, not parsed ahead of it."""
    server = Connection(SERVER)
    server.receive_data(frame(2, b"ok") + frame(3, b""))  # a reserved opcode
    gen = server.events()
    assert next(gen) == BytesMessage(b"ok")
    server.receive_data(frame(2, b"late"))
    [close] = list(gen)
    assert close.code is CloseReason.PROTOCOL_ERROR
    assert events(server, frame(2, b"later")) == []


def test_close_codes(facade_codec: ModuleType) -> None:
    server = Connection(SERVER)
    [close] = events(server, frame(8, b""))
    assert close.code is CloseReason.NO_STATUS_RCVD and close.reason == ""
    assert server.send(close.response()) == b"\x88\x00"  # the member: no code back
    for code, expected in ((1001, CloseReason.GOING_AWAY), (3000, 3000), (4999, 4999)):
        [close] = events(Connection(SERVER), frame(8, struct.pack("!H", code) + b"why"))
        assert close == CloseConnection(expected, "why")
        assert type(close.code) is type(expected)
    client = Connection(CLIENT)
    client.receive_data(None)
    [close] = events(client)
    assert close.code is CloseReason.ABNORMAL_CLOSURE and close.reason is None
    assert client.state is ConnectionState.CLOSED


def test_pieces_of_a_frame(facade_codec: ModuleType) -> None:
    """A frame comes out as its bytes arrive (frame_finished on the last),
    text decoded up to the last whole character."""
    client = Connection(CLIENT)
    data = frame(1, "aé€".encode(), masked=False)
    got = [events(client, data[i : i + 1]) for i in range(len(data))]
    pieces = [e for batch in got for e in batch]
    assert "".join(p.data for p in pieces) == "aé€"
    assert [p.frame_finished for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert pieces[-1].message_finished
    assert any(p.data == "" for p in pieces)  # a piece inside a character


def test_big_frame_is_never_held(facade_codec: ModuleType) -> None:
    """A 4 MiB frame fed in 64 KiB reads: each read is one event of its
    bytes; nothing is kept between reads (no limit, bounded memory)."""
    server = Connection(SERVER)
    payload = os.urandom(1 << 20) * 4
    data = frame(2, payload)
    seen = 0
    for i in range(0, len(data), 65536):
        got = events(server, data[i : i + 65536])
        assert len(got) <= 1
        for event in got:
            assert payload[seen : seen + len(event.data)] == event.data
            seen += len(event.data)
        assert not server._in and not server._frames  # the facade holds nothing
    assert seen == len(payload) and got[-1].message_finished


def test_deflate_bomb_is_inflated_as_read(facade_codec: ModuleType) -> None:
    """One event carries at most MAX_EVENT_SIZE inflated bytes; the rest is
    inflated only when the next event is asked for."""
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    bomb = (c.compress(b"\0" * (64 << 20)) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(bomb) < 128 << 10
    _, server = deflate_pair()
    server.receive_data(frame(2, bomb, rsv1=True))
    gen = server.events()
    first = next(gen)
    assert len(first.data) == ff_connection.MAX_EVENT_SIZE and not first.message_finished
    total = len(first.data)
    for event in gen:
        assert len(event.data) <= ff_connection.MAX_EVENT_SIZE
        total += len(event.data)
    assert total == 64 << 20 and event.message_finished


def test_compressed_round_trip_with_a_ping_inside(facade_codec: ModuleType) -> None:
    """A ping between the frames of a compressed message (wsproto loses the
    message's compression there; fastframe tracks it per message)."""
    client, server = deflate_pair()
    first = client.send(TextMessage("hello ", message_finished=False))
    ping = client.send(Ping(b"p"))
    last = client.send(TextMessage("world" * 50, message_finished=True))
    got = events(server, first + ping + last)
    assert got[1] == Ping(b"p")
    assert "".join(e.data for e in got if isinstance(e, TextMessage)) == "hello " + "world" * 50
    assert events(client, server.send(TextMessage("back"))) == [TextMessage("back")]


def test_custom_extensions() -> None:
    class Negotiates(Extension):
        name = "x-negotiates"

        def enabled(self) -> bool:
            return True

        def offer(self) -> bool:
            return True

    class Hooks(Negotiates):
        def frame_outbound(self, proto: Any, opcode: Opcode, rsv: RsvBits, data: bytes,
                           fin: bool) -> tuple[RsvBits, bytes]:
            return rsv, data

    Connection(SERVER, [Negotiates()])  # no frame hooks: nothing to run
    with pytest.raises(NotImplementedError, match="frame_outbound"):
        Connection(SERVER, [Hooks()])


# -- where fastframe is stricter -----------------------------------------------------


def test_utf8_fails_fast(facade_codec: ModuleType) -> None:
    """A surrogate's first two bytes end the connection at once (wsproto
    waits for the third)."""
    server = Connection(SERVER)
    [close] = events(server, frame(1, b"ok \xed\xa0", fin=False))
    assert close.code is CloseReason.INVALID_FRAME_PAYLOAD_DATA


def test_close_code_1014_is_accepted(facade_codec: ModuleType) -> None:
    """1014 (Bad Gateway, IANA) is a valid code; wsproto refuses it."""
    [close] = events(Connection(SERVER), frame(8, struct.pack("!H", 1014)))
    assert close.code == 1014 and close.reason == ""


@pytest.mark.parametrize("code", [999, 1004, 1016, 2999, 5000])
def test_close_codes_that_may_not_be_sent(code: int) -> None:
    conn = Connection(SERVER)
    with pytest.raises(LocalProtocolError):
        conn.send(CloseConnection(code))
    assert conn.state is ConnectionState.OPEN


def test_state_rules() -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        conn.send(Request(host="h", target="/"))
    with pytest.raises(ValueError):
        conn.send(Ping(b"x" * 126))
    with pytest.raises(TypeError):
        conn.send(Message(data=1))  # type: ignore[arg-type]
    conn.send(TextMessage("a", message_finished=False))
    with pytest.raises(TypeError):
        conn.send(BytesMessage(b"b"))
    with pytest.raises(TypeError):
        conn.send(CloseConnection(None, "reason"))  # type: ignore[arg-type]
    conn.send(CloseConnection(1000))
    assert conn.state is ConnectionState.LOCAL_CLOSING
    for event in (TextMessage("x"), Ping(), CloseConnection(1000)):
        with pytest.raises(LocalProtocolError):
            conn.send(event)


# -- the handshake ---------------------------------------------------------------


def test_handshake_both_sides(facade_codec: ModuleType) -> None:
    client = WSConnection(CLIENT)
    server = WSConnection(SERVER)
    request = client.send(Request(host="localhost", target="/chat?x=1", subprotocols=["a", "b"],
                                  extensions=[PerMessageDeflate()]))
    # A client that pipelines a frame after its request: delivered once open.
    server.receive_data(request + frame(1, b"early"))
    [req] = events(server)
    assert req.target == "/chat?x=1" and req.subprotocols == ["a", "b"]
    assert req.extensions == ["permessage-deflate; client_max_window_bits=15; server_max_window_bits=15"]
    client.receive_data(server.send(AcceptConnection(subprotocol="b", extensions=[PerMessageDeflate()])))
    [accepted] = events(client)
    assert accepted.subprotocol == "b" and isinstance(accepted.extensions[0], PerMessageDeflate)
    assert events(server) == [TextMessage("early")]
    server.receive_data(client.send(TextMessage("hi" * 100)))
    assert events(server) == [TextMessage("hi" * 100)]
    assert server.state is ConnectionState.OPEN and client.state is ConnectionState.OPEN


def test_handshake_rejects_a_bad_key() -> None:
    server = WSConnection(SERVER)
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    assert info.value.event_hint == RejectConnection()


def test_rejection_with_body() -> None:
    client = WSConnection(CLIENT)
    server = WSConnection(SERVER)
    server.receive_data(client.send(Request(host="h", target="/")))
    events(server)
    data = server.send(RejectConnection(status_code=403, headers=[(b"content-length", b"2")], has_body=True))
    data += server.send(RejectData(b"no"))
    assert server.state is ConnectionState.CLOSED
    assert events(client, data) == [
        RejectConnection(status_code=403, headers=[(b"content-length", b"2")], has_body=True),
        RejectData(b"no", body_finished=False),
        RejectData(b"", body_finished=True),
    ]


# -- the switch --------------------------------------------------------------------


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, check=False)


def test_install_aliases_every_module() -> None:
    result = run_python("-c", (
        "import fastframe.wsproto as f; f.install(); f.install()\n"
        "import wsproto, wsproto.events, wsproto.frame_protocol as fp\n"
        "from wsproto.connection import ConnectionState\n"
        "assert wsproto is f and fp.CloseReason is f.frame_protocol.CloseReason\n"
        "assert ConnectionState is f.connection.ConnectionState and f.installed()\n"
        "import importlib.util; assert importlib.util.find_spec('wsproto') is not None\n"
        "f.uninstall(); assert not f.installed()\n"
        "print('ok')"
    ))
    assert result.stdout.strip() == "ok", result.stderr


def test_install_after_the_real_wsproto_fails_loudly() -> None:
    pytest.importorskip("wsproto")
    result = run_python("-c", "import wsproto; import fastframe.wsproto as f; f.install()")
    assert result.returncode != 0
    assert "wsproto was imported already" in result.stderr


def test_cli() -> None:
    check = run_python("-m", "fastframe.wsproto", "--check")
    assert check.returncode == 0 and "is fastframe.wsproto" in check.stdout
    missing = run_python("-m", "fastframe.wsproto", "no-such-command")
    assert missing.returncode == 2 and "no console script named 'no-such-command'" in missing.stderr
    module = run_python("-m", "fastframe.wsproto", "-m", "json.tool", "--help")
    assert module.returncode == 0


@pytest.mark.parametrize("how", [["pytest"], ["-m", "pytest"]])
def test_cli_switches_spawned_workers(tmp_path: Any, how: list[str]) -> None:
    """hypercorn --workers and uvicorn --workers start their workers with
    multiprocessing's "spawn": a command (or a module) run through the CLI
    has them use the facade too."""
    (tmp_path / "spawned.py").write_text("def child(queue):\n    import wsproto\n    queue.put(wsproto.__name__)\n")
    (tmp_path / "test_spawn.py").write_text(
        "import multiprocessing, spawned\n"
        "def test_child():\n"
        "    ctx = multiprocessing.get_context('spawn')\n"
        "    queue = ctx.Queue()\n"
        "    process = ctx.Process(target=spawned.child, args=(queue,))\n"
        "    process.start()\n"
        "    assert queue.get(timeout=60) == 'fastframe.wsproto'\n"
        "    process.join()\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "fastframe.wsproto", *how, "-q", "-p", "no:cacheprovider", "test_spawn.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
