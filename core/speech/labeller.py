"""The models that write labels, loaded once per process: clips in, rows out, each with its confidences.

Each clip is cut where there is speech (the windows file transcription uses: a clip that fits the model's window is
decoded whole, a long recording becomes one row per window) and decoded by the decoding policy (beam search, the
temperature ladder for a window that fails), which measures every window's average log-probability, compression
ratio and no-speech probability; a second model (or the same one, greedily) gives the share of words the two agree
on. Windows are batched by language and token cap, never by anything that depends on which clips share a batch: one
process and any number of ranks write the same rows.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import soundfile as sf

from core.audio.constants import SAMPLE_RATE, text_token_cap
from core.audio.decode import finite_audio_problem
from core.audio.vad import speech_windows
from core.data.examples import Example
from core.data.label_options import UNKNOWN_SPEAKER, LabelOptions, LabelRow
from core.errors import StudioError
from core.languages import get_language
from core.speech.decoding import GREEDY, DecodingOptions, WindowDecoder, file_options, is_toy
from core.speech.inference import Transcriber
from core.text.wer import align_words
from core.workspace import Workspace

CAP_STEP_S = 5  # seconds: windows' token caps go by this much audio (a 3 s and a 4 s clip decode in one batch)


@dataclass(frozen=True)
class Labelled:
    """One row decoded, with the audio its clip keeps (None for a row that has no speech)."""

    row: LabelRow
    samples: np.ndarray | None


@dataclass(frozen=True)
class SpeechWindow:
    """One window of speech of a clip, as it is decoded: a row of the label set."""

    index: int  # the clip's place in the source
    part: int  # the window's place in its clip
    parts: int  # windows in the clip (above 1: a long recording)
    example: Example
    samples: np.ndarray
    start: int  # sample of the clip the window starts at
    language: str  # Whisper code it is decoded in


class ClipLabeller:
    """The models, loaded once per process: clips in, rows with their confidences out."""

    def __init__(self, options: LabelOptions, workspace: Workspace):
        self.language = get_language(options.language).whisper if options.language else None
        self.main = Transcriber(options.model, workspace, language=self.language)
        # the toy never passes the fallback's thresholds: greedy in one pass, as Transcribe decodes it
        accurate = not is_toy(options.model)
        self.decoding = replace(file_options(accurate), beam_size=options.beam_size if accurate else 1)
        self.second = None
        if options.agree_with:
            same = options.agree_with == options.model
            self.second = self.main if same else Transcriber(options.agree_with, workspace, language=self.language)
        self.batch = options.batch_size

    def label(self, clips: list[tuple[int, Example]]) -> list[Labelled]:
        """Rows for (index, Example) pairs: one per speech window of each clip, or one saying why it has none."""
        out: list[Labelled] = []
        windows: list[SpeechWindow] = []
        for index, example in clips:
            try:
                samples = example.load_audio()
                problem = finite_audio_problem(samples)
            except StudioError as err:
                samples, problem = np.zeros(0, np.float32), str(err)
            spans = [] if problem else speech_windows(samples, self.main.window, self.decoding.vad)
            if not spans:
                out.append(Labelled(_row(index, example, len(samples), problem or "no speech heard"), None))
                continue
            first = samples[spans[0][0] : spans[0][1]]
            language = self.language or self.main.detect_language(self.main.features([first]))[0]
            for part, (start, end) in enumerate(spans):
                windows.append(SpeechWindow(index, part, len(spans), example, samples[start:end], start, language))
        # windows decoded together share a language and a token cap: a row never depends on its batch, so one
        # process and any number of ranks write the same rows
        for language, most in dict.fromkeys((w.language, token_cap(len(w.samples))) for w in windows):
            group = [w for w in windows if (w.language, token_cap(len(w.samples))) == (language, most)]
            for at in range(0, len(group), self.batch):
                out += self._decoded(group[at : at + self.batch], language, most)
        return sorted(out, key=lambda done: (done.row.index, done.row.part))

    def _decoded(self, windows: list[SpeechWindow], language: str, most: int) -> list[Labelled]:
        clips = [w.samples for w in windows]
        encoded = self.main.backend.encode(self.main.features(clips))
        results = self._policy(self.main, language, self.decoding).decode(encoded, most)
        others = self._second_texts(clips, encoded, language, most)
        out = []
        for window, result, other in zip(windows, results, others):
            row = _row(window.index, window.example, len(window.samples), "" if result.text else "the model heard "
                       "no speech")  # fmt: skip
            if window.parts > 1:  # a long recording: one row per window
                row.id = f"{window.example.id}@{window.start / SAMPLE_RATE:.2f}"
                row.part, row.parts = window.part, window.parts
            row.text, row.language, row.temperature = result.text, language, result.temperature
            row.avg_log_prob = round(float(result.avg_log_prob), 4)
            row.compression_ratio = round(float(result.compression_ratio), 4)
            row.no_speech_prob = round(float(result.no_speech_prob), 4)
            if other is not None and result.text:
                row.agreement = round(max(0.0, 1.0 - align_words(result.text, other)["wer"]), 4)
            out.append(Labelled(row, window.samples if result.text else None))
        return out

    def _second_texts(self, clips, encoded, language: str, most: int) -> list[str | None]:
        if self.second is None:
            return [None] * len(clips)
        states = encoded if self.second is self.main else self.second.backend.encode(self.second.features(clips))
        return [r.text for r in self._policy(self.second, language, GREEDY).decode(states, most)]

    @staticmethod
    def _policy(transcriber: Transcriber, language: str, options: DecodingOptions) -> WindowDecoder:
        # no prompt and no previous text: the decoder holds no state between batches, one per call is as good
        return WindowDecoder(transcriber.backend, transcriber.processor.tokenizer, options, language, "transcribe")


def token_cap(samples: int) -> int:
    """The most tokens a window of `samples` may give: a transcript longer than speech allows is a loop, cut off as
    transcription cuts it (TEXT_TOKENS_PER_SECOND_CAP, inference.py), here by the window's length rounded up to
    CAP_STEP_S so that windows of similar length decode together."""
    seconds = CAP_STEP_S * math.ceil(samples / SAMPLE_RATE / CAP_STEP_S)
    return text_token_cap(seconds)


def _row(index: int, example: Example, samples: int, reason: str) -> LabelRow:
    return LabelRow(
        index=index,
        id=example.id,
        audio_name=example.audio_name or example.id,
        seconds=round(samples / SAMPLE_RATE, 3),
        speaker=example.speaker or UNKNOWN_SPEAKER,
        reference=example.text or "",
        reason=reason,
    )


def flac_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, "PCM_16", format="FLAC")
    return buffer.getvalue()
