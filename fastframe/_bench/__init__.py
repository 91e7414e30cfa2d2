"""The codec benchmark suite, shipped in the package so that
``python -m fastframe bench`` works from an installed wheel.  Not imported by
the library itself."""
