"""The run folder: the record of one training run, and the only thing the UI reads to learn about it.

    runs/<run>/config.json        the TrainConfig (no secrets)
    runs/<run>/status.json        state, step, total, started, heartbeat, pid, error: replaced atomically
    runs/<run>/metrics.jsonl      append-only rows: {step, loss, learning_rate, eval_wer, eval_cer, …}
    runs/<run>/train.log          the worker's stdout/stderr
    runs/<run>/checkpoint-<step>/ self-contained HF folders (model, processor, generation config)
    runs/<run>/best.json          the best checkpoint by WER
    runs/<run>/evaluations/       saved evaluation results, reused
    runs/<run>/stop               present = a stop was requested

A live state whose process is gone, or whose heartbeat is older than HEARTBEAT_STALE_S, reads as `interrupted`.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from core.config import TrainConfig
from core.errors import StudioError
from core.workspace import Workspace, read_json, write_json_atomic

LIVE_STATES = ("starting", "running", "stopping")
RESUMABLE_STATES = ("stopped", "failed", "interrupted")
HEARTBEAT_S = 5  # the worker touches status.json this often
HEARTBEAT_STALE_S = 60  # no heartbeat for this long and the run is taken as dead (a frozen or killed machine)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


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
        if not self.exists():
            have = ", ".join(list_runs(self.path.parent)) or "none yet"
            raise StudioError(f"no run '{self.name}'; runs: {have}")
        return self

    # --- config
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(read_json(self.path / "config.json"))

    def write_config(self, config: TrainConfig) -> None:
        write_json_atomic(self.path / "config.json", config.to_dict())

    # --- status
    def raw_status(self) -> dict:
        return read_json(self.path / "status.json", default={}) or {}

    def status(self) -> dict:
        """status.json with dead live runs shown as `interrupted` (crash, kill -9, out of memory)."""
        status = self.raw_status()
        if status.get("state") in LIVE_STATES:
            stale = time.time() - status.get("heartbeat", 0) > HEARTBEAT_STALE_S
            if not pid_alive(status.get("pid")) or stale:
                status = {
                    **status,
                    "state": "interrupted",
                    "error": status.get("error") or self.last_error() or "the training process died",
                }
        return status

    def update_status(self, **changes) -> dict:
        status = {**self.raw_status(), **changes}
        write_json_atomic(self.path / "status.json", status)
        return status

    def last_error(self) -> str:
        """The last line that looks like an error in the log (for crashes that could not write status)."""
        log = self.path / "train.log"
        if not log.is_file():
            return ""
        tail = log.read_bytes()[-20000:].decode("utf-8", "replace").splitlines()
        for line in reversed(tail):
            if "Error" in line or "Killed" in line or "error:" in line:
                return line.strip()[:300]
        return ""

    def log_tail(self, lines: int = 20) -> list[str]:
        log = self.path / "train.log"
        if not log.is_file():
            return []
        return log.read_bytes()[-50000:].decode("utf-8", "replace").splitlines()[-lines:]

    # --- metrics
    def append_metrics(self, row: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past `after_step` (before resuming from that checkpoint: no duplicated rows)."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= after_step]
        tmp = self.path / ".metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path / "metrics.jsonl")

    # --- checkpoints
    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a checkpoint is complete once trainer_state.json is written)."""
        found = []
        for p in self.path.glob("checkpoint-*"):
            m = _CHECKPOINT.match(p.name)
            if m and (p / "trainer_state.json").is_file() and (p / "config.json").is_file():
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        points = self.checkpoints()
        return points[-1] if points else None

    def best(self) -> dict | None:
        return read_json(self.path / "best.json")

    # --- stop requests
    @property
    def stop_file(self) -> Path:
        return self.path / "stop"

    def request_stop(self) -> None:
        self.stop_file.write_text(str(time.time()))

    def summary(self) -> dict:
        status = self.status()
        best = self.best() or {}
        baseline = next((r for r in self.metrics() if r.get("baseline")), {})
        return {
            "run": self.name,
            "state": status.get("state", "unknown"),
            "step": status.get("step", 0),
            "total": status.get("total", 0),
            "best_wer": best.get("wer"),
            "best_checkpoint": best.get("checkpoint"),
            "baseline_wer": baseline.get("eval_wer"),
            "error": status.get("error"),
        }


def list_runs(runs_dir: Path) -> list[str]:
    if not runs_dir.is_dir():
        return []
    folders = [p for p in runs_dir.iterdir() if (p / "config.json").is_file()]
    return [p.name for p in sorted(folders, key=lambda p: p.stat().st_mtime)]
