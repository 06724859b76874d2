"""The levers a config pulls on the model before training: numeric precision, a frozen encoder, LoRA adapters.

Each trades something for memory or speed (BENCHMARKS.md's levers table measures them); `TrainConfig.validate`
has already refused combinations that cannot work, so these only apply them.
"""

from __future__ import annotations

import re

import torch

from core.errors import StudioError
from core.training.config import TrainConfig


def resolve_precision(choice: str) -> str:
    if choice == "auto":
        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if choice == "fp16" and not torch.cuda.is_available():
        raise StudioError("precision fp16 needs a CUDA GPU; choose auto, fp32 or bf16 on a CPU")
    return choice


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
