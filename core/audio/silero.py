"""Silero VAD: a small neural voice detector that tells speech from noise where an energy threshold cannot.

The ONNX model (v6, 2 MB) ships inside the pinned faster-whisper wheel and runs with onnxruntime on one thread:
nothing is downloaded. It reads 512-sample chunks (32 ms at 16 kHz), each with the 64 samples before it as
context, and carries an LSTM state (h, c) from chunk to chunk; a whole file is one call (the chunks are the
sequence), the live microphone feeds it as audio arrives (`SileroStream`). A chunk is speech once its probability
reaches SPEECH_PROBABILITY and stays speech until it falls below SILENCE_PROBABILITY (hysteresis, as
faster-whisper's get_speech_timestamps).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from core.errors import StudioError

FRAME_SAMPLES = 512  # samples per decision: 32 ms at 16 kHz (the model's fixed input)
CONTEXT = 64  # samples of the previous chunk each chunk is given
STATE_SHAPE = (1, 1, 128)  # the LSTM's h and c
ROWS_PER_CALL = 10_000  # chunks per onnxruntime call (320 s of audio): bounds the memory of a long piece
SPEECH_PROBABILITY = 0.5  # a chunk this likely to be speech starts (or continues) speech
SILENCE_PROBABILITY = 0.35  # … and speech ends only below this (faster-whisper: threshold − 0.15)


def model_path() -> Path:
    """The ONNX file inside the installed faster-whisper package (found without importing it)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise StudioError("the Silero voice detector needs faster-whisper installed: pip install faster-whisper")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


@functools.cache
def _session():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1  # 32 ms chunks: threads would only wait
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"], sess_options=options)


class SileroStream:
    """Speech probabilities of audio fed in any sizes: one per complete 512-sample chunk, state carried across."""

    def __init__(self):
        self.h = np.zeros(STATE_SHAPE, np.float32)
        self.c = np.zeros(STATE_SHAPE, np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.pending = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        count = len(audio) // FRAME_SAMPLES
        self.pending = audio[count * FRAME_SAMPLES :]
        if count == 0:
            return np.zeros(0, np.float32)
        chunks = audio[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
        previous = np.concatenate([self.context[None], chunks[:-1, -CONTEXT:]])  # each chunk's 64 samples before
        self.context = chunks[-1, -CONTEXT:].copy()
        rows = np.concatenate([previous, chunks], axis=1)
        out = []
        for start in range(0, count, ROWS_PER_CALL):
            feed = {"input": rows[start : start + ROWS_PER_CALL], "h": self.h, "c": self.c}
            probabilities, self.h, self.c = _session().run(None, feed)
            out.append(np.asarray(probabilities, np.float32).reshape(-1))
        return np.concatenate(out)


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """One probability per 512-sample chunk of `samples` (the last partial chunk padded with zeros)."""
    padded = np.pad(np.asarray(samples, np.float32), (0, -len(samples) % FRAME_SAMPLES))
    return SileroStream().push(padded)


def speech_chunks(probabilities: np.ndarray) -> np.ndarray:
    """Whether each chunk is speech, with hysteresis: on at SPEECH_PROBABILITY, off below SILENCE_PROBABILITY."""
    voiced = np.zeros(len(probabilities), bool)
    speaking = False
    for i, p in enumerate(probabilities):
        speaking = p >= SPEECH_PROBABILITY or (speaking and p >= SILENCE_PROBABILITY)
        voiced[i] = speaking
    return voiced
