"""Fault injection: every run-folder file damaged in every way a power cut, a full disk or a hand edit leaves it.
Every command and every page must still answer with a clear line, the rest of the workspace must keep working,
and nothing may be written over the damaged file (the evidence)."""

import os
import shutil

import pytest
from conftest import PAGES, no_trouble, open_page, tiny_config

from core.cli import main
from core.training.jobs import live_run, start_run
from core.training.runs import RunFolder
from core.workspace import Workspace

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
            assert runs.loc[runs["run"] == RUN, "state"].item() == "damaged"
            assert any(name in e.value for e in app.error)


def test_damaged_side_files_are_noticed_and_worked_around(capsys, home):
    run = RunFolder.of(home, RUN)
    best = run.best()
    (run.path / "best.json").write_text('{"checkpoint": "checkpoint-9999", "wer": 0.01')  # truncated
    assert run.best()["checkpoint"] in {p.name for p in run.checkpoints()}  # recomputed from what exists
    (run.path / "best.json").write_text('{"checkpoint": "checkpoint-9999", "wer": 0.01, "step": 9999}')
    recomputed = run.best()
    assert recomputed["recomputed"] and (run.path / recomputed["checkpoint"]).is_dir()
    assert recomputed["checkpoint"] == best["checkpoint"]  # the same answer best.json gave before
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('[1, 2, 3]\n{"step": 99, "loss": "not a number"}\n{"step": 100, "eval_wer": 0.5\n')
    assert all(isinstance(r["step"], int) for r in run.metrics()) and max(r["step"] for r in run.metrics()) < 99
    (run.path / "result.json").write_text('{"before": ')
    code, out, err = cli(capsys, home, "runs")
    assert code == 0 and RUN in out and "completed" in out
    code, out, err = cli(capsys, home, "status", RUN)
    assert code == 0 and '"state": "completed"' in out


def test_a_new_run_starts_beside_a_damaged_one(home):
    (home.run(RUN) / "status.json").write_text('{"state": "runn')
    run = start_run(
        tiny_config("fresh", max_steps=2, eval_steps=2, save_steps=2, warmup_steps=0), home, foreground=True
    )
    assert run.status()["state"] == "completed"
