"""Sans-I/O opening handshake: HTTP/1.1 Upgrade parsing and building (RFC 6455 §4).

Rules of this module: no sockets, no asyncio, no clock.  Bytes go in, values
and bytes come out.  Every input is bounded: a request line or header line is
at most 8 KiB, a head at most 16 KiB with at most 128 headers; past that the
parser raises :class:`HandshakeError` with status 431 (headers too large) or
400, before buffering more.

Why a parser of our own rather than httptools (llhttp) or h11: the handshake
needs one request head with no body, and strictness matters more than
generality.  httptools would add a compiled dependency and a callback API
for four fields; h11 is pure Python and slower than this line splitter.
This one is small enough to read in one sitting, rejects what RFC 9112 lets
a server reject (obsolete line folding, bare CR, whitespace before the
colon, control characters), and ``tests/test_handshake.py`` fuzzes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

from .exceptions import HandshakeError, LocalProtocolError

__all__ = [
    "GUID",
    "HandshakeError",
    "Headers",
    "Request",
    "RequestParser",
    "Response",
    "ResponseParser",
    "accept_key",
    "build_request",
    "build_response",
    "check_request",
    "check_response",
    "generate_key",
    "parse_header_tokens",
]

#: RFC 6455 §1.3: the GUID concatenated with the key before hashing.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MAX_LINE = 8 * 1024
MAX_HEAD = 16 * 1024
MAX_HEADERS = 128

# RFC 9110 §5.6.2: token characters.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values are visible characters, spaces and tabs
# (obs-text, bytes >= 0x80, is tolerated as opaque).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_REQUEST_TARGET = re.compile(rb"[\x21-\x7e]+")
# What a request target keeps as it is: RFC 3986's delimiters (but "#", which
# would start a fragment), as websockets keeps them, and "%" (escapes already
# made stay as they are, as browsers leave them).
_TARGET_SAFE = ":/?[]@!$&'()*+,;=%"


class Headers:
    """HTTP header fields in order, looked up case-insensitively."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._index.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        values = self._index.get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class Request:
    """An HTTP request head."""

    method: str
    path: str
    headers: Headers = field(default_factory=Headers)


@dataclass
class Response:
    """An HTTP response head (and body, for rejections)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


def accept_key(key: str | bytes) -> str:
    """Return the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (§4.2.2)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


