"""Reading a live run: progress, ETA and the warnings a person watching a training should not miss.

WER that goes up unnoticed is the classic way a fine-tune is wasted (the seeds report a Swedish run whose WER rose
past 300% while the loss fell). These checks read the run folder's metrics only.
"""

from __future__ import annotations

import math
import time

from core.data.artifact import newest_artifact, open_artifact
from core.errors import StudioError
from core.languages import get_language
from core.training.run_records import RunStatus, baseline_of
from core.training.runs import RunFolder, list_runs
from core.workspace import Workspace

PACE_ROWS = 6  # the pace is taken over the last 6 loss rows: recent enough to follow a change, long enough to be calm
READABLE_CEILING = 200.0  # % WER: values above this (an untrained model's 1000%+) are pinned to the chart's top


def eta_seconds(status: RunStatus, metrics: list[dict], now: float | None = None) -> float | None:
    """Seconds left at the pace of the steps this worker process has run: the recent loss rows when it has logged
    two, else its steps so far over the time since its first step. Rows from before a stop and resume are not its
    pace (the stopped time would count as training). None before there is a pace and once the run has ended."""
    step, total = status.step, status.total
    if not status.live or not total or step >= total:
        return None
    since = status.timed_from
    rows = [
        r
        for r in metrics
        if "loss" in r and isinstance(r.get("time"), int | float) and (since is None or r["time"] >= since)
    ]
    if len(rows) >= 2:
        recent = rows[-PACE_ROWS:]
        steps, seconds = recent[-1]["step"] - recent[0]["step"], recent[-1]["time"] - recent[0]["time"]
    elif since is not None and status.timed_from_step is not None:
        # fewer log rows than that (a run that logs every 10 steps): every step since the first one counts
        steps, seconds = step - status.timed_from_step, (time.time() if now is None else now) - since
    else:
        return None
    if steps <= 0 or seconds <= 0:
        return None
    return (total - step) * seconds / steps


WARMUP_SHARE = 0.5  # a warm-up longer than half of the steps leaves the full learning rate too little of the run


def schedule_warnings(config) -> list[str]:
    """What a config's step counts will do that the numbers hide, said before Start (a TrainConfig; none for a run
    that counts epochs). The last step always evaluates and saves, so a run whose intervals exceed its steps still
    ends with one evaluation and one checkpoint, but draws no validation curve."""
    steps = config.max_steps
    if config.num_train_epochs or steps <= 0:
        return []
    warnings = []
    if config.eval_steps > steps:
        warnings.append(
            f"eval steps {config.eval_steps} > max steps {steps}: the model is evaluated only at the end, so there "
            f"is no validation curve and no best checkpoint to choose from; set eval steps to {max(1, steps // 5)}"
        )
    if config.save_steps > steps:
        warnings.append(
            f"save steps {config.save_steps} > max steps {steps}: the only checkpoint is the last one; set save "
            f"steps to a multiple of eval steps below {steps}"
        )
    if config.warmup_steps > WARMUP_SHARE * steps:
        warnings.append(
            f"warm-up {config.warmup_steps} of {steps} steps: the learning rate reaches its value only "
            f"{100 * config.warmup_steps / steps:.0f}% into the run; set warmup steps to about {max(1, steps // 10)}"
        )
    return warnings


def chart_ceiling(values: list[float], references: list[float]) -> float:
    """The top of an error-rate axis (%): at least 100, with room above every trained value; a reference line far
    above READABLE_CEILING (an untrained model's 1000%+) is left off the scale, drawn at the top with its value."""
    shown = values + [r for r in references if r <= READABLE_CEILING]
    return max([100.0] + [1.1 * v for v in shown])


def phase_progress(status: RunStatus) -> tuple[str, float | None]:
    """(what the run is doing, fraction done or None): the step count while training, else the phase."""
    phase, done, total = status.phase, status.phase_done, status.phase_total
    if phase and phase != "training":
        fraction = done / total if isinstance(done, int) and isinstance(total, int) and total else None
        return (f"{phase} {done}/{total}" if fraction is not None else str(phase)), fraction
    step, steps = status.step, status.total
    return f"step {step}/{steps}", (min(step / steps, 1.0) if steps else None)


def run_warnings(metrics: list[dict]) -> list[str]:
    """Plain sentences about what looks wrong: NaN loss, WER above the baseline, WER rising while loss falls."""
    warnings = []
    if any(r.get("nan_loss") or ("loss" in r and not math.isfinite(r["loss"])) for r in metrics):
        warnings.append("the loss became NaN: lower the learning rate, or use bf16 instead of fp16")
    evals = [r for r in metrics if "eval_wer" in r]
    baseline = baseline_of(metrics)
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


def estimate_from_runs(config, runs: list) -> str | None:
    """How long `config` would train at the pace this machine measured for the most recent run like it (the same
    model, encoder levers and window): 'about 4m 10s of training at the pace of run R (55.1 samples/s), plus its
    evaluations'; None when no such run has logged a pace."""
    from core.formatting import format_duration

    levers = (
        "model",
        "freeze_encoder",
        "cache_encoder_states",
        "window_seconds",
        "lora_rank",
        "precision",
        "nproc",
        "nnodes",
        "sharding",
    )
    for run in reversed(runs):  # newest last in list_runs: look from the newest
        try:
            other = run.config()
        except Exception:  # a damaged run says nothing about pace
            continue
        if any(getattr(other, k) != getattr(config, k) for k in levers):
            continue
        paces = sorted(r["samples_per_second"] for r in run.metrics() if r.get("samples_per_second"))
        if not paces:
            continue
        pace = paces[len(paces) // 2]
        samples = config.max_steps * config.train_batch_size * config.grad_accum_steps
        return (
            f"about {format_duration(samples / pace)} of training at the pace run {run.name} measured here "
            f"({pace:.1f} samples/s), plus its evaluations"
        )
    return None


def workspace_language(workspace: Workspace) -> str | None:
    """The language (our code) this workspace works in: its newest run's, else its newest dataset's; what the
    Transcribe and Conversation pages choose before anyone does (None on an empty workspace)."""
    runs = list_runs(workspace.runs)
    data = newest_artifact(workspace)
    try:
        if runs:
            config = RunFolder.of(workspace, runs[-1]).config()
            if config.language:
                return get_language(config.language).code
            data = config.data
        return get_language(open_artifact(workspace, data).manifest.language).code if data else None
    except (StudioError, KeyError):  # a damaged run or dataset says nothing: the pages then offer auto-detect
        return None
