"""Every check a training config must pass before anything starts (`TrainConfig.validate`), grouped by concern:
what the run is called and trains on, numbers, the schedule, the encoder, the splits, the guards, students and
pseudo-labels, the choices, the nodes, and what must be installed. The first invalid value raises one StudioError
that names it and the valid range.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import fields

from core.audio.constants import MAX_TARGET_POSITIONS, WINDOW_SECONDS
from core.errors import StudioError
from core.workspace import check_new_name

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


def check_config(config) -> None:
    """Raise StudioError for the first invalid value of `config` (a TrainConfig: not imported here, which imports
    this module)."""
    for check in (_names, _numbers, _schedule, _encoder, _splits, _guards, _students, _choices, _nodes, _installed):
        check(config)


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


def _names(config) -> None:
    if not config.data:
        raise StudioError("no dataset: choose a prepared dataset (--data NAME)")
    check_new_name(config.run, "run")
    if config.language:
        from core.languages import get_language

        get_language(config.language)  # an unknown language is refused here, with the choices


def _numbers(config) -> None:
    for f in fields(config):
        value = getattr(config, f.name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        # NaN passes every `x < 0` check (all comparisons with it are False): refuse it first
        if not math.isfinite(value):
            raise StudioError(f"{f.name} {value}: give a finite number")
        if abs(value) > MOST:
            raise StudioError(f"{f.name} {value}: larger than any sensible value (at most {MOST:,})")
    if not 0 < config.learning_rate < 1:
        raise StudioError(
            f"learning_rate {config.learning_rate}: choose a value between 0 and 1 "
            f"(1e-5 for whisper-small, 1e-3 for the demo)"
        )
    for name in POSITIVE:
        if getattr(config, name) < 1:
            raise StudioError(f"{name} {getattr(config, name)}: must be at least 1")
    for name in ("warmup_steps", "early_stopping_patience", "weight_decay"):
        if getattr(config, name) < 0:
            raise StudioError(f"{name} {getattr(config, name)}: must not be negative")
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise StudioError(f"{name} {getattr(config, name)}: give a positive number, or leave it empty for all")
    if not 0 <= config.dropout < 1:
        raise StudioError(f"dropout {config.dropout}: choose 0 to 0.9 (0.1 is a common regulariser)")
    if config.generation_max_length > MAX_TARGET_POSITIONS:
        raise StudioError(
            f"generation_max_length {config.generation_max_length}: at most {MAX_TARGET_POSITIONS} "
            "(Whisper's decoder positions)"
        )
    if config.lora_rank < 0 or config.lora_alpha < 1 or config.nproc < 1:
        raise StudioError(
            f"lora_rank {config.lora_rank}, lora_alpha {config.lora_alpha}, nproc {config.nproc}: "
            f"lora_rank ≥ 0 (0 = off), lora_alpha ≥ 1 and nproc ≥ 1"
        )


def _schedule(config) -> None:
    if config.num_train_epochs < 0:
        raise StudioError(f"num_train_epochs {config.num_train_epochs}: must not be negative (0 = use max_steps)")
    if config.warmup_steps >= config.max_steps and not config.num_train_epochs:
        raise StudioError(
            f"warmup_steps {config.warmup_steps} ≥ max_steps {config.max_steps}: the learning rate "
            f"would never leave warm-up; lower warmup_steps"
        )
    if config.save_steps % config.eval_steps:
        raise StudioError(
            f"save_steps {config.save_steps} is not a multiple of eval_steps {config.eval_steps}: "
            f"the best checkpoint by WER needs an evaluation at every save"
        )


def _encoder(config) -> None:
    if config.window_seconds and not 1 <= config.window_seconds <= WINDOW_SECONDS:
        raise StudioError(
            f"window_seconds {config.window_seconds}: choose 1–{WINDOW_SECONDS}, or 0 for the model's own window"
        )
    if config.cache_encoder_states and not config.freeze_encoder:
        raise StudioError("cache_encoder_states needs freeze_encoder: a trained encoder's output changes every step")
    if config.lora_rank and not [m for m in config.lora_target_modules.split(",") if m.strip()]:
        raise StudioError("lora_target_modules is empty: name the layers that get adapters, e.g. q_proj,v_proj")


def _guards(config) -> None:
    if not 0 <= config.replay_fraction <= 0.9:
        raise StudioError(
            f"replay_fraction {config.replay_fraction}: choose 0 (off) to 0.9; 0.1 keeps a tenth of each epoch "
            f"from the replay set"
        )
    for f in fields(config):
        if f.name in ("mask_time_prob", "mask_feature_prob") and not 0 <= getattr(config, f.name) <= 0.9:
            # the default is the HF script's, as the field's help says: one home for the number
            raise StudioError(f"{f.name} {getattr(config, f.name)}: choose 0 to 0.9 ({f.default:g} is the HF script's)")
    if config.guard_threshold <= 0:
        raise StudioError(f"guard_threshold {config.guard_threshold}: give the WER points a guard may rise, e.g. 5")
    if config.guard_stop and config.processes > 1:
        raise StudioError(
            "guard_stop ends training from the process that measures the guards; with nproc > 1 (or nnodes > 1) "
            "the others would wait for it: train with nproc 1 on one node or without guard_stop (the warning "
            "still shows)"
        )
    if config.replay and config.replay in [g.strip() for g in config.guard.split(",")]:
        raise StudioError(
            f"'{config.replay}' is both a guard and the replay set: a guard must be a set the run never trains on"
        )
    if config.apply_spec_augment and config.cache_encoder_states:
        raise StudioError(
            "apply_spec_augment masks the encoder's input, which cached encoder states skip: turn one of them off"
        )
    for name in [g.strip() for g in config.guard.split(",") if g.strip()] + ([config.replay] if config.replay else []):
        if name == config.data:
            raise StudioError(
                f"'{name}' is the dataset the run trains on: a guard or replay set must be another dataset"
            )


def _students(config) -> None:
    """Pseudo-labels mixed in at a stated share; a distillation's teacher, layers and frozen shared encoder."""
    if not 0 <= config.pseudo_label_fraction <= 0.9:
        raise StudioError(f"pseudo_label_fraction {config.pseudo_label_fraction}: choose 0 (none) to 0.9")
    if bool(config.pseudo_labels) != bool(config.pseudo_label_fraction):
        raise StudioError(
            "pseudo_labels and pseudo_label_fraction go together: name the prepared pseudo-label set and the "
            "share of training rows it gives (e.g. 0.5), or neither"
        )
    if config.pseudo_labels and config.pseudo_labels in (config.data, config.replay):
        raise StudioError(f"pseudo_labels '{config.pseudo_labels}': another dataset than data and replay")
    if config.decoder_layers < 0 or config.kl_weight < 0:
        raise StudioError(f"decoder_layers {config.decoder_layers}, kl_weight {config.kl_weight}: must not be negative")
    if bool(config.teacher) != bool(config.decoder_layers):
        raise StudioError(
            f"decoder_layers {config.decoder_layers}: a student keeps 1 or more of its teacher's decoder layers; "
            "give teacher and decoder_layers together (python -m core distil), or neither"
        )
    if config.teacher and (config.model != config.teacher or not config.freeze_encoder or config.lora_rank):
        raise StudioError(
            "a student is made from its teacher and shares its encoder, frozen: set model to the teacher, "
            "freeze_encoder on and lora_rank 0"
        )


