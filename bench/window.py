"""The standard form of a short-window fine-tune against the form it was trained in: the demo's best checkpoint
(whisper-base, the `whisper-base-cpu` preset's 10 s window) evaluated on its held-out test split twice, as saved
(standard Whisper: 30 s window, the whole 1,500-row encoder table) and cut back to the 10 s it trained at.

Both evaluations decode as `python -m core evaluate` does (greedy, up to Whisper's 448 tokens). The standard form is
what every other tool runs (transformers' pipeline, faster-whisper, openai-whisper); the short form is what the
run itself measured.

    python bench/window.py [--language nb]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.report import write_section
from core.demo import run_demo
from core.evaluation import evaluate_model
from core.languages import get_language
from core.models import apply_window, load_model
from core.workspace import Workspace


def short_copy(checkpoint: Path, seconds: int, workspace: Workspace, out: Path) -> Path:
    """The checkpoint as the run held it in memory: the encoder's table cut to `seconds`, the processor's too."""
    model, processor = load_model(str(checkpoint), workspace)
    apply_window(model, processor, seconds)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="nb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace.open(Path(tmp) / "ws")
        demo = run_demo(get_language(args.language), workspace)
        checkpoint = Path(demo.checkpoint)
        config = json.loads((checkpoint.parent / "config.json").read_text())
        positions = json.loads((checkpoint / "config.json").read_text())["max_source_positions"]
        standard = evaluate_model(str(checkpoint), config["data"], workspace, split="test")
        short_folder = short_copy(checkpoint, config["window_seconds"], workspace, Path(tmp) / "short")
        short = evaluate_model(str(short_folder), config["data"], workspace, split="test")
    difference = 100 * (standard.wer - short.wer)
    body = f"""## A short-window fine-tune in standard form (`bench/window.py`)

The demo's best checkpoint (whisper-base fine-tuned by `python -m core demo --language {args.language}`: the
`whisper-base-cpu` preset, a {config["window_seconds"]} s window, frozen encoder) on its held-out test split
({standard.utterances} sentences), decoded as `python -m core evaluate` does. The checkpoint is saved as standard
Whisper ({positions} encoder positions, a 30 s window: what transformers' pipeline, faster-whisper and openai-whisper
load); the short form is the same weights cut back to the {config["window_seconds"]} s the run trained at.

| form | encoder window | test WER | test CER |
|---|---:|---:|---:|
| as trained (short) | {config["window_seconds"]} s | {100 * short.wer:.1f}% | {100 * short.cer:.1f}% |
| as saved (standard Whisper) | 30 s | {100 * standard.wer:.1f}% | {100 * standard.cer:.1f}% |

Standard minus short: {difference:+.1f} WER points. The encoder is frozen and its positions are fixed sinusoids, so
the two forms differ only in the padding the decoder attends over (20 s more of silence's log-mel in the standard
form). The run's own result (WER {100 * demo.wer_before:.1f}% → {100 * demo.wer_after:.1f}%) is the short form with
transcripts capped at the preset's {config["generation_max_length"]} tokens; the demo took {demo.seconds / 60:.1f} min
here."""
    write_section("window", body)
    print(body)


if __name__ == "__main__":
    main()
