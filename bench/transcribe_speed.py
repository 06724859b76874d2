"""Transcription speed with whisper-base: ours against faster-whisper and the transformers pipeline.

The same recordings (espeak-ng sentences read with pauses, English and Norwegian, over 3 minutes in all), the same
model, greedy decoding (beam 1) on every side, the language given, no timestamps, 2 CPU threads:
- ours: `Transcriber("whisper-base")`: the installed CTranslate2 file, int8 compute, stretches of speech packed
  into windows of up to 30 s (core/vad.py), 16 windows per batch;
- faster-whisper's own `WhisperModel.transcribe` on the same CTranslate2 folder, int8, as its README shows it
  (`without_timestamps=True`, `beam_size=1`), and its `BatchedInferencePipeline` (batch 16, its VAD), the way its
  README says to run it fast;
- the transformers pipeline over the converted folder, chunked at 30 s with `batch_size=8`, float32 (its docs'
  advice for long audio).
Each side is warmed on an excerpt, then runs REPEATS times in alternating order; seconds are the median (range);
WER against the script is shown next to every time.

    python bench/transcribe_speed.py [--sentences 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import REPEATS, alternate, recording, sentences, spread, verdict

from bench.report import write_section
from core.audio import SAMPLE_RATE
from core.models import resolve_model
from core.speech import Transcriber
from core.text import error_rates
from core.workspace import Workspace

BATCH = 16
THREADS = os.cpu_count() or 2


def sides(workspace: Workspace, language: str):
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from transformers import pipeline

    folder = resolve_model("whisper-base", workspace)
    ours = Transcriber("whisper-base", workspace, language=language)
    fw = WhisperModel(
        str(Path(folder).parent / "whisper-base-ct2"), device="cpu", compute_type="int8", cpu_threads=THREADS
    )
    batched = BatchedInferencePipeline(model=fw)
    asr = pipeline("automatic-speech-recognition", model=folder, device="cpu", chunk_length_s=30, batch_size=8)
    options = {"language": language, "task": "transcribe", "num_beams": 1}

    def faster(audio):
        segments, _ = fw.transcribe(audio, language=language, beam_size=1, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments)

    def faster_batched(audio):
        segments, _ = batched.transcribe(
            audio, language=language, beam_size=1, batch_size=BATCH, without_timestamps=True
        )
        return " ".join(s.text.strip() for s in segments)

    return {
        "ours: Transcriber, CTranslate2 int8, VAD windows": ours.text,
        "faster-whisper `WhisperModel.transcribe`, int8": faster,
        "faster-whisper `BatchedInferencePipeline`, batch 16, int8": faster_batched,
        "transformers pipeline, chunk 30 s, batch 8, fp32": lambda a: asr(
            {"raw": a, "sampling_rate": SAMPLE_RATE}, generate_kwargs=options
        )["text"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=40, help="sentences per language")
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace): whisper-base is made there")
    args = parser.parse_args()
    workspace = Workspace.open(args.home)
    sections, total = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for language, code in (("en", "en"), ("nb", "no")):
            audio, script = recording(sentences(Path(tmp) / language, language, args.sentences, seed=21))
            seconds = len(audio) / SAMPLE_RATE
            total += seconds
            contestants = sides(workspace, code)
            excerpt = audio[: 20 * SAMPLE_RATE]
            for fn in contestants.values():
                fn(excerpt)  # warm-up: first calls pay one-off set-up costs
            times = alternate({name: (lambda fn=fn, a=audio: fn(a)) for name, fn in contestants.items()}, warm=False)
            texts = alternate.outputs
            ours_name = next(iter(contestants))
            rows = []
            for name in contestants:
                wer = error_rates([script], [texts[name]])["wer"]
                against = "–" if name == ours_name else verdict(times[ours_name], times[name])
                rows.append(
                    f"| {name} | {spread(times[name], 1)} | {seconds / min(times[name]):.0f}× | "
                    f"{100 * wer:.1f}% | {against} |"
                )
            sections.append(
                f"**{language}**, {seconds:.0f} s of speech ({args.sentences} sentences):\n\n"
                "| path | seconds | faster than real time (best) | WER | ours against it |\n"
                "|---|---:|---:|---:|---|\n" + "\n".join(rows)
            )
    body = f"""## Transcription speed with whisper-base (`bench/transcribe_speed.py`)

{total / 60:.1f} minutes of espeak-ng speech in two recordings (English, Norwegian), whisper-base on every side,
greedy decoding (beam 1), language given, no timestamps, {THREADS} CPU threads; seconds are the median (range) of
{REPEATS} alternating rounds after a warm-up; WER against the script.

{(chr(10) * 2).join(sections)}"""
    write_section("transcribe", body)
    print(body)


if __name__ == "__main__":
    main()
