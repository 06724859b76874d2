"""The worker's side of status.json: one owner that beats every HEARTBEAT_S seconds and writes every change.

Under torchrun only rank 0 writes the run folder; every rank must still agree on when to stop, or the next
all-reduce would hang.
"""

from __future__ import annotations

import os
import threading
import time

import torch

from core.runs import HEARTBEAT_S, RunFolder


def is_primary_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def stop_requested_everywhere(run: RunFolder) -> bool:
    """Whether to stop now; under DDP every rank must agree on the same step, or the next all-reduce hangs."""
    stop = run.stop_file.exists()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        flag = torch.tensor([int(stop)])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        stop = bool(flag.item())
    return stop


class StatusWriter:
    """Owns status.json for the worker: a heartbeat thread (closed by `close`) and the callbacks' updates."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.primary = is_primary_process()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="status-heartbeat")

    def update(self, **changes) -> None:
        if self.primary:
            self.run.update_status(owner=True, heartbeat=time.time(), **changes)

    def start(self) -> None:
        if self.primary:
            self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=HEARTBEAT_S)

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            self.update()
