"""Small helpers the benchmark scripts share."""

from __future__ import annotations

import json
from typing import Any


def save_json(path: str | None, data: Any) -> None:
    """Write ``data`` to ``path`` (the scripts' ``--json FILE``), if given."""
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
