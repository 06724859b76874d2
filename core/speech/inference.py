"""Transcription: one loaded model turns features, audio arrays or files into text.

Two engines (core/speech/engines.py): transformers (any checkpoint) and CTranslate2 (an export, or the installed
whisper-base's own file, which runs with int8 compute on a CPU: the fast path for files, the live microphone and
conversation). Both decode a window by one policy (core/speech/decoding.py): beam search at temperature 0, the
temperature ladder for a window that loops or is unsure, no text for a window that is silence.

Audio is cut where there is speech (core/audio/vad.py: Silero by default, or the energy detector): stretches of
speech are packed whole into windows no longer than the model's (30 s for Whisper, a few seconds for the demo), a
stretch longer than a window is cut at its quietest moments, silence is skipped, and the windows are decoded in
batches. Every segment keeps its times in seconds; with word timestamps its words too (core/speech/words.py).

A file is decoded in pieces (core/audio/decode.py: ten minutes each), so a recording of hours transcribes in
bounded memory. Speech that runs on at a piece's end is carried into the next piece, never cut at the boundary; a
file of one piece (anything under ten minutes) is windowed and decoded exactly as a whole.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.audio.constants import (
    HOP_LENGTH,
    SAMPLE_RATE,
    text_token_cap,
)
from core.audio.decode import AudioSource, audio_pieces, finite_audio_problem
from core.audio.melspec import log_mel
from core.audio.vad import speech_regions, speech_windows
from core.errors import StudioError
from core.models.installed import ctranslate2_twin
from core.models.resolve import is_ctranslate2, model_at, processor_at, resolve_model
from core.speech.decoding import GREEDY, DecodingOptions, WindowDecoder, WindowResult, fitted_frames, is_loop
from core.speech.engines import CTranslate2Whisper, TransformersWhisper
from core.speech.transcripts import Segment, Transcript
from core.speech.words import placed_words, window_words
from core.text.wer import LOOP_COMPRESSION_RATIO
from core.workspace import Workspace

WORD_PAUSE_S = 0.06  # seconds: a quieter stretch this long between words is a pause a word's start may follow
OPEN_END_S = 2.0  # a window ending this close to a piece's end may go on in the next piece: decoded with that one
CAP_STEP_S = 5  # seconds: a window's token cap counts its length rounded up to this (4.2 s and 4.9 s share one)
FILE_BATCH = 16  # windows of one file decoded together (a 30 s window each: 8 minutes of speech)
LIKELY_LANGUAGES = 3  # languages a detection keeps: the likeliest and its closest rivals, offered when it is unsure


@dataclass(frozen=True)
class EngineOptions:
    """How a `Transcriber` runs its model: on which device (None: a GPU where there is one), and whether a
    transformers folder with a CTranslate2 twin runs on the twin."""

    device: str | None = None
    prefer_ctranslate2: bool = True


class Transcriber:
    """A model and its processor, loaded once; `language` is a Whisper code (`no`) or None to detect it.

    With `EngineOptions.prefer_ctranslate2` a transformers folder that has a CTranslate2 twin (the installed
    whisper-base) runs on the twin with int8 compute on a CPU (float16 on a GPU); evaluation turns it off to measure
    the very weights that training starts from. Every window is decoded by the one policy (core/speech/decoding.py)
    with `options`, the transcriber's DecodingOptions for a call that passes none: greedy in one pass (GREEDY, what
    the live microphone and conversation use) unless given; evaluation gives its own; files get DecodingOptions'
    5 beams and its temperature fallback per call, from the command line and the server."""

    def __init__(
        self,
        model: str,
        workspace: Workspace,
        language: str | None = None,
        task: str = "transcribe",
        engine: EngineOptions | None = None,
        options: DecodingOptions | None = None,
    ):
        engine = engine or EngineOptions()
        self.model_name = model
        self.device = engine.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.language, self.task = language, task
        self.location = location = resolve_model(model, workspace)  # once: both halves load from here
        twin = ctranslate2_twin(location) if engine.prefer_ctranslate2 else None
        self.processor = processor_at(location, model)
        if twin is not None:
            compute = "float16" if self.device == "cuda" else "int8"
            self.model = CTranslate2Whisper(str(twin), self.device, compute, self.processor.tokenizer)
        elif is_ctranslate2(location):
            self.model = CTranslate2Whisper(location, self.device, tokenizer=self.processor.tokenizer)
        else:
            self.model, _ = model_at(location, language=language, task=task, model=model)
            self.model.to(self.device).eval()
        # what the decoding policy talks to: the CTranslate2 model itself, or the transformers one behind an adapter
        self.backend = (
            self.model if self.engine == "ctranslate2" else TransformersWhisper(self.model, self.processor.tokenizer)
        )
        self.options = options or GREEDY
        extractor = self.processor.feature_extractor
        self.window = extractor.n_samples  # samples per window: the processor says how long the model listens

    @property
    def engine(self) -> str:
        return "ctranslate2" if isinstance(self.model, CTranslate2Whisper) else "transformers"

    @torch.inference_mode()
    def window_texts(self, features: np.ndarray, seconds: list[float]) -> list[str]:
        """The text of each clip of a batch of log-mel windows (clips, n_mels, frames), the clips `seconds` long,
        decoded by the policy with the transcriber's options and language (detected from the first clip when it
        has none): what evaluation measures, window by window as a file's windows are decoded."""
        features = np.asarray(features, np.float32)
        language = self.language or self.detect_language(features[:1])[0]
        policy = self._policy(language, None, self.options)
        encoded = self.backend.encode(features)
        results = []
        caps = [self.token_cap(round(s * SAMPLE_RATE)) for s in seconds]
        for first, last, cap in _runs(caps):
            results += policy.decode(encoded[first:last], cap)
        return [result.text for result in results]

    def detect_language(self, features: np.ndarray) -> tuple[str, float]:
        """(Whisper code, probability) of the language in the first window: the softmax of the first decoding
        step over the language tokens, as Whisper itself detects it (the engine's own detector)."""
        return self.likely_languages(features, 1)[0]

    def likely_languages(self, features: np.ndarray, top: int = LIKELY_LANGUAGES) -> list[tuple[str, float]]:
        """The `top` likeliest languages of the first window, likeliest first: (Whisper code, probability)."""
        return self.backend.likely_languages(np.asarray(features[:1], np.float32), top)

    def using(self, backend) -> Transcriber:
        """This transcriber with its model calls going to `backend` (the same model, loaded once): how a request
        of `serve` or one file of a batch queues its windows on the model's engine loop (core/speech/batching.py)."""
        clone = copy.copy(self)
        clone.backend = backend
        return clone

    def features(self, clips: list[np.ndarray]) -> np.ndarray:
        return log_mel(clips, self.processor.feature_extractor)

    def transcribe_array(
        self,
        samples: np.ndarray,
        batch_size: int = FILE_BATCH,
        language: str | None = None,
        task: str | None = None,
        options: DecodingOptions | None = None,
    ) -> list[Segment]:
        """16 kHz mono samples → segments with times; long audio is windowed and decoded in batches."""
        options = options or self.options
        spans = speech_windows(samples, self.window, options.vad)
        language = language or self.language
        if language is None and spans:
            language = self.detect_language(self.features([samples[spans[0][0] : spans[0][1]]]))[0]
        policy = self._policy(language, task, options)
        return self._decode_windows(samples, spans, 0, batch_size, policy)

    def _policy(self, language: str | None, task: str | None, options: DecodingOptions) -> WindowDecoder:
        tokenizer = self.processor.tokenizer
        return WindowDecoder(self.backend, tokenizer, options, language or "en", task or self.task)

    @torch.inference_mode()
    def _decode_windows(
        self, samples: np.ndarray, spans: list[tuple[int, int]], offset: int, batch_size: int, policy: WindowDecoder
    ) -> list[Segment]:
        """Decode `spans` of `samples` in batches; segment times count from `offset` samples into the file. A window
        judged silence gives no segment."""
        segments, speech = [], None
        for i in range(0, len(spans), batch_size):
            chunk = spans[i : i + batch_size]
            features, lengths = self.features([samples[s:e] for s, e in chunk]), [e - s for s, e in chunk]
            encoded, results = self._decode_batch(policy, features, lengths)
            words = (
                self._words(policy, encoded, chunk, [r.tokens for r in results])
                if policy.options.word_timestamps
                else {}
            )
            if words and speech is None:
                speech = [
                    ((offset + a) / SAMPLE_RATE, (offset + b) / SAMPLE_RATE) for a, b in self._onsets(samples, policy)
                ]
            for k, ((s, e), result) in enumerate(zip(chunk, results)):
                if result.silent:
                    continue
                start, end = (offset + s) / SAMPLE_RATE, (offset + e) / SAMPLE_RATE
                timed = placed_words(words.get(k, []), start, end, speech or [])
                measures = (result.temperature, result.avg_log_prob, result.compression_ratio, result.no_speech_prob)
                segments.append(Segment(start, end, result.text, timed, *measures))
        return segments

    def _decode_batch(self, policy: WindowDecoder, features: np.ndarray, lengths: list[int]):
        """(encoded windows, results) for a batch of windows `lengths` samples long. With a fitted context
        (DecodingOptions.fitted_context, on an engine that takes one) they are encoded over their audio and a margin
        only (fitted_frames), and a window whose text loops (Whisper's failure when it sees too little of the silence
        after speech) is decoded again over the full window, so a fitted context is never worse than a loop."""
        options = policy.options
        fitted = options.fitted_context and self.backend.fits_context
        frames = fitted_frames(max(lengths), self.processor.feature_extractor) if fitted else None
        initial_prompt = policy.previous  # what the file's first window is given (the policy then drops it)
        encoded = self.backend.encode(features if frames is None else features[..., :frames])
        caps = [self.token_cap(length) for length in lengths]
        results = self._decode_runs(policy, encoded, caps)
        if frames is None:
            return encoded, results
        threshold = options.compression_ratio_threshold or LOOP_COMPRESSION_RATIO  # looked for even where it is off
        looped = [k for k, r in enumerate(results) if is_loop(r, caps[k], threshold)]
        if looped:
            policy.previous = initial_prompt if looped[0] == 0 else []
            again = self._decode_runs(policy, self.backend.encode(features[looped]), [caps[k] for k in looped])
            for k, result in zip(looped, again):
                results[k] = result
        return encoded, results

    def _decode_runs(self, policy: WindowDecoder, encoded, caps: list[int]) -> list[WindowResult]:
        """The policy's results for encoded windows, those with one token cap decoded together, in order (the
        policy may carry a prompt from one to the next)."""
        results = []
        for first, last, cap in _runs(caps):
            results += policy.decode(encoded[first:last], cap)
        return results

    def token_cap(self, length: int) -> int:
        """Most tokens a window of `length` samples may produce. A transcript longer than speech allows is a loop
        (Whisper's classic failure): stopped early, at TEXT_TOKENS_PER_SECOND_CAP of the window's length rounded
        up to CAP_STEP_S (windows of similar length share a cap, so many requests' windows share one decoding
        call), never more than 224 (openai/whisper's sample_len, half the decoder's positions, as CTranslate2
        enforces). A window's cap is its own: its text does not depend on the windows decoded beside it."""
        step = CAP_STEP_S * SAMPLE_RATE
        seconds = min(self.window, math.ceil(length / step) * step) / SAMPLE_RATE
        return text_token_cap(seconds)

    def _onsets(self, samples: np.ndarray, policy: WindowDecoder) -> list[tuple[int, int]]:
        """Unpadded speech regions whose starts the words after a pause are moved to: the alignment gives a pause
        to the word after it (0.18 s early, measured). Energy regions with pauses down to WORD_PAUSE_S find the
        gaps between words where the audio is clean; where noise hides them all, the file's voice detector's."""
        fine = speech_regions(samples, min_gap_s=WORD_PAUSE_S, pad_s=0.0, detector="energy")
        return fine or speech_regions(samples, pad_s=0.0, detector=policy.options.vad)

    def _words(self, policy: WindowDecoder, encoded, chunk, texts: list[list[int]]) -> dict[int, list[dict]]:
        """{index in the batch: words timed within its window} for the windows that have text (token ids)."""
        timed = [k for k, tokens in enumerate(texts) if tokens]
        if not timed:
            return {}
        frames_most = self.processor.feature_extractor.nb_max_frames
        frames = [min(frames_most, (chunk[k][1] - chunk[k][0]) // HOP_LENGTH) for k in timed]
        alignments = self.backend.align(encoded[timed], policy.start_sequence, [texts[k] for k in timed], frames)
        tokenizer = self.processor.tokenizer
        return {k: window_words(tokenizer, texts[k], a) for k, a in zip(timed, alignments)}

    def transcribe_file(
        self,
        source: AudioSource,
        name: str | None = None,
        language: str | None = None,
        task: str | None = None,
        options: DecodingOptions | None = None,
    ) -> Transcript:
        """A file path or the bytes of an audio file, in any format core/audio.py decodes → a Transcript. Without a
        language the first stretch of speech decides it (with its probability), and every window uses it. The file
        is decoded a piece at a time (see the module's docstring); invalid (NaN/inf) samples are refused. `options`
        (DecodingOptions) say how each window is decoded; without them, the transcriber's beams and the defaults."""
        progress = self.transcribe_progressively(source, name, language, task, options)
        return deque(progress, maxlen=1)[0]  # the last: the whole transcript

    def transcribe_progressively(
        self,
        source: AudioSource,
        name: str | None = None,
        language: str | None = None,
        task: str | None = None,
        options: DecodingOptions | None = None,
        batch_size: int = FILE_BATCH,
    ) -> Iterator[Transcript]:
        """`transcribe_file`, as it goes: the transcript so far after each batch of `batch_size` windows (what a
        streaming answer sends as it is decoded), the last one whole, with the audio's full length. The segments
        are the same whatever the batch size."""
        options = options or self.options
        label = name or (str(source) if not isinstance(source, bytes) else "audio")
        language = language or self.language
        probability, segments, total, policy, likely = None, [], 0, None, []
        pieces = audio_pieces(source, name=name)
        for offset, samples, spans in self._stretches(pieces, label, options.vad):
            total = offset + len(samples)
            if language is None and spans:
                start, end = spans[0]
                likely = self.likely_languages(self.features([samples[start:end]]))
                language, probability = likely[0]
            if spans:
                policy = policy or self._policy(language, task, options)  # one per file: it carries the prompt
            for i in range(0, len(spans), batch_size):
                batch = spans[i : i + batch_size]
                segments += self._decode_windows(samples, batch, offset, batch_size, policy)
                end_s = (offset + batch[-1][1]) / SAMPLE_RATE
                yield Transcript(list(segments), language, probability, end_s, label, likely_languages=likely)
        yield Transcript(segments, language, probability, total / SAMPLE_RATE, label, likely_languages=likely)

    @torch.inference_mode()
    def time_words(
        self,
        source: AudioSource,
        transcript: Transcript,
        options: DecodingOptions | None = None,
        task: str | None = None,
    ) -> Transcript:
        """`transcript` (what `transcribe_file(source, options=options)` made) with every word timed, without decoding
        again: the same windows (the same voice detector on the same audio) are encoded and aligned with each
        segment's own text, so the text stays exactly as it was (a second decode could sample other words)."""
        options = options or self.options
        policy = self._policy(transcript.language, task, options)
        tokenizer = self.processor.tokenizer
        segments = {round(s.start * SAMPLE_RATE): s for s in transcript.segments if s.text}  # by first sample
        timed: dict[int, list] = {}
        for offset, samples, spans in self._stretches(audio_pieces(source, name=transcript.source), "", options.vad):
            windows = [(s, e) for s, e in spans if offset + s in segments]
            if not windows:
                continue
            speech = [
                ((offset + a) / SAMPLE_RATE, (offset + b) / SAMPLE_RATE) for a, b in self._onsets(samples, policy)
            ]
            for i in range(0, len(windows), 16):
                chunk = windows[i : i + 16]
                texts = [tokenizer.encode(" " + segments[offset + s].text, add_special_tokens=False) for s, _ in chunk]
                encoded = self.backend.encode(self.features([samples[s:e] for s, e in chunk]))
                words = self._words(policy, encoded, chunk, texts)
                for k, (s, e) in enumerate(chunk):
                    start, end = (offset + s) / SAMPLE_RATE, (offset + e) / SAMPLE_RATE
                    timed[offset + s] = placed_words(words.get(k, []), start, end, speech)
        return replace(
            transcript,
            segments=[replace(s, words=timed.get(round(s.start * SAMPLE_RATE), s.words)) for s in transcript.segments],
        )

    def _stretches(
        self, pieces: Iterable[np.ndarray], label: str, detector: str
    ) -> Iterator[tuple[int, np.ndarray, list]]:
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
            spans = self._windows(samples, offset == 0 and following is None, detector)
            cut = len(samples)
            if following is not None:
                open_end = max(0, len(samples) - int(OPEN_END_S * SAMPLE_RATE))
                cut = spans.pop()[0] if spans and spans[-1][1] > open_end else open_end
            yield offset, samples, spans
            carry, offset, piece = samples[cut:].copy(), offset + cut, following

    def _windows(self, samples: np.ndarray, whole: bool, detector: str) -> list[tuple[int, int]]:
        """speech_windows; for part of a file, audio shorter than a window still goes through the voice detector
        (decoding it whole is for a whole clip, as the model saw in training, not for the silence after speech)."""
        if whole or len(samples) > self.window:
            return speech_windows(samples, self.window, detector)
        regions = speech_regions(samples, detector=detector)
        return [(regions[0][0], regions[-1][1])] if regions else []

    def transcribe(
        self,
        source: AudioSource,
        name: str | None = None,
        language: str | None = None,
        task: str | None = None,
        options: DecodingOptions | None = None,
    ) -> list[Segment]:
        """The segments of `transcribe_file`."""
        return self.transcribe_file(source, name=name, language=language, task=task, options=options).segments

    def text(
        self,
        samples: np.ndarray,
        language: str | None = None,
        task: str | None = None,
        options: DecodingOptions | None = None,
    ) -> str:
        """All segments' text joined: what the live and conversation paths need (with LIVE options)."""
        segments = self.transcribe_array(samples, language=language, task=task, options=options)
        return " ".join(s.text for s in segments).strip()


def _runs(values: list[int]) -> Iterator[tuple[int, int, int]]:
    """(first, last + 1, value) of each run of equal consecutive values: [5, 5, 9] → (0, 2, 5), (2, 3, 9)."""
    first = 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[first]:
            yield first, k, values[first]
            first = k


def format_segments(segments: list[Segment]) -> str:
    return "\n".join(f"[{s.start:7.2f} → {s.end:7.2f}] {s.text}" for s in segments)
