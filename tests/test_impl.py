"""The selector: IMPLEMENTATION, FASTFRAME_NO_EXTENSIONS, one choice point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_only_impl_module_imports_codecs() -> None:
    """Convention: only _impl.py chooses; no other module imports a codec."""
    pkg = os.path.dirname(fastframe.__file__)  # the package under test, installed or not
    for name in os.listdir(pkg):
        if not name.endswith(".py") or name in ("_impl.py", "_codec_py.py"):
            continue
        with open(os.path.join(pkg, name), encoding="utf-8") as f:
            text = f.read()
        assert "_codec_c" not in text and "_codec_py" not in text, name


def test_missing_compiled_core_falls_back_with_a_warning() -> None:
    code = (
        "import sys, warnings; sys.modules['fastframe._codec_c'] = None\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastframe\n"
        "print(fastframe.IMPLEMENTATION, any('pure-Python twin' in str(x.message) for x in w))"
    )
    env = {k: v for k, v in os.environ.items() if k != "FASTFRAME_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "py True"


LAYERS = "import fastframe, importlib\nfrom fastframe._impl import COMPILED_LAYERS as L\n" \
         "print(fastframe.IMPLEMENTATION, *(importlib.import_module('fastframe.' + n).__file__.rsplit('.', 1)[1] " \
         "for n in L))"


def test_compiled_layers_are_used_with_the_compiled_core() -> None:
    """The protocol layer and the asyncio glue are compiled too (from their
    .py with the .pxd); a build that lacks them must fail here, not run as
    pure Python under the name "c"."""
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    load_c()
    import importlib

    from fastframe._impl import COMPILED_LAYERS

    assert set(COMPILED_LAYERS) == {"protocol", "connection", "uvicorn"}
    # setup.py compiles every .py that has a .pxd beside it: the same set.
    pkg = os.path.dirname(fastframe.__file__)
    pairs = {f[:-4] for f in os.listdir(pkg) if f.endswith(".pxd") and os.path.exists(os.path.join(pkg, f[:-4] + ".py"))}
    assert pairs == set(COMPILED_LAYERS)
    for name in COMPILED_LAYERS:
        module = importlib.import_module(f"fastframe.{name}")
        assert not module.__file__.endswith(".py"), f"{module.__name__} is not compiled: {module.__file__}"
    assert type(fastframe.protocol.Connection.__init__).__name__ != "function"


def test_pure_twin_loads_the_layers_from_source() -> None:
    """FASTFRAME_NO_EXTENSIONS=1: the same modules run as plain Python, even
    where their compiled copies are installed beside them."""
    assert _run(LAYERS, FASTFRAME_NO_EXTENSIONS="1") == "py py py py"


def test_pure_layer_finder_steps_aside_without_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen app may ship no .py files: the finder then finds nothing and
    leaves the import to the usual finders instead of failing it."""
    from fastframe._impl import _PureLayers

    spec = _PureLayers.find_spec("fastframe.protocol")
    assert spec is not None and spec.origin is not None and spec.origin.endswith("protocol.py")
    assert _PureLayers.find_spec("fastframe.server") is None  # not a compiled layer
    monkeypatch.setattr(_PureLayers, "_dir", str(tmp_path))
    assert _PureLayers.find_spec("fastframe.protocol") is None


def test_fallback_to_the_twin_takes_the_layers_along() -> None:
    code = "import sys, warnings; sys.modules['fastframe._codec_c'] = None\n" \
           "warnings.simplefilter('ignore')\n" + LAYERS
    env = {k: v for k, v in os.environ.items() if k != "FASTFRAME_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "py py py py"


def test_pure_layers_serve_an_echo() -> None:
    """The pure twin end to end in a process of its own (the in-process
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
        "    print(fastframe.IMPLEMENTATION, c.__file__.endswith('.py'), a, len(b))\n"
        "asyncio.run(main())\n"
    )
    assert _run(code, FASTFRAME_NO_EXTENSIONS="1") == "py True héllo 70000"


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE


def test_compiled_methods_called_unbound_check_their_instance() -> None:
    """Every method of every compiled class, called unbound on something that
    is not an instance of its class: a TypeError, never a crash (Cython's
    binding function objects do not check; setup.py compiles with
    binding=False, so that methods are descriptors that do)."""
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set")
    import importlib
    import inspect

    from fastframe._impl import COMPILED_LAYERS

    modules = [load_c()] + [importlib.import_module(f"fastframe.{name}") for name in COMPILED_LAYERS]
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
