"""The training contract: one dataclass that the Train form builds, the CLI parses, the worker reads from
`config.json`, and the tests construct. Help text lives once, on each field; `validate()` checks every value before
anything starts and names the problem and the valid range.

The base model defaults to whisper-base, installed offline; the other defaults are the seed recipe's (whisper-small
on a GPU): batch 16 × 5000 steps = 80,000 utterances seen. The `demo` preset suits the tiny offline model on a CPU.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field, fields, replace

from core.data.prepare_options import TASKS as DATASET_TASKS
from core.errors import StudioError
from core.models.hf_folders import DEMO
from core.models.installed import DEFAULT_MODEL, installed_name
from core.option_fields import option_help
from core.training.config_checks import check_config

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
REPORTERS = ("none", "tensorboard", "wandb", "mlflow")
SCHEDULERS = ("linear", "constant_with_warmup", "cosine")
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch", "adamw_bnb_8bit")
SHARDINGS = ("none", "fsdp", "zero2", "zero3")  # core/training/parallel.py writes each one's config
TASKS = ("", *DATASET_TASKS)  # empty: the dataset's own task


@dataclass
class TrainConfig:
    data: str = field(default="", metadata=option_help("prepared dataset name (see `prepare`)"))
    model: str = field(
        default=DEFAULT_MODEL,
        metadata=option_help("base model: whisper-base (installed), a Hub id, a local or checkpoint folder, or demo"),
    )
    run: str = field(default="", metadata=option_help("run name: the folder under WORKSPACE/runs"))
    language: str = field(default="", metadata=option_help("language code; empty = the dataset's language"))
    learning_rate: float = field(default=1e-5, metadata=option_help("peak learning rate (AdamW)"))
    train_batch_size: int = field(default=16, metadata=option_help("utterances per device per step"))
    eval_batch_size: int = field(default=8, metadata=option_help("utterances per evaluation batch"))
    grad_accum_steps: int = field(default=1, metadata=option_help("batches accumulated per optimiser step"))
    logging_steps: int = field(default=25, metadata=option_help("steps between loss/lr log rows"))
    eval_steps: int = field(default=1000, metadata=option_help("steps between evaluations (WER/CER with generation)"))
    save_steps: int = field(default=1000, metadata=option_help("steps between checkpoints; a multiple of eval_steps"))
    warmup_steps: int = field(default=500, metadata=option_help("steps of linear learning-rate warm-up"))
    max_steps: int = field(default=5000, metadata=option_help("total optimiser steps"))
    max_train_samples: int | None = field(default=None, metadata=option_help("use at most N training rows"))
    max_eval_samples: int | None = field(default=None, metadata=option_help("evaluate on at most N rows"))
    generation_max_length: int = field(default=225, metadata=option_help("longest transcript generated in evaluation"))
    precision: str = field(
        default="auto",
        metadata=option_help("auto (bf16/fp16 on a GPU that has it, else fp32), fp32, fp16, bf16", choices=PRECISIONS),
    )
    gradient_checkpointing: bool = field(
        default=False, metadata=option_help("recompute activations: less memory, ~30% slower")
    )
    early_stopping_patience: int = field(
        default=0, metadata=option_help("stop after N evaluations without a better WER; 0 = never")
    )
    save_total_limit: int = field(default=2, metadata=option_help("checkpoints kept (the best one is always kept)"))
    lr_scheduler: str = field(
        default="linear", metadata=option_help("learning-rate schedule after warm-up", choices=SCHEDULERS)
    )
    weight_decay: float = field(default=0.0, metadata=option_help("AdamW weight decay"))
    eval_split: str = field(
        default="validation",
        metadata=option_help("split evaluated during training: picks the best checkpoint and drives early stopping"),
    )
    test_split: str = field(
        default="test",
        metadata=option_help(
            "held-out split evaluated once, before and after training: the run's result; empty = none"
        ),
    )
    num_train_epochs: float = field(
        default=0.0, metadata=option_help("passes over the training split; 0 = train for max_steps instead")
    )
    dropout: float = field(
        default=0.0, metadata=option_help("dropout probability in every layer (Whisper trains with 0)")
    )
    task: str = field(
        default="",
        metadata=option_help("transcribe or translate (to English); empty = the dataset's task", choices=TASKS),
    )
    seed: int = field(default=42, metadata=option_help("random seed for shuffling and initialisation"))
    report_to: str = field(
        default="none", metadata=option_help("also log to tensorboard, wandb or mlflow", choices=REPORTERS)
    )
    lora_rank: int = field(
        default=0,
        metadata=option_help(
            "LoRA rank: train small adapters instead of every weight (8–32 typical); 0 = full fine-tuning"
        ),
    )
    lora_alpha: int = field(default=32, metadata=option_help("LoRA scaling (alpha / rank multiplies the adapter)"))
    lora_target_modules: str = field(
        default="q_proj,v_proj", metadata=option_help("comma-separated module names that get LoRA adapters")
    )
    freeze_encoder: bool = field(
        default=False,
        metadata=option_help(
            "train the decoder only: about half the memory "
            "for optimiser state, often enough for a new "
            "language's spelling"
        ),
    )
    cache_encoder_states: bool = field(
        default=False,
        metadata=option_help(
            "with a frozen encoder: compute its output once per clip and train the decoder from that cache "
            "(many times faster on a CPU; stored beside the dataset)"
        ),
    )
    window_seconds: int = field(
        default=0,
        metadata=option_help(
            "shorter encoder window for short clips (e.g. 10 of Whisper's 30 s): ~3× less encoder work; "
            "0 = the model's own; longer clips are left out"
        ),
    )
    optimizer: str = field(
        # the fused kernel (the Trainer's own default since torch 2.8): one pass over the parameters in place of
        # a dozen; on 2 CPU cores whisper-base's decoder step took 0.22 s in AdamW, fused 0.05 s, the same update
        default="adamw_torch_fused",
        metadata=option_help(
            "adamw_torch_fused (one kernel), adamw_torch (the same update, step by step), or adamw_bnb_8bit "
            "(8-bit state, needs a CUDA GPU and bitsandbytes)",
            choices=OPTIMIZERS,
        ),
    )
    nproc: int = field(
        default=1,
        metadata=option_help("processes for data-parallel training (torchrun): one per GPU; on a CPU, gloo processes"),
    )
    # Several machines (core/training/nodes.py): each runs the same command but for --node-rank; the workspace, and
    # so the run folder, lives on storage every node sees
    nnodes: int = field(
        default=1,
        metadata=option_help(
            "machines (nodes) training together, each with nproc processes; every node runs the same command with "
            "its own node_rank"
        ),
    )
    node_rank: int = field(
        default=0,
        metadata=option_help(
            "this machine's place among the nodes: 0 creates the run folder and hosts the rendezvous, 1 to nnodes-1 "
            "join it"
        ),
    )
    rdzv_endpoint: str = field(
        default="",
        metadata=option_help(
            "HOST:PORT where the nodes meet (torchrun's c10d rendezvous): node 0's address and a free port every "
            "node can reach; needed with nnodes > 1"
        ),
    )
    rdzv_timeout: int = field(
        default=300,
        metadata=option_help("seconds a node waits for the others (and for the rendezvous to answer) before it fails"),
    )
    sharding: str = field(
        default="none",
        metadata=option_help(
            "split weights, gradients and optimiser state across the processes, for models that do not fit one GPU: "
            "fsdp (PyTorch FSDP2), zero2 or zero3 (DeepSpeed ZeRO); needs CUDA GPUs and more than one process",
            choices=SHARDINGS,
        ),
    )
    # What a fine-tune breaks (core/training/guards.py): sets it must not get worse on, and what to do when it does
    guard: str = field(
        default="",
        metadata=option_help(
            "prepared datasets the run must not get worse on, measured at every evaluation on their test split (else "
            "validation, else train; comma-separated, --guard repeats)"
        ),
    )
    english_guard: bool = field(
        default=True,
        metadata=option_help(
            "for a target other than English: also guard English (espeak-ng sentences, made once per workspace)"
        ),
    )
    guard_threshold: float = field(
        default=5.0, metadata=option_help("WER points a guard set may rise above the base model's before a warning")
    )
    guard_stop: bool = field(
        default=False, metadata=option_help("end training (keeping the best checkpoint) when a guard set rises")
    )
    replay: str = field(
        default="",
        metadata=option_help(
            "prepared dataset whose training rows are mixed into every epoch (forgetting's remedy); empty = the "
            "English reference set"
        ),
    )
    replay_fraction: float = field(
        default=0.0, metadata=option_help("share of the training rows that come from the replay set; 0 = no replay")
    )
    apply_spec_augment: bool = field(
        default=False,
        metadata=option_help(
            "SpecAugment: mask random time steps and mel bins of the encoder's input while training (a regulariser "
            "for small sets; slower to converge; does nothing with cached encoder states)"
        ),
    )
    mask_time_prob: float = field(
        default=0.05, metadata=option_help("SpecAugment: share of time steps masked (the HF script's 0.05)")
    )
    mask_feature_prob: float = field(
        default=0.0, metadata=option_help("SpecAugment: share of mel bins masked (the HF script's 0)")
    )
    # Self-training and distillation (issue 30): rows a model labelled, and a smaller student of a checkpoint
    pseudo_labels: str = field(
        default="",
        metadata=option_help(
            "prepared dataset of pseudo-labels (python -m core label, then prepare) whose training rows join the "
            "labelled ones"
        ),
    )
    pseudo_label_fraction: float = field(
        default=0.0, metadata=option_help("share of the training rows that come from the pseudo-labels; 0 = none")
    )
    teacher: str = field(
        default="",
        metadata=option_help(
            "distillation: the checkpoint (also the model) whose decoder layers the student keeps and whose soft "
            "targets it learns; empty = ordinary fine-tuning"
        ),
    )
    decoder_layers: int = field(
        default=0,
        metadata=option_help("distillation: how many of the teacher's decoder layers the student keeps, evenly spaced"),
    )
    kl_weight: float = field(
        default=1.0,
        metadata=option_help(
            "distillation: weight of the KL term to the teacher's soft targets (the labels' cross-entropy weighs 0.8, "
            "as distil-whisper)"
        ),
    )

    def validate(self) -> TrainConfig:
        """Raise StudioError for the first invalid value; return self so calls chain. By concern: what the run is
        called and trains on, numbers, the schedule, the encoder, the splits, the choices, what must be installed."""
        check_config(self)
        return self

    @property
    def processes(self) -> int:
        """Training processes in all: nproc on each of nnodes machines (torchrun's world size)."""
        return self.nproc * self.nnodes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise StudioError(f"unknown training option(s) {', '.join(sorted(unknown))}; valid: {', '.join(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def command_line(self) -> str:
        """`python -m core train …` that makes this config: --data, --run and a flag per field that differs from
        its default (what the CLI builds from the same fields), quoted for a shell."""
        parts = ["python", "-m", "core", "train", "--data", self.data, "--run", self.run]
        default = TrainConfig(data=self.data, run=self.run)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("data", "run") or value == getattr(default, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag if value else "--no-" + flag[2:])
            else:
                parts += [flag, str(value)]
        return " ".join(shlex.quote(part) for part in parts)


@dataclass(frozen=True)
class DistilRequest:
    """What `python -m core distil` and the Train page's "Make a smaller model" ask for."""

    teacher: str = field(
        default="", metadata=option_help("the checkpoint folder to make a student of, or a run name (its best)")
    )
    decoder_layers: int = field(
        default=2, metadata=option_help("decoder layers the student keeps (whisper-base has 6), maximally spaced")
    )
    data: str = field(default="", metadata=option_help("prepared dataset to train on; empty = the teacher run's"))
    run: str = field(default="", metadata=option_help("run name; empty = TEACHER-RUN-student-N-K"))
    max_steps: int | None = field(default=None, metadata=option_help("training steps; empty = the teacher run's"))
    learning_rate: float = field(default=1e-4, metadata=option_help("peak learning rate (distil-whisper's 1e-4)"))
    kl_weight: float = field(default=1.0, metadata=option_help("weight of the KL term to the teacher's soft targets"))


# The demo preset: a 4M-parameter model learns from scratch with a large learning rate. Measured on 2 CPU cores:
# 1000 steps × batch 24 (about 17 epochs of 1440 utterances) reached 6% held-out WER in 5 minutes.
PRESETS: dict[str, dict] = {
    DEMO: dict(
        model=DEMO,
        learning_rate=3e-3,
        train_batch_size=24,
        eval_batch_size=64,
        logging_steps=10,
        eval_steps=200,
        save_steps=200,
        warmup_steps=50,
        max_steps=1200,
        generation_max_length=32,
        weight_decay=0.01,
        save_total_limit=2,
    ),
    # whisper-base on a CPU: the encoder frozen and run once per clip (cached), a 10 s window for short clips, the
    # decoder trained from the cache. Measured on 2 cores (bench/demo.py): see BENCHMARKS.md.
    "whisper-base-cpu": dict(
        model=DEFAULT_MODEL,
        freeze_encoder=True,
        cache_encoder_states=True,
        window_seconds=10,
        learning_rate=5e-5,
        train_batch_size=16,
        eval_batch_size=32,
        logging_steps=5,
        eval_steps=25,
        save_steps=25,
        warmup_steps=10,
        max_steps=100,
        generation_max_length=96,
        weight_decay=0.01,
        save_total_limit=1,
    ),
    "whisper-small": dict(model="openai/whisper-small"),
}
# What each preset is for, in a line: the Train form's and `train --preset`'s help
PRESET_PURPOSES = {
    DEMO: "the 4M-parameter toy, learning from scratch",
    "whisper-base-cpu": "the encoder frozen and run once per clip, 10 s window, the decoder trained (the fast way on "
    "a CPU)",
    "whisper-small": "the seed recipe's model (for a GPU)",
}


def presets_help(none: str | None = None) -> str:
    """'demo: …; whisper-base-cpu: …' (with `none`, what choosing no preset means first)."""
    parts = ([f"none: {none}"] if none else []) + [f"{name}: {what}" for name, what in PRESET_PURPOSES.items()]
    return "; ".join(parts)


def default_preset(model: str) -> str:
    """The preset a form starts from for a dataset prepared with `model`: the toy's own, whisper-base's fast CPU
    recipe when there is no GPU, else none (the recipe's settings)."""
    if model == DEMO:
        return DEMO
    if installed_name(model) == DEFAULT_MODEL:
        import torch

        return "none" if torch.cuda.is_available() else "whisper-base-cpu"
    return "none"


def apply_preset(config: TrainConfig, preset: str | None) -> TrainConfig:
    if not preset:
        return config
    if preset not in PRESETS:
        raise StudioError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    return replace(config, **PRESETS[preset])
