#!/usr/bin/env bash
# The one test command (README.md, .ci/run): sets up everything the tests need,
# builds the compiled core, then runs the whole suite against both
# implementations, then once more as pure Python (FASTFRAME_NO_EXTENSIONS=1).  Extra arguments go to pytest.
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

# System tools the interop tests drive: curl, Debian's Chromium, Node + npm;
# redis-server for the topics tests (each starts its own on a free port);
# zlib's headers for the benchmark's load client (tests/test_loadclient_deflate.py).
missing=()
command -v curl >/dev/null || missing+=(curl)
[[ -f /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if (( ${#missing[@]} )); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "installing ${missing[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Node peers: the ws library and playwright-core (it drives /usr/bin/chromium;
# it never downloads a browser of its own).
(cd tests/js && npm install --no-audit --no-fund --silent)

python -m pip install -q --upgrade pip
# The build must produce the compiled core here: a silent pure fallback would
# turn every "c" test case into a failure anyway, this makes it fail early.
FASTFRAME_REQUIRE_EXTENSIONS=1 python -m pip install -q -e ".[test]"
python - <<'PY'
import fastframe, sys
print(f"fastframe {fastframe.__version__}: implementation {fastframe.IMPLEMENTATION}, "
      f"Python {sys.version.split()[0]}")
PY

python -m pytest "$@"
# The pure twin once more, in processes of its own: FASTFRAME_NO_EXTENSIONS=1
# loads the protocol layer and the asyncio glue from their .py source (the
# in-process "py" cases above swap only the codec under the compiled layers);
# the "c" cases skip here by design.
echo "fastframe: the pure twin (FASTFRAME_NO_EXTENSIONS=1)"
FASTFRAME_NO_EXTENSIONS=1 python -m pytest -q "$@"
