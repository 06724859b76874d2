"""What a label run is asked (the `label` command's flags, one field each), the row it writes for each clip, and the
thresholds that route a row to keep, review or drop. No heavy imports: the command line builds its parser from these
on every start.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from core.errors import StudioError
from core.languages import get_language
from core.models.resolve import DEFAULT_MODEL
from core.option_fields import known_fields, option_help
from core.text.wer import LOOP_COMPRESSION_RATIO

KEEP, REVIEW, DROP = "keep", "review", "drop"
DECISIONS = (KEEP, REVIEW, DROP)
UNKNOWN_SPEAKER = "unknown"  # a row whose source names no speaker (a take needs one)


@dataclass(frozen=True)
class LabelOptions:
    """What to label, with which model, and in how many processes."""

    source: str = field(
        default="", metadata=option_help("a folder of audio (any layout prepare reads, or audio alone) or a Hub id")
    )
    name: str = field(default="", metadata=option_help("name of the label set: the folder under WORKSPACE/labels"))
    model: str = field(
        default=DEFAULT_MODEL,
        metadata=option_help("the model that writes the labels: whisper-base, a checkpoint, an export, a Hub id, demo"),
    )
    language: str = field(default="", metadata=option_help("language code; empty = detected per clip"))
    agree_with: str = field(
        default="",
        metadata=option_help(
            "a second model whose transcript each row is compared with (the same model: a second, greedy decode)"
        ),
    )
    beam_size: int = field(default=5, metadata=option_help("beams per window at temperature 0 (1 = greedy, faster)"))
    batch_size: int = field(default=8, metadata=option_help("clips decoded together"))
    max_clips: int | None = field(default=None, metadata=option_help("label only the source's first N clips"))
    config: str = field(default="", metadata=option_help("the Hub dataset's config"))
    nproc: int = field(default=1, metadata=option_help("processes labelling at once (torchrun ranks), each a shard"))
    nnodes: int = field(
        default=1,
        metadata=option_help(
            "machines labelling at once: each runs this command with its --node-rank, workspace shared"
        ),
    )
    node_rank: int = field(default=0, metadata=option_help("this machine's number, 0 to nnodes-1 (0 merges)"))
    master: str = field(default="127.0.0.1:29511", metadata=option_help("host:port of node 0, when nnodes > 1"))

    def validate(self) -> LabelOptions:
        if not self.source:
            raise StudioError("no source: give a folder of audio or a Hub dataset id (--source)")
        if self.language:
            get_language(self.language)
        for name in ("beam_size", "batch_size", "nproc", "nnodes"):
            if not 1 <= getattr(self, name) <= 1024:
                raise StudioError(f"{name} {getattr(self, name)}: give a whole number from 1 to 1024")
        if self.max_clips is not None and self.max_clips < 1:
            raise StudioError(f"max_clips {self.max_clips}: at least 1, or leave it out for every clip")
        if not 0 <= self.node_rank < self.nnodes:
            raise StudioError(f"node_rank {self.node_rank}: from 0 to nnodes-1 ({self.nnodes - 1})")
        if self.nnodes > 1 and not self.master.rpartition(":")[2].isdigit():
            raise StudioError(f"master '{self.master}': give node 0's host:port, e.g. 10.0.0.1:29511")
        return self

    @property
    def world(self) -> int:
        return self.nproc * self.nnodes


@dataclass(frozen=True)
class LabelThresholds:
    """Where a row goes: the confidences that keep it for training, send it to a person, or drop it."""

    keep_log_prob: float = field(
        default=-0.5,
        metadata=option_help("keep a row whose average token log-probability is at least this (else review)"),
    )
    drop_log_prob: float = field(
        default=-1.0,
        metadata=option_help("drop a row whose average token log-probability is below this (Whisper's failure line)"),
    )
    max_compression_ratio: float = field(
        default=LOOP_COMPRESSION_RATIO,
        metadata=option_help("drop a row whose text compresses more than this (a decoding loop)"),
    )
    review_no_speech: float = field(
        default=0.4, metadata=option_help("send to review a row whose no-speech probability is above this")
    )
    keep_agreement: float = field(
        default=0.9,
        metadata=option_help("with --agree-with: send to review a row whose two transcripts agree on fewer words"),
    )
    drop_agreement: float = field(
        default=0.5, metadata=option_help("with --agree-with: drop a row whose two transcripts agree on fewer words")
    )

    def validate(self) -> LabelThresholds:
        for f in fields(self):
            if not math.isfinite(getattr(self, f.name)):
                raise StudioError(f"{f.name} {getattr(self, f.name)}: give a finite number")
        if not self.drop_log_prob <= self.keep_log_prob <= 0:
            raise StudioError(
                f"drop_log_prob {self.drop_log_prob}, keep_log_prob {self.keep_log_prob}: log-probabilities are at "
                f"most 0 and the drop line lies at or below the keep line (e.g. -1.0 and -0.5)"
            )
        if self.max_compression_ratio <= 1:
            raise StudioError(
                f"max_compression_ratio {self.max_compression_ratio}: above 1 ({LOOP_COMPRESSION_RATIO} is Whisper's)"
            )
        if not 0 <= self.review_no_speech <= 1 or not 0 <= self.drop_agreement <= self.keep_agreement <= 1:
            raise StudioError(
                f"review_no_speech {self.review_no_speech}, drop_agreement {self.drop_agreement}, keep_agreement "
                f"{self.keep_agreement}: probabilities and shares from 0 to 1, drop_agreement ≤ keep_agreement"
            )
        return self

    def route(self, row: LabelRow) -> tuple[str, str]:
        """(keep, review or drop; why) for a row's confidences."""
        if not row.text:
            return DROP, row.reason or "no speech heard"
        if row.compression_ratio > self.max_compression_ratio:
            return DROP, f"the text repeats (compression ratio {row.compression_ratio:.2f}): a decoding loop"
        if row.avg_log_prob < self.drop_log_prob:
            return DROP, f"the model is unsure (average log-probability {row.avg_log_prob:.2f})"
        if row.agreement is not None and row.agreement < self.drop_agreement:
            return DROP, f"the two transcripts disagree ({100 * row.agreement:.0f}% of words agree)"
        doubts = []
        if row.avg_log_prob < self.keep_log_prob:
            doubts.append(f"average log-probability {row.avg_log_prob:.2f}")
        if row.no_speech_prob > self.review_no_speech:
            doubts.append(f"no-speech probability {row.no_speech_prob:.2f}")
        if row.agreement is not None and row.agreement < self.keep_agreement:
            doubts.append(f"{100 * row.agreement:.0f}% of words agree")
        return (REVIEW, "; ".join(doubts)) if doubts else (KEEP, "")


