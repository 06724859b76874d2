"""The offline demo's wall time and held-out WER: `python -m core demo --language nb`, timed end to end.

python bench/demo.py [--language nb]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import ROOT, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="nb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "core", "demo", "--language", args.language, "--home", home],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    last = result.stdout.strip().splitlines()[-1]
    body = f"""## Offline demo (`bench/demo.py`)

`python -m core demo --language {args.language}` from an empty workspace: espeak-ng synthesis (1600 utterances),
feature preparation, training the 4M-parameter demo model with `--preset demo`, evaluation of the best checkpoint on
160 held-out utterances.

| wall time | result |
|---:|---|
| {seconds / 60:.1f} min | {last} |"""
    write_section("demo", body)
    print(body)


if __name__ == "__main__":
    main()
