"""What a fine-tune breaks, measured while it trains: guard sets, hallucination probes and language detection.

- Guard sets: prepared datasets the run must not get worse on — by default, for a pretrained base and a target other
  than English, English sentences spoken by espeak-ng (the base model's strongest language: `english_reference`),
  plus any the user adds (`--guard`). Each is decoded in its own language, GUARD_ROWS utterances.
- Probes: clips with no speech (core/audio/probes.py), decoded in the target language, as a user of the fine-tuned
  model would: every word written there is made up, and loops are counted.
- Language identification: the share of the target test split (and of each guard set) whose language the model
  detects correctly, from the first decoding step over the language tokens, as Whisper detects it.

They run at step 0 (the base model), at every evaluation and for the test halves before and after; each is a few
dozen utterances. With a frozen encoder its output for these clips never changes: it is computed once and the
decoder alone runs at each evaluation.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from core.audio.constants import SAMPLE_RATE, WINDOW_SECONDS, text_token_cap
from core.audio.probes import probe_clips
from core.data.artifact import REFERENCE_PREFIX, Artifact, open_artifact
from core.data.manifest import MANIFEST_FILE
from core.errors import StudioError
from core.languages import get_language
from core.models.hf_folders import language_token_ids
from core.models.resolve import DEMO
from core.text.wer import probe_counts, summarize
from core.training.feature_sets import FeatureDataset, ReplaySet
from core.training.run_records import GuardResult, HarmMeasurement, ProbeResult
from core.workspace import Workspace

PREFIX_TOKENS = 4  # <|startoftranscript|><|lang|><|transcribe|><|notimestamps|>
GUARD_ROWS = 30  # utterances per guard set: enough to see a forgotten language, cheap enough for every evaluation
ENGLISH_SENTENCES = 200  # the English reference set: 30 test sentences guard, its train split is replay's default
ENGLISH_SEED = 7


def transcript_cap(seconds: float, max_length: int) -> int:
    """The most tokens (prefix included) a transcript of `seconds` of speech may take, never above `max_length`: a
    longer one is a loop, cut off where its speech ends, as transcription cuts it (core/speech/inference.py)."""
    return min(max_length, PREFIX_TOKENS + text_token_cap(seconds))


def english_reference_name(n_mels: int) -> str:
    return f"{REFERENCE_PREFIX}{n_mels}mel"


def english_reference(workspace: Workspace, model: str, n_mels: int, log=print) -> str:
    """The prepared English reference set (espeak-ng sentences from our English templates, split by text) for
    models with `n_mels` mel bins, made on first use: its test split is the English guard, its train split what
    replay mixes in, so the two never share a sentence."""
    name = english_reference_name(n_mels)
    if (workspace.dataset(name) / MANIFEST_FILE).is_file():
        return name
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 makes it; the others wait for its manifest
        for _ in range(1800):
            time.sleep(1)
            if (workspace.dataset(name) / MANIFEST_FILE).is_file():
                return name
        raise StudioError("the English reference set was not made within 30 minutes: see rank 0's train.log")
    from core.data.features import PrepareOptions, prepare_features
    from core.data.folders import FolderSource
    from core.data.synth import SynthSpec, synthesize_dataset

    english = get_language("en")
    spec = SynthSpec(language="en", n=ENGLISH_SENTENCES, seed=ENGLISH_SEED, test_fraction=0.15)
    log(f"making the English reference set ({ENGLISH_SENTENCES} espeak-ng sentences): once per workspace")
    folder = synthesize_dataset(english, workspace.synth / spec.folder_name("reference-"), spec)
    prepare_features(FolderSource(folder), english, model, name, workspace, PrepareOptions())
    return name


def replay_set(workspace: Workspace, config, artifact: Artifact, language: str, mels: int) -> ReplaySet | None:
    """The replay set (the user's, or the English reference set's training split) and the share of it the run
    reads, or None without replay. `language`: the target's Whisper code; `mels`: the model's mel bins."""
    if not config.replay_fraction:
        return None
    if artifact.streams("train"):
        raise StudioError(
            "replay mixes stored training rows; this dataset streams its training split: prepare it without "
            "stream_train, or set replay_fraction 0"
        )
    name = config.replay
    if not name and language == "en":
        raise StudioError(
            "replay's default is the English reference set, drawn from the same templates as an English target's "
            "sentences: give another dataset (--replay DATASET) or set replay_fraction 0"
        )
    if not name:
        name = english_reference(workspace, config.model, mels)
    replay = open_artifact(workspace, name)
    if replay.feature_shape()[0] != mels:
        raise StudioError(f"replay dataset '{name}' was prepared for another model's mel bins: prepare it again")
    train_rows = len(FeatureDataset(artifact, "train", config.max_train_samples, config.window_seconds or None))
    return ReplaySet.for_run(replay, train_rows, config.replay_fraction)


def guard_datasets(config, target_language: str, workspace: Workspace, n_mels: int, log=print) -> list[str]:
    """The run's guard sets: the English reference (when it applies) and the user's, in that order."""
    from core.data.synth import espeak_available

    names = [g.strip() for g in config.guard.split(",") if g.strip()]
    if (
        config.english_guard and target_language != "en" and config.model != DEMO
    ):  # the toy never knew English: no English guard
        if espeak_available():
            names.insert(0, english_reference(workspace, config.model, n_mels, log))
        else:
            log("no English guard: espeak-ng is not installed (apt-get install espeak-ng), or add --guard DATASET")
    return list(dict.fromkeys(names))


def _guard_split(artifact: Artifact) -> str:
    """A guard's held-out split: test, else validation, else train (a set the run never trains on)."""
    for split in ("test", "validation", "train"):
        if split in artifact.manifest.splits:
            return split
    raise StudioError(f"guard dataset '{artifact.name}' has no rows: prepare it again or remove it from --guard")