def _splits(config) -> None:
    if config.eval_split == config.test_split and config.test_split:
        raise StudioError(
            f"eval_split and test_split are both '{config.test_split}': the split that picks the best checkpoint "
            f"cannot also be the held-out result; evaluate on validation"
        )


def _choices(config) -> None:
    for f in fields(config):  # the choices live on each field (option_help(..., choices=...)): one home
        choices = f.metadata.get("choices")
        if choices and getattr(config, f.name) not in choices:
            raise StudioError(f"{f.name} '{getattr(config, f.name)}': choose one of {', '.join(choices)}")


def _nodes(config) -> None:
    if not 0 <= config.node_rank < config.nnodes:
        raise StudioError(
            f"node_rank {config.node_rank} with nnodes {config.nnodes}: give 0 to {config.nnodes - 1}, one per machine "
            "(node 0 creates the run folder and hosts the rendezvous)"
        )
    if config.nnodes > 1:
        parse_endpoint(config.rdzv_endpoint)
    elif config.rdzv_endpoint:
        raise StudioError(
            f"rdzv_endpoint {config.rdzv_endpoint}: the rendezvous is where several nodes meet; set nnodes to the "
            "number of machines, or leave rdzv_endpoint empty"
        )
    if config.sharding == "none":
        return
    if config.processes == 1:
        raise StudioError(
            f"sharding {config.sharding} splits the model across processes, and this run has one: set nproc (one "
            "per GPU) or nnodes above 1, or sharding none"
        )
    if config.lora_rank:
        raise StudioError(
            f"sharding {config.sharding} with lora_rank {config.lora_rank}: LoRA trains a few million weights, which "
            "fit one GPU; sharding is for full fine-tuning: set lora_rank 0 or sharding none"
        )


def _installed(config) -> None:
    if config.sharding.startswith("zero") and importlib.util.find_spec("deepspeed") is None:
        raise StudioError(
            f"sharding {config.sharding} is DeepSpeed ZeRO, and the deepspeed package is not installed: pip install "
            f"deepspeed (requirements-gpu.txt pins it) on the GPU machines, or choose fsdp (in PyTorch)"
        )
    if config.sharding != "none":
        import torch  # here, not at the top: the pages import this module, and torch takes seconds to import

        if not torch.cuda.is_available():
            raise StudioError(
                f"sharding {config.sharding} needs CUDA GPUs: accelerate applies FSDP and DeepSpeed only to GPU "
                "processes, and on a CPU the run would train unsharded; on this machine choose sharding none"
            )
    if config.optimizer == "adamw_bnb_8bit" and importlib.util.find_spec("bitsandbytes") is None:
        raise StudioError(
            "optimizer adamw_bnb_8bit needs bitsandbytes and a CUDA GPU: pip install bitsandbytes "
            "on a GPU machine, or choose adamw_torch_fused"
        )
    if config.report_to != "none":
        package = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}[config.report_to]
        if importlib.util.find_spec(package) is None:
            raise StudioError(
                f"report_to {config.report_to}: the {package} package is not installed; "
                f"pip install {package} into .venv, or choose none"
            )
