#!/usr/bin/env bash
# The one test command (README.md, .ci/run): sets up everything the tests need,
# builds the compiled core, then runs the whole suite against both
# implementations.  Extra arguments go to pytest.
#
# Uses the active virtualenv, or creates ./.venv with python3 (PYTHON=...
# picks another interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        "${PYTHON:-python3}" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

python -m pip install -q --upgrade pip
# The build must produce the compiled core here: a silent pure fallback would
# turn every "c" test case into a failure anyway, this makes it fail early.
FASTFRAME_REQUIRE_EXTENSIONS=1 python -m pip install -q -e ".[test]"
python - <<'PY'
import fastframe, sys
print(f"fastframe {fastframe.__version__}: implementation {fastframe.IMPLEMENTATION}, "
      f"Python {sys.version.split()[0]}")
PY

exec python -m pytest "$@"
