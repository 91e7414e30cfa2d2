"""Fan-out benchmark: one publisher, many subscribers, one load client.

    python -m benchmarks.fanout.run [--seconds 5] [--warmup 1] [--subscribers 1000]
                                    [--sizes 64,4096] [--window 64] [--repeats 1]
                                    [--servers fastframe,fastframe-2w-redis,socketify] [--json FILE]

Servers, side by side in one run (servers.py):

- ``fastframe``: one process, topics in-process (a Listener publishes what
  /pub sends; /sub connections subscribe);
- ``fastframe-2w-redis``: the same server as two processes on one port
  (SO_REUSEPORT, as ``serve --workers 2`` runs them) with topics through a
  redis-server this script starts: the publisher's worker delivers to its own
  subscribers at once and the other worker gets each message from Redis;
- ``socketify``: uWebSockets' pub/sub (``app.publish``), through socketify,
  whose wheel carries uWebSockets.

The load client (fanclient.c, built with cc on first use) opens SUBSCRIBERS
connections to /sub and one to /pub, and publishes SIZE-byte messages with at
most WINDOW of them not yet received by every subscriber.  It reports
deliveries per second and the delay from publish to receipt (p50, p99) over
the measured seconds; this script reads the CPU time of the server
processes (and of Redis) over the same seconds, from /proc, and gives it per
delivered message.  Runs are interleaved across repeats (A B C A B C); each
figure is the median over repeats.  Linux only (/proc, epoll).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from ..common import save_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(HERE, ".build")
CLIENT = os.path.join(BUILD, "fanclient")
SERVERS = ["fastframe", "fastframe-2w-redis", "socketify"]
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def build() -> str:
    src = os.path.join(HERE, "fanclient.c")
    if not os.path.exists(CLIENT) or os.path.getmtime(CLIENT) < os.path.getmtime(src):
        os.makedirs(BUILD, exist_ok=True)
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", CLIENT, src], check=True)
    return CLIENT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes ``pids`` so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICK


def wait_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        raise RuntimeError(f"{what} did not start: {line!r}")


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_servers(name: str, port: int) -> tuple[list[subprocess.Popen[Any]], subprocess.Popen[bytes] | None]:
    """The server processes for ``name``, ready, and redis-server if it needs one."""
    cmd = [sys.executable, "-m", "benchmarks.fanout.servers"]
    redis = None
    if name == "fastframe":
        cmds = [cmd + ["fastframe", str(port)]]
    elif name == "fastframe-2w-redis":
        redis, url = start_redis()
        cmds = [cmd + ["fastframe", str(port), "--redis", url, "--reuse-port"]] * 2
    elif name == "socketify":
        cmds = [cmd + ["socketify", str(port)]]
    else:
        raise ValueError(name)
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, text=True) for c in cmds]
    for proc in procs:
        wait_ready(proc, name)
    return procs, redis


def stop(procs: list[subprocess.Popen[Any]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # nothing to close gracefully
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_run(name: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    procs, redis = start_servers(name, port)
    pids = [p.pid for p in procs]
    try:
        client = subprocess.Popen(
            [CLIENT, "127.0.0.1", str(port), str(args.subscribers), str(size), str(args.window),
             str(args.seconds), str(args.warmup)], stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None
        marks: dict[str, tuple[float, float, float]] = {}
        for line in client.stdout:
            line = line.strip()
            if line in ("measuring", "done"):
                redis_cpu = cpu_seconds([redis.pid]) if redis is not None else 0.0
                marks[line] = (time.monotonic(), cpu_seconds(pids), redis_cpu)
            elif line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
        if client.wait() != 0 or "done" not in marks:
            raise RuntimeError(f"the load client failed against {name} ({client.returncode})")
    finally:
        stop(procs)
        if redis is not None:
            stop([redis])
    server_cpu = marks["done"][1] - marks["measuring"][1]
    redis_cpu = marks["done"][2] - marks["measuring"][2]
    delivered = max(1, result["delivered"])
    result.update(server=name, size=size, server_cpu_s=round(server_cpu, 3), redis_cpu_s=round(redis_cpu, 3),
                  server_cpu_us_per_delivery=round(server_cpu / delivered * 1e6, 4),
                  redis_cpu_us_per_delivery=round(redis_cpu / delivered * 1e6, 4))
    return result


def pressure() -> str:
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--sizes", default="64,4096")
    ap.add_argument("--window", type=int, default=64,
                    help="messages published and not yet received by every subscriber")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    build()
    servers = [s for s in args.servers.split(",") if s]
    if "socketify" in servers and importlib.util.find_spec("socketify") is None:
        print("socketify is not installed: pip install socketify (its wheel carries uWebSockets), "
              "or leave it out with --servers", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"fan-out: 1 publisher, {args.subscribers} subscribers, window {args.window}, "
          f"{args.seconds:g} s measured after {args.warmup:g} s; {os.cpu_count()} CPUs; "
          f"cpu pressure before: {pressure()}", flush=True)
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for size in sizes:
            for name in servers:
                r = one_run(name, size, args)
                runs.append(r)
                print(f"  {name:>20} {size:>5} B: {r['delivered_per_s']:>10,.0f} deliveries/s  "
                      f"p50 {r['p50_us']:>6} us  p99 {r['p99_us']:>7} us  "
                      f"server CPU {r['server_cpu_us_per_delivery']:.3f} us/delivery"
                      + (f" + redis {r['redis_cpu_us_per_delivery']:.3f}" if r["redis_cpu_s"] else "")
                      + (f"  lost {r['lost']}" if r["lost"] else ""), flush=True)
    table: list[dict[str, Any]] = []
    for size in sizes:
        by = {}
        for name in servers:
            rs = [r for r in runs if r["server"] == name and r["size"] == size]
            by[name] = {k: statistics.median(r[k] for r in rs) for k in
                        ("delivered_per_s", "p50_us", "p99_us", "server_cpu_us_per_delivery",
                         "redis_cpu_us_per_delivery", "client_cpu_s", "lost")}
        for name in servers:
            row = {"server": name, "size": size, **by[name]}
            if "socketify" in by and name != "socketify":
                row["vs_socketify"] = round(by[name]["delivered_per_s"] / by["socketify"]["delivered_per_s"], 3)
            if name == "fastframe-2w-redis" and "fastframe" in by:
                row["vs_fastframe"] = round(by[name]["delivered_per_s"] / by["fastframe"]["delivered_per_s"], 3)
            table.append(row)
    print()
    print("| server | size | deliveries/s | p50 us | p99 us | server CPU us/delivery | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in table:
        ratio = ", ".join(f"{row[k]:.2f}x {k[3:]}" for k in ("vs_socketify", "vs_fastframe") if k in row)
        cpu = f"{row['server_cpu_us_per_delivery']:.3f}"
        if row["redis_cpu_us_per_delivery"]:
            cpu += f" (+ redis {row['redis_cpu_us_per_delivery']:.3f})"
        print(f"| {row['server']} | {row['size']} B | {row['delivered_per_s']:,.0f} | {row['p50_us']:,.0f} | "
              f"{row['p99_us']:,.0f} | {cpu} | {ratio} |")
    print(f"\ncpu pressure after: {pressure()}")
    save_json(args.json, {"args": vars(args), "runs": runs, "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
