"""Run an unchanged consumer of wsproto on fastframe.wsproto.

    python -m fastframe.wsproto COMMAND [ARGS...]     a console script: hypercorn, uvicorn, pytest...
    python -m fastframe.wsproto -m MODULE [ARGS...]   a module, as python -m runs it
    python -m fastframe.wsproto --check               say what ``import wsproto`` gives

The switch is made (:func:`fastframe.wsproto.install`) before the command is
imported, in this process; worker processes that multiprocessing starts
with "spawn" (hypercorn --workers, uvicorn --workers and --reload) make it
too, as they run ``fastframe.wsproto._boot`` as their main module.  (A
MODULE run with -m therefore runs in a namespace of its own, not as
``sys.modules["__main__"]``: a worker target defined in it cannot be
pickled, which fails loudly.)  A command that is not installed, or a wsproto
imported before the switch, is an error (exit 2), never a silent run on the
real wsproto.
"""

from __future__ import annotations

import sys

from . import install, installed

USAGE = """\
usage: python -m fastframe.wsproto COMMAND [ARGS...]
       python -m fastframe.wsproto -m MODULE [ARGS...]
       python -m fastframe.wsproto --check
Runs COMMAND (a console script such as hypercorn, uvicorn or pytest) or MODULE
with 'import wsproto' giving fastframe.wsproto."""


def _fail(message: str) -> int:
    print(f"fastframe.wsproto: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        install()
    except RuntimeError as exc:
        return _fail(str(exc))
    if argv[0] == "--check":
        import wsproto

        print(f"wsproto {wsproto.__version__} is {wsproto.__name__} ({wsproto.__file__})")
        return 0 if installed() else 2
    # Worker processes spawned by the command run _boot first (see there).
    import importlib.util

    sys.modules["__main__"].__spec__ = importlib.util.find_spec(f"{__package__}._boot")
    if argv[0] == "-m":
        if len(argv) < 2:
            return _fail("-m needs a module name")
        import runpy

        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=False)
        return 0
    from importlib.metadata import entry_points

    name = argv[0]
    if sys.version_info >= (3, 10):
        found = list(entry_points(group="console_scripts", name=name))
    else:  # a dict of groups
        found = [ep for ep in entry_points().get("console_scripts", ()) if ep.name == name]
    if not found:
        return _fail(f"no console script named {name!r} is installed in this environment ({sys.executable})")
    # Loaded after install(): the command's modules import wsproto now.
    function = found[0].load()
    sys.argv = argv
    result = function()
    return result if isinstance(result, int) else 0 if result is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
