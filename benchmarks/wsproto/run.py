"""fastframe.wsproto against the real wsproto, under unchanged consumers.

    python -m benchmarks.wsproto.run [--seconds S] [--repeats N] [--json FILE]
                                     [--servers hypercorn,trio] [--scenarios ...]
                                     [--instructions]

The same echo servers run twice, on the real wsproto 1.3.2 and through
``python -m fastframe.wsproto`` (nothing else changes): hypercorn 0.18.0
serving asgi_echo.py (``--workers 0``: one process, whose CPU is measured)
and trio-websocket 0.12.2 serving trio_echo.py.  The load client is
benchmarks/e2e's (loadclient.c: binary messages, every reply checked byte
for byte); the servers and the client are measured the way
benchmarks/e2e/run.py does (one-connection scenarios share a core, the
others get one each; server CPU from /proc).  Each pair of runs (real,
facade) is interleaved across repeats and the figures are medians.

``--instructions`` counts instead, with ``valgrind --tool=callgrind``, the
server's instructions per echoed message (a short and a long period; the
difference over the difference in messages, so that start-up cancels out):
the same on a busy machine as on a quiet one, user space only.

The servers run in the consumers' virtualenvs of scripts/consumers.py
(made on first use).  Do not run the timed benchmark while other heavy work
runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from ..e2e.run import build_client, cpu_seconds, free_port, pressure, run_client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

#: name: (connections, in flight per connection, message size)
SCENARIOS: dict[str, tuple[int, int, int]] = {
    "1x64B": (1, 1, 64),
    "1x64KiB": (1, 1, 65536),
    "50x8x4KiB": (50, 8, 4096),
}
#: server: the consumer suite whose venv runs it
SERVERS = {"hypercorn": "hypercorn", "trio": "trio-websocket"}


def venv_python(suite: str) -> str:
    """The python of scripts/consumers.py's venv for ``suite`` (made if need be)."""
    spec = importlib.util.spec_from_file_location("consumers", os.path.join(ROOT, "scripts", "consumers.py"))
    assert spec is not None and spec.loader is not None
    consumers = importlib.util.module_from_spec(spec)
    sys.modules["consumers"] = consumers
    spec.loader.exec_module(consumers)
    by_name = {s.name: s for s in consumers.SUITES}
    python, _ = consumers.setup(by_name[suite])
    return str(python)


def command(server: str, python: str, facade: bool, port: int) -> list[str]:
    switch = ["-m", "fastframe.wsproto"] if facade else []
    if server == "hypercorn":
        run = ["hypercorn"] if facade else ["-m", "hypercorn"]
        return [python, *switch, *run, "--workers", "0", "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning", "asgi_echo:app"]
    run = ["-m", "trio_echo"] if facade else ["trio_echo.py"]
    return [python, *switch, *run, str(port)]


def start(cmd: list[str], port: int, cpu: int | None, wait: float = 30) -> subprocess.Popen[bytes]:
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    env = {k: v for k, v in os.environ.items() if k != "FASTFRAME_NO_EXTENSIONS"}
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{cmd} did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def measure(cmd_for: Any, scenario: str, seconds: float) -> dict[str, Any]:
    conns, inflight, size = SCENARIOS[scenario]
    server_cpu, client_cpu = (0, 0) if conns == 1 else (0, 1)
    port = free_port()
    proc = start(cmd_for(port), port, server_cpu)
    try:
        run_client(port, conns, inflight, size, 0.5, 0.2, client_cpu)  # warm up
        p0 = pressure()
        c0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        r = run_client(port, conns, inflight, size, seconds, 0.0, client_cpu)
        wall = time.monotonic() - t0
        c1 = cpu_seconds(proc.pid)
        r["server_cpu_us_per_msg"] = 1e6 * (c1 - c0) / max(1, r["messages"])
        r["server_cpu_pct"] = 100 * (c1 - c0) / wall
        r["pressure"] = max(p0, pressure())
        return r
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def instructions(cmd_for: Any, scenario: str, seconds: float) -> tuple[int, int]:
    """(messages, instructions) of the server under callgrind for one period."""
    conns, inflight, size = SCENARIOS[scenario]
    port = free_port()
    out = f"/tmp/callgrind.wsproto.{os.getpid()}.out"
    proc = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd_for(port)], port, None, 300)
    try:
        r = run_client(port, conns, inflight, size, seconds, 0.0, None)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if os.path.exists(out):
            os.unlink(out)
    m = re.search(rb"Collected : (\d+)", err or b"")
    if not m:
        raise RuntimeError(f"callgrind reported no total: {(err or b'')[-500:]!r}")
    return int(r["messages"]), int(m.group(1))


