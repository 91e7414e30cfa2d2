#!/usr/bin/env bash
# Build the compiled core with AddressSanitizer + UBSan in a scratch copy of
# the package, then run the test suite and the fuzz target against it.
#
#   bash scripts/sanitize.sh [FUZZ_SECONDS]     (default 180)
#
# The interpreter itself is not instrumented, so libasan is preloaded and leak
# detection is off (CPython frees little at exit); UBSan findings abort.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_FUZZ=${1:-180}
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/fastframe-asan.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$PY" -m pip install -q "Cython>=3.1,<3.3" "setuptools>=70" pytest hypothesis websockets wsproto atheris
cp -r setup.py pyproject.toml README.md fastframe "$WORK"/
rm -f "$WORK"/fastframe/*.so "$WORK"/fastframe/*.c
(cd "$WORK" && FASTFRAME_SANITIZE=1 FASTFRAME_REQUIRE_EXTENSIONS=1 "$PY" setup.py -q build_ext --inplace)

LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$LIBASAN:$LIBUBSAN"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$WORK"
export PYTHONMALLOC=malloc   # let ASan see every allocation, not pymalloc arenas

"$PY" -c "import fastframe, sys; assert fastframe.IMPLEMENTATION == 'c'; print('sanitized build:', fastframe._impl.codec.__file__)"
# The tests that drive the compiled core (codec and protocol layers).  Left
# out: the RSS test (ASan quarantines freed memory on purpose, so RSS grows
# under it whatever the code does) and the tests that start other programs
# (Node, Chromium, curl, server subprocesses), which would inherit LD_PRELOAD.
# They all run in the normal suite.
(cd "$WORK" && "$PY" -m pytest -q -p no:cacheprovider -x -k "not million_frames" \
    "$ROOT"/tests/test_{mask,encode,parser,utf8,parity,interop,protocol,deflate,handshake}.py)
# gcc's libasan exports the coverage hooks libFuzzer needs, which blinds
# atheris (no coverage: "Is the code instrumented?").  So the fuzzing is in two
# halves: coverage-guided on a normal build to grow a corpus, then that corpus
# and its mutations replayed against the sanitized build.
mkdir -p "$WORK/corpus" "$WORK/normal"
cp -r setup.py pyproject.toml README.md fastframe "$WORK/normal"/
rm -f "$WORK"/normal/fastframe/*.so "$WORK"/normal/fastframe/*.c
(cd "$WORK/normal" && FASTFRAME_REQUIRE_EXTENSIONS=1 "$PY" setup.py -q build_ext --inplace)
HALF=$(( SECONDS_FUZZ / 2 ))
(cd "$WORK" && env -u LD_PRELOAD -u PYTHONMALLOC PYTHONPATH="$WORK/normal" \
    "$PY" "$ROOT/fuzz/fuzz_codec.py" -max_total_time="$HALF" -artifact_prefix="$ROOT/fuzz/crash-" \
    "$WORK/corpus" 2>&1 | grep -E "DONE|Done|ERROR|Error" || true)
echo "corpus: $(ls "$WORK/corpus" | wc -l) inputs"
(cd "$WORK" && "$PY" "$ROOT/fuzz/fuzz_codec.py" -max_total_time="$HALF" -rss_limit_mb=4096 \
    -artifact_prefix="$ROOT/fuzz/crash-" "$WORK/corpus" 2>&1 | grep -E "DONE|Done|ERROR|Error|SUMMARY")
echo "sanitize: tests and ${SECONDS_FUZZ}s of fuzzing passed under ASan+UBSan"
