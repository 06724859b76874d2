"""Fine-tuning: the transformers Seq2SeqTrainer over a prepared artifact, writing everything into the run folder.

This runs inside the worker process (core/worker.py), never in the UI. The data path is the memory-mapped Arrow
artifact → `FeatureDataset` → `SpeechCollator` (dynamic label padding with -100). Evaluation generates text and
reports WER/CER, normalised and raw; the base model's zero-shot result is evaluated first and logged as step 0.
Callbacks write the run folder: append-only metrics, the status heartbeat, the best checkpoint, stop requests.
"""

from __future__ import annotations

import copy
import math
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback, set_seed

from core.config import TrainConfig
from core.errors import StudioError
from core.evaluation import error_rates
from core.features import Artifact, features_from_row, open_artifact
from core.languages import get_language
from core.models import load_model
from core.runs import HEARTBEAT_S, RunFolder
from core.workspace import Workspace, write_json_atomic


class FeatureDataset(torch.utils.data.Dataset):
    """One split of an artifact; rows are read from the memory-mapped Arrow file on demand."""

    def __init__(self, artifact: Artifact, split: str, limit: int | None = None):
        self.table = artifact.read_split(split)
        self.shape = artifact.feature_shape()
        self.size = min(self.table.num_rows, limit or self.table.num_rows)
        if self.size == 0:
            raise StudioError(f"dataset '{artifact.name}' has no rows in its '{split}' split; prepare more data")

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        return {
            "input_features": features_from_row(self.table, index, self.shape),
            "labels": self.table.column("labels")[index].as_py(),
        }


