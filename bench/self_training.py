"""Self-training on synthetic Norwegian with whisper-base: labelled sentences plus clips nobody transcribed (labelled
by the model the labelled sentences trained), against the labelled sentences alone, on held-out sentences.

1. The labelled set: espeak-ng Norwegian sentences from the templates (seed 0), split by text: LABELLED train,
   VALIDATION validation, TEST test sentences; the 40 free sentences (written apart from the templates) prepared as a
   second test set.
2. Run A, labelled only: the `whisper-base-cpu` preset (frozen encoder, cached states, 10 s window, 100 steps).
3. The unlabelled clips: other espeak-ng sentences (seed 1: other sentences, voices, speeds and pitches), every one
   whose text is a validation or test sentence of step 1 left out, UNLABELLED of them in one folder; their texts stay
   beside them as references (`python -m core label` reads them to measure the labels, never to train).
4. `python -m core label` with run A's best checkpoint (exported to CTranslate2 int8: the decoding policy, beam 5 with
   the temperature fallback), the default thresholds; the kept rows prepared as `st-pseudo`.
5. Run B: the same preset, the same steps, with `--pseudo-labels st-pseudo --pseudo-label-fraction FRACTION`.
6. A's and B's best checkpoints evaluated on both test sets; B − A with the 95% paired bootstrap over the utterances.
Goal (issue 30): a measurable improvement (the interval of B − A on the held-out sentences excludes 0, below it).

    python bench/self_training.py [--home DIR] [--labelled 100] [--unlabelled 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import ROOT

from bench.report import write_section
from core.data import FolderSource, PrepareOptions, SynthSpec, prepare_features, synthesize_dataset
from core.data.pseudo_labels import LabelSet, labels_root
from core.data.synth import speak_texts
from core.evaluation import EvaluateOptions, evaluate_model
from core.languages import get_language
from core.text.bootstrap import paired_bootstrap
from core.text.wer import error_rates
from core.training import RunFolder
from core.workspace import Workspace

NB = get_language("nb")
FREE = ROOT / "assets" / "free_sentences" / "nb.txt"


def cli(home: Path, *args: str) -> float:
    """`python -m core ARGS --home HOME`, its output into HOME/bench.log; returns the seconds it took."""
    started = time.perf_counter()
    with open(home / "bench.log", "a") as log:
        done = subprocess.run(
            [sys.executable, "-m", "core", *args, "--home", str(home)], cwd=ROOT, stdout=log, stderr=log
        )
    if done.returncode:
        raise SystemExit(f"python -m core {' '.join(args)} failed: see {home / 'bench.log'}")
    return time.perf_counter() - started


def labelled_sets(home: Path, workspace: Workspace, labelled: int, validation: int, test: int) -> set[str]:
    """Step 1: the labelled set and the free sentences, prepared; returns the sentences held out from training."""
    n = labelled + validation + test
    spec = SynthSpec(language="nb", n=n, seed=0, test_fraction=test / n, validation_fraction=validation / n)
    folder = synthesize_dataset(NB, workspace.synth / spec.folder_name("st-"), spec)
    prepare_features(FolderSource(folder), NB, "whisper-base", "st-labelled", workspace, PrepareOptions())
    free = [line.strip() for line in FREE.read_text(encoding="utf-8").splitlines() if line.strip()]
    prepare_features(FolderSource(speak_texts(NB, free, workspace.synth / "st-free")), NB, "whisper-base", "st-free",
                     workspace, PrepareOptions(validation_fraction=0))  # fmt: skip
    return {p.read_text().strip() for split in ("validation", "test") for p in (folder / split).glob("*.txt")} | set(
        free
    )


def unlabelled_folder(workspace: Workspace, count: int, held_out: set[str]) -> Path:
    """Step 3: `count` clips of other sentences, none of them a held-out one, in one folder (texts as references)."""
    spec = SynthSpec(language="nb", n=count + count // 4, seed=1, test_fraction=0, validation_fraction=0)
    folder = synthesize_dataset(NB, workspace.synth / spec.folder_name("st-unlabelled-"), spec)
    out = workspace.home / "unlabelled"
    out.mkdir(exist_ok=True)
    kept = 0
    for wav in sorted(folder.rglob("*.wav")):
        text = wav.with_suffix(".txt").read_text().strip()
        if text in held_out or kept == count:
            continue
        if not (out / wav.name).exists():
            os.link(wav, out / wav.name)
            (out / wav.with_suffix(".txt").name).write_text(text + "\n")
        kept += 1
    return out


def train(home: Path, run: str, *extra: str) -> float:
    """Train `run` in the foreground; a run that completed earlier (a restarted bench) is kept: its own wall time."""
    folder = RunFolder.of(Workspace(home), run)
    if not folder.exists():
        flags = ["--data", "st-labelled", "--run", run, "--preset", "whisper-base-cpu", "--no-english-guard"]
        cli(home, "train", *flags, "--foreground", *extra)
    status = folder.status()
    return status.finished - status.started


def noted(home: Path, step: str) -> list[str]:
    """The load average after `step`, kept across restarts in HOME/bench-loads.json."""
    path = home / "bench-loads.json"
    loads = json.loads(path.read_text()) if path.is_file() else {}
    loads.setdefault(step, load_average())
    path.write_text(json.dumps(loads))
    return [f"{name} {value}" for name, value in loads.items()]


def label_quality(labels: LabelSet) -> dict[str, str]:
    """Each decision's rows and the WER of their labels against the clips' own texts (which never trained)."""
    shown = {}
    for decision in ("keep", "review", "drop"):
        rows = [r for r in labels.rows() if r.decision == decision]
        shown[decision] = f"{len(rows)}" + _label_wer(rows)
    return shown


def _label_wer(rows) -> str:
    spoken = [r for r in rows if r.text]
    if not spoken:
        return ""
    return f" (label WER {100 * error_rates([r.reference for r in spoken], [r.text for r in spoken])['wer']:.1f}%)"


def threshold_sweep(labels: LabelSet) -> str:
    """What a stricter keep line would have kept: rows at or above each average log-probability, their label WER."""
    rows = [r for r in labels.rows() if r.text]
    cells = []
    for line in (-0.5, -0.3, -0.2, -0.1):
        above = [r for r in rows if r.avg_log_prob >= line]
        cells.append(f"≥ {line}: {len(above)} rows{_label_wer(above)}")
    return "; ".join(cells)


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-self-training"))
    parser.add_argument("--labelled", type=int, default=100)
    parser.add_argument("--unlabelled", type=int, default=600)
    parser.add_argument("--fraction", type=float, default=0.85, help="pseudo_label_fraction of run B")
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.open(home)
    noted(home, "start")
    held_out = labelled_sets(home, workspace, args.labelled, 30, 100)
    seconds = {"A": train(home, "st-labelled-only")}
    noted(home, "after run A")
    best = RunFolder.of(workspace, "st-labelled-only")
    checkpoint = best.path / best.best_checkpoint_name()
    export = checkpoint.with_name(f"{checkpoint.name}-ct2-int8")
    if not export.is_dir():
        cli(home, "export", "--model", str(checkpoint), "--quantization", "int8")
    folder = unlabelled_folder(workspace, args.unlabelled, held_out)
    if not (labels_root(workspace) / "st-unlabelled").is_dir():  # an interrupted label run resumes
        cli(
            home,
            "label",
            "--source",
            str(folder),
            "--model",
            str(export),
            "--name",
            "st-unlabelled",
            "--language",
            "nb",
        )
    labels = LabelSet.open(workspace, "st-unlabelled")
    seconds["label"] = labels.record().wall_seconds
    prepare_features(FolderSource(labels.root), NB, "whisper-base", "st-pseudo", workspace, PrepareOptions())
    noted(home, "after labelling")
    mix = ("--pseudo-labels", "st-pseudo", "--pseudo-label-fraction", str(args.fraction))
    seconds["B"] = train(home, "st-with-pseudo", *mix)
    report(workspace, labels, args, seconds, noted(home, "after run B"))


def _evaluations(workspace: Workspace, run: str) -> dict:
    folder = RunFolder.of(workspace, run)
    checkpoint = str(folder.path / folder.best_checkpoint_name())
    return {
        data: evaluate_model(checkpoint, data, workspace, EvaluateOptions(split="test"))
        for data in ("st-labelled", "st-free")
    }


def report(workspace: Workspace, labels: LabelSet, args, seconds: dict, loads: list[str]) -> None:
    a, b = _evaluations(workspace, "st-labelled-only"), _evaluations(workspace, "st-with-pseudo")
    rows = []
    for name, data in (("template test sentences", "st-labelled"), ("free sentences", "st-free")):
        change = paired_bootstrap(a[data].rows, b[data].rows)
        rows.append(
            f"| {name} ({a[data].utterances}) | {100 * a[data].wer:.1f}% | {100 * b[data].wer:.1f}% | {change.shown} |"
        )
    # pooled, each row's id names its set: both sets number their clips from 00000, and the pairing is by id
    pooled = [
        [replace(r, id=f"{data}/{r.id}") for data in ("st-labelled", "st-free") for r in side[data].rows]
        for side in (a, b)
    ]
    both = paired_bootstrap(*pooled)
    total = a["st-labelled"].utterances + a["st-free"].utterances
    rows.append(f"| all held-out ({total}) | | | {both.shown} |")
    quality = label_quality(labels)
    record = labels.record()
    met = both.high < 0
    body = f"""## Self-training with pseudo-labels (`bench/self_training.py`)

