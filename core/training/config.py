"""The training contract: one dataclass that the Train form builds, the CLI parses, the worker reads from
`config.json`, and the tests construct. Help text lives once, on each field; `validate()` checks every value before
anything starts and names the problem and the valid range.

The base model defaults to whisper-base, installed offline; the other defaults are the seed recipe's (whisper-small
on a GPU): batch 16 × 5000 steps = 80,000 utterances seen. The `demo` preset suits the tiny offline model on a CPU.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shlex
from dataclasses import asdict, dataclass, field, fields, replace

from core.audio.constants import MAX_TARGET_POSITIONS, WINDOW_SECONDS
from core.data.options import TASKS as DATASET_TASKS
from core.errors import StudioError
from core.options import option_help
from core.workspace import check_new_name

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
REPORTERS = ("none", "tensorboard", "wandb", "mlflow")
SCHEDULERS = ("linear", "constant_with_warmup", "cosine")
OPTIMIZERS = ("adamw_torch", "adamw_bnb_8bit")
SHARDINGS = ("none", "fsdp", "zero2", "zero3")  # core/training/parallel.py writes each one's config
TASKS = ("", *DATASET_TASKS)  # empty: the dataset's own task
MOST = 10**9  # no count a user types is meant to be larger; bigger ones are typos
POSITIVE = (  # counts that must be at least 1
    "train_batch_size",
    "eval_batch_size",
    "grad_accum_steps",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "max_steps",
    "generation_max_length",
    "save_total_limit",
    "nnodes",
    "rdzv_timeout",
)


@dataclass
class TrainConfig:
    data: str = field(default="", metadata=option_help("prepared dataset name (see `prepare`)"))
    model: str = field(
        default="whisper-base",
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
        default="adamw_torch",
        metadata=option_help(
            "adamw_torch, or adamw_bnb_8bit (8-bit state, needs a CUDA GPU and bitsandbytes)", choices=OPTIMIZERS
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
        self._check_names()
        self._check_numbers()
        self._check_schedule()
        self._check_encoder()
        self._check_splits()
        self._check_guards()
        self._check_students()
        self._check_choices()
        self._check_nodes()
        self._check_installed()
        return self

    @property
    def processes(self) -> int:
        """Training processes in all: nproc on each of nnodes machines (torchrun's world size)."""
        return self.nproc * self.nnodes

    def _check_names(self) -> None:
        if not self.data:
            raise StudioError("no dataset: choose a prepared dataset (--data NAME)")
        check_new_name(self.run, "run")
        if self.language:
            from core.languages import get_language

            get_language(self.language)  # an unknown language is refused here, with the choices

    def _check_numbers(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            # NaN passes every `x < 0` check (all comparisons with it are False): refuse it first
            if not math.isfinite(value):
                raise StudioError(f"{f.name} {value}: give a finite number")
            if abs(value) > MOST:
                raise StudioError(f"{f.name} {value}: larger than any sensible value (at most {MOST:,})")
        if not 0 < self.learning_rate < 1:
            raise StudioError(
                f"learning_rate {self.learning_rate}: choose a value between 0 and 1 "
                f"(1e-5 for whisper-small, 1e-3 for the demo)"
            )
        for name in POSITIVE:
            if getattr(self, name) < 1:
                raise StudioError(f"{name} {getattr(self, name)}: must be at least 1")
        for name in ("warmup_steps", "early_stopping_patience", "weight_decay"):
            if getattr(self, name) < 0:
                raise StudioError(f"{name} {getattr(self, name)}: must not be negative")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise StudioError(f"{name} {getattr(self, name)}: give a positive number, or leave it empty for all")
        if not 0 <= self.dropout < 1:
            raise StudioError(f"dropout {self.dropout}: choose 0 to 0.9 (0.1 is a common regulariser)")
        if self.generation_max_length > MAX_TARGET_POSITIONS:
            raise StudioError(
                f"generation_max_length {self.generation_max_length}: at most {MAX_TARGET_POSITIONS} "
                "(Whisper's decoder positions)"
            )
        if self.lora_rank < 0 or self.lora_alpha < 1 or self.nproc < 1:
            raise StudioError(
                f"lora_rank {self.lora_rank}, lora_alpha {self.lora_alpha}, nproc {self.nproc}: "
                f"lora_rank ≥ 0 (0 = off), lora_alpha ≥ 1 and nproc ≥ 1"
            )

    def _check_schedule(self) -> None:
        if self.num_train_epochs < 0:
            raise StudioError(f"num_train_epochs {self.num_train_epochs}: must not be negative (0 = use max_steps)")
        if self.warmup_steps >= self.max_steps and not self.num_train_epochs:
            raise StudioError(
                f"warmup_steps {self.warmup_steps} ≥ max_steps {self.max_steps}: the learning rate "
                f"would never leave warm-up; lower warmup_steps"
            )
        if self.save_steps % self.eval_steps:
            raise StudioError(
                f"save_steps {self.save_steps} is not a multiple of eval_steps {self.eval_steps}: "
                f"the best checkpoint by WER needs an evaluation at every save"
            )

    def _check_encoder(self) -> None:
        if self.window_seconds and not 1 <= self.window_seconds <= WINDOW_SECONDS:
            raise StudioError(
                f"window_seconds {self.window_seconds}: choose 1–{WINDOW_SECONDS}, or 0 for the model's own window"
            )
        if self.cache_encoder_states and not self.freeze_encoder:
            raise StudioError(
                "cache_encoder_states needs freeze_encoder: a trained encoder's output changes every step"
            )
        if self.lora_rank and not [m for m in self.lora_target_modules.split(",") if m.strip()]:
            raise StudioError("lora_target_modules is empty: name the layers that get adapters, e.g. q_proj,v_proj")

    def _check_guards(self) -> None:
        if not 0 <= self.replay_fraction <= 0.9:
            raise StudioError(
                f"replay_fraction {self.replay_fraction}: choose 0 (off) to 0.9; 0.1 keeps a tenth of each epoch "
                f"from the replay set"
            )
        for f in fields(self):
            if f.name in ("mask_time_prob", "mask_feature_prob") and not 0 <= getattr(self, f.name) <= 0.9:
                # the default is the HF script's, as the field's help says: one home for the number
                raise StudioError(
                    f"{f.name} {getattr(self, f.name)}: choose 0 to 0.9 ({f.default:g} is the HF script's)"
                )
        if self.guard_threshold <= 0:
            raise StudioError(f"guard_threshold {self.guard_threshold}: give the WER points a guard may rise, e.g. 5")
        if self.guard_stop and self.processes > 1:
            raise StudioError(
                "guard_stop ends training from the process that measures the guards; with nproc > 1 (or nnodes > 1) "
                "the others would wait for it: train with nproc 1 on one node or without guard_stop (the warning "
                "still shows)"
            )
        if self.replay and self.replay in [g.strip() for g in self.guard.split(",")]:
            raise StudioError(
                f"'{self.replay}' is both a guard and the replay set: a guard must be a set the run never trains on"
            )
        if self.apply_spec_augment and self.cache_encoder_states:
            raise StudioError(
                "apply_spec_augment masks the encoder's input, which cached encoder states skip: turn one of them off"
            )
        for name in [g.strip() for g in self.guard.split(",") if g.strip()] + ([self.replay] if self.replay else []):
            if name == self.data:
                raise StudioError(
                    f"'{name}' is the dataset the run trains on: a guard or replay set must be another dataset"
                )

    def _check_students(self) -> None:
        """Pseudo-labels mixed in at a stated share; a distillation's teacher, layers and frozen shared encoder."""
        if not 0 <= self.pseudo_label_fraction <= 0.9:
            raise StudioError(f"pseudo_label_fraction {self.pseudo_label_fraction}: choose 0 (none) to 0.9")
        if bool(self.pseudo_labels) != bool(self.pseudo_label_fraction):
            raise StudioError(
                "pseudo_labels and pseudo_label_fraction go together: name the prepared pseudo-label set and the "
                "share of training rows it gives (e.g. 0.5), or neither"
            )
        if self.pseudo_labels and self.pseudo_labels in (self.data, self.replay):
            raise StudioError(f"pseudo_labels '{self.pseudo_labels}': another dataset than data and replay")
        if self.decoder_layers < 0 or self.kl_weight < 0:
            raise StudioError(f"decoder_layers {self.decoder_layers}, kl_weight {self.kl_weight}: must not be negative")
        if bool(self.teacher) != bool(self.decoder_layers):
            raise StudioError(
                f"decoder_layers {self.decoder_layers}: a student keeps 1 or more of its teacher's decoder layers; "
                "give teacher and decoder_layers together (python -m core distil), or neither"
            )
        if self.teacher and (self.model != self.teacher or not self.freeze_encoder or self.lora_rank):
            raise StudioError(
                "a student is made from its teacher and shares its encoder, frozen: set model to the teacher, "
                "freeze_encoder on and lora_rank 0"
            )

    def _check_splits(self) -> None:
        if self.eval_split == self.test_split and self.test_split:
            raise StudioError(
                f"eval_split and test_split are both '{self.test_split}': the split that picks the best checkpoint "
                f"cannot also be the held-out result; evaluate on validation"
            )

    def _check_choices(self) -> None:
        for name, choices in (
            ("precision", PRECISIONS),
            ("report_to", REPORTERS),
            ("lr_scheduler", SCHEDULERS),
            ("optimizer", OPTIMIZERS),
            ("task", TASKS),
            ("sharding", SHARDINGS),
        ):
            if getattr(self, name) not in choices:
                raise StudioError(f"{name} '{getattr(self, name)}': choose one of {', '.join(choices)}")

    def _check_nodes(self) -> None:
        if not 0 <= self.node_rank < self.nnodes:
            raise StudioError(
                f"node_rank {self.node_rank} with nnodes {self.nnodes}: give 0 to {self.nnodes - 1}, one per machine "
                "(node 0 creates the run folder and hosts the rendezvous)"
            )
        if self.nnodes > 1:
            parse_endpoint(self.rdzv_endpoint)
        elif self.rdzv_endpoint:
            raise StudioError(
                f"rdzv_endpoint {self.rdzv_endpoint}: the rendezvous is where several nodes meet; set nnodes to the "
                "number of machines, or leave rdzv_endpoint empty"
            )
        if self.sharding == "none":
            return
        if self.processes == 1:
            raise StudioError(
                f"sharding {self.sharding} splits the model across processes, and this run has one: set nproc (one "
                "per GPU) or nnodes above 1, or sharding none"
            )
        if self.lora_rank:
            raise StudioError(
                f"sharding {self.sharding} with lora_rank {self.lora_rank}: LoRA trains a few million weights, which "
                "fit one GPU; sharding is for full fine-tuning: set lora_rank 0 or sharding none"
            )

    def _check_installed(self) -> None:
        if self.sharding.startswith("zero") and importlib.util.find_spec("deepspeed") is None:
            raise StudioError(
                f"sharding {self.sharding} is DeepSpeed ZeRO, and the deepspeed package is not installed: pip install "
                f"deepspeed (requirements-gpu.txt pins it) on the GPU machines, or choose fsdp (in PyTorch)"
            )
        if self.sharding != "none":
            import torch  # here, not at the top: the pages import this module, and torch takes seconds to import

            if not torch.cuda.is_available():
                raise StudioError(
                    f"sharding {self.sharding} needs CUDA GPUs: accelerate applies FSDP and DeepSpeed only to GPU "
                    "processes, and on a CPU the run would train unsharded; on this machine choose sharding none"
                )
        if self.optimizer == "adamw_bnb_8bit" and importlib.util.find_spec("bitsandbytes") is None:
            raise StudioError(
                "optimizer adamw_bnb_8bit needs bitsandbytes and a CUDA GPU: pip install bitsandbytes "
                "on a GPU machine, or choose adamw_torch"
            )
        if self.report_to != "none":
            package = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}[self.report_to]
            if importlib.util.find_spec(package) is None:
                raise StudioError(
                    f"report_to {self.report_to}: the {package} package is not installed; "
                    f"pip install {package} into .venv, or choose none"
                )

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


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """('10.0.0.1', 29400) from '10.0.0.1:29400' (an IPv6 host in brackets: '[fd00::1]:29400')."""
    host, _, port = endpoint.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise StudioError(
            f"rdzv_endpoint '{endpoint}': give HOST:PORT, node 0's address and a free port every node can reach "
            "(e.g. 10.0.0.1:29400)"
        )
    return host, int(port)


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
    "demo": dict(
        model="demo",
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
        model="whisper-base",
        freeze_encoder=True,
        cache_encoder_states=True,
        window_seconds=10,
        learning_rate=5e-5,
        train_batch_size=16,
        eval_batch_size=32,
        logging_steps=5,
        eval_steps=20,
        save_steps=20,
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
    "demo": "the 4M-parameter toy, learning from scratch",
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
    if model == "demo":
        return "demo"
    if model in ("whisper-base", "openai/whisper-base"):
        import torch

        return "none" if torch.cuda.is_available() else "whisper-base-cpu"
    return "none"


def apply_preset(config: TrainConfig, preset: str | None) -> TrainConfig:
    if not preset:
        return config
    if preset not in PRESETS:
        raise StudioError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    return replace(config, **PRESETS[preset])
