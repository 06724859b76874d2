"""What every benchmark shares: repeated, alternating measurements with median and range, an honest verdict,
charts, and espeak-ng speech to measure with.

Rules every bench follows (BENCHMARKS.md states them once): both sides are warmed the same way, each side runs
REPEATS times with the order alternating (A B, B A, A B, …), the table shows the median and the range, and a ratio
is claimed only when the two ranges do not overlap; otherwise it says "no measurable difference".
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.audio import SAMPLE_RATE, load_audio
from core.data import SynthSpec, synthesize_dataset
from core.languages import get_language

ROOT = Path(__file__).resolve().parent.parent

REPEATS = 3
CHARTS = ROOT / "bench" / "charts"


def alternate(sides: dict[str, Callable[[], object]], repeats: int = REPEATS, warm: bool = True) -> dict[str, list]:
    """{side: [seconds, …]}: every side warmed once (not timed), then `repeats` rounds with the order reversed
    every other round. Each call's return value is kept in `alternate.outputs[side]` (the last one)."""
    names = list(sides)
    outputs = {}
    if warm:
        for name in names:
            outputs[name] = sides[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            outputs[name] = sides[name]()
            times[name].append(time.perf_counter() - start)
    alternate.outputs = outputs
    return times


def spread(values: list[float], digits: int = 2) -> str:
    """'median (min–max)' for a table cell."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def verdict(ours: list[float], baseline: list[float], higher_is_better: bool = False) -> str:
    """'2.31× faster' / '1.20× slower' when the two ranges do not overlap, else 'no measurable difference'.
    Values are seconds (lower is better) unless `higher_is_better` (throughput)."""
    if min(ours) <= max(baseline) and min(baseline) <= max(ours):
        return "no measurable difference (ranges overlap)"
    ratio = statistics.median(baseline) / statistics.median(ours)
    if higher_is_better:
        ratio = 1 / ratio
    return f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"


def chart(name: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]]) -> str:
    """Draw `series` ({label: (x, y)}) into bench/charts/NAME.png; returns the Markdown that shows it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    CHARTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for label, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(CHARTS / f"{name}.png")
    plt.close(fig)
    return f"![{title}](bench/charts/{name}.png)"


def sentences(folder: Path, language: str, n: int, seed: int = 11) -> list[tuple[np.ndarray, str]]:
    """`n` distinct espeak-ng sentences (16 kHz samples, text), all of them in one split."""
    spec = SynthSpec(language=language, n=n, seed=seed, test_fraction=0.0, validation_fraction=0.0)
    if spec.split_sizes()["train"] < 1:
        raise SystemExit("too few utterances")
    out = synthesize_dataset(get_language(language), folder, spec)
    wavs = sorted(out.rglob("*.wav"))
    return [(load_audio(w), w.with_suffix(".txt").read_text().strip()) for w in wavs]


def recording(clips: list[tuple[np.ndarray, str]], gap_s: float = 0.6) -> tuple[np.ndarray, str]:
    """The clips joined with pauses, like a recording of someone reading them: (samples, script)."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    return np.concatenate([part for audio, _ in clips for part in (audio, gap)]), " ".join(t for _, t in clips)
