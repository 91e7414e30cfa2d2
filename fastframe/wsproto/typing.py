"""wsproto's header type: a list of (name, value) byte-string pairs."""

from __future__ import annotations

Headers = list[tuple[bytes, bytes]]
