"""The student itself, in the training process: made from its loaded teacher, trained by distil-whisper's loss, and
timed against the teacher at the end of the run (core/training/distil.py says what a distillation is and starts one).

The student is made as distil-whisper's `create_student_model.py` makes one: the teacher's config with fewer decoder
layers, every weight copied, the decoder layers kept maximally spaced. Its encoder is the teacher's own module, shared
and frozen: the encoder cache (keyed by the encoder's weights) serves the student as it served the teacher, and the
teacher's decoder reads the very encoder states the student computed. The loss is distil-whisper's: 0.8 × the labels'
cross-entropy + `kl_weight` × the KL divergence from the teacher's distribution to the student's, both softened by a
temperature of 2 (× 2² to keep the gradients' scale).
"""

from __future__ import annotations

import copy
import re
import statistics
import time
from dataclasses import asdict

import numpy as np
import torch

from core.data.artifact import Artifact
from core.models.resolve import load_model
from core.training.config import TrainConfig
from core.training.distil import DISTILLATION_FILE, DistillationRecord, decoder_mapping
from core.training.feature_sets import FeatureDataset
from core.training.parallel import StudioTrainer
from core.training.runs import RunFolder
from core.workspace import Workspace, write_json_atomic

TEMPERATURE = 2.0  # softens teacher and student alike (distil-whisper's run_distillation.py)
CE_WEIGHT = 0.8  # the labels' cross-entropy, beside kl_weight × KL (distil-whisper)
SPEED_ROWS = 16  # test clips decoded to time teacher and student: a few seconds of work each on 2 cores
SPEED_ROUNDS = 3  # alternating teacher-first and student-first; the median is kept


def student_of(teacher, layers: int):
    """A student of the loaded `teacher` model keeping `layers` of its decoder layers; the encoder is the teacher's
    own module (shared), every other weight a copy."""
    from transformers import WhisperForConditionalGeneration

    kept = decoder_mapping(teacher.config.decoder_layers, layers)
    config = copy.deepcopy(teacher.config)
    config.decoder_layers = layers
    student = WhisperForConditionalGeneration(config)
    layer_key = re.compile(r"^model\.decoder\.layers\.(\d+)\.(.+)$")
    weights = {}
    for key, value in teacher.state_dict().items():
        match = layer_key.match(key)
        if key.startswith("model.encoder."):
            continue  # shared below, not copied
        if not match:
            weights[key] = value
        elif int(match[1]) in kept:
            weights[f"model.decoder.layers.{kept.index(int(match[1]))}.{match[2]}"] = value
    student.load_state_dict(weights, strict=False)  # the encoder's keys, and the tied output projection's
    student.model.encoder = teacher.model.encoder
    # the shared encoder reads the student's config from here on: a shortened window (apply_window, which sets the
    # student's max_source_positions) must reach the module that checks its input length
    student.model.encoder.config = student.config
    student.generation_config = copy.deepcopy(teacher.generation_config)
    heads = getattr(teacher.generation_config, "alignment_heads", None) or []
    moved = [[kept.index(layer), head] for layer, head in heads if layer in kept]
    # word timestamps read these heads' cross-attention; where none was kept, every head of the last layer
    student.generation_config.alignment_heads = moved or [
        [layers - 1, h] for h in range(config.decoder_attention_heads)
    ]
    return student


class DistillationTrainer(StudioTrainer):
    """The Seq2SeqTrainer with distil-whisper's loss: the labels' cross-entropy and the KL to the teacher."""

    loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over accumulated batches

    def __init__(self, *args, teacher, kl_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher, self.kl_weight = teacher.eval(), kl_weight
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from transformers.models.whisper.modeling_whisper import shift_tokens_right

        labels = inputs["labels"]
        start = self.teacher.config.decoder_start_token_id
        decoder_inputs = shift_tokens_right(labels, self.teacher.config.pad_token_id, start)
        outputs = model(input_features=inputs["input_features"], decoder_input_ids=decoder_inputs, labels=labels)
        self.teacher.to(outputs.logits.device)
        with torch.no_grad():
            encoded = (outputs.encoder_last_hidden_state,)  # the shared encoder's states: computed once for both
            teacher_logits = self.teacher(encoder_outputs=encoded, decoder_input_ids=decoder_inputs).logits
        mask = (labels != -100).to(outputs.logits.dtype)
        student = torch.log_softmax(outputs.logits / TEMPERATURE, dim=-1)
        target = torch.log_softmax(teacher_logits.to(outputs.logits.dtype) / TEMPERATURE, dim=-1)
        divergence = (target.exp() * (target - student)).sum(-1)  # KL(teacher ‖ student) per position
        kl = (divergence * mask).sum() / mask.sum().clamp(min=1) * TEMPERATURE**2
        loss = CE_WEIGHT * outputs.loss + self.kl_weight * kl
        return (loss, outputs) if return_outputs else loss


@torch.inference_mode()
def decoding_seconds(models: dict, features: np.ndarray, max_length: int, batch: int = 8) -> dict[str, float]:
    """Median seconds each model takes to decode `features` greedily (log-mel: encoder and decoder), timed in
    SPEED_ROUNDS rounds whose order alternates, so a machine that slows down or warms up weighs on both."""
    taken: dict[str, list[float]] = {name: [] for name in models}
    inputs = torch.from_numpy(features.astype(np.float32))
    for round_ in range(SPEED_ROUNDS):
        for name in list(models)[:: 1 if round_ % 2 == 0 else -1]:
            started = time.perf_counter()
            for at in range(0, len(inputs), batch):
                models[name].generate(inputs[at : at + batch], max_length=max_length)
            taken[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in taken.items()}


def record_distillation(run: RunFolder, config: TrainConfig, workspace: Workspace, artifact: Artifact) -> None:
    """Time the teacher and the best student on the test split's first clips, fresh from their folders (the whole
    model, log-mel in, as a user runs it), and write distillation.json."""
    best = run.best_checkpoint_name()
    if not best or not config.test_split:
        return
    language = artifact.manifest.whisper_language
    models = {
        name: load_model(path, workspace, language=language, task=config.task or artifact.task)[0].eval()
        for name, path in (("teacher", config.teacher), ("student", str(run.path / best)))
    }
    rows = FeatureDataset(artifact, config.test_split, SPEED_ROWS)
    features = np.stack([rows[i]["input_features"] for i in range(len(rows))])
    seconds = decoding_seconds(models, features, config.generation_max_length)
    record = DistillationRecord(
        teacher=config.teacher,
        teacher_layers=models["teacher"].config.decoder_layers,
        decoder_layers=config.decoder_layers,
        kept=decoder_mapping(models["teacher"].config.decoder_layers, config.decoder_layers),
        rows=len(rows),
        teacher_seconds=round(seconds["teacher"], 3),
        student_seconds=round(seconds["student"], 3),
        how=f"transformers fp32, greedy, from log-mel, {torch.get_num_threads()} threads",
    )
    write_json_atomic(run.path / DISTILLATION_FILE, asdict(record))
    print(f"student: {record.student_seconds:.2f} s, teacher {record.teacher_seconds:.2f} s ({record.speedup:.1f}×)")
