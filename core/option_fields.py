"""Option dataclasses as the one contract: a field's help text lives on the field, and its kind is read from its
annotation. The command line (core/cli_arguments.py) and the app's forms are both built from these fields, so a
default or a help text is never typed twice (as transformers' HfArgumentParser does with its dataclasses).
"""

from __future__ import annotations

from dataclasses import Field, fields


def known_fields(cls, data: dict) -> dict:
    """The entries of `data` that the dataclass `cls` has fields for: a record written by an older or newer version
    (a field added since, or one dropped) still reads; a missing required field is still a TypeError."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def option_help(text: str, **extra) -> dict:
    """A field's metadata: its help (what the CLI and the form show) and extras such as `choices`."""
    return {"help": text, **extra}


def field_kind(f: Field) -> str:
    """The kind of value a field holds: bool, int, optional_int, float, optional_float or str (annotations are
    strings under `from __future__ import annotations`)."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    for name in ("bool", "float", "int"):
        if name in kind:
            return f"optional_{name}" if "None" in kind and name != "bool" else name
    return "str"


# abbreviations in field names, in the words a form shows: 'grad_accum_steps' → 'gradient accumulation steps'
LABEL_WORDS = {
    "grad": "gradient",
    "accum": "accumulation",
    "lr": "learning-rate",
    "num": "number of",
    "nproc": "processes (GPUs)",
    "lora": "LoRA",
    "prob": "probability",
}


def field_label(name: str) -> str:
    """What a form calls a field: 'learning_rate' → 'learning rate', 'grad_accum_steps' → 'gradient accumulation
    steps' (LABEL_WORDS)."""
    return " ".join(LABEL_WORDS.get(word, word) for word in name.split("_"))


def in_labels(message: str, options: type) -> str:
    """A message that names fields (`learning_rate 5.0: …`, as the engine writes it for the CLI's flags) in the
    words a form shows ('learning rate 5.0: …'): each field name of the `options` dataclass, whole words only."""
    import re
    from dataclasses import fields

    names = sorted((f.name for f in fields(options) if "_" in f.name), key=len, reverse=True)
    if not names:
        return message
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    return pattern.sub(lambda m: field_label(m.group(1)), message)
