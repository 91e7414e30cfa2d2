#!/usr/bin/env python3
"""Run the test suites of wsproto's consumers with ``import wsproto`` giving
fastframe.wsproto (issue 19), and optionally with the real wsproto 1.3.2.

    python scripts/consumers.py [--baseline] [--pure] [--keep-going] [--show] [SUITE ... | all]

SUITEs: wsproto, trio-websocket, simple-websocket, hypercorn, uvicorn,
httpx-ws (default: all), and autobahn (the Autobahn fast groups against
hypercorn on the facade; run only when
named, it needs the Python 2.7 that compliance/autobahn.sh uses; the app
is benchmarks/wsproto/asgi_echo.py).

Each suite gets its own virtualenv under ~/.cache/fastframe-consumers/<suite>/
(FASTFRAME_CONSUMERS_DIR; made with this
interpreter, which must be the one the compiled core was built for: the
project's .venv), with the consumer installed from its sdist (pip download
--no-binary) and the test requirements its project declares, pinned.  The
checkout's fastframe package is put on the venv's path by a .pth file (no
rebuild).  Each run goes through ``python -m fastframe.wsproto pytest ...``
under a timeout (some suites hang instead of failing when an event is
wrong), and its counts are checked against EXPECTED: what the same suite
gives with the real wsproto 1.3.2 (``--baseline`` runs that too and prints
both side by side; ``--pure`` runs the facade on fastframe's pure twin).  Exit status 1 if any facade run differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Outside the checkout: venvs and sdists are not the project's files.
WORK = Path(os.environ.get("FASTFRAME_CONSUMERS_DIR", Path.home() / ".cache" / "fastframe-consumers"))


@dataclass
class Suite:
    name: str
    sdist: str  # requirement for pip download --no-binary
    deps: list[str]  # test requirements (pinned where the project pins them)
    args: list[str]  # pytest arguments, relative to the sdist's directory
    expected: dict[str, int]  # the counts with the real wsproto 1.3.2
    timeout: int = 600
    env: dict[str, str] = field(default_factory=dict)
    # A pytest plugin written to the venv's path, named in args with -p.
    plugin: tuple[str, str] | None = None


# simple-websocket's client tests mock the socket but still resolve
# example.com first; this machine has no DNS (the mocked socket connects
# nowhere, so the address does not matter).
OFFLINE_DNS = """\
import socket

_getaddrinfo = socket.getaddrinfo


def _offline(host, *args, **kwargs):
    if host == "example.com":
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _offline
"""

# Loaded into every facade run: fails the run unless wsproto is the facade,
# and says so in the header.
CHECK = """\
import sys


def pytest_configure(config):
    module = sys.modules.get("wsproto")
    if module is None or module.__name__ != "fastframe.wsproto":
        raise RuntimeError(f"wsproto is not fastframe.wsproto here: {module!r}")


def pytest_report_header(config):
    return "wsproto: " + sys.modules["wsproto"].__name__
