"""wsproto 1.3's API on fastframe's codec: a drop-in for consumers of wsproto.

hypercorn, uvicorn (``--ws wsproto``), trio-websocket, simple-websocket and
httpx-ws speak WebSocket through wsproto and have no switch for another
codec.  This package has wsproto's public API (the same modules, classes,
events and behaviour; docs/wsproto.md says where it differs) with fastframe's
codec underneath.  Switch an unchanged consumer over with::

    import fastframe.wsproto
    fastframe.wsproto.install()   # before anything imports wsproto

or from the command line (``hypercorn``, ``uvicorn``, ``pytest`` or any
console script, or ``-m module``)::

    python -m fastframe.wsproto hypercorn app:app

:func:`install` raises when the real wsproto was imported already, since the
modules that imported it would keep using it.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from types import ModuleType

from . import connection, events, extensions, frame_protocol, handshake, typing, utilities
from .connection import Connection, ConnectionState, ConnectionType
from .events import Event
from .handshake import H11Handshake
from .typing import Headers

#: The wsproto release whose API this package has (consumers parse it).
__version__ = "1.3.2"

__all__ = ["ConnectionType", "WSConnection", "install", "installed", "uninstall"]

#: The submodules that stand for wsproto's, by their wsproto name.
MODULES = {
    "wsproto.connection": connection,
    "wsproto.events": events,
    "wsproto.extensions": extensions,
    "wsproto.frame_protocol": frame_protocol,
    "wsproto.handshake": handshake,
    "wsproto.typing": typing,
    "wsproto.utilities": utilities,
}


class WSConnection:
    """The local end of a WebSocket connection, handshake included.

    Args:
        connection_type: ``ConnectionType.CLIENT`` or ``ConnectionType.SERVER``.
    """

    def __init__(self, connection_type: ConnectionType) -> None:
        self.client = connection_type is ConnectionType.CLIENT
        self.handshake = H11Handshake(connection_type)
        self.connection: Connection | None = None

    @property
    def state(self) -> ConnectionState:
        if self.connection is None:
            return self.handshake.state
        return self.connection.state

    def initiate_upgrade_connection(self, headers: Headers, path: bytes | str) -> None:
        """Server side: start from a request another HTTP server parsed."""
        self.handshake.initiate_upgrade_connection(headers, path)

    def send(self, event: Event) -> bytes:
        """The bytes that carry ``event`` to the peer."""
        if self.connection is None:
            data = self.handshake.send(event)
            self.connection = self.handshake.connection
            return data
        return self.connection.send(event)

    def receive_data(self, data: bytes | None) -> None:
        """Feed bytes from the peer (None: the transport closed); the events
        come from :meth:`events`."""
        if self.connection is None:
            self.handshake.receive_data(data)
            self.connection = self.handshake.connection
        else:
            self.connection.receive_data(data)

    def events(self) -> Generator[Event, None, None]:
        """Yield pending events, parsing received bytes as it goes."""
        yield from self.handshake.events()
        if self.connection is not None:
            yield from self.connection.events()


def _this() -> ModuleType:
    return sys.modules[__name__]


def installed() -> bool:
    """True when ``import wsproto`` gives this package."""
    return sys.modules.get("wsproto") is _this()


def install() -> None:
    """Make ``import wsproto`` (and its submodules) give this package.

    Call it before anything imports wsproto; calling it again is harmless.

    Raises:
        RuntimeError: the real wsproto (or another module under that name)
            was imported already: what imported it keeps it, so the switch
            cannot be made.
    """
    if installed():
        return
    taken = sorted(name for name in sys.modules if name == "wsproto" or name.startswith("wsproto."))
    if taken:
        origin = getattr(sys.modules.get("wsproto"), "__file__", None) or taken[0]
        raise RuntimeError(
            f"fastframe.wsproto.install(): wsproto was imported already ({origin}); modules that "
            "imported it keep using it. Call install() before anything imports wsproto, or start "
            "the program with 'python -m fastframe.wsproto COMMAND ...'."
        )
    sys.modules["wsproto"] = _this()
    sys.modules.update(MODULES)


def uninstall() -> None:
    """Undo :func:`install` (for tests): ``import wsproto`` is the real one
    again for modules that import it from now on."""
    if installed():
        for name in ("wsproto", *MODULES):
            sys.modules.pop(name, None)
