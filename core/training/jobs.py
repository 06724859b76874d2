"""Training jobs: start, stop, resume, list, as background processes that outlive the UI and the CLI.

A job is `python -m core.training.worker RUN_FOLDER` in its own process session (closing a browser tab, restarting
Streamlit or ending the CLI does not stop it); its output goes to the run's train.log. One training runs at a time on
this machine (one GPU, or all CPU cores): a second start is refused with the name of the live run.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from core.data.artifact import open_artifact
from core.errors import StudioError
from core.training.config import TrainConfig
from core.training.runs import LIVE_STATES, RESUMABLE_STATES, RunFolder, checkpoint_step, list_runs
from core.workspace import Workspace, pid_alive, read_json_if_intact

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def _jobs_lock(workspace: Workspace):
    """Serialise start/resume across processes, so two clicks cannot both pass the one-at-a-time check."""
    workspace.runs.mkdir(parents=True, exist_ok=True)
    with open(workspace.runs / ".jobs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def live_run(workspace: Workspace) -> RunFolder | None:
    for name in list_runs(workspace.runs):
        run = RunFolder.of(workspace, name)
        if run.status().get("state") in LIVE_STATES:
            return run
    return None


def _refuse_if_busy(workspace: Workspace) -> None:
    busy = live_run(workspace)
    if busy:
        status = busy.status()
        raise StudioError(
            f"run '{busy.name}' is training (step {status.get('step', 0)}/{status.get('total', '?')}); "
            f"one training at a time: stop it or wait until it ends"
        )


def _detached(args: list[str], log_path: Path) -> subprocess.Popen:
    """`python ARGS` from the repository root in a process session of its own (it outlives the caller), output
    appended to `log_path`. The LLM key never reaches it: nothing it runs needs one."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("OPENAI_API_KEY", None)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO),
            env=env,
            start_new_session=True,
        )


def _spawn(run: RunFolder, resume: bool) -> subprocess.Popen:
    worker = ["-m", "core.training.worker", str(run.path)] + (["--resume"] if resume else [])
    nproc = run.config().nproc
    # torchrun starts one worker per process and sets RANK/WORLD_SIZE; the Trainer then runs DDP (gloo on a CPU)
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    process = _detached([*launcher, *worker], run.path / "train.log")
    run.update_status(state="starting", pid=process.pid, heartbeat=time.time())
    return process


def _start(run: RunFolder, resume: bool, foreground: bool) -> subprocess.Popen | None:
    """Spawn the worker unless it runs in this process (foreground, one process); call under the jobs lock."""
    return _spawn(run, resume) if not foreground or run.config().nproc > 1 else None


def _follow(run: RunFolder, process: subprocess.Popen | None, foreground: bool, resume: bool) -> RunFolder:
    """Return at once for a background job; else wait for the launched processes, or train right here."""
    if foreground and process is not None:
        process.wait()  # several processes cannot run in this one: wait for the launcher instead
    elif foreground:
        from core.training.worker import run_worker

        run_worker(run.path, resume=resume)
    return run


def check_before_start(config: TrainConfig, workspace: Workspace) -> None:
    """Everything a run can be checked for before its folder exists: the config's values, the dataset and its
    splits, the task, and that the model hears what the dataset's features hold (mel bins, window)."""
    config.validate()
    artifact = open_artifact(workspace, config.data)
    splits = artifact.manifest["splits"]
    for role, split in (("evaluation", config.eval_split), ("the held-out test", config.test_split)):
        if split and (split not in splits or artifact.streams(split)):
            raise StudioError(
                f"dataset '{config.data}' has no stored '{split}' split for {role}; it has {', '.join(splits)}"
                + ("; leave test_split empty to train without a held-out result" if split == config.test_split else "")
            )
    if config.task and config.task != artifact.task:
        raise StudioError(
            f"task {config.task}: dataset '{config.data}' was prepared for {artifact.task} (its labels start with "
            f"<|{artifact.task}|>); prepare it again with --task {config.task}, or leave task empty"
        )
    if artifact.streams("train") and (config.cache_encoder_states or config.num_train_epochs):
        raise StudioError(
            f"dataset '{config.data}' streams its training split: cache_encoder_states and num_train_epochs need "
            f"stored training features; prepare it without --stream-train"
        )
    check_model_fits_features(config, artifact, workspace)