def count_instructions(servers: list[str], pythons: dict[str, str], scenarios: list[str]) -> int:
    print(f"{'server':12} {'scenario':10} {'wsproto instr/msg':>18} {'facade instr/msg':>17} {'ratio':>6}")
    for server in servers:
        for scenario in scenarios:
            per = {}
            for facade in (False, True):
                def cmd_for(port: int, s: str = server, f: bool = facade) -> list[str]:
                    return command(s, pythons[s], f, port)

                m1, i1 = instructions(cmd_for, scenario, 2.0)
                m2, i2 = instructions(cmd_for, scenario, 8.0)
                per[facade] = (i2 - i1) / max(1, m2 - m1)
            print(f"{server:12} {scenario:10} {per[False]:18,.0f} {per[True]:17,.0f} {per[False] / per[True]:5.2f}x",
                  flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--instructions", action="store_true", help="count instructions per message (callgrind)")
    opts = parser.parse_args()
    build_client()
    servers = opts.servers.split(",")
    pythons = {s: venv_python(SERVERS[s]) for s in servers}
    if opts.instructions:
        return count_instructions(servers, pythons, opts.scenarios.split(","))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for repeat in range(opts.repeats):
        for server in servers:
            for scenario in opts.scenarios.split(","):
                for facade in (False, True):
                    key = f"{server} {'fastframe.wsproto' if facade else 'wsproto'}"
                    r = measure(lambda port, s=server, f=facade: command(s, pythons[s], f, port), scenario,
                                opts.seconds)
                    results.setdefault(key, {}).setdefault(scenario, []).append(r)
                    print(f"[{repeat + 1}/{opts.repeats}] {key:30} {scenario:10} {r['msgs_per_s']:10.0f} msg/s "
                          f"{r['server_cpu_us_per_msg']:8.1f} us CPU/msg  p50 {r['p50_us']:.0f} us", flush=True)
    print()
    print(f"{'server':12} {'scenario':10} {'wsproto msg/s':>14} {'facade msg/s':>13} {'ratio':>6} "
          f"{'CPU us/msg wsproto':>19} {'facade':>7}")
    table = []
    for server in servers:
        for scenario in opts.scenarios.split(","):
            real = results[f"{server} wsproto"][scenario]
            fast = results[f"{server} fastframe.wsproto"][scenario]
            row = {
                "server": server, "scenario": scenario,
                "wsproto_msgs_per_s": statistics.median(r["msgs_per_s"] for r in real),
                "facade_msgs_per_s": statistics.median(r["msgs_per_s"] for r in fast),
                "wsproto_cpu_us_per_msg": statistics.median(r["server_cpu_us_per_msg"] for r in real),
                "facade_cpu_us_per_msg": statistics.median(r["server_cpu_us_per_msg"] for r in fast),
                "ratios": [b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(real, fast)],
            }
            row["ratio"] = row["facade_msgs_per_s"] / row["wsproto_msgs_per_s"]
            table.append(row)
            print(f"{server:12} {scenario:10} {row['wsproto_msgs_per_s']:14,.0f} {row['facade_msgs_per_s']:13,.0f} "
                  f"{row['ratio']:5.2f}x {row['wsproto_cpu_us_per_msg']:19.1f} {row['facade_cpu_us_per_msg']:7.1f}")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"seconds": opts.seconds, "repeats": opts.repeats, "rows": table, "runs": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
