"""What a user sees while the demo runs: each phase's progress bar closes where it ran, the libraries' warnings and
log lines go to the run's log (never the terminal), and the result is the last thing printed."""

import logging
import os
import re
import subprocess
import sys
import warnings

import pytest
from helpers import REPO

from core.training.library_output import library_output_to

LIBRARY_NOISE = re.compile(r"\[transformers\]|FutureWarning|UserWarning|DeprecationWarning|Writing model shards")


def test_library_warnings_log_records_and_bars_go_to_the_log_only(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    library = hf_logging.get_logger("transformers")
    handlers = list(library.handlers)
    path = tmp_path / "train.log"
    with open(path, "a", encoding="utf-8") as log, library_output_to(log):
        hf_logging.get_logger("transformers.trainer").warning("There were missing keys: ['proj_out.weight']")
        logging.getLogger("torch.distributed").warning("a note from another library")
        warnings.warn("this argument is deprecated", FutureWarning, stacklevel=1)
        for _ in hf_logging.tqdm(range(3), desc="Writing model shards"):
            pass
    screen = capfd.readouterr()
    assert not LIBRARY_NOISE.search(screen.err + screen.out) and "another library" not in screen.err, screen
    text = path.read_text(encoding="utf-8")
    assert "[transformers.trainer] WARNING: There were missing keys" in text
    assert "[torch.distributed] WARNING: a note from another library" in text
    assert "FutureWarning: this argument is deprecated" in text
    assert "Writing model shards" not in text  # transformers' bars are off inside, not moved
    assert library.handlers == handlers and hf_logging.is_progress_bar_enabled()  # as they were before


@pytest.mark.slow
def test_the_demo_ends_with_its_result_on_a_clean_screen(tmp_path):
    home = tmp_path / "ws"
    # one stream, unbuffered, in the order a terminal shows it (a bar is redrawn with \r on its own line)
    shown = subprocess.run(
        [sys.executable, "-m", "core", "demo", "--model", "demo", "--utterances", "40", "--max-steps", "4"]
        + ["--home", str(home)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert shown.returncode == 0, shown.stdout[-3000:]
    screen = shown.stdout
    lines = [line.strip() for line in screen.replace("\r", "\n").splitlines() if line.strip()]
    assert re.fullmatch(r"WER before [\d.]+% → after [\d.]+%", lines[-1]), lines[-12:]
    result = screen.rindex("\nrun demo-nb-demo-")  # the result block: the run, what changed, the WER
    assert not re.search(r"item/s|it/s|%\|", screen[result:]), screen[result:]  # no bar drawn after it
    assert screen.rindex("synth: 100%") < screen.index("2/4 preparing")  # the bar closed where it ran
    assert not LIBRARY_NOISE.search(screen), screen
    run = next(p for p in (home / "runs").iterdir() if p.is_dir())
    log = (run / "train.log").read_text(encoding="utf-8")
    assert "step 4/4" in log and "validation WER" in log  # the progress lines are in the run's log too
    status = (run / "status.json").read_text(encoding="utf-8")
    assert '"training"' in status and '"testing the best checkpoint"' in status  # the run's phases, timed
    assert '"synthesizing speech"' in (run / "demo.json").read_text(encoding="utf-8")  # and the demo's own
