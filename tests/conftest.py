"""Shared fixtures: real espeak-ng speech, the real tokenizer, the demo model, all offline and tiny.

Session-scoped fixtures build each expensive thing once (a synthetic folder, a prepared artifact); tests that write
get their own workspace under tmp_path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import stop_leftover_training, tiny_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the suite never reaches for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the machine-wide training lock of this test session alone: a training of the user's (the demo run beside the
# suite) neither blocks the tests' runs nor is blocked by them; the lock tests share it as one machine would
os.environ.setdefault("STUDIO_LOCK_DIR", tempfile.mkdtemp(prefix="studio-test-locks-"))


@pytest.fixture(autouse=True, scope="module")
def no_training_left_running():
    """A module's trainings end with it: a worker still running (a stop slow under load, a killed test) would make
    the next module's start refused as 'one training at a time on this machine'."""
    yield
    stop_leftover_training()


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory) -> Path:
    """30 Norwegian utterances of 1–4 words (pairs layout: 24 train, 3 validation, 3 test) spoken by espeak-ng."""
    from core.data import SynthSpec, synthesize_dataset
    from core.languages import get_language

    # STUDIO_TEST_SYNTH: a folder where the set is made once and reused, as on a machine without espeak-ng (the GPU
    # machine bench/gpu_check.sh runs on gets the set made here)
    made = os.environ.get("STUDIO_TEST_SYNTH")
    out = Path(made) if made else tmp_path_factory.mktemp("synth") / "nb"
    spec = SynthSpec(language="nb", n=30, seed=1, kind="words", vocabulary_size=10)
    return synthesize_dataset(get_language("nb"), out, spec)


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory):
    from core.workspace import Workspace

    return Workspace.open(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def demo_artifact(synth_folder, session_workspace):
    """The synthetic folder prepared with the demo model's processor."""
    from core.data import FolderSource, PrepareOptions, prepare_features
    from core.languages import get_language

    return prepare_features(
        FolderSource(synth_folder), get_language("nb"), "demo", "nb-tiny", session_workspace, PrepareOptions()
    )


@pytest.fixture(scope="session")
def populated(session_workspace, demo_artifact):
    """The session workspace plus a finished tiny run and an evaluation of its best checkpoint."""
    from core.evaluation import evaluate_model
    from core.training import start_run

    config = tiny_config("page-run", max_steps=4, logging_steps=1, eval_steps=2, save_steps=2)
    run = start_run(config, session_workspace, foreground=True)
    evaluate_model(str(run.path / run.best_checkpoint_name()), "nb-tiny", session_workspace)
    return session_workspace


@pytest.fixture(scope="session")
def whisper_base(session_workspace) -> Path:
    """The installed whisper-base, reassembled, verified and converted once into the session workspace."""
    from core.models import resolve_model

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


SLOW_FIXTURES = {
    "whisper_base",  # converts and runs the real 74M-parameter whisper-base
    "populated",  # trains a run first (once per session, but half a minute of the fast lane)
}


def pytest_collection_modifyitems(items) -> None:
    """What a test costs, said once: every test that uses a slow fixture (directly or through another fixture) is
    marked slow, whatever file it is in."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("long"):
            item.add_marker(pytest.mark.slow)  # a long test is slow too: the fast lane leaves it out
