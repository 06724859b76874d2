"""Reading a live run: progress, ETA and the warnings a person watching a training should not miss.

WER that goes up unnoticed is the classic way a fine-tune is wasted (the seeds report a Swedish run whose WER rose
past 300% while the loss fell). These checks read the run folder's metrics only.
"""

from __future__ import annotations

import math


def eta_seconds(status: dict, metrics: list[dict]) -> float | None:
    """Seconds left at the recent pace (the last few log rows), or None before there is a pace."""
    rows = [r for r in metrics if "loss" in r and "time" in r]
    step, total = status.get("step", 0), status.get("total", 0)
    if len(rows) < 2 or not total or step >= total:
        return None
    recent = rows[-6:]
    steps = recent[-1]["step"] - recent[0]["step"]
    seconds = recent[-1]["time"] - recent[0]["time"]
    if steps <= 0 or seconds <= 0:
        return None
    return (total - step) * seconds / steps


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def run_warnings(metrics: list[dict]) -> list[str]:
    """Plain sentences about what looks wrong: NaN loss, WER above the baseline, WER rising while loss falls."""
    warnings = []
    if any(r.get("nan_loss") or ("loss" in r and not math.isfinite(r["loss"])) for r in metrics):
        warnings.append("the loss became NaN: lower the learning rate, or use bf16 instead of fp16")
    evals = [r for r in metrics if "eval_wer" in r]
    baseline = next((r["eval_wer"] for r in evals if r.get("baseline")), None)
    trained = [r for r in evals if not r.get("baseline")]
    if baseline is not None and trained and trained[-1]["eval_wer"] > baseline:
        warnings.append(
            f"WER {trained[-1]['eval_wer']:.1%} at step {trained[-1]['step']} is worse than the base "
            f"model's {baseline:.1%}: the fine-tune is hurting; check the language, the text cleaning "
            f"and the learning rate"
        )
    if len(trained) >= 2 and trained[-1]["eval_wer"] > trained[-2]["eval_wer"]:
        losses = [r["loss"] for r in metrics if "loss" in r and trained[-2]["step"] < r["step"] <= trained[-1]["step"]]
        earlier = [r["loss"] for r in metrics if "loss" in r and r["step"] <= trained[-2]["step"]]
        if losses and earlier and losses[-1] < earlier[-1]:
            warnings.append(
                f"WER rose from {trained[-2]['eval_wer']:.1%} to {trained[-1]['eval_wer']:.1%} while the "
                f"training loss fell: the model may be over-fitting; the best checkpoint is kept"
            )
    return warnings
