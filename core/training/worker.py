"""The training process: `python -m core.training.worker RUN_FOLDER [--resume]`, started by core/jobs.py.

It owns the run folder while it lives: status.json says running with its pid and a heartbeat; on exit the state is
completed, stopped or failed (with the error in one line and the traceback in train.log). SIGTERM is turned into a
stop request, so `kill` saves a checkpoint like the Stop button does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from core.training.run_records import RunState
from core.training.runs import HOST, RunFolder, StopRequested
from core.workspace import Workspace


def _stop_on_sigterm(run: RunFolder):
    """SIGTERM asks for a stop as the Stop button does (a checkpoint at the next step, or the current phase ended
    within a batch); a second SIGTERM ends the phase where it is."""
    received = []

    def handle(signum, frame) -> None:
        received.append(signum)
        run.request_stop()
        if len(received) > 1:
            raise StopRequested

    return handle


def run_worker(run_dir: Path, resume: bool = False) -> int:
    run = RunFolder(run_dir)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if rank == 0:
        # first, before the seconds of importing torch: a SIGTERM from here on is a stop, not a crash
        signal.signal(signal.SIGTERM, _stop_on_sigterm(run))
    from core.training.trainer import describe_failure, format_traceback, train

    workspace = Workspace(run_dir.parent.parent)
    if world > 1:
        print(f"worker rank {rank} of {world}", flush=True)
    if rank != 0:
        train(run, workspace, resume=resume)  # a torchrun replica: rank 0 alone records the run
        return 0
    run.update_status(
        owner=True,
        state=RunState.STARTING,
        pid=os.getpid(),
        host=HOST,  # on several nodes, rank 0 may run on any of them
        heartbeat=time.time(),
        error=None,
        **({} if resume else {"started": time.time()}),
    )
    try:
        train(run, workspace, resume=resume)
        return 0
    except StopRequested:  # a second SIGTERM outside the phases train() watches
        run.update_status(owner=True, state=RunState.STOPPED, finished=time.time(), heartbeat=time.time())
        return 0
    except BaseException as err:  # record every way of dying, then let the exit code say it
        print(format_traceback(err), file=sys.stderr, flush=True)
        run.update_status(
            owner=True, state=RunState.FAILED, error=describe_failure(err), finished=time.time(), heartbeat=time.time()
        )
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    return run_worker(args.run_dir.resolve(), resume=args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
