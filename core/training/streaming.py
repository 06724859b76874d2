"""Training rows made while training: a prepared dataset whose train split stays at its source.

For sets too big for the disk (the seeds' 500 GB Common Voice Spanish), `prepare --stream-train` stores only the
evaluation splits; this IterableDataset reopens the source from the manifest and yields features and labels as the
Trainer asks, through the same filters and log-mel code as `prepare`. A shuffle buffer mixes rows across
SHUFFLE_BUFFER examples (seeded; reshuffled each pass); passes repeat until max_steps. Memory stays that of the
buffer however large the set is. Resuming a run makes the Trainer skip the batches it had already seen.

Under torchrun each rank reads only its share of the stream (`node_rows`): a Hub source splits its files between the
ranks with datasets' `split_dataset_by_node`, another source keeps every world-th row; the Trainer is told so
(core/training/parallel.py), rather than have rank 0 read every row and send each rank its batches.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice

import torch

from core.audio.melspec import log_mel
from core.data.artifact import FEATURE_DTYPE, Artifact
from core.data.examples import Example, Source
from core.data.features import PrepareOptions, training_rows
from core.data.hub import HubSource
from core.data.rows import RowLimits, in_carved_validation, usable_rows
from core.data.sources import source_from_description
from core.errors import StudioError
from core.languages import get_language
from core.models.resolve import load_processor
from core.text.cleaning import CleaningOptions
from core.workspace import Workspace

SHUFFLE_BUFFER = 256  # rows held for shuffling: 256 × 80 × 3000 × 2 bytes ≈ 120 MB for 30 s Whisper features


def node_rows(source: Source, options: PrepareOptions, rank: int, world: int) -> Iterator[Example]:
    """Rank `rank`'s share (of `world`) of the training rows prepare would take: a Hub source reads only its own
    files (split_dataset_by_node, after the same seeded shuffle on every rank; max_train_samples shared out), another
    source every world-th of the rows (a folder's rows are paths until decoded: skipping one costs nothing)."""
    if world == 1:
        return training_rows(source, options)
    if isinstance(source, HubSource):
        share = math.ceil(options.max_train_samples / world) if options.max_train_samples else None
        return training_rows(replace(source, node=(rank, world)), replace(options, max_train_samples=share))
    return islice(training_rows(source, options), rank, None, world)


class StreamingFeatureDataset(torch.utils.data.IterableDataset):
    def __init__(
        self,
        artifact: Artifact,
        workspace: Workspace,
        limit: int | None = None,
        seed: int = 42,
        node: tuple[int, int] = (0, 1),
    ):
        manifest = artifact.manifest
        self.name = artifact.name
        self.description = manifest.source
        self.language = get_language(manifest.language)
        self.model, self.workspace = manifest.model, workspace
        saved = dict(manifest.options)
        saved["cleaning"] = CleaningOptions(**saved["cleaning"])
        self.options = PrepareOptions(**saved)
        self.limit = limit or self.options.max_train_samples
        self.seed = seed
        self.node = node  # (rank, world size): under torchrun, the rows this rank reads are its own
        self.per_rank = node[1] > 1
        # rows whose transcript fell into the validation slice at prepare time never train
        validation = manifest.splits.get("validation")
        self.validation_fraction = validation.carved_from_train if validation else 0.0

    def __iter__(self) -> Iterator[dict]:
        processor = load_processor(self.model, self.workspace)
        processor.tokenizer.set_prefix_tokens(
            language=self.language.whisper, task=self.options.task, predict_timestamps=False
        )
        extractor = processor.feature_extractor
        limits = RowLimits(extractor.n_samples, self.options.max_sequence_length)
        source = source_from_description(self.description)
        rng = random.Random(self.seed)
        while True:  # one pass per loop; the Trainer stops at max_steps
            rows = node_rows(source, self.options, *self.node)  # the subset prepare would take, this rank's share
            rows = islice(rows, math.ceil(self.limit / self.node[1])) if self.limit else rows
            buffer, produced, filtered = [], 0, Counter()
            for example, audio, ids in usable_rows(
                rows, self.language, self.options.cleaning, processor.tokenizer, limits, filtered
            ):
                if in_carved_validation(example.text, self.validation_fraction):
                    continue
                features = log_mel([audio], extractor)[0].astype(FEATURE_DTYPE)
                buffer.append({"input_features": features, "labels": ids})
                produced += 1
                if len(buffer) >= SHUFFLE_BUFFER:
                    yield buffer.pop(rng.randrange(len(buffer)))
            rng.shuffle(buffer)
            yield from buffer
            if not produced:
                reasons = ", ".join(f"{k} {v}" for k, v in filtered.items() if v) or "the source is empty"
                raise StudioError(f"dataset '{self.name}': no usable training rows in the streamed source ({reasons})")
