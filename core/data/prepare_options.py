"""What a prepare is asked to do: the one contract the CLI's flags, the Data page and `prepare_features` share.

Help texts and defaults live on the fields; `python -m core prepare --help` is built from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.audio.constants import MAX_TARGET_POSITIONS
from core.errors import StudioError
from core.option_fields import option_help
from core.text.cleaning import CleaningOptions

TASKS = ("transcribe", "translate")
SPLIT_RULES = ("text", "speaker")  # how a split the source lacks is made: by transcript, or whole speakers
MOST_ROWS = 10**9  # no row count a user types is meant to be larger


@dataclass(frozen=True)
class PrepareOptions:
    max_train_samples: int | None = field(
        default=None, metadata=option_help("keep at most N training rows (a seeded random N)")
    )
    max_eval_samples: int | None = field(default=None, metadata=option_help("keep at most N evaluation rows"))
    max_sequence_length: int = field(
        default=255,  # label tokens, prefix and <|endoftext|> included
        metadata=option_help("drop rows whose labels (prefix and end token included) are longer"),
    )
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)
    # Keep the training split at its source and make its features while training (core/training/streaming.py): for
    # sets too big for the disk. Evaluation splits are always stored, so every evaluation sees the same rows.
    stream_train: bool = field(
        default=False,
        metadata=option_help(
            "store no training features: training reads the source as it goes (sets too big for disk)"
        ),
    )
    task: str = field(
        default="transcribe", metadata=option_help("translate: speech in the language → English text", choices=TASKS)
    )
    validation_fraction: float = field(
        default=0.1,
        metadata=option_help(
            "share of train (by transcript) kept for validation when the source has no validation split"
        ),
    )
    # A seeded random part of the training rows (by id): unbiased where the first N rows of a source are not (NPSC
    # is ordered by session). With max_train_samples the rows are also taken in a seeded random order.
    train_fraction: float | None = field(
        default=None, metadata=option_help("keep a seeded random fraction of the training rows, e.g. 0.35")
    )
    seed: int = field(default=0, metadata=option_help("seed of the random subset"))
    split_by: str = field(
        default="text",
        metadata=option_help(
            "how a local folder's missing test and validation splits are made: by transcript, or by speaker (a "
            "test voice never heard in training; needs two speakers or more)",
            choices=SPLIT_RULES,
        ),
    )
    # What a fine-tune must not unlearn (issue 19): to say nothing where nobody speaks (core/data/no_speech.py), and
    # to give segment times (distil-whisper's timestamp_probability; core/data/labels.py)
    no_speech_fraction: float = field(
        default=0.0,
        metadata=option_help(
            "share of the training rows made of generated silence, quiet noise and hum with an empty transcript, "
            "so the model learns to write nothing there, e.g. 0.05"
        ),
    )
    timestamp_fraction: float = field(
        default=0.0,
        metadata=option_help(
            "share of the training rows whose labels carry segment times (<|0.00|> text<|1.84|>), so the model "
            "keeps predicting timestamps, e.g. 0.5 (distil-whisper's timestamp_probability)"
        ),
    )

    def validate(self) -> None:
        if not 8 <= self.max_sequence_length <= MAX_TARGET_POSITIONS:
            raise StudioError(
                f"max_sequence_length {self.max_sequence_length}: choose 8–{MAX_TARGET_POSITIONS} "
                f"(Whisper's decoder has {MAX_TARGET_POSITIONS} positions)"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MOST_ROWS:
                raise StudioError(f"{name} {value}: give a number from 1 to 10^9, or leave it out for all rows")
        if self.split_by not in SPLIT_RULES:
            raise StudioError(f"split_by '{self.split_by}': choose one of {', '.join(SPLIT_RULES)}")
        if self.task not in TASKS:
            raise StudioError(f"task '{self.task}': choose one of {', '.join(TASKS)}")
        # written so that NaN fails too (every comparison with NaN is False)
        if not 0 <= self.validation_fraction < 0.5:
            raise StudioError(f"validation_fraction {self.validation_fraction}: choose 0 to 0.5 (0.1 is usual)")
        if self.train_fraction is not None and not 0 < self.train_fraction <= 1:
            raise StudioError(f"train_fraction {self.train_fraction}: choose a fraction above 0 and at most 1")
        if not 0 <= self.no_speech_fraction < 0.5:
            raise StudioError(f"no_speech_fraction {self.no_speech_fraction}: choose 0 to 0.5 (0.05 is a start)")
        if not 0 <= self.timestamp_fraction <= 1:
            raise StudioError(f"timestamp_fraction {self.timestamp_fraction}: choose 0 to 1 (0.5 is a start)")
        if self.stream_train and (self.no_speech_fraction or self.timestamp_fraction):
            raise StudioError(
                "no_speech_fraction and timestamp_fraction shape the stored training rows: prepare without "
                "--stream-train to use them"
            )
