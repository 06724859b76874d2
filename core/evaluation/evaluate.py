"""Evaluating a model on a prepared split: WER/CER and per-utterance rows, saved and reused.

The text side (rates, alignments, flags) is core/text/wer.py; this module runs the model. An evaluation is saved
inside the run for a checkpoint of a run (runs/R/evaluations/), else in WORKSPACE/evaluations/, stamped with the
model's weights and the artifact's fingerprint, and reused while both are unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from core.audio.constants import INT16_SCALE, SAMPLE_RATE
from core.data.artifact import features_from_row, open_artifact
from core.errors import DamagedFile, StudioError
from core.formatting import percent
from core.models.resolve import resolve_model
from core.option_fields import known_fields
from core.speech.decoding import GREEDY, DecodingOptions
from core.speech.inference import EngineOptions, Transcriber
from core.text.wer import UtteranceRow, summarize
from core.training.runs import RunFolder, checkpoint_step
from core.workspace import read_json_if_intact, write_json_atomic


@dataclass(frozen=True)
class EvaluationResult:
    """One model on one prepared split: corpus rates (fractions), flag counts and the per-utterance rows, as saved
    in an evaluation file (`to_dict`) and read back (`from_dict`; files of earlier versions read the same)."""

    model: str
    data: str
    split: str
    wer: float
    cer: float
    wer_raw: float
    cer_raw: float
    utterances: int
    flags: dict = field(default_factory=dict)
    rows: list[UtteranceRow] = field(default_factory=list)
    stamp: dict = field(default_factory=dict)  # what it was made from: reused while the weights and rows are the same

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationResult:
        try:
            rows = [UtteranceRow.from_dict(row) for row in data.get("rows", [])]
            return cls(**{**known_fields(cls, data), "rows": rows})
        except (TypeError, AttributeError) as err:
            raise DamagedFile(f"the saved evaluation lacks a field ({err}); evaluate the model again") from None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def shown(self) -> str:
        """'WER 12.3% (raw 14.0%), CER 4.1% (raw 4.5%)'"""
        wer, cer = f"WER {percent(self.wer)} (raw {percent(self.wer_raw)})", f"CER {percent(self.cer)}"
        return f"{wer}, {cer} (raw {percent(self.cer_raw)})"

    def report_line(self, model: str) -> str:
        """'demo on nb-tiny/test (40 utterances): WER …; hallucination flags: none', `model` named as the user did."""
        flags = ", ".join(f"{k} {v}" for k, v in self.flags.items()) or "none"
        where = f"{model} on {self.data}/{self.split} ({self.utterances} utterances)"
        return f"{where}: {self.shown}; hallucination flags: {flags}"


def evaluation_path(model: str, data: str, split: str, workspace) -> Path:
    """Where an evaluation is saved: inside the run for a checkpoint of a run, else in WORKSPACE/evaluations."""
    location = Path(model).expanduser()
    run = RunFolder(location.parent)
    if location.is_dir() and checkpoint_step(location.name) is not None and run.exists():
        return run.evaluation_file(location.name, data, split)
    safe = model.strip("/").replace("/", "--").replace(".", "_") or "model"
    return workspace.evaluations / f"{safe}__{data}__{split}.json"


def workspace_evaluations(workspace) -> list[Path]:
    """Saved evaluations of models outside any run (a base model, an export, a folder)."""
    return sorted(workspace.evaluations.glob("*.json"))


def _model_stamp(model: str) -> str:
    """Changes when the weights change (a re-trained demo, an overwritten checkpoint)."""
    location = Path(model).expanduser()
    weights = sorted(location.glob("*.safetensors")) + sorted(location.glob("*.bin")) if location.is_dir() else []
    return ";".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights) or model


# How evaluation decodes: the decoding policy's greedy pass, every row transcribed (a row judged silence would count
# as deletions words the model may have said), each row capped as a transcription window of its length:
EVALUATION_DECODING = replace(GREEDY, no_speech_threshold=None)


@dataclass(frozen=True)
class EvaluateOptions:
    """What an evaluation is asked for beyond the model and the dataset: which split, how many of its rows (None:
    all), how many utterances per batch, whether a saved evaluation of the same weights may answer, and how a
    window is decoded (the policy every transcription follows, with these options)."""

    split: str = "test"
    batch_size: int = 16
    limit: int | None = None
    reuse: bool = True
    decoding: DecodingOptions = EVALUATION_DECODING


def evaluate_model(
    model: str, data: str, workspace, options: EvaluateOptions | None = None, progress=None
) -> EvaluationResult:
    """WER/CER and per-utterance rows of `model` on a prepared dataset's split; saved and reused."""
    options = options or EvaluateOptions()
    split, batch_size, limit = options.split, options.batch_size, options.limit
    # 1. Check the request; a saved evaluation of the same weights on the same rows is the answer.
    if batch_size < 1 or batch_size > 4096:
        raise StudioError(f"batch size {batch_size}: choose 1 to 4096 utterances per batch")
    if limit is not None and limit < 1:
        raise StudioError(f"limit {limit}: evaluate at least one utterance (or give no limit for all)")
    artifact = open_artifact(workspace, data)
    location = resolve_model(model, workspace)
    path = evaluation_path(location, data, split, workspace)
    stamp = {
        "model": location,
        "weights": _model_stamp(location),
        "data": artifact.manifest.fingerprint,
        "split": split,
        "limit": limit,
        "decoding": {**asdict(options.decoding), "temperatures": list(options.decoding.temperatures)},  # as JSON reads
    }
    saved = read_json_if_intact(path)  # a damaged saved evaluation is simply made again
    if options.reuse and saved and saved.get("stamp") == stamp:
        try:
            return EvaluationResult.from_dict(saved)
        except DamagedFile:
            pass  # made again below
    table = artifact.read_split(split)
    total = min(table.num_rows, limit or table.num_rows)
    if total == 0:
        raise StudioError(f"dataset '{data}' has no rows in its '{split}' split: nothing to evaluate")
    # 2. Decode every row, batched, with the model's own window (stored features or the stored audio).
    transcriber = Transcriber(
        location,
        workspace,
        language=artifact.manifest.whisper_language,
        task=artifact.task,
        engine=EngineOptions(prefer_ctranslate2=False),
        options=options.decoding,
    )
    inputs = ModelInputs(artifact, table, transcriber)
    ids, refs, hyps = [], [], []
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        hyps += inputs.transcribe(range(start, stop))
        ids += table.column("id").slice(start, stop - start).to_pylist()
        refs += table.column("text").slice(start, stop - start).to_pylist()
        if progress:
            progress("evaluate", stop, total)
    # 3. Rates, per-utterance rows and flags, saved beside the run (or in the workspace).
    result = EvaluationResult.from_dict(
        {"model": model, "data": data, "split": split, "stamp": stamp, **summarize(ids, refs, hyps)}
    )
    write_json_atomic(path, result.to_dict())
    return result


