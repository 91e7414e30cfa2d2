"""The codec suite under pytest-benchmark, one test per (scenario, library).

    pytest benchmarks/ --benchmark-only --benchmark-group-by=param:scenario

``python -m benchmarks.codec`` runs the same scenarios interleaved and prints
ratios; this file is for people who already use pytest-benchmark tooling.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastframe._bench.codec import build

pytest.importorskip("pytest_benchmark")


def _cases() -> list[tuple[str, str, Any]]:
    out = []
    for s in build(quick=True):
        for name, work in s.works.items():
            out.append((f"{s.group}: {s.label}", name, work))
    return out


@pytest.mark.parametrize("scenario, library, work", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_codec(benchmark: Any, scenario: str, library: str, work: Any) -> None:
    benchmark.group = scenario
    benchmark(work)
