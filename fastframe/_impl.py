"""The one place that chooses between the compiled core and its pure twin.

``FASTFRAME_NO_EXTENSIONS`` set to a non-empty value other than ``0`` selects
the pure twin, as do interpreters other than CPython and a missing compiled
module.  ``IMPLEMENTATION`` says which one is in use: ``"c"`` or ``"py"``.

Two kinds of compiled module: the codec core (``_codec_c.pyx``, whose twin
is ``_codec_py.py``) and the layers in ``COMPILED_LAYERS``, which Cython
compiles from their own ``.py`` source with an augmenting ``.pxd`` (the
same code, typed; as aiohttp does for its reader).  A compiled layer is
installed beside its source and shadows it on import, so when the pure twin
is chosen a finder loads those modules from their ``.py`` instead.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any

__all__ = ["COMPILED_LAYERS", "IMPLEMENTATION", "NO_EXTENSIONS", "codec"]

NO_EXTENSIONS = os.environ.get("FASTFRAME_NO_EXTENSIONS", "") not in ("", "0")

if TYPE_CHECKING or NO_EXTENSIONS or platform.python_implementation() != "CPython":
    from . import _codec_py as codec

    IMPLEMENTATION = "py"
else:
    try:
        from . import _codec_c as codec  # type: ignore[no-redef]

        IMPLEMENTATION = "c"
    except ImportError:  # pragma: no cover - depends on the build
        import warnings

        from . import _codec_py as codec

        IMPLEMENTATION = "py"
        # pip hides the build's own warning, so say it where it shows.
        warnings.warn(
            "fastframe's compiled core is not installed (no compiler at install time?); "
            "using the pure-Python twin, which is much slower. Set FASTFRAME_NO_EXTENSIONS=1 "
            "to choose it explicitly and silence this warning.",
            RuntimeWarning,
            stacklevel=2,
        )

#: Modules of this package that are also built as compiled extensions.
COMPILED_LAYERS = ("protocol", "connection", "uvicorn")


class _PureLayers:
    """Meta-path finder: the compiled layers load from their ``.py`` source
    (the pure twin), even where a compiled copy is installed beside it.

    Where no source is on disk (a frozen application that ships only
    bytecode or compiled modules), it steps aside and the usual finders load
    the layer as shipped: a compiled layer runs over the pure codec too (the
    test suite's in-process "py" cases run that way)."""

    _dir = os.path.dirname(os.path.abspath(__file__))

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __package__ or name not in COMPILED_LAYERS:
            return None
        source = os.path.join(cls._dir, name + ".py")
        if not os.path.isfile(source):
            return None
        return importlib.util.spec_from_file_location(fullname, source)


if IMPLEMENTATION == "py" and not any(f is _PureLayers for f in sys.meta_path):
    sys.meta_path.insert(0, _PureLayers)
