#!/usr/bin/env bash
# Autobahn|Testsuite against fastframe's echo server (server mode).
#
#   bash compliance/autobahn.sh [fast|full] [c|py|both] [server|client|uvicorn]
#                                     (default: fast both server)
#
# fast = every case except 9.* (large messages), 12.* and 13.* (compression).
# server: wstest -m fuzzingclient against `python -m fastframe serve --mode echo`;
# client: compliance/client.py against wstest -m fuzzingserver;
# uvicorn: wstest -m fuzzingclient against uvicorn serving a Starlette echo app
# (compliance/asgi_echo.py) with --ws fastframe.uvicorn:Protocol.
# Installs autobahntestsuite 25.10.1 into a Python 2.7 virtualenv under
# .autobahn/ (pyenv's 2.7 interpreter, virtualenv<20.22), starts
# `python -m fastframe serve --mode echo` on an ephemeral port for each
# implementation, runs `wstest -m fuzzingclient`, prints a summary per case
# group and exits non-zero if any case is FAILED or UNIMPLEMENTED.
set -euo pipefail
cd "${FASTFRAME_ROOT:-$(dirname "$0")/..}"
ROOT=$PWD
MODE=${1:-fast}
IMPLS=${2:-both}
SIDE=${3:-server}
[[ $IMPLS == both ]] && IMPLS="c py"
PY=${PYTHON:-python}
AB=$ROOT/.autobahn

PY27=""
for cand in "$(pyenv root 2>/dev/null)/versions/2.7.18/bin/python" /root/.pyenv/versions/2.7.18/bin/python "$(command -v python2.7 || true)"; do
    if [[ -n "$cand" && -x "$cand" ]]; then PY27=$cand; break; fi
done
if [[ -z "$PY27" ]]; then
    echo "autobahn: Python 2.7 is needed (pyenv install 2.7.18)" >&2
    exit 2
fi

if [[ ! -x $AB/venv27/bin/wstest ]]; then
    "$PY" -m venv "$AB/tools"
    "$AB/tools/bin/pip" install -q "virtualenv<20.22"
    "$AB/tools/bin/virtualenv" -q -p "$PY27" "$AB/venv27"
    "$AB/venv27/bin/pip" install -q setuptools==44.0.0 txaio==2.1.0 incremental==16.10.1 \
        pyOpenSSL==19.1.0 cryptography==3.3.2 Twisted==19.10.0 zope.interface==4.6.0 \
        Jinja2==2.11.3 MarkupSafe==1.1.1 Werkzeug==1.0.1 klein==17.10.0 service-identity==18.1.0 \
        unittest2==1.1.0 six==1.16.0 "autobahn[accelerate,twisted]==0.10.9" wsaccel==0.6.6 \
        ujson==2.0.3 attrs==21.4.0 Automat==22.10.0 cffi==1.15.1 constantly==15.1.0 enum34==1.1.10 \
        hyperlink==21.0.0 idna==2.10 ipaddress==1.0.23 pyasn1==0.5.1 pyasn1-modules==0.3.0 \
        pycparser==2.21 PyHamcrest==1.10.1 traceback2==1.4.0 linecache2==1.0.0 typing==3.10.0.0 2>&1 \
        | grep -v "DEPRECATION\|WARNING" || true
    "$AB/venv27/bin/pip" install -q --no-deps autobahntestsuite==25.10.1 2>&1 | grep -v "DEPRECATION\|WARNING" || true
fi

exclude='[]'
[[ $MODE == fast ]] && exclude='["9.*", "12.*", "13.*"]'
# AUTOBAHN_CASES='["13.4.*"]' runs only those cases (to re-check a fix).
cases=${AUTOBAHN_CASES:-'["*"]'}

if [[ $SIDE == client ]]; then
    status=0
    for impl in $IMPLS; do
        port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        out=$AB/reports/client-$impl
        rm -rf "$out"; mkdir -p "$out"
        cat > "$AB/spec-client-$impl.json" <<JSON
{"url": "ws://127.0.0.1:$port", "outdir": "$out", "cases": $cases, "exclude-cases": $exclude,
 "exclude-agent-cases": {}}
JSON
        (cd "$AB" && exec "$AB/venv27/bin/wstest" -m fuzzingserver -u 0 -s "$AB/spec-client-$impl.json" \
            > "$AB/wstest-client-$impl.log" 2>&1) &
        wst=$!
        for _ in $(seq 100); do
            (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break
            sleep 0.1
        done
        if [[ $impl == py ]]; then export FASTFRAME_NO_EXTENSIONS=1; else unset FASTFRAME_NO_EXTENSIONS; fi
        PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$ROOT/compliance/client.py" "ws://127.0.0.1:$port" "fastframe-$impl" || status=1
        unset FASTFRAME_NO_EXTENSIONS
        kill $wst 2>/dev/null || true
        wait $wst 2>/dev/null || true
        "$PY" "$ROOT/compliance/summary.py" "$out/index.json" "fastframe-$impl" || status=1
    done
    exit $status
fi

status=0
for impl in $IMPLS; do
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if [[ $impl == py ]]; then export FASTFRAME_NO_EXTENSIONS=1; else unset FASTFRAME_NO_EXTENSIONS; fi
    if [[ $SIDE == uvicorn ]]; then
        agent=uvicorn-fastframe-$impl
        "$PY" -m uvicorn asgi_echo:app --app-dir "$ROOT/compliance" --ws fastframe.uvicorn:Protocol \
            --host 127.0.0.1 --port "$port" --log-level warning &
    else
        agent=fastframe-$impl
        "$PY" -m fastframe serve --mode echo --host 127.0.0.1 --port "$port" --log-level WARNING &
    fi
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 50); do
        (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
    out=$AB/reports/$agent
    rm -rf "$out"; mkdir -p "$out"
    cat > "$AB/spec-$impl.json" <<JSON
{"outdir": "$out", "servers": [{"agent": "$agent", "url": "ws://127.0.0.1:$port/"}],
 "cases": $cases, "exclude-cases": $exclude, "exclude-agent-cases": {}}
JSON
    (cd "$AB" && "$AB/venv27/bin/wstest" -m fuzzingclient -s "$AB/spec-$impl.json" > "$AB/wstest-$impl.log" 2>&1)
    kill $server 2>/dev/null || true
    wait $server 2>/dev/null || true
    unset FASTFRAME_NO_EXTENSIONS
    "$PY" "$ROOT/compliance/summary.py" "$out/index.json" "$agent" || status=1
done
exit $status
