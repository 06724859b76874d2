"""Training overhead: our trainer against a bare PyTorch loop, and where a real job's wall time goes.

1. Training only: the demo model (4M parameters) from the same seed on the same prepared espeak-ng data, same batch,
   optimiser and learning rate. The bare loop is forward/backward/clip/step and nothing else; ours is the
   Seq2SeqTrainer job with its data path, logging, metric rows and status heartbeat, timed between its log rows
   (evaluation excluded). REPEATS rounds each, alternating which runs first, after a warm-up of each.
2. A whole job at the default cadence of the demo preset (evaluation and a checkpoint every 200 steps, the base
   model's zero-shot evaluation at step 0, the held-out test split before and after): its wall time split into
   training, evaluation, checkpoint saving and the rest (start-up, loading).

    python bench/train_overhead.py [--steps 80] [--batch 32] [--job-steps 400]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import REPEATS, spread, verdict

from bench.report import write_section
from core.data import FolderSource, PrepareOptions, SynthSpec, open_artifact, prepare_features, synthesize_dataset
from core.languages import get_language
from core.models import load_model
from core.training import FeatureDataset, SpeechCollator, TrainConfig, apply_preset, start_run
from core.workspace import Workspace

WARMUP_STEPS = 5  # untimed first steps: allocator and thread-pool warm-up, on both sides


def bare_loop(workspace: Workspace, steps: int, batch: int, lr: float) -> float:
    """Samples/s of forward/backward/clip/step alone."""
    torch.manual_seed(42)
    model, _ = load_model("demo", workspace, language="no")
    model.train()
    dataset = FeatureDataset(open_artifact(workspace, "bench"), "train")
    collate = SpeechCollator(model.config.decoder_start_token_id)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, collate_fn=collate)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    done, started = 0, time.perf_counter()
    while done < steps + WARMUP_STEPS:
        for inputs in loader:
            if done == WARMUP_STEPS:
                started = time.perf_counter()
            model(**inputs).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            optimiser.zero_grad()
            done += 1
            if done == steps + WARMUP_STEPS:
                break
    return steps * batch / (time.perf_counter() - started)


def job_training_rate(workspace: Workspace, steps: int, batch: int, name: str) -> float:
    """Samples/s of our job between its log rows after the warm-up steps (no evaluation in between)."""
    config = replace(
        apply_preset(TrainConfig(data="bench", run=name), "demo"),
        max_steps=steps + WARMUP_STEPS * 2,
        train_batch_size=batch,
        logging_steps=WARMUP_STEPS,
        warmup_steps=WARMUP_STEPS,
        eval_steps=steps + WARMUP_STEPS * 2,
        save_steps=steps + WARMUP_STEPS * 2,
        max_eval_samples=8,
        test_split="",
    )
    run = start_run(config, workspace, foreground=True)
    rows = [r for r in run.metrics() if "loss" in r and r["step"] >= WARMUP_STEPS * 2]
    return (rows[-1]["step"] - rows[0]["step"]) * batch / (rows[-1]["time"] - rows[0]["time"])


def job_breakdown(workspace: Workspace, steps: int) -> dict[str, float]:
    """Seconds of a whole demo-preset job: wall, training, evaluation, checkpoint saving, everything else."""
    config = apply_preset(TrainConfig(data="bench", run="cadence"), "demo")
    config = replace(config, max_steps=steps, warmup_steps=min(config.warmup_steps, steps // 4))
    started = time.perf_counter()
    run = start_run(config, workspace, foreground=True)
    wall = time.perf_counter() - started
    rows = run.metrics()
    evaluation = sum(r.get("eval_runtime", 0.0) for r in rows)
    saving = sum(r.get("checkpoint_seconds", 0.0) for r in rows)
    losses = [r for r in rows if "loss" in r]
    batch = config.train_batch_size
    rate = statistics.median(r["samples_per_second"] for r in losses if "samples_per_second" in r)
    training = steps * batch / rate
    return {"wall": wall, "training": training, "evaluation": evaluation, "saving": saving}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--job-steps", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        nb = get_language("nb")
        spec = SynthSpec(language="nb", n=400, seed=5, kind="words", vocabulary_size=30)
        folder = synthesize_dataset(nb, Path(tmp) / "clips", spec)
        prepare_features(FolderSource(folder), nb, "demo", "bench", workspace, PrepareOptions())
        lr = apply_preset(TrainConfig(), "demo").learning_rate
        bare_loop(workspace, WARMUP_STEPS, args.batch, lr)  # warm-up of each side
        job_training_rate(workspace, WARMUP_STEPS, args.batch, "warm")
        rates: dict[str, list[float]] = {"bare": [], "ours": []}
        for round_ in range(REPEATS):
            for side in ("bare", "ours") if round_ % 2 == 0 else ("ours", "bare"):
                if side == "bare":
                    rates[side].append(bare_loop(workspace, args.steps, args.batch, lr))
                else:
                    rates[side].append(job_training_rate(workspace, args.steps, args.batch, f"ours-{round_}"))
        parts = job_breakdown(workspace, args.job_steps)
    other = parts["wall"] - parts["training"] - parts["evaluation"] - parts["saving"]
    share = {k: 100 * v / parts["wall"] for k, v in parts.items()}
    body = f"""## Training overhead (`bench/train_overhead.py`)

**Training only.** Demo model (4M parameters), batch {args.batch}, {args.steps} timed steps after {WARMUP_STEPS} warm-up
steps, fp32 on the CPU, samples/s median (range) of {REPEATS} alternating rounds:

| loop | samples/s |
|---|---:|
| bare PyTorch: forward, backward, clip, AdamW step | {spread(rates["bare"], 1)} |
| ours: Seq2SeqTrainer job writing the run folder (between log rows) | {spread(rates["ours"], 1)} |

Ours against the bare loop: {verdict(rates["ours"], rates["bare"], higher_is_better=True)}.

**A whole job** at the demo preset's default cadence, {args.job_steps} steps (evaluation and a checkpoint every 200
steps, the zero-shot evaluation at step 0, the held-out test split before and after training), one run:

| part | seconds | share of wall time |
|---|---:|---:|
| training (steps at the measured pace) | {parts["training"]:.1f} | {share["training"]:.0f}% |
| evaluation (validation, with generation) | {parts["evaluation"]:.1f} | {share["evaluation"]:.0f}% |
| checkpoint saving | {parts["saving"]:.1f} | {share["saving"]:.0f}% |
| the rest: start-up, model loading, test split before/after | {other:.1f} | {100 * other / parts["wall"]:.0f}% |
| **wall time** | {parts["wall"]:.1f} | 100% |"""
    write_section("train", body)
    print(body)


if __name__ == "__main__":
    main()
