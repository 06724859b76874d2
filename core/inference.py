"""Transcription: one loaded model turns features, audio arrays or files into text.

Two engines: transformers (any checkpoint) and CTranslate2 (an export, or the installed whisper-base's own file,
which runs with int8 compute on a CPU: the fast path for files, the live microphone and conversation).

Audio is cut where there is speech (core/vad.py): stretches of speech are packed whole into windows no longer than
the model's (30 s for Whisper, a few seconds for the demo), a stretch longer than a window is cut at its quietest
moments, silence is skipped, and the windows are decoded in batches. Every segment keeps its times in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from core.audio import SAMPLE_RATE, AudioSource, load_audio
from core.installed_models import ctranslate2_twin
from core.melspec import log_mel
from core.models import is_ctranslate2, load_model, load_processor, resolve_model
from core.vad import speech_regions
from core.workspace import Workspace

QUIET_SEARCH_S = 1.0  # look this far back from a window's end for the quietest 20 ms to cut at
FRAME = 320  # 20 ms at 16 kHz


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str


def split_windows(samples: np.ndarray, window: int) -> list[tuple[int, int]]:
    """(start, end) sample ranges no longer than `window`, cut at the quietest 20 ms near each window's end."""
    spans, start, total = [], 0, len(samples)
    search = int(QUIET_SEARCH_S * SAMPLE_RATE)
    while start < total:
        end = min(start + window, total)
        if end < total:
            lo = max(start + window // 2, end - search)
            region = samples[lo:end]
            frames = len(region) // FRAME
            if frames > 1:
                energy = (region[: frames * FRAME].reshape(frames, FRAME) ** 2).mean(axis=1)
                end = lo + int(np.argmin(energy)) * FRAME + FRAME // 2
        spans.append((start, end))
        start = end
    return spans


def speech_windows(samples: np.ndarray, window: int) -> list[tuple[int, int]]:
    """Windows over the speech only: regions from the VAD, packed whole into windows of at most `window` samples;
    a region longer than a window is cut at its quietest moments (split_windows). Silence is never decoded.
    Audio that fits in one window is decoded whole, as the model saw its training clips."""
    if len(samples) <= window:
        return [(0, len(samples))] if len(samples) else []
    windows: list[list[int]] = []
    for start, end in speech_regions(samples):
        if end - start > window:
            windows += [[start + s, start + e] for s, e in split_windows(samples[start:end], window)]
        else:
            windows.append([start, end])
    return [(s, e) for s, e in windows]


class Transcriber:
    """A model and its processor, loaded once; `language` is a Whisper code (`no`) or None to detect it.

    With `prefer_ctranslate2` a transformers folder that has a CTranslate2 twin (the installed whisper-base) runs on
    the twin with int8 compute on a CPU (float16 on a GPU); evaluation turns it off to measure the very weights that
    training starts from."""

    def __init__(
        self,
        model: str,
        workspace: Workspace,
        language: str | None = None,
        task: str = "transcribe",
        device: str | None = None,
        prefer_ctranslate2: bool = True,
    ):
        self.model_name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.language, self.task = language, task
        location = resolve_model(model, workspace)
        twin = ctranslate2_twin(location) if prefer_ctranslate2 else None
        if twin is not None:
            compute = "float16" if self.device == "cuda" else "int8"
            self.model, self.processor = (
                CTranslate2Whisper(str(twin), self.device, compute),
                load_processor(location, workspace),
            )
        elif is_ctranslate2(location):
            self.model, self.processor = CTranslate2Whisper(location, self.device), load_processor(location, workspace)
        else:
            self.model, self.processor = load_model(location, workspace, language=language, task=task)
            self.model.to(self.device).eval()
        extractor = self.processor.feature_extractor
        self.window = extractor.n_samples  # samples per window: the processor says how long the model listens

    @torch.inference_mode()
    def generate(
        self,
        features: np.ndarray | torch.Tensor,
        max_new_tokens: int | None = None,
        language: str | None = None,
        task: str | None = None,
    ) -> list[str]:
        """Decode a batch of log-mel features (batch, n_mels, frames) to text; language/task override the
        transcriber's own for this call."""
        inputs = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        language = language or self.language
        kwargs = {"task": task or self.task, **({"language": language} if language else {})}
        if max_new_tokens:
            kwargs["max_new_tokens"] = max_new_tokens
        if isinstance(self.model, CTranslate2Whisper):
            return self.model.generate(
                np.asarray(features, np.float32), self.processor.tokenizer, language, task or self.task, max_new_tokens
            )
        ids = self.model.generate(inputs, **kwargs)
        return [t.strip() for t in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def features(self, clips: list[np.ndarray]) -> np.ndarray:
        return log_mel(clips, self.processor.feature_extractor)

    def transcribe_array(
        self, samples: np.ndarray, batch_size: int = 16, language: str | None = None, task: str | None = None
    ) -> list[Segment]:
        """16 kHz mono samples → segments with times; long audio is windowed and decoded in batches."""
        spans = speech_windows(samples, self.window)
        segments = []
        for i in range(0, len(spans), batch_size):
            chunk = spans[i : i + batch_size]
            texts = self.generate(self.features([samples[s:e] for s, e in chunk]), language=language, task=task)
            segments += [Segment(s / SAMPLE_RATE, e / SAMPLE_RATE, t) for (s, e), t in zip(chunk, texts)]
        return segments

    def transcribe(
        self, source: AudioSource, name: str | None = None, language: str | None = None, task: str | None = None
    ) -> list[Segment]:
        """A file path or the bytes of an audio file, in any format core/audio.py decodes."""
        return self.transcribe_array(load_audio(source, name=name), language=language, task=task)

    def text(self, samples: np.ndarray, language: str | None = None, task: str | None = None) -> str:
        """All segments' text joined: what the live and conversation paths need."""
        return " ".join(s.text for s in self.transcribe_array(samples, language=language, task=task)).strip()


class CTranslate2Whisper:
    """An exported model (core/export.py) run by CTranslate2: the engine faster-whisper is built on."""

    def __init__(self, folder: str, device: str, compute_type: str = "default"):
        import ctranslate2

        self.engine = ctranslate2.models.Whisper(
            folder, device=device, compute_type=compute_type, intra_threads=os.cpu_count() or 1
        )

    def generate(
        self, features: np.ndarray, tokenizer, language: str | None, task: str, max_new_tokens: int | None
    ) -> list[str]:
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        if language is None:
            language = self.engine.detect_language(batch)[0][0][0].strip("<|>")
        prompt = tokenizer.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
        )
        results = self.engine.generate(
            batch, [prompt] * len(features), beam_size=1, max_length=max_new_tokens or 448, return_scores=False
        )
        return [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results]


def format_segments(segments: list[Segment]) -> str:
    return "\n".join(f"[{s.start:7.2f} → {s.end:7.2f}] {s.text}" for s in segments)
