"""The run folder: the record of one training run, and the only thing the UI reads to learn about it.

    runs/<run>/config.json        the TrainConfig (no secrets)
    runs/<run>/status.json        state, step, total, phase, started, heartbeat, pid, error: replaced atomically
    runs/<run>/metrics.jsonl      append-only rows: {step, loss, learning_rate, eval_wer, eval_cer, …}
    runs/<run>/train.log          the worker's stdout/stderr (node 0's, on several nodes)
    runs/<run>/train-node<R>.log  node R's output, on several nodes (core/training/nodes.py)
    runs/<run>/node-<R>.json      node R's launcher: {pid, host, started}
    runs/<run>/checkpoint-<step>/ self-contained HF folders (model, processor, generation config)
    runs/<run>/best.json          the best checkpoint by validation WER
    runs/<run>/result.json        the held-out test split, before (the starting model) and after (the best checkpoint)
    runs/<run>/evaluations/       saved evaluations: <checkpoint>__<data>__<split>.json
    runs/<run>/stop               present = a stop was requested

Every question about a run is a method here (its baseline, a checkpoint's step, its evaluations, its result), asked
everywhere and never re-derived. Status updates are read-merge-write under a lock shared by every process, so a
heartbeat from an older read cannot overwrite a "stopping". A live state whose process is gone, or whose heartbeat
is older than HEARTBEAT_STALE_S, reads as `interrupted`. A damaged file (a power cut, a full disk, a hand edit)
makes its run read as `damaged`, naming the file and what to do; the rest of the workspace keeps working, and the
damaged file is never written over by a reader.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from core.errors import DamagedFile, StudioError
from core.formatting import MISSING, log_lines, percent
from core.text.bootstrap import shown_change
from core.training.config import TrainConfig
from core.training.run_records import (
    STATUS_FIELDS,
    BestCheckpoint,
    Half,
    RunResult,
    RunState,
    RunStatus,
    RunSummary,
    baseline_of,
    numbers_where_expected,
)
from core.workspace import (
    Workspace,
    flock_holder,
    flock_within,
    folder_name,
    pid_alive,
    read_json,
    read_json_if_intact,
    write_json_atomic,
)

HEARTBEAT_S = 5  # the worker touches status.json this often
HEARTBEAT_STALE_S = 60  # no heartbeat for this long and the run is taken as dead (a frozen or killed machine)
STATUS_LOCK_WAIT_S = 10.0  # a write of status.json takes milliseconds; this long means its writer is paused or frozen
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
BASELINE_CHECKPOINT = "checkpoint-0"  # the run's starting model, evaluated on the test split before training
LOG_TAIL_BYTES = 50_000  # the end of train.log that the pages and error lines look at
HOST = socket.gethostname()  # a status's pid is looked up only on its own host; elsewhere its heartbeat tells


class StopRequested(Exception):
    """A stop (the Stop button, `python -m core stop`, SIGTERM) reached a phase outside the training steps: caching
    encoder states, testing a model, an evaluation. The run ends there as `stopped`, keeping what is complete."""


def raise_if_stop_requested(run: RunFolder) -> None:
    """Called between batches of every phase that is not a training step: a stop ends the phase within a batch.
    Under torchrun (WORLD_SIZE > 1) it does nothing: every rank must stop at the same point, or the others wait in
    their next collective for one that left; there a stop is taken at the step boundary, agreed by all-reduce."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 and run.stop_file.exists():
        raise StopRequested


