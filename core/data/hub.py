"""Hugging Face Hub datasets (FLEURS, Common Voice, NPSC, …) as a source of examples, streamed when huge.

The same `load_dataset` call serves a Hub id and a local dataset repository (a folder of parquet files with
embedded audio bytes), so the offline tests exercise the very code path users run. Audio columns are cast to
`Audio(decode=False)`: datasets' own decoder needs torchcodec, and core/audio.py decodes the bytes instead.
Script-based datasets (google/fleurs, the legacy Common Voice) are read from the Hub's parquet conversion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

from core.data.examples import Example
from core.data.folders import TEXT_COLUMNS
from core.data.memory import system_allocator_for_arrow
from core.errors import StudioError

PARQUET_REVISION = "refs/convert/parquet"  # the Hub's automatic parquet export of every public dataset


@dataclass(frozen=True)
class HubPreset:
    dataset_id: str
    description: str
    config_field: str  # which Language field names the config: fleurs / common_voice
    text_column: str
    train_split: str = "train"
    test_split: str = "test"
    validation_split: str | None = "validation"  # the set's own; None: prepare carves one from train
    streaming: bool = False
    gated: bool = False


PRESETS = {
    "fleurs": HubPreset("google/fleurs", "FLEURS: ~10 h read speech per language", "fleurs", "transcription"),
    "npsc": HubPreset(
        "NbAiLab/NPSC", "NPSC: Norwegian Parliament speech (Bokmål, Nynorsk)", "", "normsentence_text", streaming=True
    ),
}
# Common Voice left the Hugging Face Hub in 2025; its ids there no longer load. One line says where it went.
COMMON_VOICE_MOVED = (
    "Common Voice left the Hugging Face Hub in 2025: download the release for your language from the Mozilla "
    "Data Collective (https://datacollective.mozillafoundation.org), unpack it, and give its language folder as "
    "the source (e.g. --source ~/cv-corpus-23.0/nb-NO: the Common Voice layout is read as it is)"
)
MOVED = ("common_voice", "mozilla-foundation/common_voice")


def hub_token() -> str | None:
    """The token from the environment (HF_TOKEN, or the older HUGGING_FACE_HUB_TOKEN); never logged or saved."""
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


@dataclass
class HubSource:
    """One dataset on the Hub (or a local dataset repository), with our split names mapped to its own."""

    dataset_id: str
    config: str | None = None
    split_names: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    streaming: bool = False
    text_column: str | None = None
    token: str | None = field(default=None, repr=False)
    revision: str | None = None
    # (rank, world size) of a training process that reads only its share (datasets' split_dataset_by_node); not
    # part of what the source is (describe)
    node: tuple[int, int] | None = None

    def describe(self) -> dict:
        return {
            "kind": "hub",
            "dataset": self.dataset_id,
            "config": self.config,
            "splits": self.split_names,
            "streaming": self.streaming,
            "text_column": self.text_column,
            "revision": self.revision,
        }

    def splits(self) -> list[str]:
        return list(self.split_names)

    def examples(self, split: str, limit: int | None = None, shuffle_seed: int | None = None) -> Iterator[Example]:
        """Rows of our split `split`; a Hub split name may join several with "+" (train+validation), read in turn.
        With `shuffle_seed` the rows come in a seeded random order (a shuffle buffer when streaming)."""
        if split not in self.split_names:
            raise StudioError(f"{self.dataset_id}: no '{split}' split mapped; it has {', '.join(self.split_names)}")
        rows = chain.from_iterable(
            self._rows(part.strip(), split, shuffle_seed) for part in self.split_names[split].split("+")
        )
        return islice(rows, limit)

    def shuffled(self, split: str, seed: int) -> Iterator[Example]:
        return self.examples(split, shuffle_seed=seed)

    def _rows(self, hub_split: str, split: str, shuffle_seed: int | None) -> Iterator[Example]:
        dataset = self._load(hub_split)
        audio_column = _audio_column(dataset, self.dataset_id)
        text_column = self._text_column(dataset)
        dataset = _as_audio(dataset, audio_column, self.dataset_id)
        if shuffle_seed is not None:
            dataset = dataset.shuffle(seed=shuffle_seed)
        dataset, position = self._share(dataset)
        for index, row in enumerate(_cast_rows(dataset, audio_column, self.dataset_id)):
            index = position(index)
            audio = row[audio_column] or {}
            data = audio.get("bytes")
            if data is None and audio.get("path") and Path(audio["path"]).is_file():
                data = Path(audio["path"]).read_bytes()
            name = Path(audio.get("path") or f"row-{index}").name
            yield Example(
                id=str(row.get("id") or row.get("path") or f"{hub_split}-{index:07d}"),
                audio=data or b"",
                text=str(row[text_column] or ""),
                audio_name=f"{self.dataset_id}:{name}",
            )

    def _share(self, dataset):
        """This rank's share of the rows (datasets' split_dataset_by_node, after the seeded shuffle that is the same
        on every rank), and how a row's place in it maps to its place in the whole split. Rows with an id column
        split by files (each rank reads only its own, when their count divides by the world size); rows named by
        their place take every world-th row, so that each keeps the id prepare gave it."""
        if self.node is None:
            return dataset, lambda index: index
        from datasets import IterableDataset
        from datasets.distributed import split_dataset_by_node

        rank, world = self.node
        if {"id", "path"} & set(dataset.column_names or []):
            return split_dataset_by_node(dataset, rank=rank, world_size=world), lambda index: index
        if isinstance(dataset, IterableDataset):
            shared = split_dataset_by_node(dataset, rank=rank, world_size=world, strategy="examples")
        else:  # a downloaded split: the same every world-th rows
            shared = dataset.shard(num_shards=world, index=rank, contiguous=False)
        return shared, lambda index: index * world + rank

    def _text_column(self, dataset) -> str:
        columns = list(dataset.column_names or [])
        if self.text_column:
            if self.text_column not in columns:
                raise StudioError(
                    f"{self.dataset_id}: no column '{self.text_column}'; its columns are {', '.join(columns)}"
                )
            return self.text_column
        for name in TEXT_COLUMNS + ("normsentence_text", "sentence_text"):
            if name in columns:
                return name
        raise StudioError(
            f"{self.dataset_id}: no transcript column found among {', '.join(columns)}; name it with --text-column"
        )

    def _load(self, hub_split: str):
        from datasets import load_dataset

        kwargs = dict(split=hub_split, streaming=self.streaming, token=self.token or hub_token())
        if not self.streaming:
            # converting to the Arrow cache 100 rows at a time, as datasets itself does for audio: its default of
            # 1,000 rows per write holds ~130 MB of audio bytes at once (bench/memory.py)
            kwargs["writer_batch_size"] = 100
        if Path(self.dataset_id).is_dir() and not self.streaming:
            # A local repository is read again every time: `datasets` can hand back a stale cached copy of a
            # folder whose files were rewritten in place (its cache key missed the change).
            kwargs.update(download_mode="force_redownload", verification_mode="no_checks")
        try:
            try:
                return _load_parquet_frugally(load_dataset, self.dataset_id, self.config, self.revision, kwargs)
            except RuntimeError as err:
                if "scripts are no longer supported" not in str(err) or self.revision:
                    raise
                # A script-based dataset: its parquet export holds the same rows and needs no script.
                self.revision = PARQUET_REVISION
                return _load_parquet_frugally(load_dataset, self.dataset_id, self.config, PARQUET_REVISION, kwargs)
        except StudioError:
            raise
        except _hub_failures() as err:  # a wrong id, config or split, an unreachable Hub; a bug still propagates
            raise StudioError(explain_hub_error(self.dataset_id, self.config, hub_split, err)) from None


def _load_parquet_frugally(load_dataset, dataset_id, config, revision, kwargs):
    """load_dataset with pyarrow's pre-buffering off for parquet data (the Hub's format). Pre-buffered ranges stay
    in memory until the whole file has been read (measured: ~80 KB more resident memory per audio row, 390 MB over a
    5,000-row file; bench/memory.py); without it memory stays flat. Other formats do not take the option."""
    import pyarrow.dataset as pds

    frugal = {"fragment_scan_options": pds.ParquetFragmentScanOptions(pre_buffer=False)}
    with system_allocator_for_arrow():
        try:
            return load_dataset(dataset_id, config, revision=revision, **kwargs, **frugal)
        except (TypeError, ValueError) as err:
            if "fragment_scan_options" not in str(err):
                raise
            return load_dataset(dataset_id, config, revision=revision, **kwargs)


def _hub_failures() -> tuple[type[BaseException], ...]:
    """What loading a Hub dataset raises for a person's reasons (a typo, no network, a gated set, a missing split):
    datasets' own errors, the HTTP client's, and the OSError / ValueError / KeyError family they build on."""
    import httpx2  # huggingface_hub's HTTP client
    from datasets.exceptions import DatasetsError

    return (DatasetsError, httpx2.HTTPError, OSError, ValueError, KeyError, RuntimeError)


def _audio_column(dataset, dataset_id: str) -> str:
    from datasets import Audio

    features = dataset.features or {}
    for name, feature in features.items():
        if isinstance(feature, Audio):
            return name
    if "audio" in (dataset.column_names or []):
        return "audio"
    raise StudioError(f"{dataset_id}: no audio column (columns: {', '.join(dataset.column_names or [])})")


AUDIO_SHAPE = "audio: {bytes, path} (the file's bytes and name) or a path string"
AUDIO_STRINGS = ("string", "large_string", "binary", "large_binary")  # what datasets' Audio reads as a path or bytes


def _as_audio(dataset, column: str, dataset_id: str):
    """The dataset with `column` cast to Audio(decode=False); a column of another kind (numbers, lists, a struct of
    the wrong types) is refused in one line naming it, not deep in pyarrow (ArrowNotImplementedError)."""
    import pyarrow as pa
    from datasets import Audio, Value

    feature = (dataset.features or {}).get(column)
    kind = feature.dtype if isinstance(feature, Value) else type(feature).__name__.lower()
    readable = (
        feature is None  # not known before reading (some streamed sets): _cast_rows catches what the cast says
        or isinstance(feature, Audio)
        or (isinstance(feature, Value) and feature.dtype in AUDIO_STRINGS)
        or (isinstance(feature, dict) and bool({"bytes", "path"} & set(feature)))
    )
    if not readable:
        raise StudioError(
            f"{dataset_id}: the column '{column}' holds {kind} values, not audio; it should hold {AUDIO_SHAPE}"
        )
    try:
        return dataset.cast_column(column, Audio(decode=False))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise _cast_error(dataset_id, column, err) from None


def _cast_rows(dataset, column: str, dataset_id: str) -> Iterator[dict]:
    """The rows; a streamed cast fails only as rows are read, and says so in one line naming the column."""
    import pyarrow as pa

    try:
        yield from dataset
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise _cast_error(dataset_id, column, err) from None


def _cast_error(dataset_id: str, column: str, err: Exception) -> StudioError:
    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return StudioError(
        f"{dataset_id}: the column '{column}' cannot be read as audio ({text}); it should hold {AUDIO_SHAPE}"
    )


def explain_hub_error(dataset_id: str, config: str | None, split: str, err: Exception) -> str:
    """One line for a person: what went wrong loading a Hub dataset and what to do about it."""
    from datasets.exceptions import DatasetNotFoundError

    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    name = f"{dataset_id}" + (f" ({config})" if config else "")
    if isinstance(err, DatasetNotFoundError):
        return (
            f"{name}: not found on the Hugging Face Hub, or gated; check the id, accept its terms on the Hub "
            f"and set HF_TOKEN"
        )
    if "BuilderConfig" in text or ("config" in text.lower() and "available" in text.lower()):
        return f"{name}: {text}"
    if "Unknown split" in text or "Bad split" in text:
        return f"{name}: {text}; choose the split with --train-split/--eval-split"
    network = ("Connection", "Timeout", "Offline", "LocalEntryNotFound", "HTTPError", "ConnectError", "MaxRetry")
    if any(word in type(err).__name__ or word in text for word in network) or isinstance(err, OSError):
        return (
            f"{name}: cannot reach the Hugging Face Hub ({type(err).__name__}); check the network "
            f"(or HF_ENDPOINT), or download the dataset and give its local folder instead"
        )
    if "scripts are no longer supported" in text:
        return f"{name}: a script-based dataset without a parquet export; use a parquet copy of it"
    return f"{name}: could not load split '{split}' ({type(err).__name__}: {text})"
