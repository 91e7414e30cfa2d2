"""Summarise an Autobahn index.json per case group; exit 1 on FAILED/UNIMPLEMENTED."""

from __future__ import annotations

import collections
import json
import sys


def key(case: str) -> tuple:
    return tuple(int(p) for p in case.split("."))


def main(path: str, agent: str) -> int:
    with open(path) as f:
        results = json.load(f)[agent]
    groups: dict = collections.defaultdict(collections.Counter)
    bad = []
    for case, r in results.items():
        groups[case.split(".")[0]][r["behavior"]] += 1
        if r["behavior"] in ("FAILED", "UNIMPLEMENTED") or r.get("behaviorClose") == "FAILED":
            bad.append((case, r["behavior"], r.get("behaviorClose")))
    total: collections.Counter = collections.Counter()
    print(f"{agent}: {len(results)} cases")
    for g in sorted(groups, key=int):
        total.update(groups[g])
        print(f"  {g:>3}.*  " + ", ".join(f"{k} {v}" for k, v in sorted(groups[g].items())))
    print("  total  " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    for case, b, c in sorted(bad, key=lambda x: key(x[0])):
        print(f"  FAILED {case}: behavior {b}, close {c}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
