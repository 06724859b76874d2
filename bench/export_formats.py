"""Every export format in its own runtime, side by side on the same held-out clips: file size, load time, seconds to
transcribe the split, WER against the checkpoint's on the same rows (the paired 95% interval), and the median error
of word start times on clips whose word starts are known (words spoken one by one by espeak-ng).

All runtimes use the same number of threads and decode greedily with the language given (core/evaluation/
runtimes.py). The goal (issue 29): every export within the checkpoint's interval; whisper.cpp's and ONNX's int8 no
slower than CTranslate2's int8.

    python bench/export_formats.py [--model whisper-base] [--rows 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench.report import write_section
from core.data import FolderSource, PrepareOptions, SynthSpec, prepare_features, synthesize_dataset
from core.evaluation.alignment import timed_clips
from core.evaluation.parity import runtime_parity
from core.evaluation.runtimes import THREADS, open_runtime
from core.languages import get_language
from core.models.export import RUNTIMES, export_model
from core.workspace import Workspace

TIMING_TEXTS = [
    "please call me back when you get home",
    "the weather will be sunny tomorrow morning",
    "our train leaves from platform number seven",
    "she bought three apples and a loaf of bread",
]


def word_start_error(fmt: str, file: Path, window: int) -> str:
    """Median |start − known start| over the timing clips' words the runtime heard as spelled."""
    runtime, _ = open_runtime(fmt, file, window)
    errors = []
    for clip in timed_clips(TIMING_TEXTS, get_language("en"), window / 16000):
        heard = runtime.transcribe(clip.samples, "en", "transcribe", words=True).words
        spelled = [(w.strip(" .,!?").lower(), s) for w, s in heard]
        j = 0
        for word, start in clip.words:
            for k in range(j, min(j + 4, len(spelled))):
                if spelled[k][0] == word:
                    errors.append(abs(spelled[k][1] - start))
                    j = k + 1
                    break
    return f"{statistics.median(errors):.3f} s ({len(errors)} words)" if errors else "no words timed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    load = os.getloadavg()
    workspace = Workspace.open(Path(tempfile.gettempdir()) / "bench-export")
    folder = workspace.home / "synth-en"
    if not folder.exists():
        spec = SynthSpec(language="en", n=2 * args.rows, seed=7, kind="sentences", test_fraction=0.5)
        synthesize_dataset(get_language("en"), folder, spec)
    prepare_features(FolderSource(folder), get_language("en"), args.model, "en-held", workspace, PrepareOptions())
    out = workspace.home / "exports"
    exports = export_model(args.model, workspace, ("all",), "int8", out)
    rows = []
    for exported in exports:
        for check in runtime_parity(args.model, exported, "en-held", workspace, split="test"):
            window = 480000
            timing = word_start_error(exported.format, exported.folder / check.file, window)
            rows.append(
                f"| {RUNTIMES[check.format]} | {check.variant} | {check.size_bytes / 2**20:.0f} MiB "
                f"| {check.load_s:.2f} s "
                f"| {check.transcribe_s:.1f} s | {100 * check.wer:.1f}% vs {100 * check.checkpoint_wer:.1f}% "
                f"| {check.change.shown} | {'failed' if check.failed else 'within'} | {timing} |"
            )
    body = f"""## Every export in its own runtime (`bench/export_formats.py`)

{args.model} exported to every format, each file run in its own runtime with {THREADS} threads, greedy, language
given, on {args.rows} held-out espeak-ng English sentences it never trained on; WER against the checkpoint's own
(transformers, greedy) on the same rows with the paired 95% interval; word starts on {len(TIMING_TEXTS)} sentences
spoken word by word (known starts). One pass each (load average at the start: {load[0]:.1f}, {load[1]:.1f},
{load[2]:.1f}: the machine is shared, so seconds are indicative).

| runtime | variant | size | load | transcribe | WER: export vs checkpoint | export − checkpoint | goal | word start |
|---|---|---:|---:|---:|---|---|---|---|
{chr(10).join(rows)}
"""
    write_section("export_formats", body)
    print(body)


if __name__ == "__main__":
    main()
