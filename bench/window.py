"""The standard form of a short-window fine-tune against the form it was trained in: the demo's best checkpoint
(whisper-base, the `whisper-base-cpu` preset's 10 s window) evaluated on its held-out test split twice, as saved
(standard Whisper: 30 s window, the whole 1,500-row encoder table) and cut back to the 10 s it trained at.

Both evaluations decode as `python -m core evaluate` does (greedy, up to Whisper's 448 tokens). The standard form is
what every other tool runs (transformers' pipeline, faster-whisper, openai-whisper); the short form is what the
run itself measured.

    python bench/window.py [--language nb] [--max-steps N] [--checkpoint RUN/checkpoint-N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.report import write_section
from core.demo import DemoRequest, run_demo
from core.evaluation import EvaluateOptions, evaluate_model
from core.languages import get_language
from core.models import apply_window, load_model
from core.text.bootstrap import paired_bootstrap
from core.workspace import Workspace


def short_copy(checkpoint: Path, seconds: int, workspace: Workspace, out: Path) -> Path:
    """The checkpoint as the run held it in memory: the encoder's table cut to `seconds`, the processor's too."""
    model, processor = load_model(str(checkpoint), workspace)
    apply_window(model, processor, seconds)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def measure(checkpoint: Path, workspace: Workspace, trained: str) -> str:
    """The section's text: `checkpoint` (of a short-window run) evaluated on its test split in both forms."""
    config = json.loads((checkpoint.parent / "config.json").read_text())
    window = config["window_seconds"]
    positions = json.loads((checkpoint / "config.json").read_text())["max_source_positions"]
    standard = evaluate_model(str(checkpoint), config["data"], workspace, EvaluateOptions(split="test"))
    short_folder = workspace.home / "window-short" / f"{checkpoint.parent.name}--{checkpoint.name}"
    if not (short_folder / "model.safetensors").is_file():  # kept: its evaluation is reused while it is unchanged
        short_copy(checkpoint, window, workspace, short_folder)
    short = evaluate_model(str(short_folder), config["data"], workspace, EvaluateOptions(split="test"))
    change = paired_bootstrap(short.rows, standard.rows)
    return f"""## A short-window fine-tune in standard form (`bench/window.py`)

{trained}: whisper-base with the `whisper-base-cpu` preset (a {window} s window, frozen
encoder), evaluated on the demo's held-out test split ({standard.utterances} sentences) as `python -m core evaluate`
decodes (greedy, up to 448 tokens). The checkpoint is saved as standard Whisper ({positions} encoder positions, a
30 s window: what transformers' pipeline, faster-whisper and openai-whisper load); the short form is the same
weights cut back to the {window} s the run trained at.

| form | encoder window | test WER | test CER |
|---|---:|---:|---:|
| as trained (short) | {window} s | {100 * short.wer:.1f}% | {100 * short.cer:.1f}% |
| as saved (standard Whisper) | 30 s | {100 * standard.wer:.1f}% | {100 * standard.cer:.1f}% |

Standard minus short, WER: {change.shown} (a paired bootstrap over the {change.utterances}
sentences, 1,000 resamples). The encoder is frozen and its positions are fixed sinusoids, so the two forms differ
only in what the decoder attends over: the standard form adds {30 - window} s of padding's log-mel, which the
decoder never saw in training."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="nb")
    parser.add_argument("--max-steps", type=int, help="train the demo this many steps (default: its plan's)")
    parser.add_argument("--checkpoint", type=Path, help="measure this checkpoint of a short-window run instead")
    args = parser.parse_args()
    if args.checkpoint:
        workspace = Workspace(args.checkpoint.resolve().parents[2])
        step = args.checkpoint.name.rsplit("-", 1)[-1]
        body = measure(args.checkpoint, workspace, f"Checkpoint {step} of a demo run (`--checkpoint`)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Workspace.open(Path(tmp) / "ws")
            demo = run_demo(get_language(args.language), workspace, DemoRequest(max_steps=args.max_steps))
            trained = (
                f"The best checkpoint of `python -m core demo --language {args.language}` (WER "
                f"{100 * demo.wer_before:.1f}% → {100 * demo.wer_after:.1f}% in the run's own short-form test)"
            )
            body = measure(Path(demo.checkpoint), workspace, trained)
    write_section("window", body)
    print(body)


if __name__ == "__main__":
    main()
