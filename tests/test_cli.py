"""The command line as a user runs it: help on every command, one `error:` line and exit 2 on mistakes."""

import json
import os
import re
import shutil

import pytest
from helpers import run_cli

COMMANDS = [
    "languages",
    "models",
    "export",
    "synth",
    "prepare",
    "train",
    "runs",
    "status",
    "stop",
    "resume",
    "evaluate",
    "transcribe",
    "demo",
]


def test_help_on_every_command(capsys):
    from core.cli import main

    for command in COMMANDS:  # in this process: the parsers are what --help reads (a subprocess each took 30 s)
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and "--home" in capsys.readouterr().out, command
    assert run_cli("train", "--help").returncode == 0  # and once as a user runs it


def test_languages_table():
    result = run_cli("languages")
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("nb "))
    assert "<|no|>" in line and "nb_no" in line and "nb-NO" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["synth", "--language", "xx"], "unknown language 'xx'"),
        (
            ["prepare", "--source", "/no/such/folder", "--language", "nb", "--model", "demo", "--name", "x"],
            "no such folder",
        ),
        (
            ["prepare", "--source", "{synth}", "--language", "nb", "--model", "/no/model", "--name", "x"],
            "no such model folder",
        ),
        (["train", "--data", "nothing", "--run", "r1", "--preset", "demo"], "no prepared dataset 'nothing'"),
        (["train", "--data", "nothing", "--run", "r1", "--learning-rate", "-1"], "learning_rate -1.0"),
        (["status", "ghost"], "no run 'ghost'"),
        (["evaluate", "--model", "demo", "--data", "nothing"], "no prepared dataset 'nothing'"),
        (["transcribe", "/no/file.wav", "--model", "demo"], "/no/file.wav: no such audio file"),
        (["evaluate", "--model", "demo", "--data", "x", "--limit", "-3"], "limit -3: evaluate at least one"),
        (["evaluate", "--model", "demo", "--data", "x", "--limit", "0"], "limit 0: evaluate at least one"),
        (["evaluate", "--model", "demo", "--data", "x", "--batch-size", "0"], "batch size 0: choose 1 to 4096"),
        (
            [
                "prepare",
                "--source",
                "{synth}",
                "--language",
                "nb",
                "--model",
                "demo",
                "--name",
                "x",
                "--max-train-samples",
                "99999999999999999999",
            ],
            "max_train_samples 99999999999999999999: give a number from 1 to 10^9",
        ),
        (["train", "--data", "x", "--run", "r", "--language", "xx"], "unknown language 'xx'"),
        (
            ["train", "--data", "x", "--run", "r", "--max-steps", "99999999999999999999"],
            "max_steps 99999999999999999999",
        ),
        (["demo", "--utterances", "0"], "--utterances 0: choose 20 to 100000"),
        (["synth", "--language", "nb", "--out", "{file}"], "is a file; give a folder"),
        (
            ["prepare", "--source", "common_voice", "--language", "nb", "--model", "demo", "--name", "x"],
            "Common Voice left the Hugging Face Hub in 2025",
        ),
        (["transcribe", "{synth}", "--format", "docx"], "format 'docx': choose one or more of txt, srt, vtt, json"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, synth_folder, args, message):
    (tmp_path / "a-file").write_text("not a folder")
    args = [a.replace("{synth}", str(synth_folder)).replace("{file}", str(tmp_path / "a-file")) for a in args]
    result = run_cli(*args, home=tmp_path / "ws")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ws" / "runs" / "r").exists()  # refused before any run folder exists


@pytest.mark.slow
def test_synth_prepare_and_runs_through_the_cli(tmp_path):
    home = tmp_path / "ws"
    out = tmp_path / "sv"
    result = run_cli("synth", "--language", "sv", "--n", "8", "--seed", "2", "--out", str(out), home=home)
    assert result.returncode == 0 and result.stdout.strip() == str(out)
    assert len(list(out.rglob("*.wav"))) == 8 and len(list((out / "test").glob("*.txt"))) == 1
    args = ["prepare", "--source", str(out), "--language", "sv", "--model", "demo", "--name", "sv8"]
    first = run_cli(*args, home=home)
    assert first.returncode == 0 and first.stdout.startswith("prepared sv8: train 6 rows"), first.stderr
    assert run_cli(*args, home=home).stdout.startswith("reused sv8")
    assert "no runs" in run_cli("runs", home=home).stdout


