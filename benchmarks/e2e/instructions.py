"""Server instructions per echoed message, counted by callgrind: the
deterministic side of the end-to-end benchmark.

    python -m benchmarks.e2e.instructions [--servers fastframe-c-listener,picows,...]
                                          [--scenarios "1x1 64B,1x1 4KiB"] [--json FILE]

Wall-clock figures on a shared 2-core machine move by ±15% between runs;
instruction counts do not (the same binary on the same input counts the same,
whatever else the machine does).  Each server runs under ``valgrind
--tool=callgrind`` while the load client echoes for a short and a long
period; the difference in instructions over the difference in messages is
the cost per message in user space (startup and warm-up cancel out).  The
kernel is not counted: compare system calls with ``strace -c`` (every server
here makes one read and one write per message at one message in flight).
Node's ws is left out (its JIT under valgrind is not the JIT it runs).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from ..common import save_json
from .run import SCENARIOS, available, build_client, free_port, run_client, start_server

DEFAULT_SERVERS = "fastframe-c-listener,fastframe-c,fastframe-py-listener,picows,aiohttp,websockets"


def count(server: str, scenario: str, seconds: float) -> tuple[int, int]:
    """(messages echoed, instructions the server ran) for one period."""
    conns, inflight, size = SCENARIOS[scenario]
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="callgrind.", suffix=".out") as out:
        proc = start_server(server, port, None,
                            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"])
        try:
            r = run_client(port, conns, inflight, size, seconds, 0.0, None)
        finally:
            proc.send_signal(signal.SIGINT)  # a clean exit, so that callgrind writes its totals
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
    m = re.search(r"Collected : (\d+)", err or "")
    if not m:
        raise RuntimeError(f"{server}: callgrind reported no total: {err[-500:] if err else ''}")
    return int(r["messages"]), int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=DEFAULT_SERVERS)
    ap.add_argument("--scenarios", default="1x1 64B,1x1 4KiB")
    ap.add_argument("--short", type=float, default=2.0, help="seconds of the short period")
    ap.add_argument("--long", type=float, default=6.0, help="seconds of the long period")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    build_client()
    servers = [s for s in args.servers.split(",") if s != "node-ws" and not available(s)]
    out: dict[str, dict[str, float]] = {}
    print("# server instructions per message (callgrind, user space); ratios against picows")
    for sc in args.scenarios.split(","):
        out[sc] = {}
        for s in servers:
            sys.stderr.write(f"\r\033[K{sc}: {s}")
            sys.stderr.flush()
            m1, i1 = count(s, sc, args.short)
            m2, i2 = count(s, sc, args.long)
            if m2 <= m1:
                raise RuntimeError(f"{s}: the long period echoed no more messages than the short one")
            out[sc][s] = (i2 - i1) / (m2 - m1)
        sys.stderr.write("\r\033[K")
        ref = out[sc].get("picows")
        print(f"\n{sc}\n  {'server':26s} {'instr/msg':>10s} {'vs picows':>9s}")
        for s, v in sorted(out[sc].items(), key=lambda kv: kv[1]):
            ratio = f"{v / ref:8.2f}x" if ref else "      n/a"
            print(f"  {s:26s} {v:10,.0f} {ratio:>9s}")
    save_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
