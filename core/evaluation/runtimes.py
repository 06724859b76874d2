"""Each export loaded and run by its own runtime, behind one small interface: `transcribe(audio) → RuntimeResult`.

    ct2     faster-whisper's WhisperModel (CTranslate2; a window shorter than 30 s on CTranslate2 itself)
    ggml    whisper.cpp through pywhispercpp's Model
    openai  openai-whisper: `whisper.load_model(path)`, then `whisper.decode` on the model's own window
    onnx    sherpa-onnx's OfflineRecognizer.from_whisper (onnxruntime inside)

Every runtime decodes as evaluation does: greedy, temperature 0 with no fallback, no previous text, language and
task given, one window per clip (the rows of a prepared split are at most one window long), the same number of
threads. With `words` each gives its own word start times (faster-whisper's and openai-whisper's DTW over the
alignment heads, whisper.cpp's token timestamps, sherpa-onnx's DTW over the decoder's alignment-head output). A
runtime package that is missing is one line naming the pip command.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.audio.constants import MAX_TARGET_POSITIONS, SAMPLE_RATE, WINDOW_SECONDS
from core.errors import StudioError

THREADS = os.cpu_count() or 1
# format → (import name, pip requirement): the pins of requirements.txt / requirements-dev.txt
RUNTIME_PACKAGES = {
    "ct2": ("faster_whisper", "faster-whisper==1.2.1"),
    "ggml": ("pywhispercpp", "pywhispercpp==1.5.1"),
    "openai": ("whisper", "openai-whisper==20250625"),
    "onnx": ("sherpa_onnx", "sherpa-onnx==2.0.1"),
}


@dataclass(frozen=True)
class RuntimeResult:
    text: str
    words: list[tuple[str, float]] = field(default_factory=list)  # (word, start in seconds)


def check_runtime(fmt: str) -> None:
    """One line naming the pip command when `fmt`'s runtime package is not installed."""
    module, requirement = RUNTIME_PACKAGES[fmt]
    try:
        importlib.import_module(module)  # imported, not only found: a broken install counts as missing
    except ImportError:
        raise StudioError(
            f"checking the {fmt} export needs its runtime, which is not installed: .venv/bin/pip install {requirement}"
        ) from None


def _words_from_tokens(tokens: list[str], starts: list[float]) -> list[tuple[str, float]]:
    """Tokens with start times → words: a token that starts with a space starts a word."""
    words: list[tuple[str, float]] = []
    for token, start in zip(tokens, starts):
        if not words or token.startswith(" "):
            if token.strip():
                words.append((token.strip(), float(start)))
        else:
            words[-1] = (words[-1][0] + token, words[-1][1])
    return words


class FasterWhisperRuntime:
    """faster-whisper; a model of a shorter window than Whisper's 30 s (the demo's 3 s) runs on CTranslate2 itself,
    faster-whisper's engine, because faster-whisper pads every window to 3,000 frames."""

    def __init__(self, folder: Path, window_samples: int):
        self.standard = window_samples == WINDOW_SECONDS * SAMPLE_RATE
        if self.standard:
            from faster_whisper import WhisperModel

            self.model = WhisperModel(str(folder), device="cpu", compute_type="default", cpu_threads=THREADS)
        else:
            import ctranslate2
            from transformers import WhisperProcessor

            self.ctranslate2 = ctranslate2
            self.model = ctranslate2.models.Whisper(str(folder), device="cpu", intra_threads=THREADS)
            self.processor = WhisperProcessor.from_pretrained(str(folder))

    def transcribe(self, audio: np.ndarray, language: str, task: str, words: bool = False) -> RuntimeResult:
        if not self.standard:
            return self._transcribe_window(audio, language, task)
        segments, _ = self.model.transcribe(
            audio, language=language, task=task, beam_size=1, temperature=0.0, condition_on_previous_text=False,
            without_timestamps=not words, word_timestamps=words, vad_filter=False,
        )  # fmt: skip
        segments = list(segments)
        timed = [(w.word.strip(), float(w.start)) for s in segments for w in (s.words or [])]
        return RuntimeResult(" ".join(s.text.strip() for s in segments).strip(), timed)

    def _transcribe_window(self, audio: np.ndarray, language: str, task: str) -> RuntimeResult:
        extractor, tokenizer = self.processor.feature_extractor, self.processor.tokenizer
        features = extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
        prompt = tokenizer.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
        )
        storage = self.ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        result = self.model.generate(storage, [prompt], beam_size=1, max_length=MAX_TARGET_POSITIONS)[0]
        return RuntimeResult(tokenizer.decode(result.sequences_ids[0], skip_special_tokens=True).strip())