def generate_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64 (§4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def parse_header_tokens(values: Iterable[str]) -> list[str]:
    """Split comma-separated header values into lower-cased tokens."""
    out = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                out.append(part.lower())
    return out


class _HeadParser:
    """Bounded, incremental parser of an HTTP/1.1 head (start line + fields)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._done = False

    def feed(self, data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes] | None:
        """Return (start line, fields, bytes after the head) once complete.

        Raises:
            HandshakeError: 431 or 400 when a limit is passed or the syntax is
                wrong.
        """
        if self._done:
            raise LocalProtocolError("the head was already parsed")
        scan_from = max(0, len(self._buf) - 3)
        self._buf += data
        end = self._buf.find(b"\r\n\r\n", scan_from)
        if end < 0:
            # Enforce the limits on what is buffered, not only when it ends.
            if len(self._buf) > MAX_HEAD:
                raise HandshakeError(431, "request head larger than 16 KiB")
            last = self._buf.rfind(b"\r\n")
            if len(self._buf) - (last + 2 if last >= 0 else 0) > MAX_LINE:
                raise HandshakeError(431, "header line longer than 8 KiB")
            return None
        if end + 4 > MAX_HEAD:
            raise HandshakeError(431, "request head larger than 16 KiB")
        head = bytes(self._buf[:end])
        rest = bytes(self._buf[end + 4 :])
        self._buf = bytearray()
        self._done = True
        lines = head.split(b"\r\n")
        if len(lines) - 1 > MAX_HEADERS:
            raise HandshakeError(431, f"more than {MAX_HEADERS} header fields")
        fields = []
        for line in lines[1:]:
            if len(line) > MAX_LINE:
                raise HandshakeError(431, "header line longer than 8 KiB")
            if b"\r" in line or b"\n" in line:
                raise HandshakeError(400, "bare CR or LF in a header line")
            # RFC 9112 §5.2: obsolete line folding is rejected.
            if line[:1] in (b" ", b"\t"):
                raise HandshakeError(400, "obsolete line folding in headers")
            name, sep, value = line.partition(b":")
            # RFC 9112 §5.1: no whitespace between the name and the colon.
            if not sep or not _TOKEN.fullmatch(name):
                raise HandshakeError(400, f"malformed header line {line[:40]!r}")
            value = value.strip(b" \t")
            if _BAD_VALUE.search(value):
                raise HandshakeError(400, f"control character in header {name.decode()!r}")
            fields.append((name, value))
        start = lines[0]
        if len(start) > MAX_LINE:
            raise HandshakeError(431 if self._is_request else 400, "start line longer than 8 KiB")
        return start, fields, rest

    _is_request = True


def _headers(fields: list[tuple[bytes, bytes]]) -> Headers:
    return Headers((n.decode("ascii"), v.decode("latin-1")) for n, v in fields)


class RequestParser(_HeadParser):
    """Incremental parser of the client's opening handshake request."""

    def feed_request(self, data: bytes) -> tuple[Request, bytes] | None:
        """Feed bytes; return the request and any bytes after it once complete.

        Raises:
            HandshakeError: 400 or 431 for a malformed or oversized head.
        """
        parsed = self.feed(data)
        if parsed is None:
            return None
        start, fields, rest = parsed
        parts = start.split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _REQUEST_TARGET.fullmatch(parts[1]):
            raise HandshakeError(400, f"malformed request line {start[:60]!r}")
        method, target, version = parts
        if version != b"HTTP/1.1":
            # RFC 6455 §4.1: the method must be GET and the version at least 1.1.
            raise HandshakeError(400, f"unsupported HTTP version {version[:16]!r}; need HTTP/1.1")
        return Request(method.decode("ascii"), target.decode("ascii"), _headers(fields)), rest


class ResponseParser(_HeadParser):
    """Incremental parser of the server's handshake response."""

    _is_request = False

    def feed_response(self, data: bytes) -> tuple[Response, bytes] | None:
        """Raises: HandshakeError (status 0) for a malformed response."""
        try:
            parsed = self.feed(data)
        except HandshakeError as exc:
            raise HandshakeError(0, f"invalid handshake response: {exc}") from None
        if parsed is None:
            return None
        start, fields, rest = parsed
        parts = start.split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not (len(parts[1]) == 3 and parts[1].isdigit()):
            raise HandshakeError(0, f"malformed status line {start[:60]!r}")
        reason = parts[2].decode("latin-1") if len(parts) == 3 else ""
        return Response(int(parts[1]), reason, _headers(fields)), rest


def check_request(request: Request) -> str:
    """Validate a WebSocket upgrade request (RFC 6455 §4.2.1); return its key.

    Raises:
        HandshakeError: 400 naming what is wrong (a body announced by
            Transfer-Encoding or Content-Length among it), 405 for a method
            other than GET, or 426 with ``Sec-WebSocket-Version: 13`` for
            another version.
    """
    h = request.headers
    if request.method != "GET":
        raise HandshakeError(405, f"method {request.method} not allowed; use GET", [("Allow", "GET")])
    # RFC 6455 §4.1: the handshake is a GET, whose content has no meaning
    # (RFC 9110 §9.3.1); after the 101 a body would be read as frames.  So
    # any framing that announces one (RFC 9112 §6.1-§6.3) is refused.
    if h.get_all("Transfer-Encoding") or any(not v or v.strip("0") for v in h.get_all("Content-Length")):
        raise HandshakeError(400, "an upgrade request must not have a body (Transfer-Encoding or Content-Length)")
    if len(h.get_all("Host")) != 1:
        raise HandshakeError(400, "missing or repeated Host header")
    if "websocket" not in parse_header_tokens(h.get_all("Upgrade")):
        raise HandshakeError(
            426 if not h.get_all("Upgrade") else 400,
            "missing Upgrade: websocket header; this is a WebSocket endpoint",
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
    if "upgrade" not in parse_header_tokens(h.get_all("Connection")):
        raise HandshakeError(400, "Connection header does not contain 'upgrade'")
    keys = h.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise HandshakeError(400, "missing or repeated Sec-WebSocket-Key header")
    key = keys[0]
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    versions = h.get_all("Sec-WebSocket-Version")
    if versions != ["13"]:
        # RFC 6455 §4.2.2: answer 426 with the versions we support.
        raise HandshakeError(
            426 if versions else 400,
            "unsupported or missing Sec-WebSocket-Version; this server speaks 13",
            [("Sec-WebSocket-Version", "13")],
        )
    return key


_REASONS = {
    101: "Switching Protocols",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def build_response(
    status: int,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    reason: str | None = None,
) -> bytes:
    """Serialize a response head (and body, with Content-Length, unless 101)."""
    if reason is None:
        reason = _REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name.encode("ascii")) or _BAD_VALUE.search(value.encode("latin-1")):
            raise LocalProtocolError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    if status != 101:
        lines.append(f"Content-Length: {len(body)}")
        if not any(n.lower() == "content-type" for n, _ in headers):
            lines.append("Content-Type: text/plain; charset=utf-8")
        if not any(n.lower() == "connection" for n, _ in headers):
            lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_request(
    host: str,
    path: str,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    origin: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Serialize the client's opening handshake (RFC 6455 §4.1).

    ``path`` is the resource name with its query; what a URI cannot hold in
    it (non-ASCII, spaces, controls) is sent percent-encoded (UTF-8).
    """
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    if origin:
        headers.append(("Origin", origin))
    headers.extend(extra_headers)
    # RFC 9112 §3.2: the request target is a URI, ASCII; the characters a URI
    # cannot hold (an IRI's, RFC 3987 §3.1; spaces; controls) go as
    # percent-encoded UTF-8.  A target that is a URI already is unchanged.
    target = urllib.parse.quote(path, safe=_TARGET_SAFE)
    lines = [f"GET {target} HTTP/1.1"] + [f"{n}: {v}" for n, v in headers]
    for n, v in headers:
        if not _TOKEN.fullmatch(n.encode("ascii")) or _BAD_VALUE.search(v.encode("latin-1")):
            raise LocalProtocolError(f"invalid header {n!r}: {v!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check_response(response: Response, key: str, subprotocols: Sequence[str] = ()) -> str | None:
    """Validate the server's answer (RFC 6455 §4.1); return the subprotocol.

    Raises:
        HandshakeError: the server did not accept, or accepted wrongly.
    """
    h = response.headers
    if response.status != 101:
        raise HandshakeError(response.status, f"server rejected the upgrade: {response.status} {response.reason}")
    if "websocket" not in parse_header_tokens(h.get_all("Upgrade")):
        raise HandshakeError(101, "response lacks Upgrade: websocket")
    if "upgrade" not in parse_header_tokens(h.get_all("Connection")):
        raise HandshakeError(101, "response lacks Connection: upgrade")
    if h.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise HandshakeError(101, "wrong Sec-WebSocket-Accept")
    protos = parse_header_tokens(h.get_all("Sec-WebSocket-Protocol"))
    if not protos:
        return None
    chosen = h.get_all("Sec-WebSocket-Protocol")
    if len(chosen) != 1 or "," in chosen[0] or chosen[0].strip() not in subprotocols:
        raise HandshakeError(101, f"server chose a subprotocol that was not offered: {chosen!r}")
    return chosen[0].strip()


SubprotocolSelector = Callable[[Request, list[str]], Optional[str]]
