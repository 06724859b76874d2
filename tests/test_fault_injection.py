"""Fault injection: every run-folder file damaged in every way a power cut, a full disk or a hand edit leaves it.
Every command and every page must still answer with a clear line, the rest of the workspace must keep working,
and nothing may be written over the damaged file (the evidence)."""

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
from helpers import PAGES, make_audio, no_trouble, open_page, run_cli, tiny_config

from core.cli import main
from core.data import FolderSource, PrepareOptions, examine, features_from_row, prepare_features
from core.errors import StudioError
from core.languages import get_language
from core.training import RunFolder, live_run, resume_run, start_run, stop_run, wait_for
from core.workspace import Workspace, pid_alive

RUN = "page-run"


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


DAMAGES = {
    "status.json truncated": ("status.json", truncate),
    "status.json empty": ("status.json", lambda p: p.write_bytes(b"")),
    "status.json not an object": ("status.json", lambda p: p.write_text("[1, 2, 3]")),
    "config.json truncated": ("config.json", truncate),
    "config.json wrong type": ("config.json", lambda p: p.write_text('"just a string"')),
}


@pytest.fixture
def home(tmp_path, populated):
    """A copy of the populated workspace: the run copied (it gets damaged), models and datasets linked."""
    ws = Workspace.open(tmp_path / "ws")
    for sub in ("models", "datasets", "evaluations"):
        if (populated.home / sub).is_dir():
            shutil.copytree(populated.home / sub, ws.home / sub, copy_function=os.link)
    shutil.copytree(populated.run(RUN), ws.run(RUN))
    return ws


