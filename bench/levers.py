"""Fine-tuning whisper-base on 2 CPU cores: each lever against full fine-tuning, on the same data, in the same time.

espeak-ng Norwegian sentences split by text (train, validation, test: no test sentence is ever heard in training).
Every lever gets the same wall-clock budget from the moment its job starts (loading, caching encoder states and
evaluating on validation included), then is stopped the product's way (the stop file: it saves a checkpoint at the
next step). Its last checkpoint is evaluated once on the held-out test split. Reported: training samples/s (between
log rows), samples seen in the budget, and test WER/CER against the zero-shot whisper-base on the same test split.

    python bench/levers.py [--minutes 3] [--utterances 800]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import chart

from bench.report import write_section
from core.data import FolderSource, PrepareOptions, SynthSpec, prepare_features, synthesize_dataset
from core.evaluation import EvaluateOptions, evaluate_model
from core.formatting import percent
from core.languages import get_language
from core.training import RunFolder, RunState, TrainConfig, apply_preset, start_run, stop_run, wait_for
from core.workspace import Workspace

NB = get_language("nb")
CPU = apply_preset(TrainConfig(), "whisper-base-cpu")
COMMON = dict(
    model="whisper-base",
    train_batch_size=16,
    eval_batch_size=32,
    logging_steps=1,  # a rate from every step: the slow levers take only a few in the budget
    eval_steps=20,
    save_steps=20,
    warmup_steps=10,
    max_steps=100_000,  # the budget ends the run, not the step count
    generation_max_length=96,
    save_total_limit=1,
    max_eval_samples=30,
    test_split="",  # evaluated after the stop, below
    weight_decay=0.01,
)
LEVERS = {
    "full fine-tuning, 30 s window (the recipe)": dict(learning_rate=1e-5),
    "full fine-tuning, 10 s window": dict(learning_rate=1e-5, window_seconds=10),
    "frozen encoder + cached states, 30 s window": dict(
        learning_rate=CPU.learning_rate, freeze_encoder=True, cache_encoder_states=True
    ),
    "frozen encoder + cached states, 10 s window (preset whisper-base-cpu)": dict(
        learning_rate=CPU.learning_rate, freeze_encoder=True, cache_encoder_states=True, window_seconds=10
    ),
    "LoRA r16 on the decoder + cached states, 10 s window": dict(
        learning_rate=5e-4, freeze_encoder=True, cache_encoder_states=True, window_seconds=10, lora_rank=16
    ),
}


def budgeted(workspace: Workspace, name: str, changes: dict, minutes: float) -> RunFolder:
    config = replace(TrainConfig(data="levers", run=name), **{**COMMON, **changes})
    run = start_run(config, workspace)
    deadline = time.time() + minutes * 60
    while time.time() < deadline and run.status().state in (RunState.STARTING, RunState.RUNNING):
        time.sleep(2)
    stop_run(run)
    status = wait_for(run, 900, (RunState.STOPPED, RunState.COMPLETED, RunState.FAILED, RunState.INTERRUPTED))
    if status.state != RunState.STOPPED:
        raise SystemExit(f"{name} ended {status.state}: {status.error}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--utterances", type=int, default=800)
    args = parser.parse_args()
    rows, points = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        from core.models import resolve_model

        resolve_model("whisper-base", workspace)
        spec = SynthSpec(language="nb", n=args.utterances, seed=0, test_fraction=0.125, validation_fraction=0.075)
        folder = synthesize_dataset(NB, Path(tmp) / "synth", spec)
        artifact = prepare_features(FolderSource(folder), NB, "whisper-base", "levers", workspace, PrepareOptions())
        train_rows = artifact.manifest.rows("train")
        zero = evaluate_model("whisper-base", "levers", workspace, EvaluateOptions(split="test"))
        for index, (label, changes) in enumerate(LEVERS.items()):
            run = budgeted(workspace, f"lever-{index}", changes, args.minutes)
            rows_log = [r for r in run.metrics() if "samples_per_second" in r]
            rate = sorted(r["samples_per_second"] for r in rows_log)[len(rows_log) // 2] if rows_log else 0.0
            step = run.status().step
            checkpoint = run.last_checkpoint()
            result = evaluate_model(str(checkpoint), "levers", workspace, EvaluateOptions(split="test"))
            points[label] = result.wer
            rows.append(f"| {label} | {rate:.2f} | {step * 16} | {percent(result.wer)} | {percent(result.cer)} |")
    picture = chart(
        "levers",
        f"Held-out test WER after {args.minutes:g} minutes on 2 CPU cores",
        "lever",
        "test WER (%)",
        {"fine-tuned": (list(range(len(points))), [100 * v for v in points.values()])},
    )
    worse = [label for label, wer in points.items() if wer > zero.wer]
    worse_line = (
        f"Worse than zero-shot when the budget ran out (more looping transcripts than before): {'; '.join(worse)}."
        if worse
        else "Every lever ends better than zero-shot."
    )
    body = f"""## Fine-tuning levers on a CPU (`bench/levers.py`)

whisper-base, {train_rows} espeak-ng Norwegian training sentences, {zero.utterances} held-out test sentences
(split by text). Each lever gets the same {args.minutes:g}-minute wall-clock budget on 2 CPU cores from the start of
its job (loading, caching encoder states and validation evaluations included), is stopped the product's way, and its
last checkpoint is evaluated once on the test split. Zero-shot whisper-base on that split: WER
{100 * zero.wer:.1f}%, CER {100 * zero.cer:.1f}%. Every evaluation here decodes as `python -m core evaluate`
does, up to Whisper's 448 tokens, so a model that loops scores above 100%.

| lever | training samples/s | samples seen | test WER | test CER |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

{worse_line}

Chart points, left to right: {"; ".join(f"{i}: {label}" for i, label in enumerate(points))}.

{picture}"""
    write_section("levers", body)
    print(body)


if __name__ == "__main__":
    main()
