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
