"""Writing a Kaggle submission and reading MovieLens, one JSON line per
measurement.

    python bench/submission_bench.py [--rows 80000] [--data ../shared/data]

Measures: the id check alone (one pass over the ids), write_submission of
``--rows`` rows x 10 classes (plain and gzipped), and read_movielens on
ml-100k and ml-latest-small when ``--data`` holds them (best of three).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from kerasdl import submission  # noqa: E402
from kerasdl.data.ratings import read_movielens  # noqa: E402


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--data", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
        "shared", "data"))
    args = parser.parse_args()
    ids = [f"img_{i}.jpg" for i in range(args.rows)]
    p = np.random.default_rng(0).random((args.rows, 10)) + 0.01
    p /= p.sum(axis=1, keepdims=True)
    names = [f"c{k}" for k in range(10)]
    seconds = best_of(lambda: submission._ids(ids))
    print(json.dumps({"what": "id check", "rows": args.rows,
                      "seconds": round(seconds, 4)}))
    with tempfile.TemporaryDirectory() as folder:
        for name in ("sub.csv", "sub.csv.gz"):
            path = os.path.join(folder, name)
            seconds = best_of(lambda: submission.write_submission(
                path, ids, p, names))
            print(json.dumps({"what": f"write_submission {name}",
                              "rows": args.rows,
                              "seconds": round(seconds, 3),
                              "bytes": os.path.getsize(path)}))
    for name in ("ml-100k", "ml-latest-small"):
        folder = os.path.join(args.data, name)
        if not os.path.isdir(folder):
            continue
        seconds = best_of(lambda: read_movielens(folder))
        data = read_movielens(folder)
        print(json.dumps({"what": f"read_movielens {name}",
                          "ratings": len(data.ratings),
                          "titles": len(data.titles),
                          "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
