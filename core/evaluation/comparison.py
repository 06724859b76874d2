"""Comparing runs: every saved evaluation as one table, utterances side by side, and config differences.

Evaluations live in the run folders (RunFolder.evaluations) and in WORKSPACE/evaluations/ for models outside any
run (core.evaluation.workspace_evaluations). Nothing here computes WER again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.audio.constants import INT16_SCALE
from core.data.artifact import open_artifact
from core.errors import DamagedFile, StudioError
from core.evaluation.evaluate import EvaluationResult, workspace_evaluations
from core.formatting import percent
from core.models.export_loader import export_format
from core.models.resolve import is_ctranslate2
from core.text.wer import UtteranceRow
from core.training.config import TrainConfig
from core.training.runs import BASELINE_CHECKPOINT, RunFolder, checkpoint_step, list_runs
from core.workspace import Workspace, read_json, read_json_if_intact


@dataclass(frozen=True)
class SavedEvaluation:
    """One saved evaluation as Compare and the recorder list it: whose (run, or 'base' outside any run), which
    model on which test set, its four rates (fractions) and utterances, and the file to read its rows from."""

    run: str
    model: str
    data: str
    split: str
    wer: float
    cer: float | None
    wer_raw: float | None
    cer_raw: float | None
    utterances: int | None
    path: str

    @property
    def test_set(self) -> str:
        return f"{self.data}/{self.split}"

    @property
    def label(self) -> str:
        """'nb-1/checkpoint-60 on nb-synth/test · WER 12.3%': how a picker names it."""
        return f"{self.model} on {self.test_set} · WER {percent(self.wer)}"

    def to_row(self) -> dict:
        """A table row (the matrix's): the fields and the test set."""
        return {**asdict(self), "test set": self.test_set}


def _evaluation_files(workspace: Workspace) -> list[tuple[Path, str, str | None]]:
    """(file, run or 'base', checkpoint name or None) for every saved evaluation."""
    found = [(path, "base", None) for path in workspace_evaluations(workspace)]
    for name in list_runs(workspace.runs):
        found += [(path, name, checkpoint) for path, checkpoint in RunFolder.of(workspace, name).evaluations()]
    return found


def checkpoint_label(checkpoint: str) -> str:
    """How a run's checkpoint is named to a person: checkpoint-0 is the base model as the run started."""
    return "base model (before)" if checkpoint == BASELINE_CHECKPOINT else checkpoint


EXPORT_NAME = re.compile(r"(.+?)-(ct2|ggml|openai|onnx)(?:-(.+))?")  # export_folder's names: checkpoint-60-ct2-int8


def model_label(model: str, workspace: Workspace) -> str:
    """How a model is named to a person, as runs are named: 'nb-toy-1/checkpoint-60', its exports
    'nb-toy-1/checkpoint-60 · ct2 int8' (· ggml, · openai), a base model by its name; a folder outside the runs by
    its last two parts, never a cut-off absolute path."""
    location = Path(model)
    if not location.is_absolute():
        return model  # a name: whisper-base, demo, a Hub id
    export = EXPORT_NAME.fullmatch(location.name)
    checkpoint = export[1] if export else location.name
    try:
        run = location.parent.relative_to(workspace.runs)
    except ValueError:
        return "/".join(location.parts[-2:])
    if len(run.parts) != 1 or checkpoint_step(checkpoint) is None:
        return "/".join(location.parts[-2:])
    named = f"{run}/{checkpoint_label(checkpoint)}"
    return f"{named} · {' '.join(filter(None, export.groups()[1:]))}" if export else named


def dataset_of(model: str) -> str | None:
    """The dataset a run's checkpoint was trained on (None for a base model, an export or a folder)."""
    location = Path(model)
    run = RunFolder(location.parent)
    if checkpoint_step(location.name) is None or not run.exists():
        return None
    try:
        return run.config().data
    except StudioError:
        return None


def list_evaluations(workspace: Workspace) -> list[SavedEvaluation]:
    """Every saved evaluation that reads, oldest run first (a damaged file is listed by unreadable_evaluations)."""
    found = []
    for path, run, checkpoint in _evaluation_files(workspace):
        saved = read_json_if_intact(path)
        if not isinstance(saved, dict) or not {"wer", "data", "split"} <= set(saved):
            continue  # not one of ours, or written half: the matrix has no cell for it
        if checkpoint:
            model = f"{run}/{checkpoint_label(checkpoint)}"
        else:
            model = model_label(str(saved.get("model", path.stem)), workspace)
        rates = {k: saved.get(k) for k in ("cer", "wer_raw", "cer_raw", "utterances")}
        found.append(SavedEvaluation(run, model, saved["data"], saved["split"], saved["wer"], **rates, path=str(path)))
    return found


def saved_evaluation(workspace: Workspace, given: str) -> Path:
    """`given` when it is an evaluation file, else run `given`'s latest saved evaluation on its own dataset (as the
    Compare page's drill-down: a guard set's words are another language or domain)."""
    if Path(given).suffix == ".json":
        return Path(given)
    run = RunFolder.of(workspace, given).require()
    own = f"__{run.config().data}__"
    saved = [path for path, _ in run.evaluations() if own in path.name]
    if not saved:
        raise StudioError(
            f"run {given} has no saved evaluation; evaluate one of its checkpoints first "
            f"(python -m core evaluate --model {workspace.run(given)}/checkpoint-N --data DATA)"
        )
    return max(saved, key=lambda path: path.stat().st_mtime)


def load_evaluation(path: str) -> EvaluationResult:
    """A saved evaluation file, its rows as UtteranceRow records; a missing or damaged one is one line."""
    fix = "evaluate the model again to replace it"
    saved = read_json(Path(path), fix=fix)
    if saved is None:
        raise StudioError(f"no saved evaluation at {path}: {fix}")
    return EvaluationResult.from_dict(saved)


def side_by_side(first: EvaluationResult, second: EvaluationResult, name_a: str = "A", name_b: str = "B") -> list[dict]:
    """Utterances both evaluations share, with each model's hypothesis and WER (percent), the columns named after the
    models; the largest difference first."""
    other = {row.id: row for row in second.rows}
    pairs = [(abs(row.wer - other[row.id].wer), row, other[row.id]) for row in first.rows if row.id in other]
    pairs.sort(key=lambda p: p[0], reverse=True)
    return [
        {
            "id": row.id,
            "reference": row.reference,
            f"A: {name_a}": row.hypothesis,
            "A WER (%)": round(100 * row.wer, 1),
            f"B: {name_b}": twin.hypothesis,
            "B WER (%)": round(100 * twin.wer, 1),
        }
        for _, row, twin in pairs
    ]


def ab_change(first: EvaluationResult, second: EvaluationResult) -> str:
    """B's WER minus A's on the utterances both evaluations share, with its 95% paired-bootstrap interval."""
    from core.text.bootstrap import paired_bootstrap

    shared = {row.id for row in second.rows} & {row.id for row in first.rows}
    if not shared:
        return "no utterances in common: evaluate both models on the same test set"
    change = paired_bootstrap([r for r in first.rows if r.id in shared], [r for r in second.rows if r.id in shared])
    return f"B − A on {change.utterances} shared utterances: {change.shown}"


def utterance_table(rows: list[UtteranceRow]) -> list[dict]:
    """An evaluation's per-utterance rows as a table: WER in percent, S/D/I counts, flags, both texts."""
    return [
        {
            "id": r.id,
            "WER": round(100 * r.wer, 1),
            "S": r.substitutions,
            "D": r.deletions,
            "I": r.insertions,
            "flags": ", ".join(r.flags),
            "reference": r.reference,
            "hypothesis": r.hypothesis,
        }
        for r in rows
    ]


def utterance_audio(workspace: Workspace, data: str, split: str, utterance_id: str) -> np.ndarray | None:
    """The 16 kHz samples an utterance was evaluated on (kept in the artifact's test/validation split)."""
    table = open_artifact(workspace, data).read_split(split)
    ids = table.column("id").to_pylist()
    if utterance_id not in ids:
        return None
    raw = table.column("audio")[ids.index(utterance_id)].as_py()
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / INT16_SCALE if raw else None


def config_diff(first: RunFolder, second: RunFolder) -> list[dict]:
    """Fields whose values differ between two runs' configs (run names aside)."""
    a, b = first.config().to_dict(), second.config().to_dict()  # DamagedFile (a StudioError) for a damaged one
    return [
        {"field": k, first.name: a[k], second.name: b[k]}
        for k in TrainConfig.__dataclass_fields__
        if k != "run" and a.get(k) != b.get(k)
    ]


# the exports our own engine runs (an ONNX export runs in onnxruntime or sherpa-onnx only): format → label
RUNNABLE_EXPORTS = {"ct2": "CTranslate2", "ggml": "ggml", "openai": "openai-whisper"}


def checkpoint_choices(workspace: Workspace) -> dict[str, str]:
    """Label → model location for every checkpoint of every run, plus each run's base model."""
    choices = {}
    for name in list_runs(workspace.runs):
        run = RunFolder.of(workspace, name)
        best = run.best_checkpoint_name()
        # the best checkpoint first: it is what a person wants to try
        for checkpoint in sorted(run.checkpoints(), key=lambda c: c.name != best):
            star = " ★ best" if checkpoint.name == best else ""
            choices[f"{name}/{checkpoint.name}{star}"] = str(checkpoint)
            for export in sorted(run.path.glob(f"{checkpoint.name}-*")):
                kind = RUNNABLE_EXPORTS.get(export_format(export) or "")
                if kind and (kind != "CTranslate2" or is_ctranslate2(export)):
                    choices[model_label(str(export), workspace)] = str(export)
        try:
            base = run.config().model
        except DamagedFile:
            continue  # its checkpoints are listed; its base model cannot be named (the runs table says why)
        choices.setdefault(f"base: {base}", base)
    return choices


def unreadable_evaluations(workspace: Workspace) -> list[str]:
    """Saved evaluation files that cannot be read (each message names the file and what to do)."""
    damaged = []
    for path, _, _ in _evaluation_files(workspace):
        try:
            read_json(path, fix="evaluate the model again to replace it")
        except DamagedFile as err:
            damaged.append(str(err))
    return damaged