class ModelInputs:
    """What a model is fed for the rows of a split: the stored log-mel when it was made for this model's bins and
    window (cut to a shorter window when the model listens to less), else features made from the stored audio.
    Rows longer than the model's window are transcribed from their audio in windows, as a user's file would be."""

    def __init__(self, artifact, table, transcriber):

        self.table, self.transcriber = table, transcriber
        self.shape = artifact.feature_shape()
        extractor = transcriber.processor.feature_extractor
        self.frames = extractor.nb_max_frames
        self.window_s = extractor.n_samples / SAMPLE_RATE
        self.stored = extractor.feature_size == self.shape[0] and self.frames <= self.shape[1]
        self.scale = INT16_SCALE
        if not self.stored and not self._audio(0).size:
            raise StudioError(
                f"dataset '{artifact.name}' was prepared for {self.shape[0]} mel bins × {self.shape[1]} frames and "
                f"keeps no audio in this split; prepare it with this model to evaluate it"
            )

    def _audio(self, row: int) -> np.ndarray:
        raw = self.table.column("audio")[row].as_py()
        return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / self.scale if raw else np.zeros(0, np.float32)

    def transcribe(self, rows: range) -> list[str]:

        durations = self.table.column("duration").slice(rows.start, len(rows)).to_pylist()
        fits = [(r, d) for r, d in zip(rows, durations) if d <= self.window_s + 1e-6]
        short, seconds = [r for r, _ in fits], [d for _, d in fits]
        texts: dict[int, str] = {}
        if short and self.stored:
            batch = np.stack([features_from_row(self.table, r, self.shape)[:, : self.frames] for r in short])
            texts.update(zip(short, self.transcriber.window_texts(batch, seconds)))
        elif short:
            features = self.transcriber.features([self._audio(r) for r in short])
            texts.update(zip(short, self.transcriber.window_texts(features, seconds)))
        for r in rows:
            if r not in texts:
                audio = self._audio(r)
                if not audio.size:
                    raise StudioError("a row longer than the model's window keeps no audio to transcribe in windows")
                texts[r] = self.transcriber.text(audio)
        return [texts[r] for r in rows]
