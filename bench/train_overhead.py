"""Training overhead: our trainer's samples/s against a bare PyTorch loop over the same model and batches.

Both train the demo model from the same seed on the same prepared espeak-ng data with the same batch size,
optimiser and schedule. The bare loop is forward/backward/step and nothing else; ours is the Seq2SeqTrainer job with
its data path, logging, metrics rows and status heartbeat. Evaluation is excluded from both (timed between log rows).

    python bench/train_overhead.py [--steps 200] [--batch 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.report import write_section  # noqa: E402
from core.config import TrainConfig, apply_preset  # noqa: E402
from core.features import PrepareOptions, prepare_features  # noqa: E402
from core.folders import FolderSource  # noqa: E402
from core.jobs import start_run  # noqa: E402
from core.languages import get_language  # noqa: E402
from core.models import load_model  # noqa: E402
from core.synth import SynthSpec, synthesize_dataset  # noqa: E402
from core.training_data import FeatureDataset, SpeechCollator  # noqa: E402
from core.workspace import Workspace  # noqa: E402


def bare_loop(workspace: Workspace, data: str, steps: int, batch: int, lr: float) -> float:
    """Samples/s of forward/backward/step alone (after 5 warm-up steps)."""
    from core.features import open_artifact

    torch.manual_seed(42)
    model, _ = load_model("demo", workspace, language="no")
    model.train()
    dataset = FeatureDataset(open_artifact(workspace, data), "train")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        collate_fn=SpeechCollator(model.config.decoder_start_token_id),
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    done, started = 0, None
    while done < steps + 5:
        for inputs in loader:
            if done == 5:
                started = time.perf_counter()
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            optimiser.zero_grad()
            done += 1
            if done == steps + 5:
                break
    return steps * batch / (time.perf_counter() - started)


def trainer_rate(workspace: Workspace, data: str, steps: int, batch: int) -> float:
    config = apply_preset(TrainConfig(data=data, run="bench"), "demo")
    config = replace(
        config,
        max_steps=steps + 10,
        train_batch_size=batch,
        logging_steps=5,
        warmup_steps=5,
        eval_steps=steps + 10,
        save_steps=steps + 10,
        max_eval_samples=8,
    )
    run = start_run(config, workspace, foreground=True)
    rows = [r for r in run.metrics() if "loss" in r and r["step"] >= 10]  # skip the first rows (warm-up)
    first, last = rows[0], rows[-1]
    rates = [r["samples_per_second"] for r in rows[1:]]
    print("trainer interval rates:", [round(r, 1) for r in rates], "median", statistics.median(rates))
    return (last["step"] - first["step"]) * batch / (last["time"] - first["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        nb = get_language("nb")
        folder = synthesize_dataset(nb, Path(tmp) / "clips", SynthSpec(language="nb", n=400, seed=5))
        prepare_features(FolderSource(folder), nb, "demo", "bench", workspace, PrepareOptions())
        lr = apply_preset(TrainConfig(), "demo").learning_rate
        bare = bare_loop(workspace, "bench", args.steps, args.batch, lr)
        ours = trainer_rate(workspace, "bench", args.steps, args.batch)
    body = f"""## Training overhead (`bench/train_overhead.py`)

Demo model (4M parameters), batch {args.batch}, {args.steps} steps, fp32 on the CPU; evaluation excluded.

| loop | samples/s |
|---|---:|
| bare PyTorch: forward, backward, clip, AdamW step | {bare:.1f} |
| ours: Seq2SeqTrainer job writing the run folder | {ours:.1f} |

**Ratio: {ours / bare:.2f} of the bare loop's samples/s.**"""
    write_section("train", body)
    print(body)


if __name__ == "__main__":
    main()
