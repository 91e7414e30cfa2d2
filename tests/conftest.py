"""Fixtures that run every codec test against both implementations.

``impl`` is the compiled core (id ``c``) or the pure twin (id ``py``).  When
the compiled module is missing the ``c`` cases FAIL, so that a broken build
cannot pass as a pure run; only ``FASTFRAME_NO_EXTENSIONS=1`` turns them into
skips, because then a pure install is what was asked for.
"""

from __future__ import annotations

import importlib
import os
import socket
from types import ModuleType

import pytest

NO_EXTENSIONS = os.environ.get("FASTFRAME_NO_EXTENSIONS", "") not in ("", "0")


def free_port() -> int:
    """A loopback port free now, for a server started in a subprocess (an
    in-process server binds port 0 and reads its port back instead)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_c() -> ModuleType:
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set: the compiled core is not wanted")
    try:
        return importlib.import_module("fastframe._codec_c")
    except ImportError as exc:
        pytest.fail(
            f"the compiled core did not build or import ({exc}); "
            "build it (pip install -e . or python setup.py build_ext --inplace) "
            "or set FASTFRAME_NO_EXTENSIONS=1 to test the pure twin alone",
            pytrace=False,
        )


def load_py() -> ModuleType:
    return importlib.import_module("fastframe._codec_py")


@pytest.fixture(params=["c", "py"], scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return load_c() if request.param == "c" else load_py()


@pytest.fixture(scope="session")
def c_impl() -> ModuleType:
    return load_c()


@pytest.fixture(scope="session")
def py_impl() -> ModuleType:
    return load_py()


def swap_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the protocol layer ``impl``'s codec: it takes it from the selector
    once, at import (names looked up once, so that no call by name runs per
    read), and each Connection takes the per-message functions from those
    names when it is made; so a test that wants the other codec swaps each
    of them in before it makes its connections."""
    import fastframe.protocol as protocol

    monkeypatch.setattr(protocol, "_encode_frame", impl.encode_frame)
    monkeypatch.setattr(protocol, "_encode_header", impl.encode_header)
    monkeypatch.setattr(protocol, "_Utf8Validator", impl.Utf8Validator)
    monkeypatch.setattr(protocol, "_FrameParser", impl.FrameParser)
    # Called with the parser as first argument; a compiled method handed the
    # other codec's parser would not check what it was given.
    monkeypatch.setattr(protocol, "_feed_messages", impl.FrameParser.feed_messages)


@pytest.fixture
def protocol_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run a protocol-layer test on ``impl``."""
    swap_codec(impl, monkeypatch)
    return impl
