"""WebSocket extensions, as wsproto 1.3 negotiates them.

:class:`PerMessageDeflate` offers, accepts and finalizes RFC 7692 with the
same header strings as wsproto, and compresses with the same zlib settings,
so the frames it sends are wsproto's byte for byte.  The connection runs it
itself (:mod:`.connection`) rather than through the per-frame hooks of
:class:`Extension`; an enabled extension of another kind that overrides
those hooks is refused when a connection is made with it (see
:func:`frame_hooks_overridden`), never silently ignored.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from typing import Any

from .frame_protocol import CloseReason, Opcode, RsvBits

__all__ = ["SUPPORTED_EXTENSIONS", "Extension", "PerMessageDeflate"]

#: RFC 7692 §7.2.1: the four bytes a sender strips and a receiver appends.
_TAIL = b"\x00\x00\xff\xff"


class Extension(ABC):
    """Base of the extensions: negotiation (``offer``, ``accept``,
    ``finalize``) and, in wsproto, per-frame hooks (identity here)."""

    name: str

    def enabled(self) -> bool:
        return False

    @abstractmethod
    def offer(self) -> bool | str:
        """The client's offer: True for the bare name, a parameter string,
        or False to offer nothing."""

    def accept(self, offer: str) -> bool | str | None:
        """Server side: answer an offer (True, parameters, or None/False to
        decline)."""
        return None

    def finalize(self, offer: str) -> None:  # noqa: B027 - wsproto's optional hook
        """Client side: the server accepted with ``offer``."""

    def frame_inbound_header(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        return RsvBits(False, False, False)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        return data

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        return None

    def frame_outbound(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        return (rsv, data)


_HOOKS = ("frame_inbound_header", "frame_inbound_payload_data", "frame_inbound_complete", "frame_outbound")


def frame_hooks_overridden(extension: Extension) -> list[str]:
    """The per-frame hooks ``extension``'s class overrides (none for
    PerMessageDeflate and for extensions that only negotiate)."""
    cls = type(extension)
    return [name for name in _HOOKS if getattr(cls, name) is not getattr(Extension, name)]


class PerMessageDeflate(Extension):
    """permessage-deflate (RFC 7692) with wsproto's parameters and strings.

    Window bits are 9-15 (zlib cannot compress with 8); both default to 15,
    and the compressor uses zlib's default level and memLevel, as wsproto.
    """

    name = "permessage-deflate"

    DEFAULT_CLIENT_MAX_WINDOW_BITS = 15
    DEFAULT_SERVER_MAX_WINDOW_BITS = 15

    def __init__(
        self,
        client_no_context_takeover: bool = False,
        client_max_window_bits: int | None = None,
        server_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
    ) -> None:
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self._client_max_window_bits = self.DEFAULT_CLIENT_MAX_WINDOW_BITS
        self._server_max_window_bits = self.DEFAULT_SERVER_MAX_WINDOW_BITS
        if client_max_window_bits is not None:
            self.client_max_window_bits = client_max_window_bits
        if server_max_window_bits is not None:
            self.server_max_window_bits = server_max_window_bits
        self._enabled = False
        # Compression state, made on first use (as wsproto: a connection
        # that never sends a message never allocates a compressor).
        self._compressor: Any = None
        self._decompressor: Any = None

    @property
    def client_max_window_bits(self) -> int:
        return self._client_max_window_bits

    @client_max_window_bits.setter
    def client_max_window_bits(self, value: int) -> None:
        if value < 9 or value > 15:
            raise ValueError("Window size must be between 9 and 15 inclusive")
        self._client_max_window_bits = value

    @property
    def server_max_window_bits(self) -> int:
        return self._server_max_window_bits

    @server_max_window_bits.setter
    def server_max_window_bits(self, value: int) -> None:
        if value < 9 or value > 15:
            raise ValueError("Window size must be between 9 and 15 inclusive")
        self._server_max_window_bits = value

    def enabled(self) -> bool:
        return self._enabled

    def offer(self) -> bool | str:
        params = [
            f"client_max_window_bits={self.client_max_window_bits}",
            f"server_max_window_bits={self.server_max_window_bits}",
        ]
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        return "; ".join(params)

    def finalize(self, offer: str) -> None:
        for param in _params(offer):
            if param.startswith("client_no_context_takeover"):
                self.client_no_context_takeover = True
            elif param.startswith("server_no_context_takeover"):
                self.server_no_context_takeover = True
            elif param.startswith("client_max_window_bits"):
                self.client_max_window_bits = int(param.split("=", 1)[1].strip())
            elif param.startswith("server_max_window_bits"):
                self.server_max_window_bits = int(param.split("=", 1)[1].strip())
        self._enabled = True

    def _parse_params(self, params: str) -> tuple[int | None, int | None]:
        """Read an offer: the flags are taken over, the window bits returned
        (a bits parameter without a value asks for our current setting)."""
        client_bits: int | None = None
        server_bits: int | None = None
        for param in _params(params):
            if param.startswith("client_no_context_takeover"):
                self.client_no_context_takeover = True
            elif param.startswith("server_no_context_takeover"):
                self.server_no_context_takeover = True
            elif param.startswith("client_max_window_bits"):
                client_bits = (
                    int(param.split("=", 1)[1].strip()) if "=" in param else self.client_max_window_bits
                )
            elif param.startswith("server_max_window_bits"):
                server_bits = (
                    int(param.split("=", 1)[1].strip()) if "=" in param else self.server_max_window_bits
                )
        return client_bits, server_bits

    def accept(self, offer: str) -> bool | str | None:
        client_bits, server_bits = self._parse_params(offer)
        params = []
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        try:
            if client_bits is not None:
                params.append(f"client_max_window_bits={client_bits}")
                self.client_max_window_bits = client_bits
            if server_bits is not None:
                params.append(f"server_max_window_bits={server_bits}")
                self.server_max_window_bits = server_bits
        except ValueError:
            return None
        self._enabled = True
        return "; ".join(params)

    # -- the data path, run by the connection ---------------------------------

    def _compress(self, client: bool, data: bytes, fin: bool) -> bytes:
        """The payload of the next frame of an outgoing message (RFC 7692
        §7.2.1): wsproto's zlib calls, so wsproto's bytes."""
        c = self._compressor
        if c is None:
            bits = self.client_max_window_bits if client else self.server_max_window_bits
            c = self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
        out: bytes = c.compress(data)
        if fin:
            out = (out + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
            if self.client_no_context_takeover if client else self.server_no_context_takeover:
                self._compressor = None
        return out

    def _inflater(self, client: bool) -> Any:
        d = self._decompressor
        if d is None:
            bits = self.server_max_window_bits if client else self.client_max_window_bits
            d = self._decompressor = zlib.decompressobj(-bits)
        return d

    def _message_done(self, client: bool) -> None:
        """A compressed message ended: forget the window if the peer resets
        its own (``*_no_context_takeover``)."""
        if self.server_no_context_takeover if client else self.client_no_context_takeover:
            self._decompressor = None

    def _new_stream(self, client: bool) -> Any:
        """The peer ended a DEFLATE stream (a BFINAL block, RFC 7692
        §7.2.3.4): what follows starts a new one."""
        self._decompressor = None
        return self._inflater(client)

    def __repr__(self) -> str:
        descr = [f"client_max_window_bits={self.client_max_window_bits}"]
        if self.client_no_context_takeover:
            descr.append("client_no_context_takeover")
        descr.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.server_no_context_takeover:
            descr.append("server_no_context_takeover")
        return "<{} {}>".format(self.__class__.__name__, "; ".join(descr))


def _params(header: str) -> list[str]:
    """The parameters of one extension header element (after its name)."""
    return [p.strip() for p in header.split(";")][1:]


#: Extension names to their classes (wsproto's registry).
SUPPORTED_EXTENSIONS = {PerMessageDeflate.name: PerMessageDeflate}