"""


SUITES = [
    Suite(
        "wsproto",
        "wsproto==1.3.2",
        ["h11==0.16.0", "pytest", "wsproto==1.3.2"],
        # wsproto's API-level tests; test_frame_protocol, test_permessage_deflate
        # and test_extensions drive its private FrameProtocol/FrameDecoder and
        # extension hooks, which fastframe.wsproto does not have (docs/wsproto.md).
        ["tests/test_client.py", "tests/test_server.py", "tests/test_handshake.py", "tests/test_connection.py"],
        {"passed": 66},
    ),
    Suite(
        "trio-websocket",
        "trio-websocket==0.12.2",
        ["trio", "pytest-trio", "trustme", "pytest", "wsproto==1.3.2"],
        ["-o", "trio_mode=true", "tests"],
        {"passed": 64},
    ),
    Suite(
        "simple-websocket",
        "simple-websocket==1.1.0",
        ["pytest", "wsproto==1.3.2"],
        ["-p", "no:logging", "-p", "offline_dns", "tests"],
        {"passed": 47},
        plugin=("offline_dns", OFFLINE_DNS),
    ),
    Suite(
        "hypercorn",
        "hypercorn==0.18.0",
        ["h2==4.3.0", "httpx", "hypothesis", "mock", "pytest", "pytest-asyncio", "pytest-trio",
         "pytest-cov", "trio", "wsproto==1.3.2"],
        ["tests"],
        {"passed": 196},
    ),
    Suite(
        "uvicorn",
        "uvicorn==0.55.0",
        ["uvicorn[standard]==0.55.0", "pytest", "pytest-mock==3.17.0", "trustme==1.2.1", "cryptography",
         "httpx2", "a2wsgi==1.10.10", "wsproto==1.3.2"],
        ["-o", "addopts=-rxXs --strict-config --strict-markers", "-p", "no:xdist",
         "tests/protocols/test_websocket.py", "-k", "wsproto"],
        # The skips are the suite's own (cases for other implementations).
        {"passed": 146, "skipped": 73, "deselected": 237},
    ),
    Suite(
        "httpx-ws",
        "httpx-ws==0.9.0",
        ["pytest", "starlette", "uvicorn[standard]", "trio", "anyio", "wsproto==1.3.2"],
        ["-o", "addopts=", "tests"],
        {"passed": 147},
    ),
]

SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def setup(suite: Suite) -> tuple[Path, Path]:
    """The suite's venv python and its sdist directory (installed once)."""
    home = WORK / suite.name
    venv = home / "venv"
    python = venv / "bin" / "python"
    stamp = home / "ready"
    src = home / "src"
    key = " ".join([sys.executable, suite.sdist, *suite.deps])
    if not (stamp.exists() and stamp.read_text() == key):
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(python), "-m", "pip", "-q", "--disable-pip-version-check"]
        run([*pip, "download", "--no-binary", ":all:", "--no-deps", "-d", str(home / "dl"), suite.sdist])
        archive = next((home / "dl").iterdir())
        src.mkdir()
        with tarfile.open(archive) as tar:
            # The "data" filter where it exists (3.12+ warn without one).
            tar.extractall(src, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        run([*pip, "install", *suite.deps])
        if suite.name != "wsproto":
            run([*pip, "install", str(next(src.iterdir()))])
        stamp.write_text(key)
    # This checkout's fastframe (compiled in place by pip install -e), and
    # nothing else of the checkout (its tests/ would shadow the suite's),
    # with the pytest plugins: made again on every run, for the checkout
    # that runs it.
    site = home / "site"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir()
    (site / "fastframe").symlink_to(ROOT / "fastframe")
    (site / "fastframe_wsproto_check.py").write_text(CHECK)
    if suite.plugin:
        (site / f"{suite.plugin[0]}.py").write_text(suite.plugin[1])
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "fastframe-checkout.pth").write_text(f"{site}\n")
    return python, next(src.iterdir())


def counts(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if re.search(r"\b(passed|failed|errors?|no tests ran)\b", line)]
    found: dict[str, int] = {}
    if lines:
        for n, what in SUMMARY.findall(lines[-1]):
            found["errors" if what.startswith("error") else what] = int(n)
    return found


def run_suite(suite: Suite, python: Path, tree: Path, facade: bool,
              pure: bool = False) -> tuple[dict[str, int], float, str]:
    cmd = [str(python), "-m", "pytest"]
    if facade:
        cmd = [str(python), "-m", "fastframe.wsproto", "pytest", "-p", "fastframe_wsproto_check"]
    cmd += ["-q", "-p", "no:cacheprovider", *suite.args]
    env = {**os.environ, **suite.env}
    env.pop("FASTFRAME_NO_EXTENSIONS", None)
    if pure:
        env["FASTFRAME_NO_EXTENSIONS"] = "1"
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=suite.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\nTIMEOUT after {suite.timeout} s"
        return {"timeout": 1}, time.monotonic() - start, out
    return counts(out), time.monotonic() - start, out


def show(found: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(found.items())) or "nothing ran"


