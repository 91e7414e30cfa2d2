"""permessage-deflate (RFC 7692): negotiation and bounded (de)compression.

Rules of this module: no I/O.  Negotiation works on header values; the
runtime object compresses whole messages and inflates message data as it
arrives, never producing more bytes than the caller's remaining budget
allows plus one (so that a deflate bomb is detected after inflating at most
``budget + 1`` bytes, whatever its declared size).

Defaults keep per-connection memory small, as websockets does: when the peer
offers it, both windows are limited to 2**12 bytes, and the compressor uses
memLevel 5 (zlib's default is 8: about 128 KiB more per connection).
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Optional

from .exceptions import PayloadTooBig, ProtocolError


def _best_zlib() -> ModuleType:
    # Looked up by name: zlib-ng is optional, and type checkers need not have it.
    try:
        return importlib.import_module("zlib_ng.zlib_ng")
    except ImportError:  # pragma: no cover - depends on the environment
        return zlib


#: The zlib implementation compression runs on: zlib-ng's Python binding
#: when installed (``pip install "fastframe[speedups]"``; the same API and
#: raw DEFLATE streams as zlib, in fewer instructions per message:
#: ``python -m benchmarks.deflate``, docs/benchmarks.md), else the standard
#: library's.  Either side of a connection may use either: the streams are
#: RFC 1951 whatever wrote them.
backend: ModuleType = _best_zlib()

__all__ = [
    "DeflateConfig",
    "DeflateParams",
    "PerMessageDeflate",
    "accept_client",
    "negotiate_server",
    "parse_extensions",
]

NAME = "permessage-deflate"
# RFC 7692 §7.2.1: the four bytes a sender strips and a receiver appends.
_TAIL = b"\x00\x00\xff\xff"

Param = tuple[str, Optional[str]]

# Level 2, not zlib's default 6: far cheaper, for slightly larger frames
# (docs/performance.md, "Compression level").
DEFAULT_LEVEL = 2


@dataclass(frozen=True)
class DeflateConfig:
    """What this side wants.  Window bits are 9-15 for our own compressor
    (zlib cannot compress with an 8-bit window) and 8-15 for the peer's."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = 12
    client_max_window_bits: int | None = 12
    level: int = DEFAULT_LEVEL
    mem_level: int = 5

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None and not 9 <= bits <= 15:
                raise ValueError(f"{name} must be between 9 and 15 (zlib cannot compress with 8)")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")

    def offer(self) -> str:
        """The client's Sec-WebSocket-Extensions offer (RFC 7692 §7.1)."""
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        # §7.1.2.2: offering client_max_window_bits tells the server it may
        # limit our window; with a value, we promise to stay within it.
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        else:
            parts.append("client_max_window_bits")
        return "; ".join(parts)


