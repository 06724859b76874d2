"""Training jobs: start, stop, resume, list, as background processes that outlive the UI and the CLI.

A job is `python -m core.training.worker RUN_FOLDER` in its own process session (closing a browser tab, restarting
Streamlit or ending the CLI does not stop it); its output goes to the run's train.log. One training runs at a time on
this machine (one GPU, or all CPU cores): a second start is refused with the name of the live run.
"""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import replace
from pathlib import Path
from shlex import quote

from core.audio.constants import ENCODER_POSITIONS_PER_SECOND, FRAMES_PER_SECOND, WINDOW_POSITIONS
from core.data.artifact import open_artifact
from core.errors import StudioError
from core.formatting import log_lines
from core.models.resolve import resolve_model
from core.training.config import TrainConfig
from core.training.feature_sets import check_streamed_training
from core.training.library_output import library_output_to
from core.training.nodes import check_endpoint_here, join_run, launcher_args
from core.training.run_records import RESUMABLE_STATES, RunState, RunStatus
from core.training.runs import HOST, RunFolder, checkpoint_step, list_runs
from core.workspace import Workspace, pid_alive, read_json, read_json_if_intact, write_json_atomic

REPO = Path(__file__).resolve().parents[2]
# One training at a time on this machine, whatever the workspace: two workspaces share one GPU (or all CPU cores).
# The lock serialises starts; the record names the run that last started, read through its own run folder. Both
# live in the temp folder, or in $STUDIO_LOCK_DIR (machines whose accelerators are split between users).
LOCK_DIR = Path(os.environ.get("STUDIO_LOCK_DIR") or tempfile.gettempdir())
MACHINE_LOCK = LOCK_DIR / "whisper-studio-training.lock"
MACHINE_RECORD = LOCK_DIR / "whisper-studio-training.json"


@contextmanager
def _jobs_lock(workspace: Workspace):
    """Serialise start/resume across processes and workspaces, so two clicks (or two workspaces) cannot both pass
    the one-at-a-time check."""
    workspace.runs.mkdir(parents=True, exist_ok=True)
    MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(workspace.runs / ".jobs.lock", "w") as lock, open(MACHINE_LOCK, "a") as machine:
        with suppress(OSError):
            os.chmod(MACHINE_LOCK, 0o666)  # every user's trainings take the same lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        fcntl.flock(machine, fcntl.LOCK_EX)
        yield


def live_run(workspace: Workspace) -> RunFolder | None:
    for name in list_runs(workspace.runs):
        run = RunFolder.of(workspace, name)
        if run.status().live:
            return run
    return None


def machine_run() -> RunFolder | None:
    """The run that is training on this machine, in any workspace (None when the last one has ended)."""
    record = read_json_if_intact(MACHINE_RECORD)
    if not record or not isinstance(record.get("run"), str):
        return None
    run = RunFolder(Path(record["run"]))
    return run if run.exists() and run.status().live else None


def _refuse_if_busy(workspace: Workspace, joining: RunFolder | None = None) -> None:
    """Refuse while another run trains here (a node joining `joining` is the same training, not another)."""
    busy = live_run(workspace) or machine_run()
    if busy and (joining is None or busy.path != joining.path):
        status = busy.status()
        where = "" if busy.path.parent == workspace.runs else f" in workspace {busy.path.parent.parent}"
        home = "" if not where else f" --home {quote(str(busy.path.parent.parent))}"
        # a paused or frozen worker reads no stop request: status's own advice (kill) is the way to end it
        end = (
            status.error
            if status.state == RunState.NOT_RESPONDING
            else f"wait until it ends, or stop it (python -m core stop {quote(busy.name)}{home})"
        )
        raise StudioError(
            f"run '{busy.name}'{where} is training ({status.state}, step {status.step}/{status.total or '?'}); one "
            f"training at a time on this machine: {end}"
        )


def _claim_machine(run: RunFolder) -> None:
    with suppress(OSError):  # a machine without a writable temp folder keeps the per-workspace rule
        write_json_atomic(MACHINE_RECORD, {"run": str(run.path)})
        os.chmod(MACHINE_RECORD, 0o666)


