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
The compressed scenarios of run.py ("1x1 1KiB deflate", ...; "deflate" for
all of them) count the same way, without picows (no permessage-deflate),
against websockets.

``--footprint`` counts, besides, the server's hot code: the distinct 64-byte
lines of machine code it runs on (nearly) every message, from callgrind's
per-instruction counts over a steady period.  At one message in flight each
round trip starts after a context switch, with the caches shared with the
kernel and the client, so the code a message touches can matter more than
how many instructions run (a loop is cheap once its line is in cache).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from ..common import save_json
from .run import (
    DEFLATE_SCENARIOS,
    NO_DEFLATE,
    SCENARIOS,
    available,
    build_client,
    free_port,
    run_client,
    start_server,
)

DEFAULT_SERVERS = "fastframe-c-listener,fastframe-c,fastframe-py-listener,picows,aiohttp,websockets"


def count(server: str, scenario: str, seconds: float) -> tuple[int, int]:
    """(messages echoed, instructions the server ran) for one period."""
    conns, inflight, size, deflate = SCENARIOS[scenario]
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="callgrind.", suffix=".out") as out:
        proc = start_server(server, port, None,
                            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"], deflate)
        try:
            r = run_client(port, conns, inflight, size, seconds, 0.0, None, deflate)
        finally:
            err = stop(proc)
    m = re.search(r"Collected : (\d+)", err or "")
    if not m:
        raise RuntimeError(f"{server}: callgrind reported no total: {err[-500:] if err else ''}")
    return int(r["messages"]), int(m.group(1))


def stop(proc: subprocess.Popen[str]) -> str:
    """Stop a server with SIGINT (a clean exit, so that callgrind writes its
    totals); its standard error."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def footprint(server: str, scenario: str, seconds: float) -> int:
    """The hot 64-byte code lines (run on at least 90% of the messages) over a
    steady period: collection is switched on after a warm-up and off before
    the exit."""
    conns, inflight, size, deflate = SCENARIOS[scenario]
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="callgrind.", suffix=".out") as out:
        proc = start_server(server, port, None, [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=yes", "--dump-line=no",
            "--compress-pos=no", "--compress-strings=no", f"--callgrind-out-file={out.name}"], deflate)
        try:
            run_client(port, conns, inflight, size, 1.0, 0.0, None, deflate)  # warm-up, not counted
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
            r = run_client(port, conns, inflight, size, seconds, 0.0, None, deflate)
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
        finally:
            stop(proc)
        counts = per_instruction(out.name)
    n = int(r["messages"])
    return len({addr >> 6 for addr, c in counts.items() if c >= 0.9 * n})


def per_instruction(path: str) -> collections.Counter[int]:
    """Instructions executed at each address, from an uncompressed callgrind
    profile with --dump-instr=yes (the cost line after ``calls=`` is the
    callee's inclusive cost, not the caller's own, and is skipped)."""
    counts: collections.Counter[int] = collections.Counter()
    after_call = False
    with open(path) as f:
        for line in f:
            if line.startswith("calls="):
                after_call = True
            elif line.startswith("0x"):
                if after_call:
                    after_call = False
                    continue
                addr, cost = line.split()[:2]
                counts[int(addr, 16)] += int(cost)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=DEFAULT_SERVERS)
    ap.add_argument("--scenarios", default="1x1 64B,1x1 4KiB")
    ap.add_argument("--short", type=float, default=2.0, help="seconds of the short period")
    ap.add_argument("--long", type=float, default=6.0, help="seconds of the long period")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--footprint", action="store_true",
                    help="also count the hot code lines per message (a third run under callgrind)")
    args = ap.parse_args(argv)
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    build_client()
    servers = [s for s in args.servers.split(",") if s != "node-ws" and not available(s)]
    out: dict[str, dict[str, float]] = {}
    lines: dict[str, dict[str, int]] = {}
    scenarios: list[str] = []
    for sc in args.scenarios.split(","):
        scenarios += DEFLATE_SCENARIOS if sc == "deflate" else [sc]
    print("# server instructions per message (callgrind, user space); ratios against picows"
          + (" (compressed scenarios: websockets)" if any(SCENARIOS[sc][3] for sc in scenarios) else ""))
    for sc in scenarios:
        deflate = SCENARIOS[sc][3]
        ref_name = "websockets" if deflate else "picows"
        out[sc] = {}
        for s in servers:
            if deflate and s in NO_DEFLATE:
                continue
            sys.stderr.write(f"\r\033[K{sc}: {s}")
            sys.stderr.flush()
            m1, i1 = count(s, sc, args.short)
            m2, i2 = count(s, sc, args.long)
            if m2 <= m1:
                raise RuntimeError(f"{s}: the long period echoed no more messages than the short one")
            out[sc][s] = (i2 - i1) / (m2 - m1)
            if args.footprint:
                lines.setdefault(sc, {})[s] = footprint(s, sc, args.short)
        sys.stderr.write("\r\033[K")
        ref = out[sc].get(ref_name)
        hot_ref = lines.get(sc, {}).get(ref_name)
        w = max(9, 3 + len(ref_name))
        print(f"\n{sc}\n  {'server':26s} {'instr/msg':>10s} {'vs ' + ref_name:>{w}s}"
              + (f" {'hot lines':>9s} {'KiB':>6s} {'vs ' + ref_name:>{w}s}" if args.footprint else ""))
        for s, v in sorted(out[sc].items(), key=lambda kv: kv[1]):
            ratio = f"{v / ref:.2f}x" if ref else "n/a"
            row = f"  {s:26s} {v:10,.0f} {ratio:>{w}s}"
            if args.footprint:
                hot = lines[sc][s]
                row += f" {hot:9,d} {hot * 64 / 1024:6.1f} " + (f"{hot / hot_ref:.2f}x" if hot_ref else "n/a").rjust(w)
            print(row)
    save_json(args.json, {"instructions": out, "hot_lines": lines} if args.footprint else out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