whisper-base, the `whisper-base-cpu` preset (100 steps × batch 16, frozen encoder, 10 s window), no English guard.
Run A trains on {args.labelled} labelled espeak-ng Norwegian sentences; run B on the same plus pseudo-labels at
`--pseudo-label-fraction {args.fraction}`: {args.unlabelled} clips of other sentences, voices and speeds (seed 1; none
of them a validation or test sentence), labelled by `python -m core label` with run A's best checkpoint exported to
CTranslate2 int8 (beam 5, temperature fallback; default thresholds). Labels: keep {quality["keep"]}, review
{quality["review"]}, drop {quality["drop"]} (label WER against the clips' own texts, which never trained; the rows in
review were not reviewed: only the kept rows train). Labelling took {seconds["label"] / 60:.1f} min for
{record.seconds / 60:.1f} min of audio (from its first start to the merged set). What a stricter keep line
(`--keep-log-prob`) would have kept, with the label WER of those rows: {threshold_sweep(labels)}.

| held-out test set | A: labelled only | B: + pseudo-labels | B − A (95% paired CI) |
|---|---|---|---|
{chr(10).join(rows)}

Goal (a measurable improvement: the interval of B − A excludes 0): **{"met" if met else "missed"}**. Wall times, from
a run's start to its end, stops between sessions included: run A {seconds["A"] / 60:.1f} min, run B
{seconds["B"] / 60:.1f} min. Load average (1/5/15 min) at the start and after each step: {"; ".join(loads)}: other
jobs (test runs) shared the machine, so times are not quiet-machine figures."""
    write_section("self_training", body)
    print(body)


if __name__ == "__main__":
    main()
