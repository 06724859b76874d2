"""Open a data source from what a user types: a local folder, a Hub dataset id, or a preset name.

`fleurs`, `common_voice` and `npsc` are presets: the Hub id, the language's config and the text column are filled
in from the language table. Anything that is an existing folder is read as a local folder; anything else is a Hub id.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import StudioError
from core.examples import Source
from core.folders import FolderSource
from core.hub import PRESETS, HubSource
from core.languages import Language


def open_source(
    source: str,
    language: Language,
    config: str | None = None,
    streaming: bool | None = None,
    text_column: str | None = None,
    train_split: str = "train",
    eval_split: str = "test",
    token: str | None = None,
    validation_split: str | None = None,
) -> Source:
    """A `Source` for `source`; raises StudioError with the choices when it cannot be one."""
    if not source:
        raise StudioError("no source given: a local folder, a Hub dataset id, or one of " + ", ".join(PRESETS))
    path = Path(source).expanduser()
    if path.exists():
        return FolderSource(path, text_column=text_column)
    if source.startswith((".", "/", "~")):
        raise StudioError(f"{source}: no such folder; give a dataset folder or a Hugging Face dataset id")
    split_names = {"train": train_split, "test": eval_split}
    if validation_split:
        split_names["validation"] = validation_split
    preset = PRESETS.get(source.lower())
    if preset:
        if preset.validation_split and validation_split is None:
            split_names["validation"] = preset.validation_split
        if preset.config_field:
            config = config or getattr(language, preset.config_field)
            if config is None:
                raise StudioError(f"{preset.dataset_id} has no {language.name} config; pick another dataset")
        elif source.lower() == "npsc" and config is None:
            config = "16K_mp3_nynorsk" if language.code == "nn" else "16K_mp3_bokmaal"
        return HubSource(
            preset.dataset_id,
            config,
            split_names,
            preset.streaming if streaming is None else streaming,
            text_column or preset.text_column,
            token,
        )
    if "/" not in source and not source.replace("-", "").replace("_", "").isalnum():
        raise StudioError(
            f"{source}: neither a folder nor a Hub dataset id (owner/name) nor a preset ({', '.join(PRESETS)})"
        )
    return HubSource(source, config, split_names, bool(streaming), text_column, token)


def source_from_description(description: dict) -> Source:
    """Reopen the source an artifact's manifest describes (the token comes from the environment again)."""
    if description.get("kind") == "folder":
        return FolderSource(Path(description["path"]), text_column=description.get("text_column"))
    if description.get("kind") == "hub":
        return HubSource(
            description["dataset"],
            description.get("config"),
            dict(description["splits"]),
            bool(description.get("streaming")),
            description.get("text_column"),
            None,
            description.get("revision"),
        )
    raise StudioError(f"cannot reopen a source described as {description.get('kind')!r}; prepare the dataset again")
