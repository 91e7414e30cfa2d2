"""Adapters that give every library the same work, for side-by-side runs.

Each ``make_*`` returns a zero-argument callable doing one unit of work (one
mask, one stream parse, one encode), or None when the library is not
installed.  Nothing here is imported by fastframe itself.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import os
from typing import Any, Callable

Work = Callable[[], Any]
KEY = b"\x37\xfa\x21\x3d"


def _try(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def fastframe_codecs() -> dict[str, Any]:
    """The compiled core and the pure twin, imported directly, side by side."""
    out: dict[str, Any] = {}
    c = _try("fastframe._codec_c")
    if c is not None:
        out["fastframe-c"] = c
    out["fastframe-py"] = importlib.import_module("fastframe._codec_py")
    return out


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("fastframe", "picows", "aiohttp", "websockets", "wsproto", "Cython"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


# ------------------------------------------------------------------ masking


def mask_impls() -> dict[str, Callable[[bytearray], Work]]:
    """name -> (buffer -> work that masks it in place)."""
    impls: dict[str, Callable[[bytearray], Work]] = {}
    for name, mod in fastframe_codecs().items():
        impls[name] = lambda buf, m=mod: (lambda: m.mask_inplace(buf, KEY))
    aio = _try("aiohttp._websocket.mask")
    if aio is not None and hasattr(aio, "_websocket_mask_cython"):
        f = aio._websocket_mask_cython
        impls["aiohttp"] = lambda buf: (lambda: f(KEY, buf))
    # memcpy reference: copy into an existing buffer through a memoryview (one
    # pass; bytearray[:] = bytes would copy twice).
    def memcpy(buf: bytearray) -> Work:
        src = bytes(buf)
        dst = memoryview(buf)
        return lambda: dst.__setitem__(slice(None), src)

    impls["memcpy"] = memcpy
    return impls


def apply_mask_impls() -> dict[str, Callable[[bytes], Work]]:
    impls: dict[str, Callable[[bytes], Work]] = {}
    for name, mod in fastframe_codecs().items():
        impls[name] = lambda data, m=mod: (lambda: m.apply_mask(data, KEY))
    sp = _try("websockets.speedups")
    if sp is not None:
        impls["websockets"] = lambda data: (lambda: sp.apply_mask(data, KEY))
    wp = _try("wsproto.frame_protocol")
    if wp is not None:
        # wsproto's masker is stateful (it carries the key phase across
        # calls), so a fresh one per message, as wsproto makes per frame.
        impls["wsproto"] = lambda data: (lambda: wp.XorMaskerSimple(KEY).process(data))
    return impls


# ------------------------------------------------------------------ parsing


def masked_stream(size: int, count: int) -> bytes:
    from fastframe import _codec_py

    return _codec_py.encode_frame(2, bytes(size), mask=KEY) * count


def chunks_of(data: bytes, chunk: int | None) -> list[bytes]:
    if chunk is None:
        return [data]
    return [data[i : i + chunk] for i in range(0, len(data), chunk)]


def parse_impls() -> dict[str, Callable[[list[bytes], int], Work]]:
    """name -> (chunks, frames expected -> work that parses them, as a server)."""
    impls: dict[str, Callable[[list[bytes], int], Work]] = {}
    for name, mod in fastframe_codecs().items():

        def make(chunks: list[bytes], n: int, m: Any = mod) -> Work:
            def work() -> None:
                p = m.FrameParser(expect_mask=True, max_frame_size=None)
                got = 0
                for c in chunks:
                    got += len(p.feed(c))
                assert got == n

            return work

        impls[name] = make
    if _try("picows") is not None:
        impls["picows"] = _picows_parse
    if _try("aiohttp") is not None:
        impls["aiohttp"] = _aiohttp_parse
    if _try("websockets") is not None:
        impls["websockets"] = _websockets_parse
    if _try("wsproto") is not None:
        impls["wsproto"] = _wsproto_parse
    return impls


def _aiohttp_parse(chunks: list[bytes], n: int) -> Work:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

    class Protocol:
        """What the queue needs of aiohttp's protocol for flow control."""

        _reading_paused = False

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

    loop = asyncio.new_event_loop()

    def work() -> None:
        q = WebSocketDataQueue(Protocol(), 1 << 30, loop=loop)  # type: ignore[arg-type]
        r = WebSocketReader(q, 0, False, False)
        for c in chunks:
            r.feed_data(c)
        assert len(q._buffer) == n

    return work


