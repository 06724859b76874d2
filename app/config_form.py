"""The training form, built from the TrainConfig dataclass: one widget per field, help text from the field.

Widgets follow the field's type (numbers, switches, choices); optional counts use 0 for "all". The first fields
are shown, the rest fold into "Advanced". Nothing here validates: `TrainConfig.validate()` does, and its message
is what the user sees.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from core.option_fields import field_kind, field_label
from core.training import TrainConfig

BASIC = (
    "model",
    "run",
    "learning_rate",
    "train_batch_size",
    "max_steps",
    "eval_steps",
    "save_steps",
    "warmup_steps",
    "early_stopping_patience",
)
HIDDEN = ("data",)  # chosen outside the form
# "Advanced", by concern (every other field is in exactly one group; tests/test_pages.py checks it)
GROUPS = {
    "Schedule": ("lr_scheduler", "weight_decay", "num_train_epochs", "grad_accum_steps", "dropout", "seed"),
    "Evaluation": (
        "eval_split",
        "test_split",
        "eval_batch_size",
        "max_eval_samples",
        "generation_max_length",
        "save_total_limit",
    ),
    "Data": ("language", "task", "max_train_samples"),
    "Memory and speed": ("precision", "gradient_checkpointing", "optimizer", "nproc", "sharding"),
    "Several machines": ("nnodes", "node_rank", "rdzv_endpoint", "rdzv_timeout"),
    "Encoder": ("freeze_encoder", "cache_encoder_states", "window_seconds"),
    "LoRA": ("lora_rank", "lora_alpha", "lora_target_modules"),
    "Logging": ("logging_steps", "report_to"),
    "Guards and forgetting": (
        "guard",
        "english_guard",
        "guard_threshold",
        "guard_stop",
        "replay",
        "replay_fraction",
    ),
    "SpecAugment": ("apply_spec_augment", "mask_time_prob", "mask_feature_prob"),
    "Self-training and distillation": (
        "pseudo_labels",
        "pseudo_label_fraction",
        "teacher",
        "decoder_layers",
        "kl_weight",
    ),
}


def _widget(field, value, key: str, inherited: str | None = None):
    """One field's widget; `inherited` is what an empty value means (the dataset's language or task)."""
    help_text = field.metadata.get("help")
    label = field_label(field.name)
    kind = field_kind(field)
    choices = field.metadata.get("choices")
    shown = f"from the dataset: {inherited}" if inherited else ""
    if choices:
        return st.selectbox(
            label,
            choices,
            index=choices.index(value),
            help=help_text,
            key=key,
            format_func=lambda choice: shown if choice == "" and shown else choice,
        )
    if kind == "bool":
        return st.checkbox(label, value=value, help=help_text, key=key)
    if kind == "float":
        return st.number_input(label, value=float(value), format="%g", help=help_text, key=key)
    if kind in ("int", "optional_int"):
        optional = kind == "optional_int"
        number = st.number_input(
            label + (" (0 = all)" if optional else ""), value=int(value or 0), step=1, help=help_text, key=key
        )
        return (int(number) or None) if optional else int(number)
    return st.text_input(label, value=value, help=help_text, key=key, placeholder=shown or None)


def config_form(
    defaults: TrainConfig, key: str, inherited: dict[str, str] | None = None
) -> tuple[TrainConfig, bool, bool]:
    """Draw the form; returns (the config as filled in, whether Start was pressed, whether Preview was). `inherited`
    says what an empty
    field takes from the dataset ({"language": "nb", "task": "transcribe"})."""
    inherited = inherited or {}
    values = {"data": defaults.data}
    with st.form(key, enter_to_submit=False):  # only the Start button starts a run, never Enter in a field
        columns = st.columns(3)
        basic = [f for f in fields(TrainConfig) if f.name in BASIC]
        for i, field in enumerate(basic):
            with columns[i % 3]:
                values[field.name] = _widget(field, getattr(defaults, field.name), f"{key}-{field.name}")
        by_name = {f.name: f for f in fields(TrainConfig)}
        with st.expander("Advanced"):
            for group, names in GROUPS.items():
                st.markdown(f"**{group}**")
                columns = st.columns(3)
                for i, name in enumerate(names):
                    with columns[i % 3]:
                        values[name] = _widget(
                            by_name[name], getattr(defaults, name), f"{key}-{name}", inherited.get(name)
                        )
        buttons = st.columns([1, 1, 3])
        submitted = buttons[0].form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
        # what LlamaBoard calls "Preview command": the form's values as a command line and a time estimate
        previewed = buttons[1].form_submit_button("Preview command", icon=":material/terminal:")
    return TrainConfig(**values), submitted, previewed
