"""The worker's side of the run folder: the status owner (a heartbeat every HEARTBEAT_S seconds plus every change)
and the Trainer callback that appends metric rows, records the best checkpoint and turns a stop file into a
save-and-stop.

Under torchrun only rank 0 writes the run folder; every rank must still agree on when to stop, or the next
all-reduce would hang.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from core.errors import StudioError
from core.training.run_records import RunState
from core.training.runs import HEARTBEAT_S, RunFolder, raise_if_stop_requested


def is_primary_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def stop_requested_everywhere(run: RunFolder) -> bool:
    """Whether to stop now; under DDP every rank must agree on the same step, or the next all-reduce hangs."""
    stop = run.stop_file.exists()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # NCCL reduces only CUDA tensors (a CPU one fails: "No backend type associated with device type cpu")
        nccl = torch.distributed.get_backend() == "nccl"
        flag = torch.tensor([int(stop)], device=f"cuda:{torch.cuda.current_device()}" if nccl else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        stop = bool(flag.item())
    return stop


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and of its children that ended (espeak-ng): a
    phase's cost, which other load on the machine changes less than its wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


EVALUATING = "evaluating the validation split"  # the phase of the Trainer's evaluations (every eval_steps)
DIVERGENCE_KEYS = ("loss", "grad_norm", "eval_loss")  # logged values that must stay finite


class StatusWriter:
    """Owns status.json for the worker: a heartbeat thread (closed by `close`) and the callbacks' updates."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.primary = is_primary_process()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="status-heartbeat")
        self.phase: str | None = None  # what the worker does now, timed into phase_seconds
        self.phase_began = (time.time(), process_cpu_seconds())
        # a resumed run adds to what its earlier processes spent
        self.phase_seconds: dict[str, list[float]] = dict(run.status().phase_seconds) if self.primary else {}

    def update(self, **changes) -> None:
        if "phase" in changes and changes["phase"] != self.phase:
            changes["phase_seconds"] = self._phase_ends(changes["phase"])
        if self.primary:
            self.run.update_status(owner=True, heartbeat=time.time(), **changes)

    def _phase_ends(self, following: str | None) -> dict:
        """Add the time since the current phase began to its total; `following` begins now."""
        wall, cpu = time.time(), process_cpu_seconds()
        if self.phase is not None:
            spent = self.phase_seconds.setdefault(self.phase, [0.0, 0.0])
            spent[0] = round(spent[0] + wall - self.phase_began[0], 2)
            spent[1] = round(spent[1] + cpu - self.phase_began[1], 2)
        self.phase, self.phase_began = following, (wall, cpu)
        return {name: list(spent) for name, spent in self.phase_seconds.items()}

    def start(self) -> None:
        if self.primary:
            self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=HEARTBEAT_S)

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            self.update()


