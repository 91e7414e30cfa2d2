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


def load_c(stem: str = "_codec") -> ModuleType:
    """The compiled module ``stem`` (see fastframe._impl.COMPILED)."""
    if NO_EXTENSIONS:
        pytest.skip("FASTFRAME_NO_EXTENSIONS is set: the compiled modules are not wanted")
    try:
        return importlib.import_module(f"fastframe.{stem}_c")
    except ImportError as exc:
        pytest.fail(
            f"the compiled module {stem}_c did not build or import ({exc}); "
            "build it (pip install -e . or python setup.py build_ext --inplace) "
            "or set FASTFRAME_NO_EXTENSIONS=1 to test the pure twins alone",
            pytrace=False,
        )


def load_py(stem: str = "_codec") -> ModuleType:
    """The pure twin of the compiled module ``stem``."""
    return importlib.import_module(f"fastframe.{stem}_py")


@pytest.fixture(params=["c", "py"], scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The codec: compiled (``c``) or the pure twin (``py``)."""
    return load_c() if request.param == "c" else load_py()


@pytest.fixture(scope="session")
def c_impl() -> ModuleType:
    return load_c()


@pytest.fixture(scope="session")
def py_impl() -> ModuleType:
    return load_py()


@pytest.fixture(params=["c", "py"], scope="session")
def aio(request: pytest.FixtureRequest) -> ModuleType:
    """The asyncio layer's helpers (``_aio``): compiled or the pure twin."""
    return load_c("_aio") if request.param == "c" else load_py("_aio")


@pytest.fixture(scope="session")
def c_aio() -> ModuleType:
    return load_c("_aio")


def layer(stem: str) -> ModuleType:
    """The selected implementation of a layer (``_protocol``,
    ``_connection``, ``_uvicorn``): where its private names live."""
    from fastframe import _impl

    return _impl.load(stem)


def _codec_objects(codec: ModuleType) -> dict[int, tuple[str, ...]]:
    """Every object of ``codec`` that another module may have taken a name
    for: its public names, and the methods of its classes (taken unbound)."""
    found: dict[int, tuple[str, ...]] = {id(codec): ()}
    for name in codec.__all__:
        value = getattr(codec, name)
        found[id(value)] = (name,)
        if isinstance(value, type):
            for attr in vars(value):
                if not attr.startswith("__"):
                    found[id(getattr(value, attr))] = (name, attr)
    return found


def _resolve(codec: ModuleType, path: tuple[str, ...]) -> object:
    value: object = codec
    for attr in path:
        value = getattr(value, attr)
    return value


def swap_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every layer above the codec ``impl``'s codec instead of the
    selected one: each took what it calls per message from the selector once,
    at import (no lookup by name per read), and each Connection takes those
    from its module when it is made; so a test swaps every such name in
    before it makes its connections.  A compiled method handed the other
    codec's parser would not check what it was given, so methods taken
    unbound are swapped too."""
    import fastframe
    from fastframe import _impl

    selected = _impl.codec
    if impl is selected:
        return
    objects = _codec_objects(selected)
    modules = [_impl.load(stem) for stem in _impl.COMPILED if stem not in _impl.HANDWRITTEN]
    modules += [importlib.import_module(f"fastframe.{name}") for name in ("server", "deflate", "handshake")]
    for module in [*modules, fastframe]:
        for name, value in list(vars(module).items()):
            path = objects.get(id(value))
            if path is not None and not name.startswith("__"):
                monkeypatch.setattr(module, name, _resolve(impl, path))


@pytest.fixture
def protocol_codec(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run a protocol-layer test on ``impl``."""
    swap_codec(impl, monkeypatch)
    return impl