class WhisperCppRuntime:
    def __init__(self, file: Path, window_samples: int):
        from pywhispercpp.model import Model

        self.model = Model(str(file), redirect_whispercpp_logs_to=None, n_threads=THREADS, print_progress=False,
                           print_realtime=False, no_context=True, temperature_inc=0.0, greedy={"best_of": 1},
                           suppress_blank=True)  # fmt: skip

    def transcribe(self, audio: np.ndarray, language: str, task: str, words: bool = False) -> RuntimeResult:
        import _pywhispercpp as pw

        segments = self.model.transcribe(
            audio.astype(np.float32), language=language, translate=task == "translate", no_timestamps=not words,
            token_timestamps=words, single_segment=True,
        )  # fmt: skip
        text = " ".join(s.text.strip() for s in segments).strip()
        if not words:
            return RuntimeResult(text)
        ctx, tokens, starts = self.model._ctx, [], []
        eot = pw.whisper_token_eot(ctx)
        for i in range(pw.whisper_full_n_segments(ctx)):
            for j in range(pw.whisper_full_n_tokens(ctx, i)):
                data = pw.whisper_full_get_token_data(ctx, i, j)
                if data.id < eot:  # text tokens only
                    tokens.append(pw.whisper_full_get_token_text(ctx, i, j))
                    starts.append(data.t0 / 100)  # whisper.cpp's times are in 10 ms steps
        return RuntimeResult(text, _words_from_tokens(tokens, starts))


class OpenAIWhisperRuntime:
    def __init__(self, file: Path, window_samples: int):
        import torch
        import whisper

        torch.set_num_threads(THREADS)
        self.whisper, self.window = whisper, window_samples
        self.model = whisper.load_model(str(file), device="cpu")
        heads = file.parent / "alignment_heads.json"
        if heads.is_file():
            from core.models.export_openai import alignment_heads_dump

            dims = self.model.dims
            chosen = json.loads(heads.read_text())["alignment_heads"]
            self.model.set_alignment_heads(alignment_heads_dump(chosen, dims.n_text_layer, dims.n_text_head))

    def transcribe(self, audio: np.ndarray, language: str, task: str, words: bool = False) -> RuntimeResult:
        whisper = self.whisper
        if words:  # transcribe() is the runtime's word-timing path; it needs the standard 30 s window
            result = self.model.transcribe(
                audio, language=language, task=task, temperature=0.0, condition_on_previous_text=False,
                word_timestamps=True, fp16=False,
            )  # fmt: skip
            timed = [(w["word"].strip(), float(w["start"])) for s in result["segments"] for w in s.get("words", [])]
            return RuntimeResult(result["text"].strip(), timed)
        mel = whisper.log_mel_spectrogram(
            whisper.pad_or_trim(audio.astype(np.float32), self.window), n_mels=self.model.dims.n_mels
        )
        options = whisper.DecodingOptions(language=language, task=task, without_timestamps=True, fp16=False)
        return RuntimeResult(whisper.decode(self.model, mel, options).text.strip())


class SherpaOnnxRuntime:
    def __init__(self, encoder: Path, window_samples: int):
        self.encoder = encoder
        self.decoder = encoder.with_name(encoder.name.replace("encoder", "decoder"))
        self.tokens = encoder.with_name("tokens.txt")
        self.recognizers: dict[tuple, object] = {}

    def _recognizer(self, language: str, task: str, words: bool):
        import sherpa_onnx

        key = (language, task, words)
        if key not in self.recognizers:  # the language and task are the recognizer's settings
            self.recognizers[key] = sherpa_onnx.OfflineRecognizer.from_whisper(
                encoder=str(self.encoder), decoder=str(self.decoder), tokens=str(self.tokens), language=language,
                task=task, num_threads=THREADS, enable_token_timestamps=words,
            )  # fmt: skip
        return self.recognizers[key]

    def transcribe(self, audio: np.ndarray, language: str, task: str, words: bool = False) -> RuntimeResult:
        recognizer = self._recognizer(language, task, words)
        stream = recognizer.create_stream()
        stream.accept_waveform(SAMPLE_RATE, audio.astype(np.float32))
        recognizer.decode_stream(stream)
        result = stream.result
        timed = _words_from_tokens(list(result.tokens), list(result.timestamps)) if words else []
        return RuntimeResult(result.text.strip(), timed)


RUNTIMES = {
    "ct2": FasterWhisperRuntime,
    "ggml": WhisperCppRuntime,
    "openai": OpenAIWhisperRuntime,
    "onnx": SherpaOnnxRuntime,
}


def open_runtime(fmt: str, file: Path, window_samples: int, warm_language: str = "en"):
    """(the loaded runtime, seconds it took to load and warm up). `file` is what the runtime loads: the ct2 folder,
    a ggml or .pt file, an ONNX encoder (its decoder and tokens.txt beside it)."""
    check_runtime(fmt)
    start = time.perf_counter()
    try:
        runtime = RUNTIMES[fmt](Path(file), window_samples)
        if fmt == "onnx":
            runtime._recognizer(warm_language, "transcribe", False)  # sherpa-onnx loads its sessions here
    except (RuntimeError, ValueError, OSError) as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise StudioError(f"{file} does not load in {fmt}'s runtime ({first}); re-export it") from None
    return runtime, time.perf_counter() - start
