"""graph.topological on chains of 2,000, 8,000 and 32,000 components: linear means the
time grows with the size (ratio of the largest to the smallest near 16), not its square.

Ends with {"components": [...], "topological_ms": [...], "ratio": T(32000)/T(2000)}.
"""

import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()  # the domain modules import the models; no database is touched

from portal import graph  # noqa: E402

SIZES = (2000, 8000, 32000)


def chain(n):
    names = [f"n{i}" for i in range(n)]
    return names, {names[i]: {names[i - 1]} for i in range(1, n)}


def best_of(runs, n):
    names, edges = chain(n)
    timings = []
    for _ in range(runs):
        gc.collect()
        gc.disable()  # the collector's passes grow with every live object, not with the walk
        start = time.perf_counter()
        graph.topological(names, edges)
        timings.append(time.perf_counter() - start)
        gc.enable()
    return min(timings) * 1000


def main():
    figures = [best_of(5, n) for n in SIZES]
    for n, ms in zip(SIZES, figures, strict=True):
        print(f"topological, chain of {n:>6}: {ms:8.1f} ms")
    print(
        json.dumps({"components": list(SIZES), "topological_ms": figures, "ratio": figures[-1] / figures[0]})
    )


if __name__ == "__main__":
    main()
