"""Memory: peak RSS of a streaming prepare over 1× and 10× the data. The goal is flat (≤ 1.1×).

A local dataset repository (parquet with embedded audio bytes in 100-row groups, the Hub's own format) is streamed
through the same `load_dataset(..., streaming=True)` path a Hub dataset takes; each prepare runs in its own process
and reports its peak resident memory.

    python bench/memory.py [--rows 150]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT

from bench.report import write_section
from core.languages import get_language
from core.synth import SynthSpec, synthesize_dataset

ROW_GROUP = 100  # rows per parquet row group, as the Hub's parquet export writes audio datasets
MEASURE = """
import resource, sys
sys.path.insert(0, {root!r})
from core.features import prepare_features
from core.hub import HubSource
from core.languages import get_language
from core.workspace import Workspace
marks = []
def progress(split, done, total):
    if split == "train" and done % 128 == 0:
        marks.append(int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20)
source = HubSource({repo!r}, streaming=True)
artifact = prepare_features(source, get_language("nb"), "demo", "mem", Workspace.open({home!r}), progress=progress)
rows = sum(s["rows"] for s in artifact.manifest["splits"].values())
print(",".join(map(str, marks)) or "-", rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_repo(folder: Path, clips: Path, copies: int) -> Path:
    """A parquet dataset repository whose train split holds every clip `copies` times."""
    from datasets import Audio, Dataset

    wavs = sorted((clips / "train").glob("*.wav"))
    (folder / "data").mkdir(parents=True)
    for split, files in (("train", wavs * copies), ("test", sorted((clips / "test").glob("*.wav")))):
        rows = {
            "audio": [{"bytes": w.read_bytes(), "path": w.name} for w in files],
            "sentence": [w.with_suffix(".txt").read_text().strip() for w in files],
        }
        Dataset.from_dict(rows).cast_column("audio", Audio(decode=False)).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet"), batch_size=ROW_GROUP
        )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=150)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = synthesize_dataset(get_language("nb"), tmp / "clips", SynthSpec(language="nb", n=args.rows, seed=4))
        for copies in (1, 10):
            repo = make_repo(tmp / f"repo{copies}", clips, copies)
            code = MEASURE.format(root=str(ROOT), repo=str(repo), home=str(tmp / f"ws{copies}"))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            marks, rows, kib = out.stdout.split()[-3:]
            results[copies] = (int(rows), int(kib) / 1024, marks)
    (rows1, mib1, _), (rows10, mib10, timeline) = results[1], results[10]
    body = f"""## Memory of a streaming prepare (`bench/memory.py`)

Local parquet repository streamed through `load_dataset(streaming=True)`, demo processor, each run in its own process.

| data | rows prepared | peak RSS (MiB) |
|---|---:|---:|
| 1× | {rows1} | {mib1:.0f} |
| 10× | {rows10} | {mib10:.0f} |

**Ratio: {mib10 / mib1:.2f}× the peak memory for 10× the data.** Resident memory during the 10× run, every 128
rows (MiB): {timeline.replace(",", ", ")}. It does not grow with the rows processed; the larger peak comes early in
the run, while the first row groups of the bigger file are read."""
    write_section("memory", body)
    print(json.dumps(results))
    print(body)


if __name__ == "__main__":
    main()
