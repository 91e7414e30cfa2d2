"""The one place that chooses between the compiled modules and their pure twins.

Every compiled module ``_<stem>_c`` has a pure twin ``_<stem>_py`` with the
same names and behaviour, and this module picks one set for the process:

* ``_codec`` (mask, parse, encode, UTF-8) and ``_aio`` (the asyncio layer's
  direct send and queued-message awaitable) are hand-written ``.pyx``;
* ``_protocol``, ``_connection`` and ``_uvicorn`` are compiled by Cython
  from their twin's own source, typed by ``_<stem>_c.pxd`` (as aiohttp
  builds ``reader_py.py`` as ``reader_c``), so they cannot drift apart.

``FASTFRAME_NO_EXTENSIONS`` set to a non-empty value other than ``0``
selects the pure twins, as do interpreters other than CPython and a build
where any compiled module is missing (with a warning).  ``IMPLEMENTATION``
says which set is in use: ``"c"`` or ``"py"``.  The public modules
(``fastframe.protocol``, ``fastframe.connection``, ``fastframe.uvicorn``)
re-export what :func:`load` gives them; nothing else imports a ``_c`` or
``_py`` module directly (tests and benchmarks aside).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["COMPILED", "IMPLEMENTATION", "NO_EXTENSIONS", "codec", "load", "reexport"]

#: The compiled modules by stem: the only list (setup.py reads it).
COMPILED = ("_codec", "_aio", "_protocol", "_connection", "_uvicorn")
#: Those written as .pyx; the others are compiled from ``<stem>_py.py``.
HANDWRITTEN = ("_codec", "_aio")

NO_EXTENSIONS = os.environ.get("FASTFRAME_NO_EXTENSIONS", "") not in ("", "0")


def _compiled_installed() -> bool:
    # find_spec looks for the files without importing anything.
    return all(importlib.util.find_spec(f"{__package__}.{stem}_c") is not None for stem in COMPILED)


if NO_EXTENSIONS or sys.implementation.name != "cpython":
    IMPLEMENTATION = "py"
elif _compiled_installed():
    IMPLEMENTATION = "c"
else:  # pragma: no cover - depends on the build
    import warnings

    IMPLEMENTATION = "py"
    # pip hides the build's own warning, so say it where it shows.
    warnings.warn(
        "fastframe's compiled modules are not installed (no compiler at install time?); "
        "using the pure-Python twins, which are much slower. Set FASTFRAME_NO_EXTENSIONS=1 "
        "to choose them explicitly and silence this warning.",
        RuntimeWarning,
        stacklevel=2,
    )


def load(stem: str) -> ModuleType:
    """The selected implementation of the compiled module ``stem`` (one of
    COMPILED): ``<stem>_c`` or its pure twin ``<stem>_py``."""
    if stem not in COMPILED:
        raise ValueError(f"{stem!r} is not a compiled module of fastframe")
    return importlib.import_module(f"{__package__}.{stem}_{IMPLEMENTATION}")


def reexport(namespace: dict[str, object], stem: str) -> list[str]:
    """Give a public module (its ``globals()``) the names in the ``__all__``
    of the selected ``stem``; returns them, for its own ``__all__``."""
    module = load(stem)
    names: list[str] = list(module.__all__)
    namespace.update({name: getattr(module, name) for name in names})
    return names


if TYPE_CHECKING:
    from . import _codec_py as codec
else:
    codec = load("_codec")
