"""whisper-base fully fine-tuned on a GPU, on the offline demo's data: the encoder trained too (the fine-tune a GPU user
runs, where the CPU demo freezes it and caches its output), bf16 where the GPU has it, at a GPU's batch size.

The data is the demo's (core/demo.py's whisper-base plan: espeak-ng sentences split by text). Reports the held-out
test WER before → after (the run's result.json), the median samples/s of the training rows and the wall time of the
run (start to end: the test split before, training with its evaluations, the test split after). Goal (issue 31): the
demo's full fine-tune within 3 minutes on one GPU. Run on a CUDA machine: `python -m bench.gpu_finetune`
(bash bench/gpu_check.sh runs it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.report import write_section
from core.data import FolderSource, Preparation, PrepareOptions, SynthSpec, synthesize_dataset
from core.data.synth import default_kind
from core.demo import PLANS
from core.languages import get_language
from core.models.resolve import DEFAULT_MODEL
from core.training import TrainConfig, start_run
from core.workspace import Workspace

GOAL_MINUTES = 3.0


def gpu_config(data: str, run: str, steps: int) -> TrainConfig:
    """whisper-base with every weight trained: batch 32, evaluated and saved every quarter of the run."""
    every = max(1, steps // 4)
    return replace(
        TrainConfig(data=data, run=run),
        model=DEFAULT_MODEL,
        freeze_encoder=False,
        learning_rate=1e-5,
        train_batch_size=32,
        eval_batch_size=64,
        max_steps=steps,
        warmup_steps=max(1, steps // 10),
        eval_steps=every,
        save_steps=every,
        logging_steps=max(1, steps // 20),
        save_total_limit=1,
        generation_max_length=96,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps (batch 32: 10 passes over 640 rows)")
    parser.add_argument("--home", type=Path, help="workspace (default: a new temporary one)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA GPU here; run this on a GPU machine (bash bench/gpu_check.sh)")
    workspace = Workspace.open(args.home or Path(tempfile.mkdtemp(prefix="gpu-finetune-")))
    plan, language = PLANS[DEFAULT_MODEL], get_language("nb")
    spec = SynthSpec(
        language=language.code,
        n=plan.utterances,
        kind=default_kind(language),
        test_fraction=plan.test_fraction,
        validation_fraction=plan.validation_fraction,
    )
    folder = synthesize_dataset(language, workspace.synth / spec.folder_name(prefix="gpu-"), spec)
    data = f"gpu-{language.code}-{plan.utterances}"
    Preparation(overwrite=True).prepare(
        FolderSource(folder), language, DEFAULT_MODEL, data, workspace, PrepareOptions()
    )
    started = time.perf_counter()
    run = start_run(gpu_config(data, "gpu-full", args.steps), workspace, foreground=True)
    minutes = (time.perf_counter() - started) / 60
    status, result = run.status(), run.result()
    rates = [r["samples_per_second"] for r in run.metrics() if r.get("samples_per_second")]
    if status.state != "completed" or result.before is None or result.after is None:
        raise SystemExit(f"error: the run ended {status.state}: {status.error}; see {run.path / 'train.log'}")
    verdict = "met" if minutes <= GOAL_MINUTES else "missed"
    body = f"""## whisper-base full fine-tune on a GPU (`bench/gpu_finetune.py`)

The demo's data ({plan.utterances} espeak-ng sentences in Norwegian, split by text), whisper-base with the encoder
trained, precision {status.precision}, batch 32, {args.steps} steps, {torch.cuda.get_device_name(0)}.

| test WER before | test WER after | samples/s (median, range) | run wall time | goal ≤ {GOAL_MINUTES:g} min |
|---:|---:|---:|---:|---|
| {100 * result.before.wer:.1f}% | {100 * result.after.wer:.1f}% | {statistics.median(rates):.0f} ({min(rates):.0f}–{max(rates):.0f}) | {minutes:.1f} min | {verdict} |"""  # noqa: E501
    write_section("gpu-finetune", body)
    print(body)


if __name__ == "__main__":
    main()
