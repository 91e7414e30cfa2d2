"""The selector: IMPLEMENTATION, FASTFRAME_NO_EXTENSIONS, one choice point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import NO_EXTENSIONS, load_c

import fastframe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code: str, **env: str) -> str:
    full = dict(os.environ, **env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, cwd=ROOT, check=True
    )
    return out.stdout.strip()


def test_public_api_names() -> None:
    for name in [
        "IMPLEMENTATION", "Opcode", "apply_mask", "mask_inplace", "encode_frame",
        "encode_header", "Frame", "FrameParser", "validate_utf8", "Utf8Validator",
    ]:
        assert hasattr(fastframe, name), name
    assert fastframe.IMPLEMENTATION in ("c", "py")
    assert [int(o) for o in fastframe.Opcode] == [0, 1, 2, 8, 9, 10]
    from fastframe.exceptions import FastFrameError, InvalidUTF8, PayloadTooBig, ProtocolError

    assert issubclass(ProtocolError, FastFrameError)
    assert (ProtocolError.close_code, PayloadTooBig.close_code, InvalidUTF8.close_code) == (
        1002, 1009, 1007)


def test_compiled_core_is_selected_by_default() -> None:
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    load_c()  # fails the test, not skips, when the build is missing
    assert fastframe.IMPLEMENTATION == "c"
    assert fastframe.FrameParser.__module__ == "fastframe._codec_c"


def test_no_extensions_env_forces_twin() -> None:
    code = "import fastframe; print(fastframe.IMPLEMENTATION, fastframe.FrameParser.__module__)"
    assert _run(code, FASTFRAME_NO_EXTENSIONS="1") == "py fastframe._codec_py"


def test_no_extensions_env_zero_means_unset() -> None:
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    load_c()
    code = "import fastframe; print(fastframe.IMPLEMENTATION)"
    assert _run(code, FASTFRAME_NO_EXTENSIONS="0") == "c"


def test_only_impl_module_chooses() -> None:
    """Convention: only _impl.py chooses; no other module of the package
    names a compiled module or a twin (a twin's own docstring aside)."""
    from fastframe._impl import COMPILED

    pkg = os.path.dirname(fastframe.__file__)  # the package under test, installed or not
    for name in os.listdir(pkg):
        if not name.endswith(".py") or name == "_impl.py":
            continue
        with open(os.path.join(pkg, name), encoding="utf-8") as f:
            code = "".join(line for line in f if line.lstrip().startswith(("from ", "import ")))
        for stem in COMPILED:
            assert f"{stem}_c" not in code and f"import {stem}_py" not in code, (name, stem)
    # No import hook of ours either.
    assert not [f for f in sys.meta_path if type(f).__module__.startswith("fastframe")]


def test_missing_compiled_core_falls_back_with_a_warning() -> None:
    code = (
        "import sys, warnings; sys.modules['fastframe._codec_c'] = None\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastframe\n"
        "print(fastframe.IMPLEMENTATION, any('pure-Python twins' in str(x.message) for x in w))"
    )
    env = {k: v for k, v in os.environ.items() if k != "FASTFRAME_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "py True"


LAYERS = "import fastframe, fastframe.protocol, fastframe.connection, fastframe.uvicorn\n" \
         "print(fastframe.IMPLEMENTATION, *(type(m).__module__ for m in (fastframe.FrameParser, " \
         "fastframe.protocol.Connection, fastframe.connection.WebSocket, fastframe.uvicorn.Protocol)))"


def test_compiled_modules_are_used_together() -> None:
    """Every compiled module is built (setup.py builds exactly COMPILED), and
    the public modules hand out their classes; a build that lacks one must
    fail here, not run as pure Python under the name "c"."""
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    import importlib

    from fastframe._impl import COMPILED, HANDWRITTEN, load

    assert COMPILED == ("_codec", "_aio", "_protocol", "_connection", "_uvicorn")
    pkg = os.path.dirname(fastframe.__file__)
    for stem in COMPILED:
        module = importlib.import_module(f"fastframe.{stem}_c")
        assert module.__file__ is not None and not module.__file__.endswith(".py"), module
        assert load(stem) is module
        # The source of the compiled module: its .pyx, or its twin and the .pxd that types it.
        made_from = [f"{stem}_c.pyx"] if stem in HANDWRITTEN else [f"{stem}_py.py", f"{stem}_c.pxd"]
        if os.path.exists(os.path.join(pkg, f"{stem}_py.py")):  # a checkout, not a wheel
            assert all(os.path.exists(os.path.join(pkg, f)) for f in made_from), stem
    for public, cls in (("protocol", "Connection"), ("connection", "WebSocket"), ("uvicorn", "Protocol")):
        assert getattr(importlib.import_module(f"fastframe.{public}"), cls).__module__ == f"fastframe._{public}_c"
    assert type(load("_protocol").Connection.__init__).__name__ != "function"


def test_pure_twin_loads_every_twin() -> None:
    """FASTFRAME_NO_EXTENSIONS=1: the twins run as plain Python, even where
    the compiled modules are installed beside them."""
    names = "fastframe._codec_py fastframe._protocol_py fastframe._connection_py fastframe._uvicorn_py"
    assert _run(LAYERS.replace("type(m).__module__", "m.__module__"), FASTFRAME_NO_EXTENSIONS="1") == f"py {names}"


def test_fallback_to_the_twin_takes_every_layer_along() -> None:
    """One compiled module missing (a partial build): all of them fall back,
    never a mix."""
    names = "fastframe._codec_py fastframe._protocol_py fastframe._connection_py fastframe._uvicorn_py"
    for missing in ("_codec_c", "_connection_c"):
        code = f"import sys, warnings; sys.modules['fastframe.{missing}'] = None\n" \
               "warnings.simplefilter('ignore')\n" + LAYERS.replace("type(m).__module__", "m.__module__")
        env = {k: v for k, v in os.environ.items() if k != "FASTFRAME_NO_EXTENSIONS"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT,
                             check=True)
        assert out.stdout.strip() == f"py {names}", missing


def test_pure_layers_serve_an_echo() -> None:
    """The pure twins end to end in a process of their own (the in-process
    cases swap only the codec under the compiled layers)."""
    code = (
        "import asyncio, fastframe\n"
        "async def echo(ws):\n"
        "    async for m in ws:\n"
        "        await ws.send(m)\n"
        "async def main():\n"
        "    async with fastframe.serve(echo, '127.0.0.1', 0) as server:\n"
        "        async with fastframe.connect(f'ws://127.0.0.1:{server.port}/') as ws:\n"
        "            await ws.send('héllo'); a = await ws.recv()\n"
        "            await ws.send(b'\\x00' * 70000); b = await ws.recv()\n"
        "    import fastframe.connection as c\n"
        "    print(fastframe.IMPLEMENTATION, c.WebSocket.__module__, a, len(b))\n"
        "asyncio.run(main())\n"
    )
    assert _run(code, FASTFRAME_NO_EXTENSIONS="1") == "py fastframe._connection_py héllo 70000"


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE


def test_compiled_methods_called_unbound_check_their_instance() -> None:
    """Every method of every compiled class, called unbound on something that
    is not an instance of its class: a TypeError, never a crash (Cython's
    binding function objects do not check; setup.py compiles with
    binding=False, so that methods are descriptors that do)."""
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    import inspect

    from fastframe._impl import COMPILED

    modules = [load_c(stem) for stem in COMPILED]
    checked = 0
    for module in modules:
        assert module.__file__ is not None and not module.__file__.endswith(".py"), module
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # Extension types only (static types here): the methods of a
            # Python class compiled by Cython take any self, as in Python.
            if cls.__module__ != module.__name__ or cls.__flags__ & _HEAPTYPE:
                continue
            for name, attr in vars(cls).items():
                kind = type(attr).__name__
                assert kind != "cython_function_or_method", f"{cls.__name__}.{name} is a binding function"
                if kind != "method_descriptor":
                    continue
                with pytest.raises(TypeError):
                    attr(object())
                checked += 1
    assert checked >= 40, checked


def test_the_codec_imports_neither_asyncio_nor_socket() -> None:
    """The codec only codes: importing fastframe and its codec (either
    implementation) loads no I/O module."""
    code = ("import sys, fastframe, fastframe._codec_py\n"
            "try:\n    import fastframe._codec_c\nexcept ImportError:\n    pass\n"
            "print(sorted(m for m in ('asyncio', 'socket', 'ssl') if m in sys.modules))")
    assert _run(code) == "[]"
