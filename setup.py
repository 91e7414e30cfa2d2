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

import os
import platform
import sys

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
    ext = Extension(
        "fastframe._codec_c",
        ["fastframe/_codec_c.pyx"],
        include_dirs=["fastframe"],
        depends=["fastframe/_mask.h"],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        define_macros=macros,
    )
    # The layers (fastframe._impl.COMPILED_LAYERS): every .py with a .pxd
    # beside it, compiled from that source with the .pxd's types (the .py
    # stays the pure twin).  Annotations are for mypy; the .pxd alone gives
    # Cython its types.
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastframe")
    layers = [
        Extension(f"fastframe.{name}", [f"fastframe/{name}.py"], extra_compile_args=cflags,
                  extra_link_args=ldflags, define_macros=macros)
        for name in sorted(f[:-4] for f in os.listdir(here) if f.endswith(".pxd"))
        if os.path.exists(os.path.join(here, f"{name}.py"))
    ]
    return cythonize([ext, *layers], compiler_directives={**directives, "annotation_typing": False},
                     force=SANITIZE or TRACE)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
