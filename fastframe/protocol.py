"""Sans-I/O WebSocket connection: bytes in, events and bytes out (RFC 6455).

The implementation is ``_protocol_py.py`` (compiled as ``_protocol_c``);
``fastframe._impl`` picks one.  See :class:`Connection`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # one surface for type checkers: the pure twin's
    from ._protocol_py import *  # noqa: F403
    from ._protocol_py import __all__ as __all__
else:
    from ._impl import reexport

    __all__ = reexport(globals(), "_protocol")
