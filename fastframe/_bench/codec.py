"""Codec benchmark: fastframe (compiled and pure) beside its peers, in one run.

    python -m fastframe bench [--full] [--json FILE] [--plot FILE.png]
    python -m benchmarks.codec [--quick] [--repeats N] [--json FILE] [--only GROUP]

Every figure is the median of interleaved repeats (A B C A B C ...), each
repeat at least 20 ms long, so that all libraries see the same machine state.
Ratios are computed inside one run only.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import peers

MIN_REPEAT_S = 0.020


@dataclass
class Scenario:
    group: str
    label: str
    unit: str  # what one call processes: "frames", "bytes", ...
    per_call: float  # units per call
    works: dict[str, Callable[[], Any]]
    results: dict[str, float] = field(default_factory=dict)  # name -> seconds per call


def _calibrate(work: Callable[[], Any]) -> int:
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            work()
        dt = time.perf_counter() - t
        if dt >= MIN_REPEAT_S:
            return n
        n = max(n * 2, int(n * MIN_REPEAT_S / max(dt, 1e-9) * 1.2))


def run_scenario(s: Scenario, repeats: int, progress: Callable[[str], None] | None = None) -> None:
    loops = {name: _calibrate(w) for name, w in s.works.items()}
    samples: dict[str, list[float]] = {name: [] for name in s.works}
    names = list(s.works)
    gc.disable()
    try:
        for r in range(repeats):
            # Rotate the order so that no library always runs first.
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                work, n = s.works[name], loops[name]
                t = time.perf_counter()
                for _ in range(n):
                    work()
                samples[name].append((time.perf_counter() - t) / n)
            if progress:
                progress(f"{s.group} {s.label}: repeat {r + 1}/{repeats}")
    finally:
        gc.enable()
    s.results = {name: statistics.median(v) for name, v in samples.items()}


SIZES_MASK = [16, 125, 1024, 65536, 1 << 20]
SIZES_FRAME = [16, 125, 1024, 65536]


def _stream_count(size: int) -> int:
    # About 64 KiB of frames per call, and at least 16 frames (1 MiB of 64 KiB
    # frames, out of cache).  64 KiB is what one socket read delivers at most
    # in fastframe's server; "whole" feeds it in one call, the chunked runs
    # cut the same stream into 4 KiB pieces.
    return max(16, (64 << 10) // (size + 6))


def build(quick: bool = False, only: str | None = None) -> list[Scenario]:
    out: list[Scenario] = []
    sizes_mask = [16, 1024, 65536] if quick else SIZES_MASK
    sizes_frame = [16, 1024, 65536] if quick else SIZES_FRAME

    if only in (None, "mask"):
        for size in sizes_mask:
            works = {}
            for name, make in peers.mask_impls().items():
                works[name] = make(bytearray(size))
            out.append(Scenario("mask", f"in place {_fmt(size)}", "bytes", size, works))
        for size in sizes_mask:
            data = bytes(size)
            works = {name: make(data) for name, make in peers.apply_mask_impls().items()}
            out.append(Scenario("mask", f"apply_mask {_fmt(size)}", "bytes", size, works))

    if only in (None, "parse"):
        for size in sizes_frame:
            count = _stream_count(size)
            stream = peers.masked_stream(size, count)
            for chunk in (None, 4096):
                chunks = peers.chunks_of(stream, chunk)
                works = {}
                for name, make in peers.parse_impls().items():
                    works[name] = make(chunks, count)
                how = "whole" if chunk is None else "4 KiB chunks"
                out.append(Scenario("parse", f"masked {_fmt(size)} frames, {how}", "frames", count, works))

    if only in (None, "encode"):
        for size in sizes_frame:
            payload = bytes(size)
            for masked in (False, True):
                works = {name: make(payload, masked) for name, make in peers.encode_impls().items()}
                side = "client (masked)" if masked else "server"
                out.append(Scenario("encode", f"{side} {_fmt(size)}", "frames", 1, works))

    if only in (None, "utf8"):
        for label, data in peers.utf8_corpora().items():
            works = {name: make(data) for name, make in peers.utf8_impls().items()}
            out.append(Scenario("utf8", f"{label} {_fmt(len(data))}", "bytes", len(data), works))
    return out


def _fmt(size: int) -> str:
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size >> 10} KiB"
    return f"{size} B"


def _rate(s: Scenario, sec: float) -> str:
    per_s = s.per_call / sec
    if s.unit == "bytes":
        return f"{per_s / 1e6:,.0f} MB/s"
    return f"{per_s / 1e6:,.2f} M{s.unit}/s"


def report(scenarios: list[Scenario], base: str = "fastframe-c") -> str:
    lines = []
    for s in scenarios:
        lines.append(f"\n{s.group}: {s.label}")
        ref = s.results.get(base)
        for name, sec in sorted(s.results.items(), key=lambda kv: kv[1]):
            ratio = f"{sec / ref:6.2f}x" if ref else "   n/a"
            lines.append(f"  {name:14s} {sec * 1e9:12,.1f} ns/call  {_rate(s, sec):>16s}   "
                         f"fastframe-c is {ratio} faster")
    return "\n".join(lines)


def to_json(scenarios: list[Scenario], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "scenarios": [
            {"group": s.group, "label": s.label, "unit": s.unit, "per_call": s.per_call,
             "seconds_per_call": s.results}
            for s in scenarios
        ],
    }


def main(argv: list[str] | None = None, plot_path: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7, quick 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--only", choices=["mask", "parse", "encode", "utf8"])
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    meta = peers.machine()
    meta["cpu_pressure_before"] = peers.cpu_pressure()
    scenarios = build(args.quick, args.only)

    def progress(msg: str) -> None:
        sys.stderr.write(f"\r\033[K{msg}")
        sys.stderr.flush()

    for s in scenarios:
        run_scenario(s, repeats, progress)
    sys.stderr.write("\r\033[K")
    meta["cpu_pressure_after"] = peers.cpu_pressure()
    meta["repeats"] = repeats
    print(f"# {meta['cpu']}, {meta['cores']} cores, Python {meta['python']}")
    print("# " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(f"# cpu pressure before: {meta['cpu_pressure_before']}")
    print(f"# cpu pressure after:  {meta['cpu_pressure_after']}")
    print(report(scenarios))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(scenarios, meta), f, indent=1)
    if plot_path:
        plot(scenarios, plot_path)
        print(f"# plot written to {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


PEERS = ["picows", "aiohttp", "websockets", "wsproto"]


def missing_peers() -> list[str]:
    import importlib.util

    return [p for p in PEERS if importlib.util.find_spec(p) is None]


def plot(scenarios: list[Scenario], path: str, base: str = "fastframe-c") -> None:
    """Bar charts, one panel per group: each library's speed relative to
    ``base`` (= 1, higher is faster), per scenario."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'fastframe[plot]'") from None
    groups: list[str] = []
    for s in scenarios:
        if s.group not in groups:
            groups.append(s.group)
    colours: dict[str, Any] = {}
    palette = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.2 * len(groups)), squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        rows = [s for s in scenarios if s.group == group and base in s.results]
        libs: list[str] = []
        for s in rows:
            for name in s.results:
                if name not in libs:
                    libs.append(name)
        width = 0.8 / max(1, len(libs))
        for i, lib in enumerate(libs):
            colour = colours.setdefault(lib, palette(len(colours) % 10))
            xs = [j + i * width for j, s in enumerate(rows) if lib in s.results]
            ys = [s.results[base] / s.results[lib] for s in rows if lib in s.results]
            ax.bar(xs, ys, width, label=lib, color=colour)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks([j + width * (len(libs) - 1) / 2 for j in range(len(rows))])
        labels = [s.label.replace(" frames, ", "\n").replace("apply_mask ", "apply_mask\n")
                  .replace("in place ", "in place\n").replace(" (masked) ", " masked\n") for s in rows]
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(group, fontsize=10, loc="left")
        ax.legend(fontsize=7, ncol=len(libs), loc="lower left")
    fig.supylabel(f"speed relative to {base} (log scale; higher is faster)", fontsize=9)
    fig.suptitle("fastframe codec beside its peers: one run, medians of interleaved repeats", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_json(json_path: str, png_path: str) -> None:
    """Redraw the chart from a ``--json`` file, without re-measuring."""
    with open(json_path) as f:
        data = json.load(f)
    scenarios = [
        Scenario(d["group"], d["label"], d["unit"], d["per_call"], {}, dict(d["seconds_per_call"]))
        for d in data["scenarios"]
    ]
    plot(scenarios, png_path)


def bench_main(argv: list[str] | None = None) -> int:
    """``python -m fastframe bench``: quick by default, ``--full`` for every size."""
    ap = argparse.ArgumentParser(prog="python -m fastframe bench", description="codec benchmark beside the peers")
    ap.add_argument("--full", action="store_true", help="every size and 7 repeats (about 10 minutes)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", choices=["mask", "parse", "encode", "utf8"])
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="write a bar chart (needs matplotlib)")
    ap.add_argument("--from-json", metavar="FILE", help="with --plot: redraw from a saved run, measure nothing")
    args = ap.parse_args(argv)
    if args.from_json:
        if not args.plot:
            ap.error("--from-json needs --plot")
        plot_json(args.from_json, args.plot)
        print(f"# plot written to {args.plot}")
        return 0
    gone = missing_peers()
    if gone:
        print(f"# not installed, so not compared: {', '.join(gone)} (pip install 'fastframe[bench]')")
    argv2 = [] if args.full else ["--quick"]
    if args.repeats:
        argv2 += ["--repeats", str(args.repeats)]
    if args.only:
        argv2 += ["--only", args.only]
    if args.json:
        argv2 += ["--json", args.json]
    return main(argv2, plot_path=args.plot)
