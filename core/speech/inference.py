"""Transcription: one loaded model turns features, audio arrays or files into text.

Two engines: transformers (any checkpoint) and CTranslate2 (an export, or the installed whisper-base's own file,
which runs with int8 compute on a CPU: the fast path for files, the live microphone and conversation).

Audio is cut where there is speech (core/vad.py): stretches of speech are packed whole into windows no longer than
the model's (30 s for Whisper, a few seconds for the demo), a stretch longer than a window is cut at its quietest
moments, silence is skipped, and the windows are decoded in batches. Every segment keeps its times in seconds.

A file is decoded in pieces (core/audio/decode.py: ten minutes each), so a recording of hours transcribes in
bounded memory. Speech that runs on at a piece's end is carried into the next piece, never cut at the boundary; a
file of one piece (anything under ten minutes) is windowed and decoded exactly as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from core.audio.constants import MAX_TARGET_POSITIONS, SAMPLE_RATE
from core.audio.decode import AudioSource, audio_pieces, finite_audio_problem
from core.audio.melspec import log_mel
from core.audio.vad import speech_regions, speech_windows
from core.errors import StudioError
from core.models.hf_folders import language_token_ids
from core.models.installed import ctranslate2_twin
from core.models.resolve import is_ctranslate2, load_model, load_processor, resolve_model
from core.speech.transcripts import Segment, Transcript
from core.workspace import Workspace

# transcript tokens (text, not audio positions) a second of audio may give: more than any language's speech needs
# (English ~4, Norwegian ~6 tokens a second), so a window that loops is cut off
TEXT_TOKENS_PER_SECOND_CAP = 10
OPEN_END_S = 2.0  # a window ending this close to a piece's end may go on in the next piece: decoded with that one


class Transcriber:
    """A model and its processor, loaded once; `language` is a Whisper code (`no`) or None to detect it.

    With `prefer_ctranslate2` a transformers folder that has a CTranslate2 twin (the installed whisper-base) runs on
    the twin with int8 compute on a CPU (float16 on a GPU); evaluation turns it off to measure the very weights that
    training starts from. `beam_size` 1 is greedy decoding (what evaluation and the live microphone use)."""

    def __init__(
        self,
        model: str,
        workspace: Workspace,
        language: str | None = None,
        task: str = "transcribe",
        device: str | None = None,
        prefer_ctranslate2: bool = True,
        beam_size: int = 1,
    ):
        self.model_name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.language, self.task, self.beam_size = language, task, beam_size
        location = resolve_model(model, workspace)
        twin = ctranslate2_twin(location) if prefer_ctranslate2 else None
        self.processor = load_processor(location, workspace)
        if twin is not None:
            compute = "float16" if self.device == "cuda" else "int8"
            self.model = CTranslate2Whisper(str(twin), self.device, compute)
        elif is_ctranslate2(location):
            self.model = CTranslate2Whisper(location, self.device)
        else:
            self.model, _ = load_model(location, workspace, language=language, task=task)
            self.model.to(self.device).eval()
        extractor = self.processor.feature_extractor
        self.window = extractor.n_samples  # samples per window: the processor says how long the model listens
        self.language_ids = language_token_ids(self.processor.tokenizer)

    @property
    def engine(self) -> str:
        return "ctranslate2" if isinstance(self.model, CTranslate2Whisper) else "transformers"

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
        language = language or self.language
        task = task or self.task
        if isinstance(self.model, CTranslate2Whisper):
            features = np.asarray(features, np.float32)
            language = language or self.detect_language(features[:1])[0]
            return self.model.generate(
                features, self.processor.tokenizer, language, task, max_new_tokens, self.beam_size
            )
        inputs = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        kwargs = {"task": task, "num_beams": self.beam_size, **({"language": language} if language else {})}
        if max_new_tokens:
            kwargs["max_new_tokens"] = max_new_tokens
        ids = self.model.generate(inputs, **kwargs)
        return [t.strip() for t in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    @torch.inference_mode()
    def detect_language(self, features: np.ndarray) -> tuple[str, float]:
        """(Whisper code, probability) of the language in the first window: the softmax of the first decoding
        step over the language tokens, as Whisper itself detects it."""
        if isinstance(self.model, CTranslate2Whisper):
            return self.model.detect_language(np.asarray(features[:1], np.float32))
        inputs = torch.as_tensor(features[:1], dtype=torch.float32, device=self.device)
        start = torch.tensor([[self.processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")]])
        logits = self.model(input_features=inputs, decoder_input_ids=start.to(self.device)).logits[0, -1]
        tokens = list(self.language_ids)
        probabilities = torch.softmax(logits[list(self.language_ids.values())], dim=-1)
        best = int(probabilities.argmax())
        return tokens[best].strip("<|>"), float(probabilities[best])

    def features(self, clips: list[np.ndarray]) -> np.ndarray:
        return log_mel(clips, self.processor.feature_extractor)

    def transcribe_array(
        self, samples: np.ndarray, batch_size: int = 16, language: str | None = None, task: str | None = None
    ) -> list[Segment]:
        """16 kHz mono samples → segments with times; long audio is windowed and decoded in batches."""
        return self._decode_windows(samples, speech_windows(samples, self.window), 0, batch_size, language, task)

    def _decode_windows(
        self, samples: np.ndarray, spans: list[tuple[int, int]], offset: int, batch_size: int, language, task
    ) -> list[Segment]:
        """Decode `spans` of `samples` in batches; segment times count from `offset` samples into the file."""
        segments = []
        for i in range(0, len(spans), batch_size):
            chunk = spans[i : i + batch_size]
            longest_s = max(e - s for s, e in chunk) / SAMPLE_RATE
            # a transcript longer than speech allows is a loop (Whisper's classic failure): stop it early
            most = min(MAX_TARGET_POSITIONS - 4, int(TEXT_TOKENS_PER_SECOND_CAP * longest_s) + 16)
            features = self.features([samples[s:e] for s, e in chunk])
            texts = self.generate(features, max_new_tokens=most, language=language, task=task)
            segments += [
                Segment((offset + s) / SAMPLE_RATE, (offset + e) / SAMPLE_RATE, t) for (s, e), t in zip(chunk, texts)
            ]
        return segments

    def transcribe_file(
        self, source: AudioSource, name: str | None = None, language: str | None = None, task: str | None = None
    ) -> Transcript:
        """A file path or the bytes of an audio file, in any format core/audio.py decodes → a Transcript. Without a
        language the first stretch of speech decides it (with its probability), and every window uses it. The file
        is decoded a piece at a time (see the module's docstring); invalid (NaN/inf) samples are refused."""
        label = name or (str(source) if not isinstance(source, bytes) else "audio")
        language = language or self.language
        probability, segments, total = None, [], 0
        for offset, samples, spans in self._stretches(audio_pieces(source, name=name), label):
            total = offset + len(samples)
            if language is None and spans:
                start, end = spans[0]
                language, probability = self.detect_language(self.features([samples[start:end]]))
            segments += self._decode_windows(samples, spans, offset, 16, language, task)
        return Transcript(segments, language, probability, total / SAMPLE_RATE, label)

    def _stretches(self, pieces: Iterable[np.ndarray], label: str) -> Iterator[tuple[int, np.ndarray, list]]:
        """(offset in samples, samples, windows to decode) per decoded piece. A window that reaches to within
        OPEN_END_S of a piece's end is held back with the audio after it and decoded with the next piece, so
        speech is never cut at a piece boundary; at most a window and OPEN_END_S are carried."""
        pieces = iter(pieces)
        carry, offset = np.zeros(0, np.float32), 0
        piece = next(pieces, None)
        while piece is not None:
            problem = finite_audio_problem(piece)
            if problem:
                raise StudioError(f"{label}: {problem}")
            following = next(pieces, None)
            samples = np.concatenate([carry, piece]) if len(carry) else piece
            spans = self._windows(samples, whole=offset == 0 and following is None)
            cut = len(samples)
            if following is not None:
                open_end = max(0, len(samples) - int(OPEN_END_S * SAMPLE_RATE))
                cut = spans.pop()[0] if spans and spans[-1][1] > open_end else open_end
            yield offset, samples, spans
            carry, offset, piece = samples[cut:].copy(), offset + cut, following

    def _windows(self, samples: np.ndarray, whole: bool) -> list[tuple[int, int]]:
        """speech_windows; for part of a file, audio shorter than a window still goes through the voice detector
        (decoding it whole is for a whole clip, as the model saw in training, not for the silence after speech)."""
        if whole or len(samples) > self.window:
            return speech_windows(samples, self.window)
        regions = speech_regions(samples)
        return [(regions[0][0], regions[-1][1])] if regions else []

    def transcribe(
        self, source: AudioSource, name: str | None = None, language: str | None = None, task: str | None = None
    ) -> list[Segment]:
        """The segments of `transcribe_file`."""
        return self.transcribe_file(source, name=name, language=language, task=task).segments

    def text(self, samples: np.ndarray, language: str | None = None, task: str | None = None) -> str:
        """All segments' text joined: what the live and conversation paths need."""
        return " ".join(s.text for s in self.transcribe_array(samples, language=language, task=task)).strip()


class CTranslate2Whisper:
    """A CTranslate2 model (an export, or the installed whisper-base's file): the engine faster-whisper runs on."""

    def __init__(self, folder: str, device: str, compute_type: str = "default"):
        import ctranslate2

        self.engine = ctranslate2.models.Whisper(
            folder, device=device, compute_type=compute_type, intra_threads=os.cpu_count() or 1
        )

    def detect_language(self, features: np.ndarray) -> tuple[str, float]:
        import ctranslate2

        token, probability = self.engine.detect_language(ctranslate2.StorageView.from_array(features))[0][0]
        return token.strip("<|>"), probability

    def generate(
        self, features: np.ndarray, tokenizer, language: str, task: str, max_new_tokens: int | None, beam_size: int = 1
    ) -> list[str]:
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        prompt = tokenizer.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
        )
        results = self.engine.generate(
            batch,
            [prompt] * len(features),
            beam_size=beam_size,
            max_length=max_new_tokens or MAX_TARGET_POSITIONS,
            return_scores=False,
        )
        return [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results]


def format_segments(segments: list[Segment]) -> str:
    return "\n".join(f"[{s.start:7.2f} → {s.end:7.2f}] {s.text}" for s in segments)