@dataclass
class Inputs:
    """What one set feeds the model: log-mel (or, with a frozen encoder, its states, computed once)."""

    name: str
    language: str  # Whisper code it is decoded (and detected) in
    mel: torch.Tensor  # (rows, mels, frames)
    ids: list[str]
    texts: list[str]
    split: str = "test"
    seconds: list[float] | None = None  # each row's duration: a row's transcript is capped by it
    states: torch.Tensor | None = None


def _encoder(model):
    return model.get_encoder()


def _frozen(model) -> bool:
    return not any(p.requires_grad for p in _encoder(model).parameters())


@torch.inference_mode()
def _states(model, mel: torch.Tensor, batch: int) -> torch.Tensor:
    """The real encoder's output for `mel`, laid out like log-mel (rows, d_model, positions), even when the encoder
    passes cached states through (core/training/encoder_cache.py replaces the instance's forward only)."""
    encoder = _encoder(model)
    device = next(encoder.parameters()).device
    outputs = []
    for start in range(0, len(mel), batch):
        chunk = mel[start : start + batch].to(device)
        outputs.append(type(encoder).forward(encoder, input_features=chunk).last_hidden_state.transpose(1, 2).cpu())
    return torch.cat(outputs)


@contextmanager
def _states_passed_through(model):
    """While fed encoder states instead of log-mel, the encoder passes them on (unless it already does)."""
    from transformers.modeling_outputs import BaseModelOutput

    encoder = _encoder(model)
    if "forward" in vars(encoder):  # cached encoder states: it already does
        yield
        return
    positions = encoder.config.max_source_positions

    def pass_through(input_features, *args, **kwargs):
        return BaseModelOutput(last_hidden_state=input_features[:, :, :positions].transpose(1, 2))

    encoder.forward = pass_through
    try:
        yield
    finally:
        del encoder.forward


