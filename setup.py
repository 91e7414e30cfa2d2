"""Build script: declares the compiled codec and layers, optional by design.

* ``FASTFRAME_NO_EXTENSIONS=1`` skips compilation; the install is pure Python.
* Interpreters other than CPython get the pure install.
* A missing or failing compiler gives a pure install with a clear warning,
  unless ``FASTFRAME_REQUIRE_EXTENSIONS=1`` (set in CI and wheel builds) makes
  it fatal, so a broken build can never pass unnoticed.
* ``FASTFRAME_SANITIZE=1`` builds with AddressSanitizer and UBSan (see README).
* ``FASTFRAME_CYTHON_TRACE=1`` builds with line tracing, for coverage.
"""

from __future__ import annotations

import ast
import os
import platform
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = _flag("FASTFRAME_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
REQUIRE = _flag("FASTFRAME_REQUIRE_EXTENSIONS")
SANITIZE = _flag("FASTFRAME_SANITIZE")
TRACE = _flag("FASTFRAME_CYTHON_TRACE")


class OptionalBuildExt(build_ext):
    """build_ext that degrades to a pure install instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if REQUIRE:
            raise exc
        print(
            "\n" + "*" * 72 + "\n"
            "WARNING: fastframe's C extension could not be built "
            f"({type(exc).__name__}: {exc}).\n"
            "fastframe is installed as pure Python: it works, but is much slower.\n"
            "Install a C compiler and the Python headers, then reinstall.\n" + "*" * 72 + "\n",
            file=sys.stderr,
        )


def _compiled_modules() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """COMPILED and HANDWRITTEN from fastframe/_impl.py, where the list is
    kept once (read, not imported: the package is not built yet)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "fastframe", "_impl.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
             and node.targets[0].id in ("COMPILED", "HANDWRITTEN")}
    return found["COMPILED"], found["HANDWRITTEN"]


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("fastframe: FASTFRAME_NO_EXTENSIONS set, building pure Python", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        print("WARNING: Cython is not installed; fastframe builds pure Python", file=sys.stderr)
        return []
    cflags: list[str] = []
    ldflags: list[str] = []
    macros: list[tuple[str, str]] = []
    # binding=False: methods are plain method descriptors, which check that
    # what they are called on is an instance of their class.  Cython's default
    # function objects do not when a method is called unbound
    # (``FrameParser.feed(object(), b"")`` crashed the interpreter; Cython
    # issue #1903); a TypeError is what Python code gets for that.
    directives: dict[str, object] = {"binding": False}
    if sys.platform != "win32":
        cflags += ["-O3", "-fno-strict-aliasing"]
    if SANITIZE:
        cflags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                   "-fno-sanitize-recover=undefined"]
        ldflags += ["-fsanitize=address,undefined"]
    if TRACE:
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
        directives["linetrace"] = True
    kw: dict[str, Any] = {"extra_compile_args": cflags, "extra_link_args": ldflags, "define_macros": macros}
    compiled, handwritten = _compiled_modules()
    exts = [
        # A hand-written .pyx, or the pure twin's own source compiled under the
        # _c name, typed by the _c.pxd beside it (the .py stays the twin).
        Extension(f"fastframe.{stem}_c", [f"fastframe/{stem}_c.pyx" if stem in handwritten else f"fastframe/{stem}_py.py"],
                  include_dirs=["fastframe"], depends=["fastframe/_mask.h"] if stem == "_codec" else [], **kw)
        for stem in compiled
    ]
    return cythonize(exts, compiler_directives={**directives, "annotation_typing": False},
                     force=SANITIZE or TRACE or _sources_newer_than_c())


def _sources_newer_than_c() -> bool:
    """Whether any Cython input is newer than a generated C file.

    cythonize's own dependency tracking looks for ``<stem>_py.pxd`` beside
    ``<stem>_py.py``, so it misses a change to the augmenting ``_c.pxd`` and
    to what that cimports (cython/cython#1428): the stale C then fails at
    import ("size changed").  Any newer input regenerates everything."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastframe")
    names = os.listdir(here)
    generated = [os.path.getmtime(os.path.join(here, n)) for n in names if n.endswith(".c")]
    if not generated:
        return False
    inputs = [os.path.getmtime(os.path.join(here, n)) for n in names if n.endswith((".pxd", ".pyx", ".h", "_py.py"))]
    return max(inputs) > min(generated)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