def cli(capsys, ws, *args) -> tuple[int, str, str]:
    code = main([*args, "--home", str(ws.home)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_file_never_takes_the_workspace_down(capsys, home, damage):
    name, spoil = DAMAGES[damage]
    path = home.run(RUN) / name
    spoil(path)
    evidence = path.read_bytes()
    code, out, err = cli(capsys, home, "runs")
    assert code == 0 and f"{RUN}" in out and "damaged" in out and name in out
    for command, expected in (("status", "is damaged"), ("resume", "is damaged"), ("stop", "is damaged")):
        code, out, err = cli(capsys, home, command, RUN)
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(lines) == 1 and expected in lines[0] and name in lines[0], (command, err)
        assert "Traceback" not in err
    assert live_run(home) is None  # every command's search for a live run still works
    assert path.read_bytes() == evidence  # nothing was written over the damaged file


@pytest.mark.parametrize("damage", ["status.json truncated", "config.json wrong type"])
def test_every_page_renders_beside_a_damaged_run(monkeypatch, home, damage):
    name, spoil = DAMAGES[damage]
    spoil(home.run(RUN) / name)
    monkeypatch.setenv("STUDIO_HOME", str(home.home))
    for page in PAGES:
        app = open_page(page)
        no_trouble(app)
        if page == "pages/train.py":
            runs = app.dataframe[-1].value
            assert runs.loc[runs["Run"] == RUN, "State"].item() == "damaged"
            assert any(name in e.value for e in app.error)


def test_damaged_side_files_are_noticed_and_worked_around(capsys, home):
    run = RunFolder.of(home, RUN)
    best = run.best()
    (run.path / "best.json").write_text('{"checkpoint": "checkpoint-9999", "wer": 0.01')  # truncated
    assert run.best().checkpoint in {p.name for p in run.checkpoints()}  # recomputed from what exists
    (run.path / "best.json").write_text('{"checkpoint": "checkpoint-9999", "wer": 0.01, "step": 9999}')
    recomputed = run.best()
    assert recomputed.recomputed and (run.path / recomputed.checkpoint).is_dir()
    assert recomputed.checkpoint == best.checkpoint  # the same answer best.json gave before
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('[1, 2, 3]\n{"step": 99, "loss": "not a number"}\n{"step": 100, "eval_wer": 0.5\n')
    assert all(isinstance(r["step"], int) for r in run.metrics()) and max(r["step"] for r in run.metrics()) < 99
    (run.path / "result.json").write_text('{"before": ')
    code, out, err = cli(capsys, home, "runs")
    assert code == 0 and RUN in out and "completed" in out
    code, out, err = cli(capsys, home, "status", RUN, "--json")
    assert code == 0 and '"state": "completed"' in out


@pytest.mark.slow
def test_a_new_run_starts_beside_a_damaged_one(home):
    (home.run(RUN) / "status.json").write_text('{"state": "runn')
    run = start_run(
        tiny_config("fresh", max_steps=2, eval_steps=2, save_steps=2, warmup_steps=0), home, foreground=True
    )
    assert run.status().state == "completed"


# --- issue 18: hostile and careless input to training (each case failed before it was fixed) ---------------------


@pytest.mark.parametrize(
    "flag, value",
    [("--weight-decay", "nan"), ("--num-train-epochs", "nan"), ("--learning-rate", "inf"), ("--dropout", "-inf")],
)
def test_nan_and_inf_are_refused_before_a_run_folder_exists(home, flag, value):
    result = run_cli(
        "train", "--data", "nb-tiny", "--run", "nan-run", "--preset", "demo", f"{flag}={value}", home=home.home
    )
    assert result.returncode == 2 and "give a finite number" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not home.run("nan-run").exists()


@pytest.mark.parametrize("name", ["a;rm -rf ~", "two\nlines", "x" * 300, "../runs/r1", "-dash-first", "dot.ted"])
def test_run_names_follow_the_stated_rule_everywhere(home, name):
    result = run_cli("train", "--data", "nb-tiny", f"--run={name}", "--preset", "demo", home=home.home)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "letters, digits, '-' and '_'" in errors[0], result.stderr
    assert sorted(p.name for p in home.runs.iterdir() if not p.name.startswith(".")) == [RUN]


def test_commands_on_a_run_never_step_outside_the_runs_folder(home):
    (home.home / "r1").mkdir()
    (home.home / "r1" / "config.json").write_text("{}")
    for command in ("status", "stop", "resume"):
        result = run_cli(command, "../r1", home=home.home)
        assert result.returncode == 2 and "no run '../r1'" in result.stderr, result.stderr
    assert (home.home / "r1" / "config.json").read_text() == "{}"


def test_a_dataset_with_empty_splits_is_flagged_at_prepare_and_refused_at_train(home, tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for i, text in enumerate(["hei", "god morgen", "takk skal du ha"]):
        make_audio(folder / f"clip{i}.wav", text)
        (folder / f"clip{i}.txt").write_text(text)
    result = run_cli(
        "prepare", "--source", str(folder), "--language", "nb", "--model", "demo", "--name", "thin",
        "--validation-fraction", "0", home=home.home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "split" in result.stderr and "empty" in result.stderr, result.stderr
    train = run_cli("train", "--data", "thin", "--run", "thin-run", "--preset", "demo", home=home.home)
    assert train.returncode == 2 and "has no rows in its" in train.stderr, train.stderr
    assert not home.run("thin-run").exists()


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_workspace_io_errors_are_one_line(tmp_path, synth_folder):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [
        (["runs"], a_file, "is a file, not a folder"),
        (["runs"], a_file / "below", "is a file, not a folder"),
        (["transcribe", str(next(synth_folder.rglob("*.wav"))), "--model", "demo", "--out", str(a_file)], None, "file"),
    ]
    for args, home, message in cases:
        result = run_cli(*args, home=home or tmp_path / "ws")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert a_file.read_text() == "not a folder"


def _mounted_tmpfs(path, options: str) -> bool:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("options, message", [("ro,size=1m", "read-only"), ("size=256k", "disk is full")])
@pytest.mark.slow  # over 4 s: out of the fast lane
def test_a_read_only_or_full_file_system_is_one_line(tmp_path, synth_folder, options, message):
    mount = tmp_path / "fs"
    if not _mounted_tmpfs(mount, options):
        pytest.skip("this machine does not let tests mount a tmpfs")
    try:
        result = run_cli(
            "prepare", "--source", str(synth_folder), "--language", "nb", "--model", "demo", "--name", "x",
            home=mount / "ws",
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0].lower(), result.stderr
        assert "Traceback" not in result.stderr
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _long_run(name: str):
    return tiny_config(name, max_steps=3000, eval_steps=1000, save_steps=1000)


@pytest.mark.slow
def test_a_paused_worker_reads_not_responding_and_is_never_resumed(home):
    run = start_run(_long_run("paused"), home)
    assert wait_for(run, 120, ("running",)).state == "running", run.log_tail()
    pid = run.raw_status()["pid"]
    with open(run.path / ".status.lock", "w") as lock:  # not paused mid-heartbeat: it would hold the lock for good
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.kill(pid, signal.SIGSTOP)
    try:
        run.update_status(heartbeat=time.time() - 600)  # a minute of silence, without waiting a minute
        status = run.status()
        assert status.state == "not responding" and f"kill -9 {pid}" in status.error, status
        with pytest.raises(StudioError, match="paused-run|only stopped, failed, interrupted runs can be resumed"):
            resume_run(run, home)
        with pytest.raises(StudioError, match="one training at a time"):
            start_run(tiny_config("beside-paused"), home)
    finally:
        os.kill(pid, signal.SIGCONT)
    stop_run(run)
    assert wait_for(run, 120, ("stopped", "failed")).state == "stopped", run.log_tail()
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert len(steps) == len(set(steps)), "one worker wrote the run"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "sigterm"])
def test_stop_ends_the_worker_in_the_phase_before_training(home, how):
    run = start_run(_long_run(f"early-{how}"), home)
    deadline = time.time() + 60
    while time.time() < deadline and "started" not in run.raw_status():  # the worker has taken over its status
        time.sleep(0.05)
    pid = run.status().pid
    if how == "stop":
        stop_run(run)  # while it loads the model: the base model's test is the next phase it enters
    else:
        os.kill(pid, signal.SIGTERM)
    status = wait_for(run, 120, ("stopped", "failed", "completed"))
    assert status.state == "stopped", (status, run.log_tail())
    assert status.step < 3000 and "stopped while" in (status.note or ""), status
    deadline = time.time() + 30
    while time.time() < deadline and pid_alive(pid):
        time.sleep(0.2)
    assert not pid_alive(pid), "the worker ended"


@pytest.mark.slow
def test_one_training_at_a_time_on_the_machine_across_workspaces(home, tmp_path, populated):
    other = Workspace.open(tmp_path / "other")
    shutil.copytree(populated.home / "datasets", other.home / "datasets", copy_function=os.link)
    run = start_run(_long_run("machine-wide"), home)
    try:
        assert wait_for(run, 120, ("running",)).state == "running", run.log_tail()
        with pytest.raises(StudioError, match=rf"run 'machine-wide' in workspace {home.home}.*on this machine"):
            start_run(tiny_config("elsewhere"), other)
        assert not other.run("elsewhere").exists()
    finally:
        stop_run(run)
        wait_for(run, 120, ("stopped", "failed"))


def test_nan_inf_and_absurd_samples_are_dropped_counted_and_shown_by_the_doctor(home, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for i, text in enumerate(["hei", "god morgen", "takk skal du ha", "ha det bra"]):
        make_audio(folder / f"good{i}.wav", text)
        (folder / f"good{i}.txt").write_text(text)
    for name, value in (("nan", np.nan), ("inf", np.inf), ("huge", 1e30)):
        samples = np.full(16000, 0.1, np.float32)
        samples[100:200] = value
        sf.write(folder / f"{name}.wav", samples, 16000, subtype="FLOAT")  # a float wav keeps them as they are
        (folder / f"{name}.txt").write_text("dette er skadet lyd")
    report = examine(FolderSource(folder), get_language("nb"), "demo", home)
    assert Counter(r["dropped"] for r in report.rows)["invalid_samples"] == 3
    artifact = prepare_features(FolderSource(folder), get_language("nb"), "demo", "damaged", home, PrepareOptions())
    dropped = sum(c.filtered.get("invalid_samples", 0) for c in artifact.manifest.splits.values())
    assert dropped == 3
    for split in artifact.eval_splits() + ["train"]:
        table = artifact.read_split(split)
        for row in range(table.num_rows):
            assert np.isfinite(features_from_row(table, row, artifact.feature_shape())).all()


@pytest.mark.slow
def test_a_run_whose_loss_becomes_nan_fails_with_one_line_and_no_best_checkpoint(home):
    source, poisoned = home.dataset("nb-tiny"), home.dataset("poisoned")
    shutil.copytree(source, poisoned)  # a copy, not links: the session's dataset stays whole
    table = pa.ipc.open_file(pa.memory_map(str(poisoned / "train.arrow"))).read_all()
    nan = np.full(len(table.column("input_features")[0].as_buffer()) // 2, np.nan, np.float16).tobytes()
    column = table.schema.get_field_index("input_features")
    table = table.set_column(column, table.schema.field(column), pa.array([nan] * table.num_rows, pa.binary()))
    (poisoned / "train.arrow").unlink()
    with pa.ipc.new_file(str(poisoned / "train.arrow"), table.schema) as writer:
        writer.write_table(table)
    run = start_run(tiny_config("poisoned-run", data="poisoned"), home, foreground=True)
    status = run.status()
    assert status.state == "failed" and "training diverged at step" in status.error, status
    assert run.best() is None and run.result().after is None  # nothing claims a WER