class HarmChecks:
    """The guard sets and the probes of one run, with the model's inputs for each made once."""

    def __init__(self, model, processor, guards: list[str], workspace: Workspace, window_s: int | None, batch: int):
        self.tokenizer = processor.tokenizer
        self.batch = batch
        self.language_ids = language_token_ids(self.tokenizer)
        self.sets = [self._guard_inputs(workspace, name, processor, window_s) for name in guards]
        clips = probe_clips()
        self.probes = Inputs(
            "probes",
            "",
            torch.from_numpy(self._mel(processor, [samples for _, samples in clips])),
            [name for name, _ in clips],
            ["" for _ in clips],
            seconds=[len(samples) / SAMPLE_RATE for _, samples in clips],
        )
        self.frozen = _frozen(model)
        self.base: dict[str, float] | None = None  # each guard set's WER at step 0 (before training or at step 0)

    @staticmethod
    def _mel(processor, clips: list[np.ndarray]) -> np.ndarray:
        from core.audio.melspec import log_mel

        return log_mel(clips, processor.feature_extractor)

    def _guard_inputs(self, workspace: Workspace, name: str, processor, window_s: int | None) -> Inputs:
        artifact = open_artifact(workspace, name)
        mels = processor.feature_extractor.feature_size
        if artifact.feature_shape()[0] != mels:
            raise StudioError(
                f"guard dataset '{name}' was prepared for {artifact.feature_shape()[0]} mel bins, the model has "
                f"{mels}: prepare it again with this model"
            )
        split = _guard_split(artifact)
        rows = FeatureDataset(artifact, split, GUARD_ROWS, window_s)
        ids, texts = rows.ids_and_texts()
        mel = torch.from_numpy(np.stack([rows[i]["input_features"] for i in range(len(rows))]).astype(np.float32))
        seconds = rows.seconds().tolist()
        return Inputs(name, artifact.manifest.whisper_language, mel, ids, texts, split, seconds)

    def _inputs(self, model, inputs: Inputs) -> torch.Tensor:
        if not self.frozen:
            return inputs.mel
        if inputs.states is None:
            inputs.states = _states(model, inputs.mel, self.batch)
        return inputs.states

    @torch.inference_mode()
    def _decode(self, model, inputs: Inputs, language: str | None, max_length: int) -> list[str]:
        device = next(model.parameters()).device
        fed = self._inputs(model, inputs)
        texts = []
        kwargs = {"language": language, "task": "transcribe"} if language else {}
        with _states_passed_through(model) if self.frozen else nullcontext():
            for start in range(0, len(fed), self.batch):
                # a transcript longer than its speech allows is a loop: capped by the batch's longest row, as
                # transcription caps it (core/speech/inference.py), so one looping clip does not decode to the end
                longest = max((inputs.seconds or [WINDOW_SECONDS])[start : start + self.batch])
                most = transcript_cap(longest, max_length)
                # rank 0 decodes alone: never in step with the other ranks (as generate() may be under ZeRO-3)
                batch = fed[start : start + self.batch].to(device)
                ids = model.generate(batch, max_length=most, synced_gpus=False, **kwargs)
                ids = ids.cpu().numpy()
                texts += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return texts

    @torch.inference_mode()
    def detected_languages(self, model, fed: torch.Tensor) -> list[str]:
        """The language Whisper detects in each row of `fed` (what the model takes: log-mel or states)."""
        device = next(model.parameters()).device
        start = self.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        columns = list(self.language_ids.values())
        names = [token.strip("<|>") for token in self.language_ids]
        found = []
        for i in range(0, len(fed), self.batch):
            chunk = fed[i : i + self.batch].to(device)
            decoder = torch.full((len(chunk), 1), start, dtype=torch.long, device=device)
            logits = model(input_features=chunk, decoder_input_ids=decoder).logits[:, -1]
            found += [names[j] for j in logits[:, columns].argmax(-1).tolist()]
        return found

    def language_accuracy(self, model, fed: torch.Tensor, expected: str, states: bool = False) -> float:
        with _states_passed_through(model) if states else nullcontext():
            found = self.detected_languages(model, fed)
        return sum(code == expected for code in found) / max(len(found), 1)

    def measure(self, model, max_length: int) -> HarmMeasurement:
        """The guard sets and the probes for the model as it is now; the model's training mode is kept."""
        was_training = model.training
        model.eval()
        try:
            guards = {}
            for inputs in self.sets:
                hypotheses = self._decode(model, inputs, inputs.language, max_length)
                summary = summarize(inputs.ids, inputs.texts, hypotheses)
                accuracy = self.language_accuracy(model, self._inputs(model, inputs), inputs.language, self.frozen)
                guards[inputs.name] = GuardResult(inputs.name, inputs.split, inputs.language, accuracy, summary)
            probe_texts = self._decode(model, self.probes, None, max_length)
            probes = ProbeResult(probe_counts(probe_texts), dict(zip(self.probes.ids, probe_texts)))
        finally:
            model.train(was_training)
        return HarmMeasurement(guards, probes)