def _detached(args: list[str], log_path: Path) -> subprocess.Popen:
    """`python ARGS` (core is installed: `pip install -e .`) in a process session of its own (it outlives the
    caller), output appended to `log_path`. The LLM key never reaches it: nothing it runs needs one."""
    env = {
        **os.environ,
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


def torchrun_launcher(nproc: int, nnodes: int = 1, node_rank: int = 0, master: str = "") -> list[str]:
    """What follows `python` to start `nproc` processes of the command after it through torchrun, each with its
    RANK and WORLD_SIZE: on this machine alone, or as node `node_rank` of `nnodes` that meet at `master` (host:port
    of node 0)."""
    launcher = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if nnodes == 1:
        return [*launcher, "--standalone"]
    host, _, port = master.rpartition(":")
    return [
        *launcher,
        f"--nnodes={nnodes}",
        f"--node_rank={node_rank}",
        f"--master_addr={host}",
        f"--master_port={port}",
    ]


def _spawn(run: RunFolder, resume: bool) -> subprocess.Popen:
    """Node 0's processes: the worker itself, or (more than one process) this node's torchrun launcher, which starts
    one worker per process and sets RANK/WORLD_SIZE; the Trainer then runs DDP (gloo on a CPU)."""
    if run.config().processes > 1:
        args = launcher_args(run, 0, resume)
    else:
        args = ["-m", "core.training.worker", str(run.path)] + (["--resume"] if resume else [])
    process = _detached(args, run.log_path())
    run.update_status(state=RunState.STARTING, pid=process.pid, host=HOST, heartbeat=time.time())
    return process


def _start(run: RunFolder, resume: bool, foreground: bool) -> subprocess.Popen | None:
    """Spawn the worker unless it runs in this process (foreground, one process); call under the jobs lock."""
    return _spawn(run, resume) if not foreground or run.config().processes > 1 else None


def _follow(run: RunFolder, process: subprocess.Popen | None, foreground: bool, resume: bool) -> RunFolder:
    """Return at once for a background job; else wait for the launched processes, or train right here."""
    if foreground and process is not None:
        process.wait()  # several processes cannot run in this one: wait for the launcher instead
    elif foreground:
        from core.training.worker import run_worker

        # our progress lines (the trainer's prints too) go to the terminal's stderr and, as for a background job,
        # into train.log (the pages show it); the libraries' warnings, log records and bars go to train.log only
        with open(run.path / "train.log", "a", encoding="utf-8") as log:
            shown = _Tee(sys.stderr, log)
            with redirect_stderr(shown), redirect_stdout(shown), library_output_to(log):
                run_worker(run.path, resume=resume)
    return run


class _Tee(io.TextIOBase):
    """A text stream that writes to several (the terminal and a log file)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def check_before_start(config: TrainConfig, workspace: Workspace) -> None:
    """Everything a run can be checked for before its folder exists: the config's values, the dataset and its
    splits, the task, and that the model hears what the dataset's features hold (mel bins, window)."""
    config.validate()
    artifact = open_artifact(workspace, config.data)
    splits = artifact.manifest.splits
    used = ["train", config.eval_split] + ([config.test_split] if config.test_split else [])
    empty = [split for split in artifact.manifest.empty_splits() if split in used]
    if empty:
        raise StudioError(
            f"dataset '{config.data}' has no rows in its {' and '.join(empty)} split{'s' if len(empty) > 1 else ''}: "
            "nothing to "
            + ("train on" if "train" in empty else "evaluate on")
            + "; prepare it again with more data"
            + ("" if "train" in empty or config.eval_split in empty else ", or leave test_split empty")
        )
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
    check_streamed_training(artifact, config)
    check_model_fits_features(config, artifact, workspace)
    check_side_sets(config, workspace)


def check_model_fits_features(config: TrainConfig, artifact, workspace: Workspace, role: str = "dataset") -> None:
    """The model's mel bins must equal the features' of `artifact` (the run's dataset, or a guard or replay set:
    `role`), and its window (or window_seconds) fit in theirs; without window_seconds the features are fed whole,
    so they must be as long as the model's window."""
    location = Path(resolve_model(config.model, workspace))
    fix = "the model folder is damaged: restore it (or delete it to have it made again)"
    model_config = read_json(location / "config.json", fix=fix) if location.is_dir() else None
    if not model_config:
        return  # a Hub model not downloaded yet: the worker checks it once loaded
    bins, frames = artifact.feature_shape()
    model_bins = model_config.get("num_mel_bins", bins)
    model_seconds = model_config.get("max_source_positions", WINDOW_POSITIONS) / ENCODER_POSITIONS_PER_SECOND
    wanted = config.window_seconds or model_seconds
    held = frames / FRAMES_PER_SECOND
    what = f"{role} '{artifact.name}'"
    redo = f"prepare {artifact.name} again with --model {config.model}"
    if model_bins != bins:
        raise StudioError(
            f"model {config.model} takes {model_bins} mel bins, {what} holds {bins} "
            f"(prepared with {artifact.manifest.model}); {redo}"
        )
    if config.window_seconds and config.window_seconds > model_seconds:
        raise StudioError(
            f"window_seconds {config.window_seconds}: model {config.model} listens to {model_seconds:g} s"
        )
    if wanted > held + 1e-6 or (not config.window_seconds and abs(held - model_seconds) > 1e-6):
        raise StudioError(
            f"model {config.model} listens to {wanted:g} s, {what} holds {held:g} s features (prepared with "
            f"{artifact.manifest.model}); {redo}"
        )


def check_side_sets(config: TrainConfig, workspace: Workspace) -> None:
    """The guard and replay sets the user named (--guard, --replay), before a run folder exists: each a prepared
    dataset of that name (one folder name: '../x' is refused), with features this model hears."""
    named = [("guard", g.strip()) for g in config.guard.split(",") if g.strip()]
    named += [("replay", config.replay)] if config.replay else []
    for role, name in named:
        try:
            artifact = open_artifact(workspace, name)
        except StudioError as err:
            raise StudioError(f"--{role} {name}: {err}") from None
        check_model_fits_features(config, artifact, workspace, role=f"{role} dataset")


def start_run(config: TrainConfig, workspace: Workspace, foreground: bool = False) -> RunFolder:
    """Validate, write the run folder and start training (in this process when `foreground`); a node of rank > 0
    joins the run node 0 started instead."""
    check_before_start(config, workspace)
    run = RunFolder.of(workspace, config.run)
    if config.node_rank > 0:
        return _join(config, run, workspace, foreground, compare=True)
    if config.nnodes > 1:
        check_endpoint_here(config.rdzv_endpoint)
    with _jobs_lock(workspace):
        if run.exists():
            raise StudioError(f"run '{config.run}' exists; choose another name, or resume it")
        _refuse_if_busy(workspace)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(config)
        run.update_status(state=RunState.STARTING, step=0, total=config.max_steps, created=time.time())
        _claim_machine(run)
        process = _start(run, resume=False, foreground=foreground)
    return _follow(run, process, foreground, resume=False)


def stop_run(run: RunFolder) -> RunStatus:
    """Ask a live run to stop: it saves a checkpoint at the next step and ends as `stopped`."""
    status = run.require().status()
    if not status.live:
        raise StudioError(f"run '{run.name}' is {status.explained}; only a live run can be stopped")
    run.request_stop()
    return run.update_status(state=RunState.STOPPING)


def resume_run(run: RunFolder, workspace: Workspace, foreground: bool = False, node_rank: int = 0) -> RunFolder:
    """Continue a stopped, failed or interrupted run from its last complete checkpoint (same step numbering).
    A run whose worker still lives (paused, frozen: `not responding`) is never resumed: two workers would write it.
    On several nodes, node 0 resumes it and the others (`node_rank` > 0) join it, each from its own machine."""
    if node_rank > 0:
        config = replace(run.require().config(), node_rank=node_rank)
        check_before_start(config, workspace)
        return _join(config, run, workspace, foreground, compare=False)
    _refuse_unless_resumable(run)
    config = run.config()
    check_before_start(config, workspace)  # the dataset or model may have changed since
    if config.nnodes > 1:
        check_endpoint_here(config.rdzv_endpoint)
    with _jobs_lock(workspace):
        _refuse_unless_resumable(run)  # again under the lock: a second resume may have started it meanwhile
        _refuse_if_busy(workspace)
        checkpoint = run.last_checkpoint()
        # Rows past the checkpoint will be logged again by the resumed trainer: drop them so none is doubled.
        step = checkpoint_step(checkpoint) if checkpoint else 0
        run.truncate_metrics(step if checkpoint else -1)  # no checkpoint: it starts over, baseline included
        run.stop_file.unlink(missing_ok=True)
        run.update_status(state=RunState.STARTING, error=None, step=step)
        _claim_machine(run)
        process = _start(run, resume=True, foreground=foreground)
    return _follow(run, process, foreground, resume=True)


def _join(config: TrainConfig, run: RunFolder, workspace: Workspace, foreground: bool, compare: bool) -> RunFolder:
    """Node `config.node_rank` > 0: wait for node 0's rendezvous and run folder (core/training/nodes.py), then start
    this node's processes, recorded in the run folder's node-R.json; with `foreground`, wait for them."""
    joined = join_run(config, run, compare)
    with _jobs_lock(workspace):
        _refuse_if_busy(workspace, joining=run)
        _claim_machine(run)
        # the worker continues from the run folder's last checkpoint: none for a new run, node 0's for a resumed one
        process = _detached(launcher_args(run, joined.node_rank, resume=True), run.log_path(joined.node_rank))
        run.write_node(joined.node_rank, process.pid, HOST)
    if foreground:
        process.wait()
    return run


def _refuse_unless_resumable(run: RunFolder) -> None:
    status = run.require().status()
    if not status.resumable:
        raise StudioError(
            f"run '{run.name}' is {status.explained}; only {', '.join(RESUMABLE_STATES)} runs can be resumed"
        )


def wait_for(run: RunFolder, timeout_s: float, states: tuple[str, ...], poll_s: float = 0.5) -> RunStatus:
    """Poll until the run reaches one of `states` (tests and the CLI's --wait use this)."""
    deadline = time.time() + timeout_s
    while True:
        status = run.status()
        if status.state in states or time.time() > deadline:
            return status
        time.sleep(poll_s)


def start_command_job(workspace: Workspace, name: str, args: list[str]) -> dict:
    """Run `python -m core ARGS --home WORKSPACE` detached (the one-click demo); its record is jobs/NAME.json."""
    from core.workspace import read_json_if_intact, write_json_atomic

    jobs = workspace.jobs
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
    return read_json_if_intact(workspace.jobs / f"{name}.json")  # a damaged record: no such job


def command_job_state(record: dict) -> str:
    return "running" if pid_alive(record.get("pid")) else "finished"


def command_job_tail(record: dict, lines: int = 8) -> list[str]:
    """The last lines of the job's log as a person reads them (core.formatting.log_lines)."""
    path = Path(record["log"])
    if not path.is_file():
        return []
    return log_lines(path.read_bytes()[-20000:].decode("utf-8", "replace"))[-lines:]
