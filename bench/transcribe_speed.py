"""Transcription speed: real-time factor of our path against `transformers.pipeline`, and of the CTranslate2 export.

Same trained demo checkpoint, same minutes of espeak-ng speech, same cores. The pipeline is used as the seed
write-ups' demos use it (chunked at the model's window, one chunk at a time); ours gives each stretch of speech its
own window (core/vad.py), skips silence and decodes 16 windows per batch; the CTranslate2 row is our path on the
int8 export. WER of each transcript against the script is shown so speed is never bought with accuracy unnoticed.

    python bench/transcribe_speed.py [--utterances 120]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import checkpoint_benchmark, speech

from bench.report import write_section
from core.audio import SAMPLE_RATE
from core.export import export_ctranslate2
from core.inference import Transcriber
from core.metrics import error_rates


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    args, workspace, checkpoint = checkpoint_benchmark(__doc__, utterances=120)
    with tempfile.TemporaryDirectory() as tmp:
        samples, texts = speech(Path(tmp) / "speech", args.utterances)
        reference = " ".join(texts)
        seconds = len(samples) / SAMPLE_RATE

        from transformers import pipeline

        asr = pipeline("automatic-speech-recognition", model=checkpoint, device="cpu")
        window_s = asr.feature_extractor.chunk_length

        def run_pipeline(audio):
            options = {"language": "no", "task": "transcribe"}
            return asr({"raw": audio, "sampling_rate": SAMPLE_RATE}, chunk_length_s=window_s, generate_kwargs=options)[
                "text"
            ]

        ours = Transcriber(checkpoint, workspace, language="no")
        fast = Transcriber(str(export_ctranslate2(checkpoint, workspace, "int8")), workspace, language="no")
        excerpt = samples[: 5 * SAMPLE_RATE]  # first calls pay one-off set-up costs: not what we measure
        run_pipeline(excerpt), ours.text(excerpt), fast.text(excerpt)
        pipe_text, pipe_s = timed(lambda: run_pipeline(samples))
        ours_text, ours_s = timed(lambda: ours.text(samples))
        fast_text, fast_s = timed(lambda: fast.text(samples))

    def row(name, text, took):
        wer = error_rates([reference], [text])["wer"]
        return f"| {name} | {took:.1f} | {took / seconds:.3f} | {seconds / took:.1f}× | {100 * wer:.1f}% |"

    body = f"""## Transcription speed (`bench/transcribe_speed.py`)

{seconds / 60:.1f} minutes of espeak-ng speech ({args.utterances} utterances), the trained demo checkpoint
(3 s window), CPU.

| path | seconds | real-time factor | faster than real time | WER vs script |
|---|---:|---:|---:|---:|
{row("`transformers.pipeline` (chunked, batch 1)", pipe_text, pipe_s)}
{row("ours: one window per stretch of speech (VAD), batched generate", ours_text, ours_s)}
{row("ours on the CTranslate2 int8 export", fast_text, fast_s)}

**Ratios: ours {pipe_s / ours_s:.1f}× the pipeline; CTranslate2 export {pipe_s / fast_s:.1f}× the pipeline.**
faster-whisper itself cannot run this model: its `transcribe()` pads features to 3000 frames (30 s), and the demo
model's encoder takes 300; the CTranslate2 row is the engine faster-whisper runs on, through our windowing."""
    write_section("transcribe", body)
    print(body)


if __name__ == "__main__":
    main()
