"""permessage-deflate backends side by side: instructions per message.

    python -m benchmarks.deflate [--messages 2000] [--levels 6] [--wbits 15]

For each zlib implementation installed (the standard library's ``zlib``,
``zlib-ng``'s ``zlib_ng.zlib_ng``, ``isal``'s ``isal.isal_zlib``), one
server-side ``PerMessageDeflate``-shaped round per message: compress a
JSON-like text of about 1 KiB or 16 KiB with context takeover (as a browser
negotiates: window 15, a sync flush per message) and inflate it back with a
second stream.  Counted by callgrind (``valgrind --tool=callgrind``), which
gives the same figure whatever else the machine is doing: the run with N
messages minus the run with none, over N.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

BACKENDS = {"zlib": "zlib", "zlib-ng": "zlib_ng.zlib_ng", "isal": "isal.isal_zlib"}

ROUND = r"""
import importlib, json, random, sys
z = importlib.import_module(sys.argv[1])
size, n = int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
def doc(i):
    items = [{"id": i * 100 + k, "name": f"user{rnd.randrange(1000)}", "score": rnd.random(),
              "tags": ["alpha", "beta", "gamma"][: rnd.randrange(1, 4)], "active": k % 3 == 0}
             for k in range(max(1, size // 110))]
    return json.dumps({"type": "update", "seq": i, "items": items}).encode()[:size]
msgs = [doc(i) for i in range(64)]
level, wbits = int(sys.argv[4]), int(sys.argv[5])
c = z.compressobj(level, z.DEFLATED, -wbits, 5) if "isal" not in sys.argv[1] else z.compressobj(level, z.DEFLATED, -wbits)
d = z.decompressobj(-wbits)
for i in range(n):
    m = msgs[i % 64]
    out = c.compress(m) + c.flush(z.Z_SYNC_FLUSH)
    back = d.decompress(out)
    assert back == m
"""


def count(module: str, size: int, n: int, level: int, wbits: int) -> int:
    with tempfile.NamedTemporaryFile(suffix=".out") as out:
        err = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
                              sys.executable, "-c", ROUND, module, str(size), str(n), str(level), str(wbits)],
                             capture_output=True, text=True, check=True).stderr
    m = re.search(r"Collected : (\d+)", err)
    assert m, err[-400:]
    return int(m.group(1))


def ratio_of(module: str, size: int, level: int, wbits: int) -> float:
    """Compressed size over raw, for one sample message (the same for all)."""
    code = ROUND.replace("for i in range(n):", "print(sum(len(c.compress(msgs[i]) + c.flush(z.Z_SYNC_FLUSH)) "
                         "for i in range(64)) / sum(map(len, msgs)))\nfor i in range(0):")
    out = subprocess.run([sys.executable, "-c", code, module, str(size), "0", str(level), str(wbits)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--levels", default="6",
                    help="compression levels to compare, e.g. 1,2,6 (isal: its level 2 always)")
    ap.add_argument("--wbits", type=int, default=15, help="window bits of both streams (9-15)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    results = []
    for size in (1024, 16384):
        for name, module in BACKENDS.items():
            try:
                __import__(module)
            except ImportError:
                print(f"{name}: not installed", file=sys.stderr)
                continue
            for level in [2] if name == "isal" else [int(v) for v in args.levels.split(",")]:
                base = count(module, size, 0, level, args.wbits)
                total = count(module, size, args.messages, level, args.wbits)
                per = (total - base) / args.messages
                results.append({"backend": name, "size": size, "level": level, "wbits": args.wbits,
                                "instructions_per_message": round(per),
                                "compressed_ratio": round(ratio_of(module, size, level, args.wbits), 3)})
                print(f"{size:6d} B  {name:8s} level {level}  {per:12,.0f} instructions/message "
                      f"(compress + inflate), ratio {results[-1]['compressed_ratio']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