@dataclass(frozen=True)
class DeflateParams:
    """What was agreed for one connection."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def response(self, params: Sequence[Param]) -> str:
        return "; ".join([NAME] + [k if v is None else f"{k}={v}" for k, v in params])


def parse_extensions(values: Sequence[str]) -> list[tuple[str, list[Param]]]:
    """Parse Sec-WebSocket-Extensions values into (name, params) offers.

    Raises:
        ValueError: a malformed header (RFC 6455 §9.1 grammar).
    """
    out: list[tuple[str, list[Param]]] = []
    for value in values:
        for ext in value.split(","):
            ext = ext.strip()
            if not ext:
                continue
            items = [p.strip() for p in ext.split(";")]
            name = items[0].lower()
            if not name or not _is_token(name):
                raise ValueError(f"malformed extension {ext!r}")
            params: list[Param] = []
            for item in items[1:]:
                key, sep, val = item.partition("=")
                key = key.strip().lower()
                if not _is_token(key):
                    raise ValueError(f"malformed extension parameter {item!r}")
                if sep:
                    val = val.strip()
                    if len(val) >= 2 and val[0] == val[-1] == '"':
                        val = val[1:-1]
                    if not _is_token(val):
                        raise ValueError(f"malformed extension parameter value {item!r}")
                    params.append((key, val))
                else:
                    params.append((key, None))
            out.append((name, params))
    return out


def _is_token(s: str) -> bool:
    return bool(s) and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in s) and s.isascii()


def _bits(value: str | None, allow_none: bool) -> int | None:
    # RFC 7692 §7.1.2: a decimal integer 8-15 without leading zeros.
    if value is None:
        if allow_none:
            return None
        raise ValueError("window bits need a value")
    if not value.isdigit() or value != str(int(value)) or not 8 <= int(value) <= 15:
        raise ValueError(f"invalid window bits {value!r}")
    return int(value)


def _read_params(params: Sequence[Param], server: bool) -> tuple[bool, bool, int | None, bool | int | None]:
    """Validate one offer's (or response's) parameters (RFC 7692 §7.1)."""
    seen = set()
    snct = cnct = False
    smwb: int | None = None
    cmwb: bool | int | None = None
    for key, value in params:
        if key in seen:
            raise ValueError(f"duplicate parameter {key}")
        seen.add(key)
        if key == "server_no_context_takeover":
            if value is not None:
                raise ValueError("server_no_context_takeover takes no value")
            snct = True
        elif key == "client_no_context_takeover":
            if value is not None:
                raise ValueError("client_no_context_takeover takes no value")
            cnct = True
        elif key == "server_max_window_bits":
            smwb = _bits(value, allow_none=False)
        elif key == "client_max_window_bits":
            # §7.1.2.2: in an offer the value is optional; in a response not.
            bits = _bits(value, allow_none=server)
            cmwb = True if bits is None else bits
        else:
            raise ValueError(f"unknown parameter {key}")
    return snct, cnct, smwb, cmwb


def negotiate_server(
    header_values: Sequence[str], config: DeflateConfig
) -> tuple[str, DeflateParams] | None:
    """Pick the first acceptable permessage-deflate offer (RFC 7692 §5, §7.1).

    Returns the response header value and the agreed parameters, or None to
    decline (offers we cannot honour are skipped, not failed).
    """
    try:
        offers = parse_extensions(header_values)
    except ValueError:
        return None
    for name, params in offers:
        if name != NAME:
            continue
        try:
            snct, cnct, smwb, cmwb = _read_params(params, server=True)
        except ValueError:
            continue
        # §7.1.1.1: honour the client's request, or impose our own.
        snct = snct or config.server_no_context_takeover
        cnct = cnct or config.client_no_context_takeover
        # §7.1.2.1: we must use at most what the client asked for; we may
        # use less, and tell it.
        if config.server_max_window_bits is not None:
            smwb = config.server_max_window_bits if smwb is None else min(smwb, config.server_max_window_bits)
        if smwb == 8:
            continue  # zlib cannot compress with a 256-byte window
        # §7.1.2.2: we may limit the client's window only if it offered the
        # parameter; without a value it accepts any limit.
        if cmwb is True:
            cmwb = config.client_max_window_bits  # None: no limit, answer without it
        elif cmwb is not None and config.client_max_window_bits is not None:
            cmwb = min(cmwb, config.client_max_window_bits)
        out: list[Param] = []
        if snct:
            out.append(("server_no_context_takeover", None))
        if cnct:
            out.append(("client_no_context_takeover", None))
        if smwb is not None:
            out.append(("server_max_window_bits", str(smwb)))
        if isinstance(cmwb, int) and cmwb is not True:
            out.append(("client_max_window_bits", str(cmwb)))
        agreed = DeflateParams(
            snct, cnct, smwb if smwb is not None else 15, cmwb if isinstance(cmwb, int) and cmwb is not True else 15
        )
        return agreed.response(out), agreed
    return None


def accept_client(header_values: Sequence[str], config: DeflateConfig) -> DeflateParams | None:
    """Check the server's answer to our offer (RFC 7692 §7.1).

    Returns None when the server did not accept the extension.

    Raises:
        ProtocolError: the server answered with something we did not offer
            or that breaks RFC 7692 (the client must fail the connection).
    """
    try:
        exts = parse_extensions(header_values)
    except ValueError as exc:
        raise ProtocolError(f"malformed Sec-WebSocket-Extensions: {exc}") from None
    if not exts:
        return None
    if len(exts) != 1 or exts[0][0] != NAME:
        raise ProtocolError(f"server accepted extensions that were not offered: {header_values!r}")
    try:
        snct, cnct, smwb, cmwb = _read_params(exts[0][1], server=False)
    except ValueError as exc:
        raise ProtocolError(f"invalid permessage-deflate response: {exc}") from None
    if config.server_no_context_takeover and not snct:
        raise ProtocolError("server ignored server_no_context_takeover")
    if config.server_max_window_bits is not None and (
        smwb is None or smwb > config.server_max_window_bits
    ):
        raise ProtocolError("server ignored server_max_window_bits")
    # §7.1.2.2: the server may limit our window.  A limit above the window we
    # said we would use (Autobahn's server answers 15 to an offer of 12) is
    # no limit at all: we keep to our own, smaller window.
    client_bits = config.client_max_window_bits or 15
    if isinstance(cmwb, int) and cmwb is not True:
        if cmwb == 8:
            raise ProtocolError("client_max_window_bits=8 cannot be honoured (zlib)")
        client_bits = min(client_bits, cmwb)
    return DeflateParams(snct, cnct or config.client_no_context_takeover, smwb or 15, client_bits)


class PerMessageDeflate:
    """Compression state of one connection (RFC 7692 §7.2).

    A peer may end a message's data with a block that has BFINAL set (RFC
    7692 §7.2.3.4), which ends its DEFLATE stream: zlib takes no more input
    after it, so the data that follows, in that message or the next ones,
    goes to a new decompressor.  Its window starts empty: a sender ends a
    stream that way (zlib's Z_FINISH) only to start the next from scratch
    (deflateReset, or a new compressor), and a new DEFLATE stream cannot
    refer to an earlier one (RFC 1951 §3.2.3 lets references cross blocks
    within a stream).  A sender that did refer back would fail the
    connection (1002, "invalid distance too far back"), never mislead it.

    Args:
        params: what was negotiated.
        client: True on the client side.
    """

    def __init__(self, params: DeflateParams, client: bool, level: int = DEFAULT_LEVEL,
                 mem_level: int = 5) -> None:
        self.params = params
        if client:
            self.local_bits, self.remote_bits = params.client_max_window_bits, params.server_max_window_bits
            self.local_reset = params.client_no_context_takeover
            self.remote_reset = params.server_no_context_takeover
        else:
            self.local_bits, self.remote_bits = params.server_max_window_bits, params.client_max_window_bits
            self.local_reset = params.server_no_context_takeover
            self.remote_reset = params.client_no_context_takeover
        self.level = level
        self.mem_level = mem_level
        self._z = backend  # chosen when the connection opened, for its whole life
        # zlib's state is made when the first message needs it and dropped
        # when no context is kept past a message: a connection that is idle
        # (or compresses without context takeover, between messages) holds
        # none (30 KiB with zlib, 165 KiB with zlib-ng, at 12-bit windows).
        self._compressor: Any = None
        self._decompressor: Any = None
        # Whether the decompressor was given any of the peer's bytes yet.
        self._started = False

    def compress(self, data: bytes) -> bytes:
        """Compress one whole message (§7.2.1)."""
        z = self._z
        c = self._compressor
        if c is None:
            c = self._compressor = z.compressobj(self.level, z.DEFLATED, -max(9, self.local_bits), self.mem_level)
        out: bytes = c.compress(data) + c.flush(z.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        if not out:
            out = b"\x00"  # §7.2.3.6: an empty message is one empty block
        if self.local_reset:
            self._compressor = None
        return out

    def decompress(self, data: bytes, budget: int | None, final: bool) -> bytes:
        """Inflate the next piece of a message; at most ``budget`` bytes in all.

        ``budget`` is how many more bytes the message may grow by (None: no
        limit).  At most ``budget + 1`` bytes are ever inflated.

        Raises:
            PayloadTooBig: the message would exceed the budget (1009).
            ProtocolError: the data is not a valid deflate stream (1007 is
                not right for this; RFC 7692 gives no code, 1002 is used).
        """
        d = self._decompressor
        if d is None:
            d = self._decompressor = self._z.decompressobj(wbits=-self.remote_bits)
        out: bytes
        if data:
            self._started = True
        # §7.2.2: the tail ends the sender's flush; a decompressor that was
        # given nothing (a stream that ended with the message's last bytes
        # before) has no flush to end, and would take it for a block's start.
        if final and self._started:
            data = data + _TAIL
        try:
            out = d.decompress(data) if budget is None else d.decompress(data, budget + 1)
            while d.eof and (budget is None or len(out) <= budget):
                # RFC 7692 §7.2.3.4: the sender's stream ended with a BFINAL
                # block; what follows it starts a new one (see the class).
                rest = d.unused_data
                if final and rest.endswith(_TAIL):
                    rest = rest[:-4]  # ours: the new stream gets it below if it has begun
                d = self._decompressor = self._z.decompressobj(wbits=-self.remote_bits)
                self._started = bool(rest)
                if not rest:
                    break
                if final:
                    rest += _TAIL
                out += d.decompress(rest) if budget is None else d.decompress(rest, budget + 1 - len(out))
            if budget is not None and len(out) > budget:
                raise PayloadTooBig("decompressed message exceeds max_message_size")
        except self._z.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}") from None
        if final and self.remote_reset:
            self._decompressor = None
            self._started = False
        return out
