"""What tests share besides fixtures: the repository root, a tiny training config, real spoken clips, the command line
as a user runs it, and the app's pages under Streamlit's AppTest. Imported as `from helpers import …`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tiny_config(run: str, data: str = "nb-tiny", **changes):
    """The demo preset shrunk to seconds on 2 cores: 12 steps of 8 utterances, evaluated and saved at 6 and 12."""
    from dataclasses import replace

    from core.training import TrainConfig, apply_preset

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
    environment = {**os.environ, **(env or {})}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=environment)


PAGES = ["pages/data.py", "pages/train.py", "pages/compare.py", "pages/transcribe.py", "pages/conversation.py"]


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


def chromium(microphone: Path, *extra: str):
    """Headless Chromium at 1400 px whose fake microphone plays `microphone` (a wav file); the caller quits it."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        *extra,
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, read when a wait fails
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def labels_cut_short(label_root: Path, dest: Path, words: int = 2) -> Path:
    """A copy of a label set whose texts are cut to their first `words` words. The random toy loops to its token cap
    (66 tokens for a clip under a second), which prepare drops as too long for its audio; a model that stops would
    say a few words: the copy is such a set, made the way a label run makes it."""
    import json
    import shutil

    copy = Path(shutil.copytree(label_root, dest))
    rows = [json.loads(line) for line in (copy / "metadata.jsonl").read_text().splitlines()]
    lines = [json.dumps({**row, "text": " ".join(row["text"].split()[:words])}) for row in rows]
    (copy / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return copy


def stop_leftover_training() -> None:
    """Stop the training a test left running on this machine (its lock names it), killing it if a stop does not end
    it within a minute: a worker still running would starve the next test or make its Start refused."""
    import contextlib
    import os
    import signal

    from core.training.jobs import machine_run, stop_run, wait_for
    from core.training.run_records import RunState

    run = machine_run()
    if run is None:
        return
    with contextlib.suppress(Exception):
        stop_run(run)
    status = wait_for(run, 60, (RunState.STOPPED, RunState.COMPLETED, RunState.FAILED, RunState.INTERRUPTED))
    if status.live and status.pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(status.pid, signal.SIGKILL)  # its own session: the worker and any torchrun children
