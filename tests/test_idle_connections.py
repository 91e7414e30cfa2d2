"""10,000 idle connections are held, and the server keeps serving.

Runs the server in its own process (file descriptors), through the same
harness as ``python -m benchmarks.idle``; the figure per connection goes to
the README from that benchmark, this only guards against a gross regression.
"""

from __future__ import annotations

import sys

import pytest

# Holding 10,000 sockets needs RLIMIT_NOFILE (POSIX); Windows wheels skip it.
resource = pytest.importorskip("resource", reason="needs POSIX file descriptor limits")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")
def test_ten_thousand_idle_connections(impl: object) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 11000:
        pytest.skip(f"the file descriptor limit ({hard}) is below 11,000")
    pytest.importorskip("uvloop")
    from benchmarks.idle import measure

    env = {"FASTFRAME_NO_EXTENSIONS": "1"} if getattr(impl, "__name__", "").endswith("_py") else {}
    r = measure("fastframe", 10000, env)
    assert r["echo_ok"]
    assert r["kib_per_connection"] < 20, r
