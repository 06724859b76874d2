"""Memory: peak RSS of a streaming prepare, and of streaming training, over 1× and 10× the data. Goal: flat (≤ 1.1×).

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
# Streaming training: nothing stored for train; 2 passes over the 1× data, a fifth of one over the 10× data.
TRAIN = """
import resource, sys
sys.path.insert(0, {root!r})
from dataclasses import replace
from core.config import TrainConfig, apply_preset
from core.features import PrepareOptions, prepare_features
from core.hub import HubSource
from core.jobs import start_run
from core.languages import get_language
from core.workspace import Workspace
workspace = Workspace.open({home!r})
prepare_features(HubSource({repo!r}, streaming=True), get_language("nb"), "demo", "streamed", workspace,
                 PrepareOptions(stream_train=True))
config = replace(apply_preset(TrainConfig(data="streamed", run="mem"), "demo"), max_steps=36, eval_steps=36,
                 save_steps=36, warmup_steps=4, max_eval_samples=8)
run = start_run(config, workspace, foreground=True)
assert run.status()["state"] == "completed", run.status()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
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
            code = TRAIN.format(root=str(ROOT), repo=str(repo), home=str(tmp / f"train{copies}"))
            trained = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            results[copies] = (int(rows), int(kib) / 1024, marks, int(trained.stdout.split()[-1]) / 1024)
    (rows1, mib1, _, train1), (rows10, mib10, timeline, train10) = results[1], results[10]
    body = f"""## Memory of a streaming prepare (`bench/memory.py`)

Local parquet repository streamed through `load_dataset(streaming=True)`, demo processor, each run in its own process.

| data | rows | peak RSS, prepare (MiB) | peak RSS, prepare `--stream-train` + 36 training steps (MiB) |
|---|---:|---:|---:|
| 1× | {rows1} | {mib1:.0f} | {train1:.0f} |
| 10× | {rows10} | {mib10:.0f} | {train10:.0f} |

**Streaming training: {train10 / train1:.2f}× the peak memory for 10× the data.**

**Prepare: {mib10 / mib1:.2f}× the peak memory for 10× the data.** Resident memory during the 10× prepare, every
128 rows (MiB): {timeline.replace(",", ", ")}. It does not grow with the rows processed; the larger peak comes early in
the run, while the first row groups of the bigger file are read."""
    write_section("memory", body)
    print(json.dumps(results))
    print(body)


if __name__ == "__main__":
    main()