class RunFolderCallback(TrainerCallback):
    """Writes metrics rows, status, best.json; turns a stop file into a save-and-stop."""

    def __init__(self, run: RunFolder, status: StatusWriter, samples_per_step: int, harm=None):
        self.run, self.status, self.samples_per_step = run, status, samples_per_step
        self.harm = harm  # core/training/guards.py's HarmCallback (rank 0), measured after every evaluation
        self.last_log = (None, None)  # (time, step) of the previous log row
        self.last_status = 0.0
        self.stop_requested = False
        self.save_started = time.time()
        self.timed_from: float | None = None  # when this process finished its first step

    def on_train_begin(self, args, state, control, **kwargs):
        # with eval_on_start the Trainer evaluates the base model first (no callback says when an evaluation begins)
        phase = EVALUATING if args.eval_on_start and state.global_step == 0 else "training"
        # a resumed run's earlier process timed its own steps: its start no longer counts (on_step_end sets ours)
        self.status.update(
            state=RunState.RUNNING,
            phase=phase,
            step=state.global_step,
            total=state.max_steps,
            timed_from=None,
            timed_from_step=None,
        )
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
        print(progress_line(row, state.max_steps), file=sys.stderr, flush=True)  # train.log, or the terminal
        diverged = [k for k in DIVERGENCE_KEYS if isinstance(logs.get(k), int | float) and not math.isfinite(logs[k])]
        if diverged:
            # every weight is NaN from here on: a checkpoint saved now would be garbage that reads `completed`
            raise StudioError(
                f"training diverged at step {step}: {' and '.join(diverged)} is {logs[diverged[0]]}; check the data "
                f"for invalid audio (the doctor on the Data page), lower the learning rate, or use fp32"
            )

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if self.harm is not None and not self.stop_requested and model is not None:
            self.status.update(phase="guard sets and probes")
            if self.harm.on_evaluate(model, state.global_step):
                control.should_training_stop = True
        self.status.update(phase="training")
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        # an evaluation (at step 0 or every eval_steps) of a large split takes minutes: a stop ends it mid-way
        # (unless the stop was already taken at a step's end, where it saves a checkpoint and skips evaluating)
        if not self.stop_requested:
            raise_if_stop_requested(self.run)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if self.timed_from is None:  # this process's first step: the pace counts from its end
            self.timed_from = now
            self.status.update(step=state.global_step, timed_from=now, timed_from_step=state.global_step)
            self.last_status = now
        elif now - self.last_status >= 1.0:
            self.status.update(step=state.global_step)
            self.last_status = now
        if state.global_step >= state.max_steps:
            # The last step always evaluates and saves, whatever the intervals: no trained step is ever lost.
            control.should_evaluate = True
            control.should_save = True
        self.save_started = time.time()  # if this step saves, on_save comes next: the save's duration is logged
        if stop_requested_everywhere(self.run) and not self.stop_requested:
            self.stop_requested = True
            self.status.update(state=RunState.STOPPING, step=state.global_step)
            control.should_save = True
            control.should_evaluate = False  # stop means now: the checkpoint is saved without another evaluation
            control.should_training_stop = True
        if control.should_evaluate:
            self.status.update(phase=EVALUATING)  # the Trainer evaluates right after this step
        return control

    def on_save(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if is_peft(model):
            # The checkpoint's root holds the merged model, what every loader reads (evaluation, export, the
            # pipeline, publish); the adapter moves to adapter/, for resume. Left at the root, transformers'
            # from_pretrained would load the merged weights and then apply the adapter again on top of them.
            folder = self.run.checkpoint_path(state.global_step)
            move_adapter_aside(folder)
            copy.deepcopy(model).merge_and_unload().save_pretrained(folder)
        if state.best_model_checkpoint:
            self.run.write_best(state.best_model_checkpoint, state.best_metric)
        now = time.time()
        self.run.append_metrics({"step": state.global_step, "time": now, "checkpoint_seconds": now - self.save_started})
        self.status.update(step=state.global_step, last_checkpoint=self.run.checkpoint_path(state.global_step).name)


def progress_line(row: dict, total: int) -> str:
    """One readable log line per metrics row: 'step 20/100  loss 0.482  lr 4.5e-05' or '… validation WER 29.5%'."""
    parts = [f"step {row['step']}/{total}"]
    if "loss" in row:
        parts.append(f"loss {row['loss']:.4g}  lr {row.get('learning_rate', 0):.3g}")
        if "samples_per_second" in row:
            parts.append(f"{row['samples_per_second']:.1f} samples/s")
    if "eval_wer" in row:
        label = "base model" if row.get("baseline") else "validation"
        parts.append(f"{label} WER {100 * row['eval_wer']:.1f}%  CER {100 * row.get('eval_cer', 0):.1f}%")
    return "  ".join(parts)


def is_peft(model) -> bool:
    return model is not None and hasattr(model, "peft_config")


ADAPTER_FOLDER = "adapter"  # a LoRA checkpoint's adapter, beside the merged model at the checkpoint's root
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")


def move_adapter_aside(checkpoint: Path) -> None:
    """Move the adapter files the Trainer saved at `checkpoint`'s root into its adapter/ folder."""
    aside = checkpoint / ADAPTER_FOLDER
    aside.mkdir(exist_ok=True)
    for name in ADAPTER_FILES:
        if (checkpoint / name).is_file():
            os.replace(checkpoint / name, aside / name)


def load_adapter_weights(model, checkpoint: Path) -> None:
    """Put a checkpoint's trained adapter weights (from its adapter/ folder) into a LoRA-wrapped model."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = checkpoint / ADAPTER_FOLDER / "adapter_model.safetensors"
    if not weights.is_file():
        weights = checkpoint / "adapter_model.safetensors"  # a checkpoint written before adapter/ existed
    if not weights.is_file():
        raise StudioError(f"{checkpoint.name} has no LoRA adapter ({ADAPTER_FOLDER}/adapter_model.safetensors)")
    set_peft_model_state_dict(model, load_file(str(weights)))
