"""Shared by the benchmarks: a trained demo checkpoint to measure with, and minutes of espeak-ng speech."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.audio import SAMPLE_RATE  # noqa: E402
from core.languages import get_language  # noqa: E402
from core.runs import RunFolder, list_runs  # noqa: E402
from core.synth import SynthSpec, synthesize_dataset  # noqa: E402
from core.workspace import Workspace  # noqa: E402


def checkpoint_benchmark(description: str, utterances: int) -> tuple[argparse.Namespace, Workspace, str]:
    """Parse --utterances/--home for a benchmark over a trained demo checkpoint: (args, workspace, checkpoint)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--utterances", type=int, default=utterances)
    parser.add_argument("--home", help="workspace with a trained demo run (default: $STUDIO_HOME or ./workspace)")
    args = parser.parse_args()
    workspace = Workspace.open(args.home)
    return args, workspace, trained_checkpoint(workspace)


def trained_checkpoint(workspace: Workspace) -> str:
    """The best checkpoint of the newest demo run; trains one (`python -m core demo`) when there is none."""
    for attempt in range(2):
        for name in reversed(list_runs(workspace.runs)):
            run = RunFolder.of(workspace, name)
            best = run.best()
            if name.startswith("demo-") and best and run.status().get("state") == "completed":
                return str(run.path / best["checkpoint"])
        if attempt == 0:
            print("no trained demo run in the workspace: training one (python -m core demo)", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "core", "demo", "--home", str(workspace.home)], cwd=ROOT, check=True)
    raise SystemExit("could not find or train a demo checkpoint")


def speech(folder: Path, utterances: int, gap_s: float = 0.4, seed: int = 11) -> tuple[np.ndarray, list[str]]:
    """Utterances from the demo vocabulary, spoken by espeak-ng and joined with pauses: (16 kHz samples, texts)."""
    from core.audio import load_audio

    spec = SynthSpec(language="nb", n=utterances, seed=seed, vocabulary_size=30, test_fraction=0.0)
    out = synthesize_dataset(get_language("nb"), folder, spec)
    wavs = sorted(out.rglob("*.wav"))
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    pieces = []
    for wav in wavs:
        pieces += [load_audio(wav), gap]
    return np.concatenate(pieces), [w.with_suffix(".txt").read_text().strip() for w in wavs]