@dataclass
class LabelRow:
    """One clip of the source, transcribed, with the confidences its decision rests on."""

    index: int  # position in the source's order: what shards are cut by and rows are sorted by
    id: str  # the source's own id of the clip (ID@START_S for a window of a long recording)
    audio_name: str  # how the source names the audio (a file inside the folder, a Hub row)
    seconds: float
    text: str = ""
    avg_log_prob: float = 0.0  # token-weighted over the clip's windows, as Whisper averages (end token included)
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0  # the highest of the clip's windows
    agreement: float | None = None  # share of words the second transcript agrees on (1 − WER), when asked
    temperature: float = 0.0  # the hottest temperature the fallback needed: above 0, a window failed first
    language: str = ""  # Whisper code the clip was decoded in
    speaker: str = UNKNOWN_SPEAKER
    reference: str = ""  # the source's own transcript, when it had one: kept to measure labels, never trained on
    decision: str = ""
    reason: str = ""
    file_name: str = ""  # clips/NNNNNNN.flac inside the set, for rows kept or in review
    part: int = 0  # the window of its clip: a recording longer than the model's window gives several rows
    parts: int = 1  # the windows of its clip: a clip is labelled once all its rows are written

    @property
    def doubt(self) -> float:
        """How doubtful a row is, for the review queue (larger first): a low log-probability, a likely silence, a
        disagreement and a loop all add to it."""
        disagreement = 1 - self.agreement if self.agreement is not None else 0.0
        return -self.avg_log_prob + self.no_speech_prob + disagreement + max(0.0, self.compression_ratio - 2.0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> LabelRow:
        return cls(**known_fields(cls, data))
