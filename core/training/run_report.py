"""A run as a person reads it in a terminal: the runs table, one run's status, and what a started, joined or
finished run says. The command line prints these lines; the pages show the same facts with widgets."""

from __future__ import annotations

import json
from shlex import quote

from core.errors import DamagedFile, StudioError
from core.formatting import format_duration, format_time, percent
from core.training.monitor import eta_seconds, phase_progress
from core.training.run_records import ENDED_WELL, RunState


def started_line(run) -> str:
    """A run started in the background: its pid, and how to follow it."""
    return f"started run {run.name} (pid {run.status().pid}); follow it with: python -m core status {quote(run.name)}"


def joined_line(run, node_rank: int) -> str:
    """After node R > 0 joined a run: where its processes write (node 0 reports the run itself)."""
    node = run.node(node_rank) or {}
    return (
        f"node {node_rank} joined run {run.name} (pid {node.get('pid')}); its output: {run.log_path(node_rank)}; "
        f"follow the run with: python -m core status {quote(run.name)}"
    )


def finished_report(run) -> tuple[list[str], list[str]]:
    """(lines, warnings) after a foreground run: its state, best checkpoint and held-out result; a failed run is
    a StudioError."""
    status = run.status()
    if status.state not in ENDED_WELL:
        raise StudioError(f"run {run.name} {status.state}: {status.error}")
    summary = run.summary()
    lines = [
        f"run {run.name} {status.state} at step {status.step}; best checkpoint "
        f"{summary.best_checkpoint_shown} (validation WER {summary.best_shown})"
    ]
    if summary.test_after is not None:
        lines.append(f"test WER before {summary.test_before_shown} → after {summary.test_after_shown}")
    return lines + result_lines(run), list(status.warnings)


def result_lines(run) -> list[str]:
    """The result's before → after lines (test interval, guard sets, probes, language ID); none when unreadable."""
    try:
        return run.result().report_lines()
    except DamagedFile:
        return []


def runs_table(runs: list) -> list[str]:
    """The runs' table: state, steps, validation and test WER, best checkpoint; a damaged run's error under it."""
    lines = [
        f"{'run':32} {'state':12} {'step':>13} {'val base':>9} {'val best':>9} {'test before':>12} "
        f"{'test after':>11}  best checkpoint"
    ]
    for run in runs:
        s = run.summary()
        lines.append(
            f"{run.name:32} {s.state:12} {s.step:>6}/{s.total:<6} {s.baseline_shown:>9} "
            f"{s.best_shown:>9} {s.test_before_shown:>12} {s.test_after_shown:>11}  {s.best_checkpoint_shown}"
        )
        if s.state == RunState.DAMAGED:
            lines.append(f"  {s.error}")
    return lines


def status_report(run, as_json: bool = False) -> str:
    """One run for a person (state, times, WERs, the result, warnings, each evaluation), or as JSON for machines;
    a damaged run is a StudioError."""
    status = run.status()
    if status.state == RunState.DAMAGED:
        raise StudioError(f"run '{run.name}' is damaged: {status.error}")
    metrics = run.metrics()
    if as_json:
        return json.dumps({**run.summary().to_dict(), "status": status.to_dict()}, indent=2, default=str)
    summary, eta = run.summary(), eta_seconds(status, metrics)
    doing, _ = phase_progress(status)
    lines = [f"run {run.name}: {status.state} · {doing}" + (f" · ETA {format_duration(eta)}" if eta else "")]
    for label, value in (("started", status.started or status.created), ("finished", status.finished)):
        if value:
            lines.append(f"  {label:9} {format_time(value)}")
    lines += [
        f"  best      {summary.best_checkpoint_shown} (validation WER {summary.best_shown})",
        f"  base      validation WER {summary.baseline_shown} (the starting model, step 0)",
        f"  test WER  before {summary.test_before_shown} → after {summary.test_after_shown}",
    ]
    lines += [f"  {line}" for line in result_lines(run) + list(filter(None, (status.error, status.note)))]
    lines += [f"  warning: {line}" for line in status.warnings]
    for row in (r for r in metrics if "eval_wer" in r):
        lines.append(f"  step {row['step']:>6}: WER {percent(row['eval_wer'])}  CER {percent(row.get('eval_cer'))}")
    return "\n".join(lines)
