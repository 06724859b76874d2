"""The training form, built from the TrainConfig dataclass: one widget per field, help text from the field.

Widgets follow the field's type (numbers, switches, choices); optional counts use 0 for "all". The first fields
are shown, the rest fold into "Advanced". Nothing here validates: `TrainConfig.validate()` does, and its message
is what the user sees.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from core.options import field_kind
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


def _widget(field, value, key: str):
    help_text = field.metadata.get("help")
    label = field.name.replace("_", " ")
    kind = field_kind(field)
    choices = field.metadata.get("choices")
    if choices:
        return st.selectbox(label, choices, index=choices.index(value), help=help_text, key=key)
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
    return st.text_input(label, value=value, help=help_text, key=key)


def config_form(defaults: TrainConfig, key: str) -> tuple[TrainConfig, bool]:
    """Draw the form; returns (the config as filled in, whether Start was pressed)."""
    values = {"data": defaults.data}
    with st.form(key):
        columns = st.columns(3)
        basic = [f for f in fields(TrainConfig) if f.name in BASIC]
        for i, field in enumerate(basic):
            with columns[i % 3]:
                values[field.name] = _widget(field, getattr(defaults, field.name), f"{key}-{field.name}")
        with st.expander("Advanced"):
            columns = st.columns(3)
            rest = [f for f in fields(TrainConfig) if f.name not in BASIC + HIDDEN]
            for i, field in enumerate(rest):
                with columns[i % 3]:
                    values[field.name] = _widget(field, getattr(defaults, field.name), f"{key}-{field.name}")
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    return TrainConfig(**values), submitted
