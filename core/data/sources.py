"""Open a data source from what a user types: a local folder, a Hub dataset id, or a preset name.

`fleurs` and `npsc` are presets: the Hub id, the language's config and the text column are filled in from the
language table. Common Voice, which left the Hub in 2025, is read from its downloaded release folder. Anything that
is an existing folder is read as a local folder; anything else is a Hub id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.data.examples import SPLITS, Example, Source, normalize_split
from core.data.folders import FolderSource
from core.data.hub import COMMON_VOICE_MOVED, MOVED, PRESETS, HubSource
from core.errors import StudioError
from core.languages import Language


@dataclass(frozen=True)
class SourceSpec:
    """How to read a source beyond its name: what the CLI's source flags and the Data page's Hub form give. None
    leaves a preset's own value (its config from the language table, its streaming, its text column)."""

    config: str | None = None
    streaming: bool | None = None
    text_column: str | None = None
    train_split: str = "train"  # "train+validation" trains on both
    eval_split: str = "test"
    token: str | None = None
    validation_split: str | None = None


def open_source(source: str, language: Language, spec: SourceSpec | None = None) -> Source:
    """A `Source` for `source`; raises StudioError with the choices when it cannot be one."""
    spec = spec or SourceSpec()
    if not source:
        raise StudioError("no source given: a local folder, a Hub dataset id, or one of " + ", ".join(PRESETS))
    train_parts = [part.strip() for part in spec.train_split.split("+") if part.strip()]
    path = Path(source).expanduser()
    if path.exists():
        also = tuple(normalize_split(p) or p for p in train_parts if p != "train")
        return FolderSource(path, text_column=spec.text_column, train_also=also)
    if source.lower().startswith(MOVED):
        raise StudioError(COMMON_VOICE_MOVED)
    if source.startswith((".", "/", "~")):
        raise StudioError(f"{source}: no such folder; give a dataset folder or a Hugging Face dataset id")
    split_names = {"train": spec.train_split, "test": spec.eval_split}
    if spec.validation_split:
        split_names["validation"] = spec.validation_split
    preset = PRESETS.get(source.lower())
    config = spec.config
    if preset:
        if preset.validation_split and spec.validation_split is None and preset.validation_split not in train_parts:
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
            preset.streaming if spec.streaming is None else spec.streaming,
            spec.text_column or preset.text_column,
            spec.token,
        )
    if "/" not in source and not source.replace("-", "").replace("_", "").isalnum():
        raise StudioError(
            f"{source}: neither a folder nor a Hub dataset id (owner/name) nor a preset ({', '.join(PRESETS)})"
        )
    return HubSource(source, config, split_names, bool(spec.streaming), spec.text_column, spec.token)


def source_from_description(description: dict) -> Source:
    """Reopen the source an artifact's manifest describes (the token comes from the environment again)."""
    if description.get("kind") == "folder":
        return FolderSource(
            Path(description["path"]),
            text_column=description.get("text_column"),
            train_also=tuple(description.get("train_also", ())),
            split_by=description.get("split_by", "text"),
        )
    if description.get("kind") == "mixed":
        return MixedSource([source_from_description(d) for d in description["sources"]])
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


class MixedSource:
    """Several sources as one: their training rows interleaved (one from each in turn, then the rest of the longer
    ones), their evaluation rows one after another. Ids carry the source's index so two folders' `train/00001`
    stay two rows."""

    def __init__(self, sources: list[Source]):
        if len(sources) < 2:
            raise StudioError("interleaving needs at least two sources")
        self.sources = sources

    def describe(self) -> dict:
        return {"kind": "mixed", "sources": [s.describe() for s in self.sources]}

    def splits(self) -> list[str]:
        found = [split for s in self.sources for split in s.splits()]
        return [split for split in SPLITS if split in found]

    def examples(self, split: str) -> Iterator[Example]:
        return self._rows(split, None)

    def shuffled(self, split: str, seed: int) -> Iterator[Example]:
        return self._rows(split, seed)

    def _rows(self, split: str, seed: int | None) -> Iterator[Example]:
        streams = []
        for index, source in enumerate(self.sources):
            if split in source.splits():
                rows = source.shuffled(split, seed) if seed is not None and hasattr(source, "shuffled") else None
                streams.append((index, rows if rows is not None else source.examples(split)))
        if split != "train":  # evaluation rows: one source after another
            for index, rows in streams:
                yield from (_tagged(e, index) for e in rows)
            return
        live = [(i, iter(rows)) for i, rows in streams]
        while live:  # one from each in turn; a source that ends drops out
            for entry in list(live):
                example = next(entry[1], None)
                if example is None:
                    live.remove(entry)
                else:
                    yield _tagged(example, entry[0])


def _tagged(example: Example, index: int) -> Example:
    example.id = f"{index}:{example.id}"
    return example