def checkpoint_step(name: str | Path) -> int | None:
    """12 for `checkpoint-12` (or a path ending in it); None for anything else."""
    match = CHECKPOINT.match(Path(str(name).rstrip("/")).name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def of(cls, workspace: Workspace, run: str) -> RunFolder:
        return cls(workspace.run(run))

    @property
    def name(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    def require(self) -> RunFolder:
        # `status ../runs/r1` must not step outside the runs folder, even where that path holds a run
        runs = next((p for p in self.path.parents if p.name == "runs"), self.path.parent)
        folder_name(str(self.path.relative_to(runs)), "run")
        if not self.exists():
            have = ", ".join(list_runs(self.path.parent)) or "none yet"
            raise StudioError(f"no run '{self.name}'; runs: {have}")
        return self

    @property
    def _fix(self) -> str:
        return f"restore it from a backup, or delete the run folder {self.path} to start over"

    # --- config
    def config(self) -> TrainConfig:
        data = read_json(self.path / "config.json", fix=f"run '{self.name}' cannot be read: {self._fix}")
        if data is None:
            raise StudioError(f"no run '{self.name}'")
        try:
            return TrainConfig.from_dict(data)
        except TypeError as err:
            raise DamagedFile(f"config.json of run '{self.name}' is damaged ({err}); {self._fix}") from None

    def write_config(self, config: TrainConfig) -> None:
        write_json_atomic(self.path / "config.json", config.to_dict())

    # --- status
    def raw_status(self) -> dict:
        """status.json as written (DamagedFile when it is damaged)."""
        return read_json(self.path / "status.json", fix=f"run '{self.name}' cannot be read: {self._fix}") or {}

    def status(self) -> RunStatus:
        """status.json with dead live runs shown as `interrupted` and damaged files as `damaged`; never raises."""
        try:
            status = RunStatus.from_dict(self.raw_status())
            self.config()  # a run whose config cannot be read cannot resume either
        except DamagedFile as err:
            return RunStatus(state=RunState.DAMAGED, error=str(err))
        if status.live:
            heartbeat = status.heartbeat
            stale = not isinstance(heartbeat, int | float) or time.time() - heartbeat > HEARTBEAT_STALE_S
            if status.host not in (None, HOST):  # another node's process: only its heartbeat can be seen here
                if stale:
                    error = f"no heartbeat from its rank-0 process on {status.host} for a minute: that node died"
                    status = replace(status, state=RunState.INTERRUPTED, error=status.error or error)
            elif not pid_alive(status.pid):
                error = status.error or self.last_error() or "the training process died"
                status = replace(status, state=RunState.INTERRUPTED, error=error)
            elif stale:
                # alive but silent (kill -STOP, a frozen GPU driver): it may write again, so it is not resumable
                silent = f"{time.time() - heartbeat:.0f} s" if isinstance(heartbeat, int | float) else "a while"
                # a stopped process reads no stop request and runs no SIGTERM handler until it is continued
                error = (
                    f"its worker (pid {status.pid}) has written no heartbeat for {silent}: it is paused or frozen; "
                    f"let a paused one go on with `kill -CONT {status.pid}` (then `python -m core stop {self.name}` "
                    f"works), or end it at once with `kill -9 {status.pid}`"
                )
                status = replace(status, state=RunState.NOT_RESPONDING, error=error)
        return status

    @contextmanager
    def _status_lock(self, patient: bool = False):
        """One writer of status.json at a time, across processes (the worker's heartbeat, the CLI, the pages). A
        writer holds it for one small file's write; a process paused or frozen in that moment holds it for good, so
        only the worker (`patient`: its heartbeat must not fail) waits without end: the CLI and the pages wait
        STATUS_LOCK_WAIT_S and are told which process holds it and what to do, instead of hanging."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".status.lock", "w") as lock:
            if not flock_within(lock, None if patient else STATUS_LOCK_WAIT_S):
                raise StudioError(self._status_held(lock))
            yield

    def _status_held(self, lock) -> str:
        """Why a status write gave up: the process holding the lock (else the status's pid), and what to do."""
        holder = flock_holder(os.fstat(lock.fileno())) or (read_json_if_intact(self.path / "status.json") or {}).get(
            "pid"
        )
        who, do = (
            (f"process {holder}", f"`kill -CONT {holder}` lets a paused one go on, `kill -9 {holder}` ends it")
            if holder
            else ("another process", f"`fuser {self.path / '.status.lock'}` names it")
        )
        return (
            f"run '{self.name}': its status has been held for {STATUS_LOCK_WAIT_S:g} s by {who}, paused or frozen "
            f"while writing it; {do}; then try again"
        )

    def update_status(self, owner: bool = False, **changes) -> RunStatus:
        """Merge `changes` (RunStatus fields) into status.json atomically (read, merge and replace under the lock). A
        damaged file is refused (DamagedFile), unless `owner`: the live worker, which knows its own state, writes a
        fresh one."""
        unknown = set(changes) - STATUS_FIELDS
        if unknown:
            raise TypeError(f"not status fields: {', '.join(sorted(unknown))}")
        with self._status_lock(patient=owner):
            try:
                current = self.raw_status()
            except DamagedFile:
                if not owner:
                    raise
                current = {}
            status = {**current, **changes}
            status = {k: v for k, v in status.items() if v is not None or k in ("error", "note")}
            write_json_atomic(self.path / "status.json", status)
        return RunStatus.from_dict(status)

    def last_error(self) -> str:
        """The last line that looks like an error in the log (for crashes that could not write status)."""
        for line in reversed(self.log_tail(200)):
            if "Error" in line or "Killed" in line or "error:" in line:
                return line.strip()[:300]
        return ""

    def log_path(self, node_rank: int = 0) -> Path:
        """Where a node's processes write: train.log for node 0 (and for a run on one machine)."""
        return self.path / ("train.log" if node_rank == 0 else f"train-node{node_rank}.log")

    def write_node(self, node_rank: int, pid: int, host: str) -> None:
        write_json_atomic(self.path / f"node-{node_rank}.json", {"pid": pid, "host": host, "started": time.time()})

    def node(self, node_rank: int) -> dict | None:
        """Node R's launcher, as it joined: {pid, host, started}; None if it never joined."""
        return read_json_if_intact(self.path / f"node-{node_rank}.json")

    def log_tail(self, lines: int = 20) -> list[str]:
        """The end of train.log as a person reads it (no terminal escapes, tqdm redraws reduced)."""
        log = self.path / "train.log"
        if not log.is_file():
            return []
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - LOG_TAIL_BYTES))
            return log_lines(f.read().decode("utf-8", "replace"))[-lines:]

    # --- metrics
    def append_metrics(self, row: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def metrics(self) -> list[dict]:
        """The rows that are objects with a step; a line cut by a crash or a hand edit is skipped."""
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and numbers_where_expected(row):
                rows.append(row)
        return rows

    def baseline_wer(self) -> float | None:
        """The base model's zero-shot WER on the evaluation split: the step-0 row."""
        return baseline_of(self.metrics())

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past `after_step` (before resuming from that checkpoint: no duplicated rows)."""
        kept = [r for r in self.metrics() if r["step"] <= after_step]
        tmp = self.path / ".metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path / "metrics.jsonl")

    # --- checkpoints
    def checkpoint_path(self, step: int) -> Path:
        return self.path / f"checkpoint-{step}"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a checkpoint is complete once trainer_state.json is written)."""
        found = []
        for p in self.path.glob("checkpoint-*"):
            step = checkpoint_step(p)
            if step is not None and (p / "trainer_state.json").is_file() and (p / "config.json").is_file():
                found.append((step, p))
        return [p for _, p in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        points = self.checkpoints()
        return points[-1] if points else None

    def write_best(self, checkpoint: str, wer: float) -> None:
        name = Path(checkpoint.rstrip("/")).name
        write_json_atomic(self.path / "best.json", BestCheckpoint(name, wer, checkpoint_step(name)).to_dict())

    def best(self) -> BestCheckpoint | None:
        """The best checkpoint by validation WER: best.json when it names a checkpoint that exists, else the
        best-scoring checkpoint still on disk (recomputed from the metrics), else None."""
        try:
            saved = read_json(self.path / "best.json")
        except DamagedFile:
            saved = None  # recomputed below from what exists
        if saved and isinstance(saved.get("checkpoint"), str) and (self.path / saved["checkpoint"]).is_dir():
            wer, step = saved.get("wer"), saved.get("step")
            return BestCheckpoint(saved["checkpoint"], wer if isinstance(wer, int | float) else None, step)
        on_disk = {checkpoint_step(p): p.name for p in self.checkpoints()}
        scored = [r for r in self.metrics() if r["step"] in on_disk and isinstance(r.get("eval_wer"), int | float)]
        if not scored:
            return None
        row = min(scored, key=lambda r: r["eval_wer"])
        return BestCheckpoint(on_disk[row["step"]], row["eval_wer"], row["step"], recomputed=True)

    def best_checkpoint_name(self) -> str | None:
        best = self.best()
        return best.checkpoint if best else None

    # --- evaluations and the held-out result
    def evaluation_file(self, checkpoint: str, data: str, split: str) -> Path:
        return self.path / "evaluations" / f"{checkpoint}__{data}__{split}.json"

    def evaluations(self) -> list[tuple[Path, str]]:
        """(file, checkpoint name) of every saved evaluation of this run's checkpoints."""
        folder = self.path / "evaluations"
        return [(p, p.name.split("__", 1)[0]) for p in sorted(folder.glob("*__*__*.json"))] if folder.is_dir() else []

    def write_evaluation(self, checkpoint: str, data: str, split: str, record: dict) -> Path:
        path = self.evaluation_file(checkpoint, data, split)
        write_json_atomic(path, record)
        return path

    def _result_json(self) -> dict:
        return read_json(self.path / "result.json", fix=f"the run's result cannot be read: {self._fix}") or {}

    def result(self) -> RunResult:
        """The held-out split before and after; the halves that exist (DamagedFile if result.json is damaged)."""
        return RunResult.from_dict(self._result_json())

    def has_result_half(self, half: Half) -> bool:
        try:
            return getattr(self.result(), half) is not None
        except DamagedFile:
            return False

    def write_result_half(self, half: Half, checkpoint: str, record: dict, changes: dict | None = None) -> None:
        """One half of result.json from an evaluation record (its rows stay in evaluations/); `changes` are the
        paired-bootstrap intervals, once both halves exist."""
        keys = ("wer", "cer", "wer_raw", "cer_raw", "utterances")
        extra = ("language", "language_accuracy", "guards", "probes")
        try:
            result = self._result_json()
        except DamagedFile:
            result = {}
        result[half] = {
            "checkpoint": checkpoint,
            "split": record["split"],
            **{k: record[k] for k in keys},
            **{k: record[k] for k in extra if record.get(k) is not None},
        }
        if changes is not None:
            result["changes"] = changes
        write_json_atomic(self.path / "result.json", result)

    # --- stop requests
    @property
    def stop_file(self) -> Path:
        return self.path / "stop"

    def request_stop(self) -> None:
        self.stop_file.write_text(str(time.time()))

    def summary(self) -> RunSummary:
        """One row for tables: never raises, whatever the state of the files."""
        status = self.status()
        best = self.best()
        try:
            result = self.result()
        except DamagedFile:
            result = RunResult()
        return RunSummary(
            run=self.name,
            state=status.state,
            step=status.step,
            total=status.total,
            baseline_wer=self.baseline_wer(),
            best_wer=best.wer if best else None,
            best_checkpoint=best.checkpoint if best else None,
            test_before=result.wer_before,
            test_after=result.wer_after,
            error=status.error,
            change=shown_change(result.change()),
            guards="; ".join(
                f"{name}: {percent(result.before.guards[name].get('wer'))} → {percent(g.get('wer'))}"
                for name, g in (result.after.guards.items() if result.after and result.before else ())
                if name in result.before.guards
            )
            or MISSING,
            probes=(
                f"{result.before.probes.get('probe_words')} → {result.after.probes.get('probe_words')}"
                if result.before and result.after and result.before.probes and result.after.probes
                else MISSING
            ),
            warnings=tuple(status.warnings),
        )


def free_run_name(workspace: Workspace, stem: str) -> str:
    """'STEM-N' with the first N not taken: what the form offers for a new run on dataset STEM."""
    n = 1
    while (workspace.run(f"{stem}-{n}")).exists():
        n += 1
    return f"{stem}-{n}"


def list_runs(runs_dir: Path) -> list[str]:
    if not runs_dir.is_dir():
        return []
    folders = [p for p in runs_dir.iterdir() if (p / "config.json").is_file()]
    return [p.name for p in sorted(folders, key=lambda p: p.stat().st_mtime)]
