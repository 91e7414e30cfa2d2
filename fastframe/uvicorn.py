"""fastframe as uvicorn's WebSocket implementation: ``uvicorn --ws fastframe.uvicorn:Protocol``.

The implementation is ``_uvicorn_py.py`` (compiled as ``_uvicorn_c``);
``fastframe._impl`` picks one.  See :class:`Protocol`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # one surface for type checkers: the pure twin's
    from ._uvicorn_py import *  # noqa: F403
    from ._uvicorn_py import __all__ as __all__
else:
    from ._impl import reexport

    __all__ = reexport(globals(), "_uvicorn")