@dataclass
class SpeechCollator:
    """Stack features; pad labels with -100 (ignored by the loss) and drop the decoder start token, which the
    model prepends itself when it shifts labels right (keeping it would teach it to predict it twice)."""

    decoder_start_token_id: int

    def __call__(self, rows: list[dict]) -> dict:
        features = torch.from_numpy(np.stack([r["input_features"] for r in rows]).astype(np.float32))
        labels = [r["labels"] for r in rows]
        if all(seq and seq[0] == self.decoder_start_token_id for seq in labels):
            labels = [seq[1:] for seq in labels]
        width = max(len(seq) for seq in labels)
        padded = torch.full((len(labels), width), -100, dtype=torch.long)
        for i, seq in enumerate(labels):
            padded[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return {"input_features": features, "labels": padded}


def resolve_precision(choice: str) -> str:
    if choice == "auto":
        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if choice == "fp16" and not torch.cuda.is_available():
        raise StudioError("precision fp16 needs a CUDA GPU; choose auto, fp32 or bf16 on a CPU")
    return choice


def is_primary_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def stop_requested_everywhere(run: RunFolder) -> bool:
    """Whether to stop now; under DDP every rank must agree on the same step, or the next all-reduce hangs."""
    stop = run.stop_file.exists()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        flag = torch.tensor([int(stop)])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        stop = bool(flag.item())
    return stop


class StatusWriter:
    """Owns status.json for the worker: one lock, so the heartbeat thread and the callbacks never interleave."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.primary = is_primary_process()  # under torchrun only rank 0 writes the run folder
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def update(self, **changes) -> None:
        if not self.primary:
            return
        with self.lock:
            self.run.update_status(heartbeat=time.time(), **changes)

    def start(self) -> None:
        if self.primary:
            self.thread.start()

    def close(self) -> None:
        self.stopped.set()

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            self.update()


class RunFolderCallback(TrainerCallback):
    """Writes metrics rows, status, best.json; turns a stop file into a save-and-stop."""

    def __init__(self, run: RunFolder, status: StatusWriter, samples_per_step: int):
        self.run, self.status, self.samples_per_step = run, status, samples_per_step
        self.last_log = (None, None)  # (time, step) of the previous log row
        self.last_status = 0.0
        self.stop_requested = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.status.update(state="running", step=state.global_step, total=state.max_steps)
        self.last_log = (time.time(), state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_runtime" in logs or not state.is_world_process_zero:
            return  # the end-of-training summary; its numbers are already in the rows
        now, step = time.time(), state.global_step
        row = {"step": step, "epoch": round(state.epoch or 0.0, 4), "time": now, **logs}
        if step == 0 and any(k.startswith("eval_") for k in logs):
            row["baseline"] = True
        previous_time, previous_step = self.last_log
        if "loss" in logs and previous_time is not None and step > previous_step:
            row["samples_per_second"] = (step - previous_step) * self.samples_per_step / (now - previous_time)
            self.last_log = (now, step)
        if torch.cuda.is_available():
            row["gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        if "loss" in logs and not math.isfinite(logs["loss"]):
            row["nan_loss"] = True
        self.run.append_metrics(row)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if now - self.last_status >= 1.0:
            self.status.update(step=state.global_step)
            self.last_status = now
        if state.global_step >= state.max_steps:
            # The last step always evaluates and saves, whatever the intervals: no trained step is ever lost.
            control.should_evaluate = True
            control.should_save = True
        if stop_requested_everywhere(self.run) and not self.stop_requested:
            self.stop_requested = True
            self.status.update(state="stopping", step=state.global_step)
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if is_peft(model):
            # An adapter alone does not load in transformers.pipeline: also save the merged model, so every
            # checkpoint stays self-contained (the adapter files beside it are what resume reads).
            merged = copy.deepcopy(model).merge_and_unload()
            merged.save_pretrained(self.run.path / f"checkpoint-{state.global_step}")
        if state.best_model_checkpoint:
            write_json_atomic(
                self.run.path / "best.json",
                {
                    "checkpoint": state.best_model_checkpoint.rstrip("/").rsplit("/", 1)[-1],
                    "wer": state.best_metric,
                    "step": int(state.best_model_checkpoint.rsplit("-", 1)[-1]),
                },
            )
        self.status.update(step=state.global_step, last_checkpoint=f"checkpoint-{state.global_step}")


def is_peft(model) -> bool:
    return model is not None and hasattr(model, "peft_config")


def apply_memory_levers(model, config: TrainConfig):
    """Freeze the encoder and/or wrap the model with LoRA adapters, as the config asks."""
    if config.freeze_encoder:
        model.freeze_encoder()  # the encoder's weights get no gradients and no optimiser state
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        targets = [m.strip() for m in config.lora_target_modules.split(",") if m.strip()]
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = sorted(set(targets) - names)
        if missing:
            raise StudioError(
                f"lora_target_modules: {', '.join(missing)} not in this model; Whisper's attention "
                f"layers are q_proj, k_proj, v_proj, out_proj; its MLP fc1, fc2"
            )
        # A frozen encoder gets no adapters either: a regex keeps them to the decoder's layers.
        where = rf".*decoder\..*\.({'|'.join(map(re.escape, targets))})$" if config.freeze_encoder else targets
        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=where, lora_dropout=0.05, bias="none"
            ),
        )
    return model


def compute_metrics_for(tokenizer):
    def compute(prediction) -> dict:
        predictions, label_ids = prediction.predictions, prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        label_ids = np.where(label_ids == -100, tokenizer.pad_token_id, label_ids)
        predictions = np.where(predictions == -100, tokenizer.pad_token_id, predictions)
        hypotheses = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(label_ids, skip_special_tokens=True)
        return error_rates([r.strip() for r in references], [h.strip() for h in hypotheses])

    return compute


def train(run: RunFolder, workspace: Workspace, resume: bool = False) -> str:
    """Train the run in this process; returns the final state (completed / stopped). Raises on failure."""
    config = run.config().validate()
    artifact = open_artifact(workspace, config.data)
    language = get_language(config.language or artifact.manifest["language"])
    precision = resolve_precision(config.precision)
    set_seed(config.seed)
    checkpoint = run.last_checkpoint() if resume else None
    model, processor = load_model(config.model, workspace, language=language.whisper, task="transcribe")
    model.generation_config.max_length = config.generation_max_length
    if config.gradient_checkpointing:
        model.config.use_cache = False
    model = apply_memory_levers(model, config)
    if artifact.streams("train"):
        from core.streaming import StreamingFeatureDataset

        train_set = StreamingFeatureDataset(artifact, workspace, config.max_train_samples, config.seed)
    else:
        train_set = FeatureDataset(artifact, "train", config.max_train_samples)
    eval_set = FeatureDataset(artifact, config.eval_split, config.max_eval_samples)

    args = Seq2SeqTrainingArguments(
        output_dir=str(run.path),
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum_steps,
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay,
        optim=config.optimizer,
        activation_checkpointing=config.gradient_checkpointing,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        eval_on_start=checkpoint is None,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="wer",
        greater_is_better=False,
        logging_steps=config.logging_steps,
        predict_with_generate=True,
        generation_max_length=config.generation_max_length,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Without a GPU the Trainer must be told it is on the CPU, or under torchrun every process trains alone;
        # with it, DDP runs over gloo.
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
    )
    status = StatusWriter(run)
    samples_per_step = config.train_batch_size * config.grad_accum_steps * max(1, args.world_size)
    callbacks = [RunFolderCallback(run, status, samples_per_step)]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=SpeechCollator(model.config.decoder_start_token_id),
        processing_class=processor,
        compute_metrics=compute_metrics_for(processor.tokenizer),
        callbacks=callbacks,
    )
    status.update(
        state="running",
        total=config.max_steps,
        precision=precision,
        resumed_from=checkpoint.name if checkpoint else None,
    )
    status.start()
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        stopped = callbacks[0].stop_requested
        state = trainer.state
        final = "stopped" if stopped else "completed"
        note = None
        if not stopped and state.global_step < config.max_steps:
            note = (
                f"early-stopped at step {state.global_step}: WER did not improve for "
                f"{config.early_stopping_patience} evaluations"
            )
        status.update(state=final, step=state.global_step, finished=time.time(), note=note, error=None)
        return final
    finally:
        status.close()
        if status.primary:
            run.stop_file.unlink(missing_ok=True)


def describe_failure(err: BaseException) -> str:
    """One line for status.json: the user's mistake as written, else the exception type and first line."""
    if isinstance(err, StudioError):
        return str(err)
    if isinstance(err, torch.OutOfMemoryError):
        return "out of GPU memory: lower train_batch_size (raise grad_accum_steps) or enable gradient_checkpointing"
    first = (str(err).splitlines() or [""])[0][:300]
    return f"{type(err).__name__}: {first} (see train.log)"


def format_traceback(err: BaseException) -> str:
    return "".join(traceback.format_exception(err))
