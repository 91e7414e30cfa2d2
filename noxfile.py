"""The suite on every supported Python, both implementations, against an
installed (not editable) fastframe, run from outside the checkout.

    nox                      # every interpreter nox finds (3.9 - 3.14)
    nox -p 3.12              # one of them
    bash scripts/release_check.sh   # puts pyenv's interpreters on PATH first

Each session builds fastframe for its interpreter with the compiled core
required, so the ``c`` cases test that interpreter's extension, and copies
``tests/`` and ``benchmarks/`` into a temporary directory before running
pytest there: the source tree can never stand in for the installed package.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = False

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]
ROOT = os.path.dirname(os.path.abspath(__file__))


def _copy_tests(session: nox.Session) -> str:
    dest = os.path.join(session.create_tmp(), "suite")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for name in ("tests", "benchmarks"):
        shutil.copytree(
            os.path.join(ROOT, name),
            os.path.join(dest, name),
            ignore=shutil.ignore_patterns("__pycache__", "node_modules", ".build"),
        )
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), dest)
    # The interop tests find Node's packages under tests/js/node_modules.
    modules = os.path.join(ROOT, "tests", "js", "node_modules")
    if os.path.isdir(modules):
        os.symlink(modules, os.path.join(dest, "tests", "js", "node_modules"))
    return dest


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Compiled core and pure twin (the ``impl`` fixture runs both)."""
    session.install(f"{ROOT}[test]", env={"FASTFRAME_REQUIRE_EXTENSIONS": "1"})
    suite = _copy_tests(session)
    session.chdir(suite)
    session.run(
        "python", "-c",
        "import fastframe, sys; assert fastframe.IMPLEMENTATION == 'c', fastframe.IMPLEMENTATION; "
        "print('fastframe', fastframe.__version__, 'compiled, Python', sys.version.split()[0])",
    )
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", *session.posargs)


@nox.session(python=PYTHONS)
def pure(session: nox.Session) -> None:
    """A pure install (FASTFRAME_NO_EXTENSIONS=1): what runs where no compiler is."""
    env = {"FASTFRAME_NO_EXTENSIONS": "1"}
    session.install(f"{ROOT}[test]", env=env)
    suite = _copy_tests(session)
    session.chdir(suite)
    session.run("python", "-c", "import fastframe; assert fastframe.IMPLEMENTATION == 'py'", env=env)
    # -rfE: the compiled cases are skipped by design here; do not list each one.
    session.run("python", "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "tests",
                *session.posargs, env=env)