def check_model_fits_features(config: TrainConfig, artifact, workspace: Workspace) -> None:
    """The model's mel bins must equal the features', and its window (or window_seconds) fit in theirs."""
    from core.audio.decode import FRAMES_PER_SECOND
    from core.models.resolve import resolve_model
    from core.workspace import read_json

    location = Path(resolve_model(config.model, workspace))
    fix = "the model folder is damaged: restore it (or delete it to have it made again)"
    model_config = read_json(location / "config.json", fix=fix) if location.is_dir() else None
    if not model_config:
        return  # a Hub model not downloaded yet: the worker checks it once loaded
    bins, frames = artifact.feature_shape()
    model_bins = model_config.get("num_mel_bins", bins)
    model_seconds = model_config.get("max_source_positions", 1500) * 2 / FRAMES_PER_SECOND
    wanted = config.window_seconds or model_seconds
    redo = f"prepare the dataset again with --model {config.model}"
    if model_bins != bins:
        raise StudioError(
            f"model {config.model} takes {model_bins} mel bins, dataset '{config.data}' holds {bins} "
            f"(prepared with {artifact.manifest['model']}); {redo}"
        )
    if config.window_seconds and config.window_seconds > model_seconds:
        raise StudioError(
            f"window_seconds {config.window_seconds}: model {config.model} listens to {model_seconds:g} s"
        )
    if wanted > frames / FRAMES_PER_SECOND + 1e-6:
        raise StudioError(
            f"model {config.model} listens to {wanted:g} s, dataset '{config.data}' holds "
            f"{frames / FRAMES_PER_SECOND:g} s features (prepared with {artifact.manifest['model']}); {redo}"
        )


def start_run(config: TrainConfig, workspace: Workspace, foreground: bool = False) -> RunFolder:
    """Validate, write the run folder and start training (in this process when `foreground`)."""
    check_before_start(config, workspace)
    run = RunFolder.of(workspace, config.run)
    with _jobs_lock(workspace):
        if run.exists():
            raise StudioError(f"run '{config.run}' exists; choose another name, or resume it")
        _refuse_if_busy(workspace)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(config)
        run.update_status(state="starting", step=0, total=config.max_steps, created=time.time())
        process = _start(run, resume=False, foreground=foreground)
    return _follow(run, process, foreground, resume=False)


def stop_run(run: RunFolder) -> dict:
    """Ask a live run to stop: it saves a checkpoint at the next step and ends as `stopped`."""
    status = run.require().status()
    if status.get("state") not in LIVE_STATES:
        why = f" ({status['error']})" if status.get("state") == "damaged" else ""
        raise StudioError(
            f"run '{run.name}' is {status.get('state', 'not running')}{why}; only a live run can be stopped"
        )
    run.request_stop()
    return run.update_status(state="stopping")


def resume_run(run: RunFolder, workspace: Workspace, foreground: bool = False) -> RunFolder:
    """Continue a stopped, failed or interrupted run from its last complete checkpoint (same step numbering)."""
    status = run.require().status()
    state = status.get("state")
    if state not in RESUMABLE_STATES:
        why = f" ({status['error']})" if state == "damaged" else ""
        raise StudioError(f"run '{run.name}' is {state}{why}; only {', '.join(RESUMABLE_STATES)} runs can be resumed")
    check_before_start(run.config(), workspace)  # the dataset or model may have changed since
    with _jobs_lock(workspace):
        _refuse_if_busy(workspace)
        checkpoint = run.last_checkpoint()
        # Rows past the checkpoint will be logged again by the resumed trainer: drop them so none is doubled.
        step = checkpoint_step(checkpoint) if checkpoint else 0
        run.truncate_metrics(step if checkpoint else -1)  # no checkpoint: it starts over, baseline included
        run.stop_file.unlink(missing_ok=True)
        run.update_status(state="starting", error=None, step=step)
        process = _start(run, resume=True, foreground=foreground)
    return _follow(run, process, foreground, resume=True)


def wait_for(run: RunFolder, timeout_s: float, states: tuple[str, ...], poll_s: float = 0.5) -> dict:
    """Poll until the run reaches one of `states` (tests and the CLI's --wait use this)."""
    deadline = time.time() + timeout_s
    while True:
        status = run.status()
        if status.get("state") in states or time.time() > deadline:
            return status
        time.sleep(poll_s)


def start_command_job(workspace: Workspace, name: str, args: list[str]) -> dict:
    """Run `python -m core ARGS --home WORKSPACE` detached (the one-click demo); its record is jobs/NAME.json."""
    from core.workspace import read_json_if_intact, write_json_atomic

    jobs = workspace.home / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    record = read_json_if_intact(jobs / f"{name}.json")
    if record and command_job_state(record) == "running":
        raise StudioError(f"'{name}' is already running (pid {record['pid']})")
    log = jobs / f"{name}.log"
    log.write_bytes(b"")  # each job's log starts empty: its tail is what the sidebar shows
    process = _detached(["-m", "core", *args, "--home", str(workspace.home)], log)
    record = {"name": name, "pid": process.pid, "args": args, "started": time.time(), "log": str(log)}
    write_json_atomic(jobs / f"{name}.json", record)
    return record


def command_job(workspace: Workspace, name: str) -> dict | None:
    return read_json_if_intact(workspace.home / "jobs" / f"{name}.json")  # a damaged record: no such job


def command_job_state(record: dict) -> str:
    return "running" if pid_alive(record.get("pid")) else "finished"


def command_job_tail(record: dict, lines: int = 8) -> list[str]:
    """The last lines of the job's log, with tqdm's carriage-return redraws reduced to their final state."""
    path = Path(record["log"])
    if not path.is_file():
        return []
    text = path.read_bytes()[-20000:].decode("utf-8", "replace")
    return [line.split("\r")[-1] for line in text.splitlines() if line.strip()][-lines:]
