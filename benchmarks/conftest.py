"""pytest-benchmark entry: ``pytest benchmarks/ --benchmark-only``.

Never part of the default test run (pyproject's testpaths is ``tests``).
"""
