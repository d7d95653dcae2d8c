"""Run every benchmark, in one go: ``tox -e bench`` (or ``python benchmarks/run.py``).

Each benchmark reports its figures against a baseline measured in the same run (ratios do not
depend on the machine), never against a number written down elsewhere. ``--quick`` shrinks the
workloads for a smoke run. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

#: benchmark → (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_sandbox.py": ([], ["--pairs", "300", "--repeat", "1"]),
    "bench_faults.py": ([], ["--placements", "500"]),
    "bench_cache.py": ([], ["--rows", "100000", "--queries", "50", "--scans", "3"]),
    "bench_cost.py": ([], ["--quick"]),
    "bench_live.py": ([], ["--quick"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    failed = 0
    for name, (full, quick) in BENCHMARKS.items():
        if args.names and not any(n in name for n in args.names):
            continue
        print(f"\n=== {name}", flush=True)
        argv = [sys.executable, str(HERE / name), *(quick if args.quick else full)]
        failed += subprocess.run(argv, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
