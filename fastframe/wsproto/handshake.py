"""The opening handshake over HTTP/1.1, as wsproto 1.3 does it.

HTTP itself is h11's, as in wsproto (the events consumers get carry h11's
view of the response: lower-cased header names, the body in pieces, a body
read to the end of the connection when no length is given); the WebSocket
rules and tokens are fastframe's (:func:`fastframe.handshake.accept_key`).
h11 is imported when a handshake is made, so that consumers that only use
:class:`~.connection.Connection` (hypercorn, httpx-ws) do not need it;
``pip install fastframe[wsproto]`` brings it.

One difference from wsproto: bytes that follow the request before the
server accepts (a client that pipelines frames) are handed to the
connection once it is open, where wsproto drops them.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from typing import Any, cast

from .connection import Connection, ConnectionState, ConnectionType
from .events import AcceptConnection, Event, RejectConnection, RejectData, Request
from .extensions import Extension
from .typing import Headers
from .utilities import (
    LocalProtocolError,
    RemoteProtocolError,
    generate_accept_token,
    generate_nonce,
    normed_header_dict,
    split_comma_header,
)

__all__ = [
    "WEBSOCKET_UPGRADE",
    "WEBSOCKET_VERSION",
    "H11Handshake",
    "client_extensions_handshake",
    "server_extensions_handshake",
]

#: RFC 6455 §4.2.1: the one version spoken.
WEBSOCKET_VERSION = b"13"
#: RFC 6455 §4.2.1: the Upgrade token.
WEBSOCKET_UPGRADE = b"websocket"


def _h11() -> Any:
    try:
        import h11
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "fastframe.wsproto's handshake (WSConnection, H11Handshake) needs h11, as wsproto "
            "does: pip install 'fastframe[wsproto]'"
        ) from exc
    return h11


class H11Handshake:
    """The opening handshake of one connection, client or server side."""

    def __init__(self, connection_type: ConnectionType) -> None:
        self.client = connection_type is ConnectionType.CLIENT
        self._state = ConnectionState.CONNECTING
        h11 = self._h11 = _h11()
        self._h11_connection = h11.Connection(h11.CLIENT if self.client else h11.SERVER)
        self._connection: Connection | None = None
        self._events: deque[Event] = deque()
        self._initiating_request: Request | None = None
        self._nonce: bytes | None = None

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connection(self) -> Connection | None:
        """The connection, once the handshake succeeded (else None)."""
        return self._connection

    def initiate_upgrade_connection(self, headers: Headers, path: bytes | str) -> None:
        """Server side: start from a request another HTTP server parsed."""
        if self.client:
            raise LocalProtocolError("Cannot initiate an upgrade connection when acting as the client")
        h11 = self._h11
        request = h11.Request(method=b"GET", target=path, headers=headers)
        self.receive_data(h11.Connection(h11.CLIENT).send(request))

    def send(self, event: Event) -> bytes:
        """The bytes of a handshake event (Request on the client side;
        AcceptConnection, RejectConnection, RejectData on the server side)."""
        if isinstance(event, Request):
            return self._initiate_connection(event)
        if isinstance(event, AcceptConnection):
            return self._accept(event)
        if isinstance(event, RejectConnection):
            return self._reject(event)
        if isinstance(event, RejectData):
            return self._send_reject_data(event)
        raise LocalProtocolError(f"Event {event} cannot be sent during the handshake")

    def receive_data(self, data: bytes | None) -> None:
        """Feed bytes from the peer; the events come from :meth:`events`.

        Raises:
            RemoteProtocolError: not valid HTTP, or not a valid upgrade;
                ``event_hint`` is the answer to send.
        """
        h11 = self._h11
        conn = self._h11_connection
        conn.receive_data(data or b"")
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                raise RemoteProtocolError("Bad HTTP message", event_hint=RejectConnection()) from None
            if isinstance(event, h11.ConnectionClosed) or event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if self.client:
                self._client_event(event)
            elif isinstance(event, h11.Request):
                self._events.append(self._process_connection_request(event))

    def _client_event(self, event: Any) -> None:
        h11 = self._h11
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                self._events.append(self._establish_client_connection(event))
            else:
                self._events.append(
                    RejectConnection(headers=list(event.headers), status_code=event.status_code, has_body=False)
                )
                self._state = ConnectionState.CLOSED
        elif isinstance(event, h11.Response):
            self._state = ConnectionState.REJECTING
            self._events.append(
                RejectConnection(headers=list(event.headers), status_code=event.status_code, has_body=True)
            )
        elif isinstance(event, h11.Data):
            self._events.append(RejectData(data=event.data, body_finished=False))
        elif isinstance(event, h11.EndOfMessage):
            self._events.append(RejectData(data=b"", body_finished=True))
            self._state = ConnectionState.CLOSED

    def events(self) -> Generator[Event, None, None]:
        """Yield the handshake events received so far."""
        while self._events:
            yield self._events.popleft()

    # -- server side -------------------------------------------------------------

    def _process_connection_request(self, event: Any) -> Request:
        if event.method != b"GET":
            raise RemoteProtocolError("Request method must be GET", event_hint=RejectConnection())
        connection_tokens = None
        extensions: list[str] = []
        host = None
        key = None
        subprotocols: list[str] = []
        upgrade = b""
        version = None
        headers: Headers = []
        for name, value in event.headers:
            name = name.lower()
            if name == b"connection":
                connection_tokens = split_comma_header(value)
            elif name == b"host":
                host = value.decode("idna")
                continue
            elif name == b"sec-websocket-extensions":
                extensions.extend(split_comma_header(value))
                continue
            elif name == b"sec-websocket-key":
                key = value
            elif name == b"sec-websocket-protocol":
                subprotocols.extend(split_comma_header(value))
                continue
            elif name == b"sec-websocket-version":
                version = value
            elif name == b"upgrade":
                upgrade = value
            headers.append((name, value))
        if connection_tokens is None or not any(t.lower() == "upgrade" for t in connection_tokens):
            raise RemoteProtocolError("Missing header, 'Connection: Upgrade'", event_hint=RejectConnection())
        if version != WEBSOCKET_VERSION:
            raise RemoteProtocolError(
                "Missing header, 'Sec-WebSocket-Version'",
                event_hint=RejectConnection(
                    headers=[(b"Sec-WebSocket-Version", WEBSOCKET_VERSION)], status_code=426 if version else 400
                ),
            )
        if key is None:
            raise RemoteProtocolError("Missing header, 'Sec-WebSocket-Key'", event_hint=RejectConnection())
        if not _valid_key(key):
            # RFC 6455 §4.2.1 (5): 16 bytes in base64.  fastframe checks it;
            # wsproto takes any value.
            raise RemoteProtocolError("Invalid header, 'Sec-WebSocket-Key'", event_hint=RejectConnection())
        if upgrade.lower() != WEBSOCKET_UPGRADE:
            raise RemoteProtocolError(
                f"Missing header, 'Upgrade: {WEBSOCKET_UPGRADE.decode()}'", event_hint=RejectConnection()
            )
        if host is None:
            raise RemoteProtocolError("Missing header, 'Host'", event_hint=RejectConnection())
        self._initiating_request = Request(
            extensions=extensions,
            extra_headers=headers,
            host=host,
            subprotocols=subprotocols,
            target=event.target.decode("ascii"),
        )
        return self._initiating_request

    def _accept(self, event: AcceptConnection) -> bytes:
        request = self._initiating_request
        if request is None or self._state is not ConnectionState.CONNECTING or self.client:
            raise LocalProtocolError(f"Event {event} cannot be sent in state {self._state}")
        nonce = normed_header_dict(request.extra_headers)[b"sec-websocket-key"]
        headers = [
            (b"Upgrade", WEBSOCKET_UPGRADE),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(nonce)),
        ]
        if event.subprotocol is not None:
            if event.subprotocol not in request.subprotocols:
                raise LocalProtocolError(f"unexpected subprotocol {event.subprotocol}")
            headers.append((b"Sec-WebSocket-Protocol", event.subprotocol.encode("ascii")))
        if event.extensions:
            accepts = server_extensions_handshake(cast("Sequence[str]", request.extensions), event.extensions)
            if accepts:
                headers.append((b"Sec-WebSocket-Extensions", accepts))
        h11 = self._h11
        response = h11.InformationalResponse(
            status_code=101, headers=headers + list(event.extra_headers), reason=b"Switching Protocols"
        )
        data: bytes = self._h11_connection.send(response) or b""
        # Bytes the client sent after its request (h11 kept them).
        trailing = self._h11_connection.trailing_data[0]
        self._connection = Connection(ConnectionType.SERVER, event.extensions, trailing)
        self._state = ConnectionState.OPEN
        return data

    def _reject(self, event: RejectConnection) -> bytes:
        if self._state != ConnectionState.CONNECTING:
            raise LocalProtocolError(f"Connection cannot be rejected in state {self._state}")
        h11 = self._h11
        headers = list(event.headers)
        if not event.has_body:
            headers.append((b"content-length", b"0"))
        data: bytes = self._h11_connection.send(h11.Response(status_code=event.status_code, headers=headers)) or b""
        self._state = ConnectionState.REJECTING
        if not event.has_body:
            data += self._h11_connection.send(h11.EndOfMessage()) or b""
            self._state = ConnectionState.CLOSED
        return data

    def _send_reject_data(self, event: RejectData) -> bytes:
        if self._state != ConnectionState.REJECTING:
            raise LocalProtocolError(f"Cannot send rejection data in state {self._state}")
        h11 = self._h11
        data: bytes = self._h11_connection.send(h11.Data(data=event.data)) or b""
        if event.body_finished:
            data += self._h11_connection.send(h11.EndOfMessage()) or b""
            self._state = ConnectionState.CLOSED
        return data

    # -- client side -------------------------------------------------------------

    def _initiate_connection(self, request: Request) -> bytes:
        self._initiating_request = request
        self._nonce = generate_nonce()
        headers = [
            (b"Host", request.host.encode("idna")),
            (b"Upgrade", WEBSOCKET_UPGRADE),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Key", self._nonce),
            (b"Sec-WebSocket-Version", WEBSOCKET_VERSION),
        ]
        if request.subprotocols:
            headers.append((b"Sec-WebSocket-Protocol", ", ".join(request.subprotocols).encode("ascii")))
        if request.extensions:
            # One offer per name, the last one given for it (as wsproto).
            offers: dict[str, bool | str] = {}
            for extension in request.extensions:
                assert isinstance(extension, Extension)
                offers[extension.name] = extension.offer()
            offered = []
            for name, params in offers.items():
                if params is True:
                    offered.append(name.encode("ascii"))
                elif params:
                    offered.append(b"%s; %s" % (name.encode("ascii"), str(params).encode("ascii")))
            if offered:
                headers.append((b"Sec-WebSocket-Extensions", b", ".join(offered)))
        h11 = self._h11
        upgrade = h11.Request(
            method=b"GET", target=request.target.encode("ascii"), headers=headers + list(request.extra_headers)
        )
        data: bytes = self._h11_connection.send(upgrade) or b""
        return data

    def _establish_client_connection(self, event: Any) -> AcceptConnection:
        request = self._initiating_request
        assert request is not None and self._nonce is not None
        accept = None
        connection_tokens = None
        accepts: list[str] = []
        subprotocol = None
        upgrade = b""
        headers: Headers = []
        for name, value in event.headers:
            name = name.lower()
            if name == b"connection":
                connection_tokens = split_comma_header(value)
            elif name == b"sec-websocket-extensions":
                accepts = split_comma_header(value)
            elif name == b"sec-websocket-accept":
                accept = value
            elif name == b"sec-websocket-protocol":
                subprotocol = value.decode("ascii")
            elif name == b"upgrade":
                upgrade = value
            else:
                headers.append((name, value))
        if connection_tokens is None or not any(t.lower() == "upgrade" for t in connection_tokens):
            raise RemoteProtocolError("Missing header, 'Connection: Upgrade'", event_hint=RejectConnection())
        if upgrade.lower() != WEBSOCKET_UPGRADE:
            raise RemoteProtocolError(
                f"Missing header, 'Upgrade: {WEBSOCKET_UPGRADE.decode()}'", event_hint=RejectConnection()
            )
        if accept != generate_accept_token(self._nonce):
            raise RemoteProtocolError("Bad accept token", event_hint=RejectConnection())
        if subprotocol is not None and subprotocol not in request.subprotocols:
            raise RemoteProtocolError(f"unrecognized subprotocol {subprotocol}", event_hint=RejectConnection())
        extensions = client_extensions_handshake(accepts, cast("Sequence[Extension]", request.extensions))
        self._connection = Connection(ConnectionType.CLIENT, extensions, self._h11_connection.trailing_data[0])
        self._state = ConnectionState.OPEN
        return AcceptConnection(extensions=extensions, extra_headers=headers, subprotocol=subprotocol)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(client={self.client}, state={self.state})"


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def server_extensions_handshake(requested: Iterable[str], supported: list[Extension]) -> bytes | None:
    """Server side: the Sec-WebSocket-Extensions value that accepts the
    offers ``requested`` the ``supported`` extensions agree to (None: none)."""
    accepts: dict[str, bool | bytes] = {}
    for offer in requested:
        name = offer.split(";", 1)[0].strip()
        for extension in supported:
            if extension.name == name:
                accept = extension.accept(offer)
                if accept is True:
                    accepts[extension.name] = True
                elif accept is not None and accept is not False:
                    accepts[extension.name] = str(accept).encode("ascii")
    if not accepts:
        return None
    parts: list[bytes] = []
    for name, params in accepts.items():
        if params is True or params == b"":
            parts.append(name.encode("ascii"))
        else:
            parts.append(b"%s; %s" % (name.encode("ascii"), params))
    return b", ".join(parts)


def client_extensions_handshake(accepted: Iterable[str], supported: Sequence[Extension]) -> list[Extension]:
    """Client side: finalize the extensions the server accepted.

    Raises:
        RemoteProtocolError: the server accepted one that was not offered.
    """
    extensions = []
    for accept in accepted:
        name = accept.split(";", 1)[0].strip()
        for extension in supported:
            if extension.name == name:
                extension.finalize(accept)
                extensions.append(extension)
                break
        else:
            raise RemoteProtocolError(f"unrecognized extension {name}", event_hint=RejectConnection())
    return extensions
