"""Regenerate every section of BENCHMARKS.md, one benchmark after another (each in its own process, so none
measures another's leftovers). About an hour on 2 CPU cores; `--only prepare,live` runs some.

    python bench/run_all.py [--only NAMES]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (
    "zero_shot",
    "transcribe_speed",
    "live_latency",
    "prepare_speed",
    "train_overhead",
    "memory",
    "demo",
    "levers",
    "window",
    "serve_load",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated names, e.g. prepare_speed,memory")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ORDER
    for name in names:
        started = time.time()
        print(f"== {name}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        print(f"== {name}: exit {result.returncode} after {(time.time() - started) / 60:.1f} min", flush=True)
        if result.returncode:
            raise SystemExit(result.returncode)


if __name__ == "__main__":
    main()