def autobahn(python: Path, facade: bool = True) -> bool:
    """The Autobahn fast groups against hypercorn on the facade (0 FAILED),
    or on the real wsproto."""
    env = {**os.environ, "PYTHON": str(ROOT / ".venv" / "bin" / "python"), "AUTOBAHN_CASES": '["1.1.1"]'}
    # compliance/autobahn.sh installs wstest (Python 2.7) on its first run;
    # one case against fastframe's own server is enough for that.
    if not (ROOT / ".autobahn" / "venv27" / "bin" / "wstest").exists():
        subprocess.run(["bash", str(ROOT / "compliance" / "autobahn.sh"), "fast", "c"], env=env, check=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ab = ROOT / ".autobahn"
    agent = "hypercorn-fastframe.wsproto" if facade else "hypercorn-wsproto"
    out = ab / "reports" / agent
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = ab / f"spec-{agent}.json"
    spec.write_text(json.dumps({
        "outdir": str(out),
        "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}/"}],
        # AUTOBAHN_CASES='["4.*"]' runs only those (as compliance/autobahn.sh).
        "cases": json.loads(os.environ.get("AUTOBAHN_CASES", '["*"]')),
        "exclude-cases": ["9.*", "12.*", "13.*"], "exclude-agent-cases": {},
    }))
    run_hypercorn = ["-m", "fastframe.wsproto", "hypercorn"] if facade else ["-m", "hypercorn"]
    server = subprocess.Popen(
        [str(python), *run_hypercorn, "--bind", f"127.0.0.1:{port}",
         "asgi_echo:app"],
        cwd=ROOT / "benchmarks" / "wsproto", start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("hypercorn did not start") from None
                time.sleep(0.1)
        with open(ab / f"wstest-{agent}.log", "w") as log:
            subprocess.run([str(ab / "venv27" / "bin" / "wstest"), "-m", "fuzzingclient", "-s", str(spec)],
                           cwd=ab, stdout=log, stderr=subprocess.STDOUT, timeout=1800, check=False)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "compliance" / "summary.py"),
                             str(out / "index.json"), agent], check=False)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", help="suites to run (default: all but autobahn; 'all': with it)")
    parser.add_argument("--baseline", action="store_true", help="also run each suite on the real wsproto")
    parser.add_argument("--keep-going", action="store_true", help="run every suite even after a failure")
    parser.add_argument("--show", action="store_true", help="print each run's output")
    parser.add_argument("--pure", action="store_true", help="run the facade on fastframe's pure twin")
    opts = parser.parse_args()
    by_name = {s.name: s for s in SUITES}
    names = opts.suites or list(by_name)
    if names == ["all"]:
        names = [*by_name, "autobahn"]
    unknown = [n for n in names if n not in by_name and n != "autobahn"]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    ok = True
    rows = []
    for name in names:
        if name == "autobahn":
            python, _ = setup(by_name["hypercorn"])
            passed = autobahn(python)
            base = ""
            if opts.baseline:
                base = "0 FAILED" if autobahn(python, facade=False) else "FAILED cases"
            rows.append((name, "0 FAILED" if passed else "FAILED cases", base, "ok" if passed else "FAILED"))
            ok &= passed
            continue
        suite = by_name[name]
        python, tree = setup(suite)
        found, took, out = run_suite(suite, python, tree, facade=True, pure=opts.pure)
        good = found == suite.expected
        flaky = ""
        if not good and "timeout" not in found:
            # Some of the consumers' own tests race (httpx-ws's test_send_close
            # asserts what the server saw the moment the client has left): a
            # failure is printed and reported, and the whole suite must then
            # pass on a second run.
            print(out[-20000:])
            again, took_again, out = run_suite(suite, python, tree, facade=True, pure=opts.pure)
            if again == suite.expected:
                flaky = f"; a first run had {show(found)}"
                found, took, good = again, took + took_again, True
        if opts.show or not good:
            print(out[-20000:])
        base = ""
        if opts.baseline:
            real, real_took, real_out = run_suite(suite, python, tree, facade=False)
            base = f"{show(real)} ({real_took:.0f} s)"
            if opts.show:
                print(real_out[-20000:])
        rows.append((name, f"{show(found)} ({took:.0f} s){flaky}", base,
                     "ok" if good else f"expected {show(suite.expected)}"))
        print(f"{name}: facade {show(found)} in {took:.0f} s{flaky}{'; real wsproto ' + base if base else ''}",
              flush=True)
        ok &= good
        if not good and not opts.keep_going:
            break
    print()
    print(f"{'suite':18} {'fastframe.wsproto':36} {'real wsproto 1.3.2' if opts.baseline else '':36} check")
    for row in rows:
        print(f"{row[0]:18} {row[1]:36} {row[2]:36} {row[3]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