def metric_rows(step: int, measured: HarmMeasurement) -> list[dict]:
    """The metrics.jsonl rows of one measurement: a row per guard set and one for the probes."""
    now = time.time()
    rows = [
        {
            "step": step,
            "time": now,
            "guard": name,
            "guard_wer": g.wer,
            "guard_cer": g.summary["cer"],
            "guard_language_accuracy": g.language_accuracy,
        }
        for name, g in measured.guards.items()
    ]
    return [*rows, {"step": step, "time": now, **measured.probes.counts}]


def guard_rises(base: dict[str, float], now: dict[str, float], threshold_points: float) -> list[str]:
    """One line per guard set whose WER (`now`: name → WER) rose more than `threshold_points` above the base
    model's (`base`)."""
    lines = []
    for name, wer in now.items():
        before = base.get(name)
        if before is None:
            continue
        rise = 100 * (wer - before)
        if rise > threshold_points:
            lines.append(
                f"guard '{name}' WER rose {rise:.1f} points ({100 * before:.1f}% → {100 * wer:.1f}%), "
                f"more than {threshold_points:g}: the model is forgetting; try replay (--replay-fraction 0.1), "
                f"a lower learning rate, fewer steps or LoRA"
            )
    return lines


class HarmCallback:
    """At every evaluation (step 0 included): the guard sets and the probes, into metrics.jsonl and train.log; a
    guard set that rose more than the threshold is a warning in status.json and, with guard_stop, ends training."""

    def __init__(self, checks: HarmChecks, run, status, config):
        self.checks, self.run, self.status, self.config = checks, run, status, config
        self.stopped_by: str | None = None
        # this process's measurements: the best step's is the "after" half's
        self.by_step: dict[int, HarmMeasurement] = {}
        if checks.base is None:  # a resumed run: the base model's figures are in its step-0 rows
            base = {r["guard"]: r["guard_wer"] for r in run.metrics() if r["step"] == 0 and "guard" in r}
            checks.base = base or None

    def measure(self, model, step: int) -> HarmMeasurement:
        """Measure the model as it is at `step`, into metrics.jsonl and train.log (step 0: the base model)."""
        measured = self.checks.measure(model, self.config.generation_max_length)
        self.by_step[step] = measured
        if step == 0:
            self.checks.base = measured.guard_wers()
        for row in metric_rows(step, measured):
            self.run.append_metrics(row)
        for name, guard in measured.guards.items():
            print(f"step {step}  guard {name} WER {100 * guard.wer:.1f}%", flush=True)
        probes = measured.probes.counts
        print(
            f"step {step}  probes: {probes['probe_words']} words on {probes['probe_clips']} clips with no speech, "
            f"{probes['probe_loops']} loops",
            flush=True,
        )
        return measured

    def on_evaluate(self, model, step: int) -> bool:
        """Measure; True when training should end (a guard rose and guard_stop is on)."""
        if step == 0 and self.checks.base is not None:
            return False  # the base model, measured already with the test split's first half
        measured = self.measure(model, step)
        if self.checks.base is None or step == 0:
            return False
        rises = guard_rises(self.checks.base, measured.guard_wers(), self.config.guard_threshold)
        if not rises:
            return False
        lines = [f"step {step}: {line}" for line in rises]
        for line in lines:
            print(f"warning: {line}", flush=True)
        known = list(self.run.status().warnings)
        self.status.update(warnings=(known + lines)[-10:])
        if self.config.guard_stop:
            self.stopped_by = lines[0]
            return True
        return False
