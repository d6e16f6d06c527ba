"""Gallery search: edgecv's vectorised 1:K match (one matrix product against the SQLite gallery's templates) vs a
per-identity loop over the stored vectors (how list/pickle galleries are searched), side by side in one run.

For each K a real SQLite gallery is written (one 128-d template per identity, from 2 shots, tiny 16 px chips to keep
the file small), read back with ``Gallery.templates()`` (timed once: the runtime does it at start and after an
enrolment), then p50 search time per face is measured. Prints edgecv's p50 ms (target < 5 ms at 100k), the loop's
and loop / edgecv, and checks both find the same identity.

    python benchmarks/gallery.py [--sizes 1000,10000,100000] [--dim 128] [--runs 100] [--loop-max 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import p50_ms

from edgecv.runtime.faces.gallery import EmbedderStamp, Gallery, l2_normalize
from edgecv.runtime.faces.match import search


def build(path: Path, k: int, dim: int, rng: np.random.Generator) -> float:
    chip = np.zeros((16, 16, 3), np.uint8)
    t = time.perf_counter()
    with Gallery(path, create=True) as g:
        g.check_embedder(EmbedderStamp("bench", "benchmark", dim))
        for start in range(0, k, 10_000):
            g.enroll_many(
                (f"person_{i:06d}", [chip, chip], rng.normal(size=(2, dim)), ()) for i in range(start, min(k, start + 10_000))
            )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--loop-max", type=int, default=10_000, help="largest K the per-identity loop is timed at")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{'K':>7} {'build s':>8} {'load ms':>8} {'edgecv p50 ms':>14} {'4 faces ms':>11} {'loop p50 ms':>12} "
        f"{'loop/edgecv':>12} {'same match':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for k in map(int, args.sizes.split(",")):
            path = Path(tmp) / f"g{k}.db"
            built = build(path, k, args.dim, rng)
            with Gallery(path) as g:
                t = time.perf_counter()
                templates = g.templates()
                load_ms = (time.perf_counter() - t) * 1e3
            assert len(templates) == k
            # a probe near a random identity, as a real face of an enrolled person would be
            target = int(rng.integers(k))
            probe = l2_normalize(templates.vectors[target] + 0.05 * rng.normal(size=args.dim))[None]
            four = l2_normalize(templates.vectors[rng.integers(k, size=4)] + 0.05 * rng.normal(size=(4, args.dim)))
            fast = p50_ms(lambda: search(probe, templates), args.runs)
            fast4 = p50_ms(lambda: search(four, templates), args.runs)
            best = int(search(probe, templates)[0][0])
            if k <= args.loop_max:
                rows = list(templates.vectors)

                def loop():
                    sims = [float(np.dot(v, probe[0])) for v in rows]
                    return int(np.argmax(sims))

                slow = p50_ms(loop, max(3, args.runs // 20))
                same = loop() == best == target
                print(
                    f"{k:>7} {built:>8.1f} {load_ms:>8.1f} {fast:>14.3f} {fast4:>11.3f} {slow:>12.2f} "
                    f"{slow / fast:>11.0f}x {str(same):>11}"
                )
            else:
                print(
                    f"{k:>7} {built:>8.1f} {load_ms:>8.1f} {fast:>14.3f} {fast4:>11.3f} {'-':>12} {'-':>12} "
                    f"{str(best == target):>11}"
                )


if __name__ == "__main__":
    main()
