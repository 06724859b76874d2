"""What every step of one training run shares: built once by `core.training.trainer.train`, then passed whole.

torchtune's recipe object is the model: the run folder, the workspace, the config and the prepared artifact are
known when the run starts; the model, its processor, the language and the window when step 2 has loaded them; the
harm checks when step 4 has built them. Each step reads what it needs from here instead of taking eight arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data.artifact import Artifact
from core.languages import Language
from core.training.config import TrainConfig
from core.training.run_recorder import StatusWriter
from core.training.runs import RunFolder
from core.workspace import Workspace


@dataclass
class TrainingSession:
    """One run in this process. Filled in by the trainer's steps in order; nothing is read before it is set."""

    run: RunFolder
    workspace: Workspace
    config: TrainConfig
    artifact: Artifact
    status: StatusWriter
    checkpoint: Path | None  # the checkpoint a resumed run continues from
    precision: str = "fp32"  # resolved: fp32, fp16 or bf16
    # step 2: the model
    language: Language | None = None
    task: str = "transcribe"
    model: Any = None  # the model being trained (a student, under distillation)
    processor: Any = None
    teacher: Any = None  # distillation: the model the student learns from
    window: int | None = None  # the window the run trains at, seconds (None: Whisper's 30 s)
    full_window: Any = None  # the 30 s tables to restore when a shortened model is saved
    # step 4: what fine-tuning may break (rank 0 alone; None elsewhere)
    harm: Any = None

    @property
    def tokenizer(self):
        return self.processor.tokenizer
