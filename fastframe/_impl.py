"""The one place that chooses between the compiled core and its pure twin.

``FASTFRAME_NO_EXTENSIONS`` set to a non-empty value other than ``0`` selects
the pure twin, as do interpreters other than CPython and a missing compiled
module.  ``IMPLEMENTATION`` says which one is in use: ``"c"`` or ``"py"``.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

__all__ = ["IMPLEMENTATION", "NO_EXTENSIONS", "codec"]

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