@pytest.mark.long
def test_demo_fine_tunes_whisper_base_and_held_out_wer_falls(tmp_path, session_workspace, whisper_base):
    home = tmp_path / "ws"
    shutil.copytree(session_workspace.models, home / "models", copy_function=os.link)  # whisper-base, converted once
    result = run_cli("demo", "--language", "nb", "--utterances", "64", "--max-steps", "8", home=home, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"WER before ([\d.]+)% → after ([\d.]+)%", result.stdout)
    assert match, result.stdout
    before, after = float(match.group(1)), float(match.group(2))
    assert after < before, result.stdout  # fine-tuning whisper-base on the language lowers held-out WER
    assert "4/4 test split: 8 utterances" in result.stderr
    run = next(p for p in (home / "runs").iterdir() if p.is_dir())
    saved = json.loads((run / "result.json").read_text())
    assert saved["before"]["checkpoint"] == "checkpoint-0" and saved["after"]["utterances"] == 8
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "whisper-base" and config["cache_encoder_states"] and config["window_seconds"] == 10
    assert config["eval_split"] == "validation" and config["test_split"] == "test"
    train_texts = {p.read_text() for p in (home / "synth").rglob("train/*.txt")}
    assert not train_texts & {p.read_text() for p in (home / "synth").rglob("test/*.txt")}


def test_background_command_jobs_log_finish_and_refuse_a_twin(tmp_path):
    import os
    import signal
    import time

    from core.errors import StudioError
    from core.training import command_job, command_job_state, command_job_tail, start_command_job
    from core.workspace import Workspace

    workspace = Workspace.open(tmp_path / "ws")
    record = start_command_job(workspace, "table", ["languages"])
    deadline = time.time() + 60
    while command_job_state(command_job(workspace, "table")) == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert any(line.startswith("nb ") and "<|no|>" in line for line in command_job_tail(record, 200))

    slow = start_command_job(
        workspace, "slow", ["synth", "--language", "nb", "--n", "5000", "--out", str(tmp_path / "big")]
    )
    try:
        with pytest.raises(StudioError, match="'slow' is already running"):
            start_command_job(workspace, "slow", ["languages"])
    finally:
        os.killpg(slow["pid"], signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.long
def test_resume_in_the_foreground_exits_non_zero_when_the_run_fails(workspace, demo_artifact):
    from helpers import tiny_config

    from core.training import start_run, stop_run, wait_for

    run = start_run(tiny_config("doomed", max_steps=3000, eval_steps=1000, save_steps=1000), workspace)
    wait_for(run, 60, ("running",))
    stop_run(run)
    assert wait_for(run, 60, ("stopped", "failed")).state == "stopped"
    damaged = workspace.dataset("nb-tiny") / "train.arrow"
    damaged.unlink()  # a hard link to the session's dataset: replace it, never write through it
    damaged.write_bytes(b"not arrow")  # the worker cannot read it
    result = run_cli("resume", "doomed", "--foreground", home=workspace.home)
    assert result.returncode == 2, result.stdout + result.stderr[-1500:]
    assert "error: run doomed failed:" in result.stderr


def test_status_is_for_a_person_and_json_for_machines(populated):
    shown = run_cli("status", "page-run", home=populated.home)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "run page-run: completed · step 4/4" and "ETA" not in shown.stdout
    assert re.search(r"started   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown.stdout) and "{" not in shown.stdout
    assert "test WER  before" in shown.stdout and "step      0: WER" in shown.stdout
    machine = json.loads(run_cli("status", "page-run", "--json", home=populated.home).stdout)
    assert machine["state"] == "completed" and machine["status"]["step"] == 4 and machine["run"] == "page-run"
