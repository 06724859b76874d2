"""What the Trainer reads: rows of a prepared artifact (or their cached encoder states), and the batch collator.

A row is read from the memory-mapped Arrow file on demand; with a shorter encoder window (`window_seconds`) its
log-mel is cut to the window's frames and rows longer than the window are left out (and counted), since the model
would never hear their end. With cached encoder states the row's input is its states instead of its log-mel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.audio.constants import FRAMES_PER_SECOND
from core.data.artifact import Artifact, features_from_row
from core.errors import StudioError

SECONDS = "seconds"  # a validation row's clip length: read by StudioTrainer before the model sees the batch


def check_streamed_training(artifact, config) -> None:
    """A training split read from its source as training goes has no stored features to cache or to pass over
    epoch by epoch: refuse the options that need them (before a run folder exists, and again in the worker)."""
    if artifact.streams("train") and (config.cache_encoder_states or config.num_train_epochs):
        raise StudioError(
            f"dataset '{artifact.name}' streams its training split: cache_encoder_states and num_train_epochs "
            f"need stored training features; prepare it without --stream-train"
        )


class FeatureDataset(torch.utils.data.Dataset):
    """One split of an artifact: {"input_features", "labels"} per row, plus its id and text for reports."""

    def __init__(
        self,
        artifact: Artifact,
        split: str,
        limit: int | None = None,
        window_seconds: int | None = None,
        states: np.ndarray | None = None,
        by_length: bool = False,
    ):
        """`by_length`: rows shortest first, each with its "seconds" (how validation is decoded: a batch of clips of
        about one length stops generating at its longest clip's transcript cap, see StudioTrainer)."""
        self.table = artifact.read_split(split)
        self.shape = artifact.feature_shape()
        self.frames = window_seconds * FRAMES_PER_SECOND if window_seconds else self.shape[1]
        self.states = states
        durations = self.table.column("duration").to_numpy()
        fits = durations <= self.frames / FRAMES_PER_SECOND + 1e-6
        self.rows = np.flatnonzero(fits)[: limit or None]
        self.too_long = int((~fits).sum())
        self.by_length = by_length
        if by_length:
            self.rows = self.rows[np.argsort(durations[self.rows], kind="stable")]
        if len(self.rows) == 0:
            why = f" ({self.too_long} are longer than the {window_seconds} s window)" if self.too_long else ""
            raise StudioError(
                f"dataset '{artifact.name}' has no usable rows in its '{split}' split{why}; prepare more data"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = int(self.rows[index])
        if self.states is not None:
            inputs = self.states[row].T  # (d_model, positions): laid out like log-mel (core/encoder_cache.py)
        else:
            inputs = features_from_row(self.table, row, self.shape)[:, : self.frames]
        item = {"input_features": inputs, "labels": self.table.column("labels")[row].as_py()}
        if self.by_length:
            item[SECONDS] = float(self.table.column("duration")[row].as_py())
        return item

    def seconds(self) -> np.ndarray:
        """Each row's duration in seconds, in the dataset's order."""
        return self.table.column("duration").to_numpy()[self.rows]

    def ids_and_texts(self) -> tuple[list[str], list[str]]:
        ids = self.table.column("id").take(self.rows).to_pylist()
        return ids, self.table.column("text").take(self.rows).to_pylist()


@dataclass
class SpeechCollator:
    """Stack inputs as float32; pad labels with -100 (ignored by the loss) and drop the decoder start token, which
    the model prepends itself when it shifts labels right (keeping it would teach it to predict it twice)."""

    decoder_start_token_id: int

    def __call__(self, rows: list[dict]) -> dict:
        features = torch.from_numpy(np.stack([r["input_features"] for r in rows]).astype(np.float32))
        labels = [r["labels"] for r in rows]
        if all(seq and seq[0] == self.decoder_start_token_id for seq in labels):
            labels = [seq[1:] for seq in labels]
        width = max(len(seq) for seq in labels)
        padded = torch.full((len(labels), width), -100, dtype=torch.long)
        for i, seq in enumerate(labels):
            padded[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        batch = {"input_features": features, "labels": padded}
        if SECONDS in rows[0]:
            batch[SECONDS] = torch.tensor([r[SECONDS] for r in rows])
        return batch


def replay_share(train_rows: int, fraction: float) -> int:
    """Replay rows in each epoch of `train_rows` training rows: `fraction` of the epoch (0.1 of 640 + 71 rows)."""
    return round(train_rows * fraction / (1 - fraction))


@dataclass(frozen=True)
class ReplaySet:
    """A replay dataset and how many of its training rows a run reads: the first `rows` that fit the window, one
    epoch's share (ReplayMix cycles them every epoch), so only those are read and their encoder states cached."""

    artifact: Artifact
    rows: int

    @classmethod
    def for_run(cls, replay: Artifact, train_rows: int, fraction: float) -> ReplaySet:
        return cls(replay, max(1, replay_share(train_rows, fraction)))

    def table_rows(self, window_seconds: int | None) -> int:
        """Rows of its training table up to the last one read (rows longer than the window are skipped)."""
        return int(FeatureDataset(self.artifact, "train", self.rows, window_seconds).rows[-1]) + 1


class ReplayMix(torch.utils.data.Dataset):
    """The training rows plus rows of a replay set, so that `fraction` of every epoch (and, shuffled, of each batch
    on average) comes from the replay set: the remedy for forgetting what the base model knew. Replay rows are a
    seeded permutation of the replay set, cycled when it is smaller than its share."""

    def __init__(self, train, replay, fraction: float, seed: int):
        self.train, self.replay = train, replay
        self.extra = replay_share(len(train), fraction)
        order = np.random.default_rng(seed).permutation(len(replay))
        self.order = np.resize(order, self.extra) if self.extra else order[:0]
        self.too_long = getattr(train, "too_long", 0)

    def __len__(self) -> int:
        return len(self.train) + self.extra

    def __getitem__(self, index: int) -> dict:
        if index < len(self.train):
            return self.train[index]
        return self.replay[int(self.order[index - len(self.train)])]
