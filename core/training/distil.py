"""A student of your own: a Whisper whose decoder keeps N of its teacher's layers (maximally spaced, as
distil-whisper's `create_student_model.py`: `numpy.linspace(0, L-1, N)`, the last layer always kept), its encoder
the teacher's, shared and frozen, trained on the teacher's soft targets and the labels, in the Trainer and its own
process like every run (what happens inside that process is core/training/student.py's).

A distillation run is a run folder like any other (its config names the teacher and the layers); its held-out result
puts the teacher in the "before" half, so the run's before → after is teacher → student with the paired interval,
and `distillation.json` holds the speed of both, measured at the end of training on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.formatting import percent
from core.models.resolve import DEMO, is_ctranslate2, resolve_model
from core.option_fields import known_fields
from core.training.config import DistilRequest, TrainConfig, apply_preset, default_preset
from core.training.runs import RunFolder, free_run_name
from core.workspace import Workspace, read_json, read_json_if_intact

DISTILLATION_FILE = "distillation.json"  # the run's student facts: teacher, layers kept, speed against the teacher


def decoder_mapping(teacher_layers: int, student_layers: int) -> list[int]:
    """The teacher's decoder layers a student keeps: maximally spaced, the last always kept (distil-whisper)."""
    mapping = np.linspace(0, teacher_layers - 1, student_layers, dtype=int)
    mapping[-1] = teacher_layers - 1
    return [int(layer) for layer in mapping]


def teacher_layers(teacher: str, workspace: Workspace) -> int:
    """The decoder layers of the Whisper checkpoint `teacher`; StudioError when it is no Whisper a student can be
    made of (not a model, a CTranslate2 export, another architecture)."""
    location = resolve_model(teacher, workspace)
    if is_ctranslate2(location):
        raise StudioError(f"{teacher}: a CTranslate2 export runs inference only; give the checkpoint it was made from")
    if Path(location).is_dir():
        config = read_json(Path(location) / "config.json", fix="the teacher folder is damaged: give another") or {}
    else:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(location).to_dict()
        except (OSError, ValueError) as err:
            raise StudioError(f"cannot read teacher '{teacher}': {str(err).splitlines()[0][:200]}") from None
    if config.get("model_type") != "whisper" or not isinstance(config.get("decoder_layers"), int):
        raise StudioError(
            f"{teacher}: not a Whisper model (its config says model_type '{config.get('model_type')}'); a student "
            f"is made of a Whisper checkpoint"
        )
    return config["decoder_layers"]


def check_student(teacher: str, layers: int, workspace: Workspace) -> int:
    """The teacher's decoder layers, after checking that a student of `layers` of them can be made."""
    most = teacher_layers(teacher, workspace)
    if not 1 <= layers < most:
        raise StudioError(
            f"decoder_layers {layers}: a student keeps 1 to {most - 1} of the teacher's {most} decoder layers"
        )
    return most


def teacher_checkpoint(teacher: str, workspace: Workspace) -> tuple[str, RunFolder | None]:
    """(the teacher's checkpoint, the run it comes from or None): a run name means its best checkpoint."""
    if teacher and "/" not in teacher and RunFolder.of(workspace, teacher).exists():
        run = RunFolder.of(workspace, teacher)
        best = run.best_checkpoint_name()
        if not best:
            raise StudioError(f"run '{teacher}' has no checkpoint yet: let it train first")
        return str(run.path / best), run
    path = Path(teacher).expanduser()
    run = RunFolder(path.resolve().parent) if path.is_dir() else None
    return (str(path.resolve()) if path.is_dir() else teacher), (run if run and run.exists() else None)


def distil_config(request: DistilRequest, workspace: Workspace) -> TrainConfig:
    """The student's TrainConfig: the teacher run's settings (or the model's preset), the teacher, the layers."""
    checkpoint, run = teacher_checkpoint(request.teacher, workspace)
    check_student(checkpoint, request.decoder_layers, workspace)
    preset = default_preset(checkpoint)  # "none" for a checkpoint of no run: the recipe's settings
    base = run.config() if run else apply_preset(TrainConfig(), None if preset == "none" else preset)
    data = request.data or (base.data if run else "")
    if not data:
        raise StudioError("the teacher is no run's checkpoint: name the prepared dataset to train on (--data)")
    stem = f"{run.name if run else Path(checkpoint).name}-student-{request.decoder_layers}"
    steps = request.max_steps or base.max_steps
    every = min(base.eval_steps, steps)
    return replace(
        base,
        data=data,
        run=request.run or free_run_name(workspace, stem),
        model=checkpoint,
        teacher=checkpoint,
        decoder_layers=request.decoder_layers,
        kl_weight=request.kl_weight,
        learning_rate=request.learning_rate,
        max_steps=steps,
        warmup_steps=min(base.warmup_steps, steps // 4),
        eval_steps=every,
        save_steps=every if base.save_steps % every or base.save_steps > steps else base.save_steps,
        freeze_encoder=True,
        lora_rank=0,
        english_guard=base.english_guard and base.model != DEMO,  # a toy's student never knew English either
    )


@dataclass(frozen=True)
class DistillationRecord:
    """distillation.json: the teacher, the layers kept, and the time both took to transcribe the same test clips."""

    teacher: str
    teacher_layers: int
    decoder_layers: int
    kept: list[int]  # the teacher's layer numbers the student started from
    rows: int  # test clips decoded per timing
    teacher_seconds: float  # median of SPEED_ROUNDS
    student_seconds: float
    how: str  # engine and decoding, e.g. "transformers fp32, greedy, from log-mel, 2 threads"

    @property
    def speedup(self) -> float:
        return self.teacher_seconds / max(self.student_seconds, 1e-9)

    @classmethod
    def of(cls, run: RunFolder) -> DistillationRecord | None:
        data = read_json_if_intact(run.path / DISTILLATION_FILE)
        return cls(**known_fields(cls, data)) if data else None


def student_lines(run: RunFolder) -> list[str]:
    """What a card and the Compare page say of a student: its teacher and layers, its test WER against the
    teacher's with the interval, and its speed; none for a run that is no distillation."""
    config = run.config()
    if not config.teacher:
        return []
    record, result = DistillationRecord.of(run), run.result()
    lines = [f"student of `{config.teacher}`, keeping {config.decoder_layers} of its decoder layers"]
    if record:
        lines[0] += f" ({record.decoder_layers} of {record.teacher_layers}: layers {record.kept})"
    if result.before and result.after:
        change = result.change()
        lines.append(
            f"held-out test WER: teacher {percent(result.before.wer)} → student {percent(result.after.wer)}"
            + (f" ({change.shown})" if change else "")
        )
    if record:
        lines.append(
            f"decoding {record.rows} test clips ({record.how}): teacher {record.teacher_seconds:.2f} s, student "
            f"{record.student_seconds:.2f} s: {record.speedup:.1f}× as fast"
        )
    return lines
