"""Zero-shot WER of whisper-base on held-out espeak-ng sentences: the reference fine-tuning must beat.

Norwegian Bokmål and English test sets (sentences from the templates, spoken with varied voices, speeds and pitches),
greedy decoding, the language given. Three ways of running the same weights:
- transformers, float32, Whisper's 30 s window (what training starts from; `python -m core evaluate`);
- the installed CTranslate2 file, int8 (what transcription and the live microphone use);
- transformers with the encoder cut to a 10 s window (`window_seconds 10`, the CPU preset's lever): it must stay
  within MARGIN points of the 30 s figure to be worth its 3× less encoder work.

    python bench/zero_shot.py [--sentences 100]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import sentences

from bench.report import write_section
from core.models import apply_window, load_model
from core.speech import EngineOptions, Transcriber
from core.text import error_rates
from core.training import generate_texts
from core.workspace import Workspace

MARGIN = 5.0  # WER points
WINDOW_S = 10


def windowed_texts(workspace: Workspace, clips, language: str) -> list[str]:
    """whisper-base with a 10 s encoder window, as the trainer sets it up, greedy."""
    model, processor = load_model("whisper-base", workspace, language=language)
    apply_window(model, processor, WINDOW_S)
    features = processor.feature_extractor([a for a, _ in clips], sampling_rate=16000, return_tensors="np")
    rows = [{"input_features": f} for f in features["input_features"]]
    return generate_texts(model, rows, 16, 128, processor.tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace)")
    args = parser.parse_args()
    workspace = Workspace.open(args.home)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for language, code in (("nb", "no"), ("en", "en")):
            clips = sentences(Path(tmp) / language, language, args.sentences, seed=41)
            texts = [t for _, t in clips]
            full = Transcriber("whisper-base", workspace, language=code, engine=EngineOptions(prefer_ctranslate2=False))
            fast = Transcriber("whisper-base", workspace, language=code)
            results = {
                "transformers fp32, 30 s": [full.text(a) for a, _ in clips],
                "CTranslate2 int8, 30 s": [fast.text(a) for a, _ in clips],
                f"transformers fp32, {WINDOW_S} s window": windowed_texts(workspace, clips, code),
            }
            wers = {name: 100 * error_rates(texts, hyps)["wer"] for name, hyps in results.items()}
            base = wers["transformers fp32, 30 s"]
            for name, wer in wers.items():
                cer = 100 * error_rates(texts, results[name])["cer"]
                note = ""
                if "window" in name:
                    delta = wer - base
                    kept = "kept (no worse than the margin allows)" if delta <= MARGIN else "lost"
                    note = f"{delta:+.1f} points ({'better' if delta < 0 else 'worse'}): {kept}"
                rows.append(f"| {language} | {name} | {len(texts)} | {wer:.1f}% | {cer:.1f}% | {note} |")
    body = f"""## Zero-shot whisper-base on held-out espeak-ng speech (`bench/zero_shot.py`)

The reference that fine-tuning must beat: {args.sentences} espeak-ng sentences per language (templates, varied
voices, speeds and pitches), greedy decoding with transcripts of at most 128 tokens, language given, normalised
WER/CER. The shorter window is the CPU preset's lever; it may be at most {MARGIN:g} WER points worse than the full
30 s window. Long hypotheses that loop (Whisper's classic failure on a language it hears badly) are what separates
the runs on Norwegian: the same weights in float32 and int8 loop on different utterances.

| language | whisper-base run as | sentences | WER | CER | 10 s window against 30 s (margin +{MARGIN:g}) |
|---|---|---:|---:|---:|---|
{chr(10).join(rows)}"""
    write_section("zero-shot", body)
    print(body)


if __name__ == "__main__":
    main()
