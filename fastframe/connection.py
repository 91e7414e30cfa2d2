"""The asyncio connection object handlers use: ``async for message in ws``.

The implementation is ``_connection_py.py`` (compiled as ``_connection_c``);
``fastframe._impl`` picks one.  See :class:`WebSocket` and :class:`Listener`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # one surface for type checkers: the pure twin's
    from ._connection_py import *  # noqa: F403
    from ._connection_py import __all__ as __all__
else:
    from ._impl import reexport

    __all__ = reexport(globals(), "_connection")
