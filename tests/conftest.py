"""Shared fixtures: real espeak-ng speech, the real tokenizer, the demo model, all offline and tiny.

Session-scoped fixtures build each expensive thing once (a synthetic folder, a prepared artifact); tests that write
get their own workspace under tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the suite never reaches for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory) -> Path:
    """30 Norwegian utterances of 1–4 words (pairs layout: 24 train, 3 validation, 3 test) spoken by espeak-ng."""
    from core.data.synth import SynthSpec, synthesize_dataset
    from core.languages import get_language

    out = tmp_path_factory.mktemp("synth") / "nb"
    spec = SynthSpec(language="nb", n=30, seed=1, kind="words", vocabulary_size=10)
    return synthesize_dataset(get_language("nb"), out, spec)


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory):
    from core.workspace import Workspace

    return Workspace.open(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def demo_artifact(synth_folder, session_workspace):
    """The synthetic folder prepared with the demo model's processor."""
    from core.data.features import PrepareOptions, prepare_features
    from core.data.folders import FolderSource
    from core.languages import get_language

    return prepare_features(
        FolderSource(synth_folder), get_language("nb"), "demo", "nb-tiny", session_workspace, PrepareOptions()
    )


def tiny_config(run: str, data: str = "nb-tiny", **changes):
    """The demo preset shrunk to seconds on 2 cores: 12 steps of 8 utterances, evaluated and saved at 6 and 12."""
    from dataclasses import replace

    from core.training.config import TrainConfig, apply_preset

    small = dict(
        max_steps=12,
        warmup_steps=1,
        logging_steps=2,
        eval_steps=6,
        save_steps=6,
        train_batch_size=8,
        eval_batch_size=16,
        generation_max_length=12,
    )
    return replace(apply_preset(TrainConfig(data=data, run=run), "demo"), **{**small, **changes})


@pytest.fixture(scope="session")
def populated(session_workspace, demo_artifact):
    """The session workspace plus a finished tiny run and an evaluation of its best checkpoint."""
    from core.evaluation.evaluate import evaluate_model
    from core.training.jobs import start_run

    config = tiny_config("page-run", max_steps=4, logging_steps=1, eval_steps=2, save_steps=2)
    run = start_run(config, session_workspace, foreground=True)
    evaluate_model(str(run.path / run.best()["checkpoint"]), "nb-tiny", session_workspace)
    return session_workspace


@pytest.fixture(scope="session")
def whisper_base(session_workspace) -> Path:
    """The installed whisper-base, reassembled, verified and converted once into the session workspace."""
    from core.models.resolve import resolve_model

    return Path(resolve_model("whisper-base", session_workspace))


@pytest.fixture
def workspace(tmp_path, session_workspace):
    """A fresh workspace that shares the session's models and prepared datasets (hard links: cheap, even for the
    435 MB of whisper-base)."""
    from core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    for sub in ("models", "datasets"):
        if (session_workspace.home / sub).is_dir():
            shutil.copytree(session_workspace.home / sub, ws.home / sub, copy_function=os.link)
    return ws


def make_audio(path: Path, text: str = "hei på deg", voice: str = "nb") -> Path:
    """A real spoken clip in the format the suffix names (ffmpeg converts espeak-ng's wav)."""
    wav = path.with_suffix(".src.wav") if path.suffix != ".wav" else path
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    if path.suffix != ".wav":
        codec = {
            ".ogg": ["-c:a", "libopus"],
            ".opus": ["-c:a", "libopus"],
            ".webm": ["-c:a", "libopus"],
            ".m4a": ["-c:a", "aac"],
        }.get(path.suffix, [])
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), *codec, str(path)], check=True)
        wav.unlink()
    return path


def run_cli(
    *args: str, home: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m core ARGS` as a user runs it, from the repository root (with `env` added to the environment)."""
    cmd = [sys.executable, "-m", "core", *args] + (["--home", str(home)] if home else [])
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=environment)


PAGES = ["pages/data.py", "pages/train.py", "pages/compare.py", "pages/transcribe.py"]


def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=120)
    app.run()
    if page != PAGES[0]:
        app.switch_page(f"../{page}")
        app.run()
    return app


def no_trouble(app) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not any("Traceback" in str(e.value) for e in app.error)
