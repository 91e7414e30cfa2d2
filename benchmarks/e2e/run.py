"""End-to-end echo benchmark: the same load client against every server.

    python -m benchmarks.e2e.run [--quick] [--seconds S] [--repeats N] [--json FILE]
                                 [--servers fastframe-c,picows,...] [--scenarios ...]

The load client (loadclient.c, built with cc on first use) keeps IN_FLIGHT
messages outstanding on each connection and checks every reply byte for
byte.  Servers run one at a time, interleaved across repeats (A B C A B C);
each figure is the median over repeats, and "pairs" gives the range of the
per-repeat ratios to picows (the two run in the same pass over the servers,
close together in time, so the range shows how far the machine's noise moves
a ratio).  One-connection scenarios pin client and server to the same core
(on these 2-core machines, cross-core wake-ups cap every server near 10 k
round trips/s); multi-connection ones give each a core.  CPU pressure
(/proc/pressure/cpu) is recorded around every run, and a multi-connection
run where it was high is marked noisy (in one-core runs the two processes
queue for the core by design, so pressure is always high).

Two reference lines are not libraries and run only when named in --servers:
c-ceiling (ceiling.c, an echo server in C on bare epoll: what the kernel and
the load client leave for any server) and uvloop-floor (the least a Python
protocol callback on uvloop does per message).

Compressed scenarios ("... deflate"; ``--scenarios deflate`` runs them all)
measure permessage-deflate as browsers use it: the load client offers it as
Chrome does and fails if the server does not accept it; its messages are
JSON-looking text of 1 KiB or 16 KiB, compressed with context takeover, and
every reply must come back compressed.  Each server runs with its library's
own deflate settings (servers.py); Node's ws with ``perMessageDeflate:
{threshold: 0}`` (its default threshold, 1024 bytes, would leave smaller
messages plain; the rest of its defaults stay).  picows has no
permessage-deflate, so these scenarios skip it and take their ratios
against websockets instead.  They are not in the default list: with every
server they would make the README's run (about 15 minutes) some 70% longer;
run them on their own, e.g.

    python -m benchmarks.e2e.run --scenarios deflate --seconds 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..common import save_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(HERE, ".build")
CLIENT = os.path.join(BUILD, "loadclient")
CEILING = os.path.join(BUILD, "ceiling")

#: (connections, in flight per connection, message size, permessage-deflate):
#: binary messages of that size, or with deflate JSON-looking text of that
#: size, compressed (see loadclient.c).
SCENARIOS: dict[str, tuple[int, int, int, bool]] = {
    "1x1 64B": (1, 1, 64, False),
    "1x1 4KiB": (1, 1, 4096, False),
    "50x1 64B": (50, 1, 64, False),
    "50x8 64B": (50, 8, 64, False),
    "50x8 4KiB": (50, 8, 4096, False),
    "1x1 1KiB deflate": (1, 1, 1024, True),
    "1x1 16KiB deflate": (1, 1, 16384, True),
    "50x8 1KiB deflate": (50, 8, 1024, True),
    "50x8 16KiB deflate": (50, 8, 16384, True),
}
#: What runs without --scenarios: the uncompressed scenarios.
DEFAULT_SCENARIOS = [name for name, sc in SCENARIOS.items() if not sc[3]]
#: ``--scenarios deflate``: every compressed one.
DEFLATE_SCENARIOS = [name for name, sc in SCENARIOS.items() if sc[3]]
#: Servers without permessage-deflate, skipped in the compressed scenarios.
NO_DEFLATE = {"picows", "c-ceiling", "uvloop-floor"}
SERVERS = ["fastframe-c", "fastframe-c-listener", "fastframe-py", "fastframe-py-listener",
           "picows", "aiohttp", "websockets", "node-ws"]
#: Reference lines, not libraries (run them with --servers): ceiling.c, an echo
#: server in C on bare epoll (what the kernel and the load client allow any
#: server), and servers.py's uvloop_floor (the least a Python callback on uvloop
#: can do per message).
REFERENCES = ["c-ceiling", "uvloop-floor"]
#: The same ASGI echo app under uvicorn with each WebSocket implementation
#: (``--ws``): fastframe's drop-in Protocol, compiled and pure, and uvicorn's own.
UVICORN = {
    "uvicorn-fastframe-c": "fastframe.uvicorn:Protocol",
    "uvicorn-fastframe-py": "fastframe.uvicorn:Protocol",
    "uvicorn-websockets-sansio": "websockets-sansio",
    "uvicorn-wsproto": "wsproto",
}


def build(name: str, libs: tuple[str, ...] = ()) -> str:
    """Compile benchmarks/e2e/NAME.c into .build/NAME unless it is up to date."""
    src, exe = os.path.join(HERE, name + ".c"), os.path.join(BUILD, name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(BUILD, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        out = subprocess.run([cc, "-O2", "-o", exe, src, *libs], capture_output=True, text=True)
        if out.returncode != 0:
            hint = ""
            if "zlib.h" in out.stderr or "-lz" in out.stderr:
                hint = "\nzlib's headers are missing: apt-get install zlib1g-dev (Debian, Ubuntu)"
            raise RuntimeError(f"{cc} could not build {name}.c:\n{out.stderr.strip()}{hint}")
    return exe


def build_client() -> str:
    """The load client; it links zlib (Debian: zlib1g-dev) for permessage-deflate."""
    return build("loadclient", ("-lz",))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pressure() -> float:
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])  # some avg10
    except (OSError, IndexError, ValueError):
        return -1.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def available(server: str) -> str | None:
    """None if the server can run here, else why not."""
    import importlib.util

    if server == "c-ceiling":
        return None if shutil.which(os.environ.get("CC", "cc")) else "no C compiler"
    if server == "uvloop-floor":
        for need in ("uvloop", "fastframe._codec_c"):
            if importlib.util.find_spec(need) is None:
                return f"{need} not installed"
        return None
    if server == "node-ws":
        if not shutil.which("node") or not os.path.isdir(os.path.join(ROOT, "tests", "js", "node_modules", "ws")):
            return "node or tests/js/node_modules/ws missing (npm install in tests/js)"
        return None
    if server in UVICORN:
        for need in ("uvicorn", "httptools", "wsproto" if server.endswith("wsproto") else "websockets"):
            if importlib.util.find_spec(need) is None:
                return f"{need} not installed"
        if server == "uvicorn-fastframe-c" and importlib.util.find_spec("fastframe._codec_c") is None:
            return "fastframe._codec_c not built"
        return None
    mod = {"fastframe": "fastframe", "picows": "picows", "aiohttp": "aiohttp",
           "websockets": "websockets"}[server.split("-")[0]]
    if server.startswith("fastframe-c"):
        mod = "fastframe._codec_c"
    if importlib.util.find_spec("uvloop") is None:
        return "uvloop not installed"
    try:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} not installed"
    except ModuleNotFoundError:
        return f"{mod} not installed"
    return None


def start_server(server: str, port: int, cpu: int | None, prefix: list[str] | None = None,
                 deflate: bool = False) -> subprocess.Popen[str]:
    """Start SERVER on PORT (pinned to CPU) and wait until it listens; with
    ``deflate``, permessage-deflate on (servers.py; not for NO_DEFLATE)."""
    if deflate and server in NO_DEFLATE:
        raise ValueError(f"{server} has no permessage-deflate")
    env = dict(os.environ)
    env.pop("FASTFRAME_NO_EXTENSIONS", None)
    if server == "c-ceiling":
        cmd = [build("ceiling"), str(port)]
    elif server == "uvloop-floor":
        cmd = [sys.executable, "-m", "benchmarks.e2e.servers", "uvloop_floor", str(port)]
    elif server == "node-ws":
        # threshold 0: compress every message (by default ws sends those under
        # 1024 bytes plain); its other deflate settings are ws's defaults.
        pmd = "{threshold:0}" if deflate else "false"
        cmd = ["node", "-e", (
            "const W=require('ws');"
            f"const s=new W.Server({{host:'127.0.0.1',port:{port},perMessageDeflate:{pmd}}});"
            "s.on('listening',()=>console.log('listening'));"
            "s.on('connection',ws=>ws.on('message',(d,b)=>ws.send(d,{binary:b})));")]
        env["NODE_PATH"] = os.path.join(ROOT, "tests", "js", "node_modules")
    elif server in UVICORN:
        if server == "uvicorn-fastframe-py":
            env["FASTFRAME_NO_EXTENSIONS"] = "1"
        cmd = [sys.executable, "-m", "benchmarks.e2e.servers", "uvicorn", str(port), UVICORN[server]]
        if deflate:
            cmd.append("deflate")
    else:
        lib = server.split("-")[0]
        if server.endswith("-listener"):
            lib = "fastframe_listener"
        if server.startswith("fastframe-py"):
            env["FASTFRAME_NO_EXTENSIONS"] = "1"
        cmd = [sys.executable, "-m", "benchmarks.e2e.servers", lib, str(port)]
        if deflate:
            cmd.append("deflate")
    if prefix:
        cmd = prefix + cmd
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"{server} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def run_client(port: int, conns: int, inflight: int, size: int, seconds: float, warmup: float,
               cpu: int | None, deflate: bool = False) -> dict[str, Any]:
    cmd = [CLIENT, "127.0.0.1", str(port), str(conns), str(inflight), str(size), str(seconds), str(warmup)]
    if deflate:
        cmd.append("deflate")
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 60)
    if out.returncode != 0:
        raise RuntimeError(f"load client failed ({out.returncode}): {out.stderr.strip()}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@dataclass
class Result:
    samples: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return float(statistics.median(s[key] for s in self.samples))


def pair_ratios(r: Result, ref: Result | None) -> list[float]:
    """The server's rate over the reference's (picows's; websockets's when
    compressed), repeat by repeat (the two ran within one pass over the
    servers, so close together in time)."""
    if ref is None or r is ref:
        return []
    return [a["msgs_per_s"] / b["msgs_per_s"] for a, b in zip(r.samples, ref.samples)]


def measure(server: str, scenario: str, seconds: float) -> dict[str, Any]:
    conns, inflight, size, deflate = SCENARIOS[scenario]
    same_core = conns == 1
    server_cpu, client_cpu = (0, 0) if same_core else (0, 1)
    port = free_port()
    proc = start_server(server, port, server_cpu, deflate=deflate)
    try:
        run_client(port, conns, inflight, size, 0.5, 0.2, client_cpu, deflate)  # warm up the server
        p0 = pressure()
        c0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        r = run_client(port, conns, inflight, size, seconds, 0.0, client_cpu, deflate)
        wall = time.monotonic() - t0
        c1 = cpu_seconds(proc.pid)
        r["server_cpu_pct"] = 100 * (c1 - c0) / wall
        r["server_cpu_us_per_msg"] = 1e6 * (c1 - c0) / max(1, r["messages"])
        r["client_cpu_pct"] = 100 * r["client_cpu_s"] / r["seconds"]
        r["pressure"] = max(p0, pressure())
        return r
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 s runs, 1 repeat")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                    help="comma-separated names; 'deflate' stands for every compressed scenario "
                         f"(default: {', '.join(DEFAULT_SCENARIOS)})")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 1.0, 1
    build_client()
    servers = []
    for s in args.servers.split(","):
        why = available(s)
        if why:
            print(f"# skipping {s}: {why}")
        else:
            servers.append(s)
    scenarios: list[str] = []
    for sc in args.scenarios.split(","):
        scenarios += DEFLATE_SCENARIOS if sc == "deflate" else [sc]
    unknown = [sc for sc in scenarios if sc not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    if any(SCENARIOS[sc][3] for sc in scenarios):
        for s in servers:
            if s in NO_DEFLATE:
                print(f"# skipping {s} in the compressed scenarios: no permessage-deflate")
    runs = {sc: [s for s in servers if not (SCENARIOS[sc][3] and s in NO_DEFLATE)] for sc in scenarios}
    if not all(runs.values()):
        ap.error(f"no server to run in {', '.join(sc for sc in scenarios if not runs[sc])}")
    results: dict[str, dict[str, Result]] = {sc: {s: Result() for s in runs[sc]} for sc in scenarios}
    for sc in scenarios:
        for rep in range(args.repeats):
            order = runs[sc][rep % len(runs[sc]):] + runs[sc][: rep % len(runs[sc])]
            for s in order:
                sys.stderr.write(f"\r\033[K{sc}: {s} (repeat {rep + 1}/{args.repeats})")
                sys.stderr.flush()
                results[sc][s].samples.append(measure(s, sc, args.seconds))
    sys.stderr.write("\r\033[K")
    print(f"# {args.seconds:g} s per run, median of {args.repeats} interleaved repeats; "
          "ratios against picows from the same run"
          + (" (compressed scenarios: against websockets)" if any(SCENARIOS[sc][3] for sc in scenarios) else ""))
    uv_refs = [s for s in ("uvicorn-websockets-sansio", "uvicorn-wsproto") if s in servers]
    if uv_refs:
        print("# 'vs uvicorn': against the faster of uvicorn's own implementations "
              f"({', '.join(uv_refs)}) in the same scenario")
    out: dict[str, Any] = {"seconds": args.seconds, "repeats": args.repeats, "scenarios": {}}
    for sc in scenarios:
        deflate = SCENARIOS[sc][3]
        ref_name = "websockets" if deflate else "picows"
        print(f"\n{sc} (connections x in flight, size" + (", permessage-deflate)" if deflate else ")"))
        print(f"  {'server':26s} {'msgs/s':>10s} {'vs ' + ref_name:>{max(9, 3 + len(ref_name))}s} {'p50 us':>8s} {'p99 us':>8s} "
              f"{'pairs':>11s} {'srv CPU%':>8s} {'srv us/msg':>10s} {'cli CPU%':>8s} {'vs uvicorn':>10s}  noisy")
        ref = results[sc].get(ref_name)
        ref_rate = ref.median("msgs_per_s") if ref and ref.samples else None
        uv_rate = max((results[sc][s].median("msgs_per_s") for s in uv_refs if s in results[sc]), default=None)
        out["scenarios"][sc] = {}
        for s in sorted(runs[sc], key=lambda s: -results[sc][s].median("msgs_per_s")):
            r = results[sc][s]
            rate = r.median("msgs_per_s")
            # Pinned to one core, client and server always queue for it, so
            # pressure says nothing about outside load there; it does when
            # each has its own core.
            noisy = SCENARIOS[sc][0] > 1 and max(x["pressure"] for x in r.samples) > 20
            ratio = f"{rate / ref_rate:.2f}x" if ref_rate else "n/a"
            pairs = pair_ratios(r, ref)
            pair_range = f"{min(pairs):.2f}-{max(pairs):.2f}" if pairs else ""
            uv_ratio = f"{rate / uv_rate:9.2f}x" if uv_rate and s in UVICORN else ""
            print(f"  {s:26s} {rate:10,.0f} {ratio:>{max(9, 3 + len(ref_name))}s} {r.median('p50_us'):8.1f} {r.median('p99_us'):8.1f} "
                  f"{pair_range:>11s} {r.median('server_cpu_pct'):8.0f} {r.median('server_cpu_us_per_msg'):10.2f} "
                  f"{r.median('client_cpu_pct'):8.0f} {uv_ratio:>10s}  {'yes' if noisy else ''}")
            out["scenarios"][sc][s] = {"samples": r.samples, "msgs_per_s": rate, "pair_ratios": pairs}
            if deflate:
                out["scenarios"][sc][s]["reference"] = ref_name
        if deflate:
            # Each library's own settings: what it agreed to, and how small
            # its replies came out (the client's messages are the same bytes
            # for every server that agreed the same client window).
            for s in runs[sc]:
                last = results[sc][s].samples[-1]
                print(f"  # {s}: {last['deflate']}; compressed bytes per message: "
                      f"sent {last['sent_bytes_per_msg']:.0f}, replies {last['reply_bytes_per_msg']:.0f}")
    save_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