def _websockets_parse(chunks: list[bytes], n: int) -> Work:
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    def work() -> None:
        reader = StreamReader()
        got = 0
        gen = None
        for c in chunks:
            reader.feed_data(c)
            while True:
                if gen is None:
                    gen = Frame.parse(reader.read_exact, mask=True)
                try:
                    next(gen)
                    break  # needs more data
                except StopIteration:
                    got += 1
                    gen = None
        assert got == n

    return work


def _wsproto_parse(chunks: list[bytes], n: int) -> Work:
    from wsproto.frame_protocol import FrameDecoder

    def work() -> None:
        d = FrameDecoder(client=False)
        got = 0
        for c in chunks:
            d.receive_bytes(c)
            # wsproto hands out partial frames as payload arrives; count the
            # completed ones.
            while (f := d.process_buffer()) is not None:
                got += f.frame_finished
        assert got == n

    return work


class _PicowsHarness:
    """A picows server-side WSProtocol driven through its BufferedProtocol API.

    The handshake goes through a real socket pair (picows needs a transport);
    frames are then written into picows's own read buffer with get_buffer()
    and buffer_updated(), as uvloop would.  The listener counts frames and
    never touches payloads: picows's fastest, zero-copy mode.
    """

    def __init__(self) -> None:
        import socket

        import picows
        from picows.picows import WSAutoPingStrategy, WSProtocol

        self.loop = asyncio.new_event_loop()
        self.count = 0
        harness = self

        class Listener(picows.WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                harness.count += 1

        import logging

        logger = logging.getLogger("picows.bench")
        logger.setLevel(logging.WARNING)

        def factory() -> Any:
            return WSProtocol(
                None, None, False, lambda request: Listener(), logger, True, None,
                False, 10, 10, WSAutoPingStrategy.PING_WHEN_IDLE, True, 1 << 62, None, 16384,
            )

        # picows sets TCP options on its socket, so the pair must be TCP.
        lsock = socket.create_server(("127.0.0.1", 0))
        self.b = socket.create_connection(lsock.getsockname())
        self.a, _ = lsock.accept()
        lsock.close()

        async def setup() -> Any:
            _, proto = await self.loop.connect_accepted_socket(factory, self.a)
            return proto

        self.proto = self.loop.run_until_complete(setup())
        self.feed(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.loop.run_until_complete(asyncio.sleep(0))
        self.b.setblocking(False)

    def feed(self, data: bytes) -> None:
        proto = self.proto
        pos = 0
        while pos < len(data):
            buf = proto.get_buffer(-1)
            n = min(len(buf), len(data) - pos)
            buf[:n] = data[pos : pos + n]
            proto.buffer_updated(n)
            pos += n

    def close(self) -> None:
        self.a.close()
        self.b.close()
        self.loop.close()


_picows: _PicowsHarness | None = None


def _picows_parse(chunks: list[bytes], n: int) -> Work:
    global _picows
    if _picows is None:
        _picows = _PicowsHarness()
    h = _picows

    def work() -> None:
        h.count = 0
        for c in chunks:
            h.feed(c)
        assert h.count == n, (h.count, n)

    return work


# ------------------------------------------------------------------ encoding


def encode_impls() -> dict[str, Callable[[bytes, bool], Work]]:
    """name -> (payload, masked -> work that encodes one binary frame).

    picows cannot build a frame without handing it to a transport, so every
    library hands its frame to the same C-level sink (``deque.append``).
    """
    impls: dict[str, Callable[[bytes, bool], Work]] = {}
    for name, mod in fastframe_codecs().items():

        def make(payload: bytes, masked: bool, m: Any = mod) -> Work:
            enc = m.encode_frame
            sink = collections.deque(maxlen=1).append
            if masked:
                return lambda: sink(enc(2, payload, mask=True))
            return lambda: sink(enc(2, payload))

        impls[name] = make
    if _try("picows") is not None:
        impls["picows"] = _picows_encode
    if _try("aiohttp") is not None:
        impls["aiohttp"] = _aiohttp_encode
    if _try("websockets") is not None:
        impls["websockets"] = _websockets_encode
    if _try("wsproto") is not None:
        impls["wsproto"] = _wsproto_encode
    return impls


def _aiohttp_encode(payload: bytes, masked: bool) -> Work:
    """aiohttp's WebSocketWriter writing into the same sink.

    ``send_frame`` is a coroutine that never suspends here (the sink is never
    paused), so it is driven with one ``send(None)``, without an event loop
    iteration, which would cost more than the frame.
    """
    from aiohttp._websocket.writer import WebSocketWriter

    class Protocol:
        _paused = False

    class Sink:
        write = collections.deque(maxlen=1).append

        def is_closing(self) -> bool:
            return False

    w = WebSocketWriter(Protocol(), Sink(), use_mask=masked)  # type: ignore[arg-type]
    send_frame = w.send_frame

    def work() -> None:
        try:
            send_frame(payload, 2).send(None)
        except StopIteration:
            pass

    return work


def _picows_encode(payload: bytes, masked: bool) -> Work:
    """picows builds a frame inside WSTransport.send and writes it.

    The sink transport claims TLS, so picows takes its generic path (frame
    into its buffer, then bytes to transport.write) instead of a send()
    system call; write is the same deque.append the others get.
    """
    import logging
    import socket

    from picows.picows import WSMsgType, WSTransport

    sock = socket.socket()

    class Sink:
        write = collections.deque(maxlen=1).append

        def writelines(self, data: Any) -> None:
            for d in data:
                self.write(d)

        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"socket": sock, "ssl_object": object()}.get(name, default)

    loop = asyncio.new_event_loop()
    t = WSTransport(masked, Sink(), logging.getLogger("picows.bench"), loop)
    send = t.send
    return lambda: send(WSMsgType.BINARY, payload)


def _websockets_encode(payload: bytes, masked: bool) -> Work:
    from websockets.frames import Frame, Opcode

    sink = collections.deque(maxlen=1).append

    def work() -> None:
        sink(Frame(Opcode.BINARY, payload).serialize(mask=masked))

    return work


def _wsproto_encode(payload: bytes, masked: bool) -> Work:
    from wsproto.frame_protocol import FrameProtocol, Opcode

    fp = FrameProtocol(client=masked, extensions=[])
    sink = collections.deque(maxlen=1).append
    return lambda: sink(fp._serialize_frame(Opcode.BINARY, payload))


# ------------------------------------------------------------------ UTF-8


def utf8_corpora() -> dict[str, bytes]:
    size = 64 * 1024
    ascii_ = (b"The quick brown fox jumps over the lazy dog. " * 2000)[:size]
    mixed = ("Grüße, κόσμε, привет, 你好 — ok. " * 2000).encode()[:size]
    while True:  # cut on a code point boundary
        try:
            mixed.decode()
            break
        except UnicodeDecodeError:
            mixed = mixed[:-1]
    four = ("😀🚀🎉🐍" * 5000).encode()[: size - size % 4]
    return {"ascii": ascii_, "mixed": mixed, "4-byte": four}


def utf8_impls() -> dict[str, Callable[[bytes], Work]]:
    impls: dict[str, Callable[[bytes], Work]] = {}
    for name, mod in fastframe_codecs().items():
        impls[name] = lambda data, m=mod: (lambda: m.validate_utf8(data))
    impls["bytes.decode"] = lambda data: (lambda: data.decode("utf-8"))
    return impls


def cpu_pressure() -> str | None:
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return None


def machine() -> dict[str, Any]:
    import platform

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": library_versions(),
    }
