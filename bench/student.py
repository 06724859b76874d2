"""A 2-decoder-layer student of a fine-tuned whisper-base beside its teacher: transcription speed with CTranslate2
int8 on 2 threads, and WER on held-out sentences.

The teacher: a finished whisper-base run (by default bench/self_training.py's run B, whisper-base fine-tuned on
labelled and pseudo-labelled Norwegian; `--teacher st-labelled-only` takes its run A, which this bench makes when
the home lacks it: 100 labelled sentences, the held-out sets beside them). The student: `python -m core distil
--teacher RUN --decoder-layers 2` (the teacher run's data and mix; encoder shared and frozen, its cached states
reused; 0.8 × cross-entropy + KL to the teacher at temperature 2). Both best checkpoints are exported to CTranslate2
int8 and transcribe the same held-out clips (the template test sentences and the 40 free sentences) through
faster-whisper's `WhisperModel` as a user runs an export (`cpu_threads=2`, `compute_type="int8"`, beam 5, the
language given, without timestamps): end to end, log-mel, encoder and decoder inside the time. Each side is warmed
once, then runs REPEATS times in alternating order; seconds are the median (range). WER: both on the same clips, the
student − teacher change with its paired interval. Goal (issue 30): ≥ 2× faster, WER within +2 points of the teacher
(or the interval says how far).

    python bench/student.py [--home DIR] [--teacher st-with-pseudo] [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np
from common import REPEATS, alternate, spread, verdict
from self_training import cli, labelled_sets, load_average, train

from bench.report import write_section
from core.data import open_artifact
from core.models import export_ctranslate2
from core.text.bootstrap import paired_bootstrap
from core.text.wer import error_rates, utterance_results
from core.training import RunFolder
from core.workspace import Workspace

THREADS = 2
RUN_A = "st-labelled-only"  # bench/self_training.py's run A: the one teacher this bench can make on its own
TEST_SETS = ("st-labelled", "st-free")


def held_out_clips(workspace: Workspace) -> tuple[list[str], list[np.ndarray], list[str]]:
    """(ids, 16 kHz clips, texts) of both test sets' test splits (stored with their audio)."""
    ids, clips, texts = [], [], []
    for data in TEST_SETS:
        table = open_artifact(workspace, data).read_split("test")
        for uid, audio, text in zip(*(table.column(c).to_pylist() for c in ("id", "audio", "text"))):
            ids.append(f"{data}:{uid}")
            clips.append(np.frombuffer(audio, np.int16).astype(np.float32) / 32768)
            texts.append(text)
    return ids, clips, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-self-training"))
    parser.add_argument("--teacher", default="st-with-pseudo", help="a finished whisper-base run")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning-rate", default="3e-4")
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    home = Path(args.home)
    workspace = Workspace.open(home)
    loads = [load_average()]
    if not RunFolder.of(workspace, args.teacher).exists():
        if args.teacher != RUN_A:
            raise SystemExit(f"no run '{args.teacher}' in {home}: run bench/self_training.py, or --teacher {RUN_A}")
        labelled_sets(home, workspace, 100, 30, 100)
        train(home, RUN_A)
    name = f"{args.teacher}-student-2"
    if not RunFolder.of(workspace, name).exists():
        cli(home, "distil", "--teacher", args.teacher, "--decoder-layers", "2", "--max-steps", str(args.steps),
            "--learning-rate", args.learning_rate, "--run", name, "--foreground")  # fmt: skip
    loads.append(load_average())
    runs = {"teacher": RunFolder.of(workspace, args.teacher), "student": RunFolder.of(workspace, name)}
    exports = {}
    for side, run in runs.items():
        checkpoint = run.path / run.best_checkpoint_name()
        out = checkpoint.with_name(f"{checkpoint.name}-ct2-int8")
        exports[side] = out if out.is_dir() else export_ctranslate2(str(checkpoint), workspace, "int8")
    ids, clips, texts = held_out_clips(workspace)
    models = {
        s: WhisperModel(str(e), device="cpu", compute_type="int8", cpu_threads=THREADS) for s, e in exports.items()
    }

    def transcribe(side: str):
        def run() -> list[str]:
            out = []
            for clip in clips:
                segments, _ = models[side].transcribe(clip, language="no", beam_size=5, without_timestamps=True)
                out.append(" ".join(s.text.strip() for s in segments))
            return out

        return run

    times = alternate({side: transcribe(side) for side in models}, repeats=REPEATS)
    loads.append(load_average())
    said = alternate.outputs
    rows = {side: utterance_results(ids, texts, said[side]) for side in models}
    change = paired_bootstrap(rows["teacher"], rows["student"])
    wer = {side: error_rates(texts, said[side])["wer"] for side in models}
    speedup = statistics.median(times["teacher"]) / statistics.median(times["student"])
    faster = verdict(times["student"], times["teacher"])
    met_speed = speedup >= 2 and "faster" in faster
    met_wer = 100 * change.difference <= 2
    config = runs["student"].config()
    mix = " and pseudo-label mix" if runs["teacher"].config().pseudo_labels else ""
    body = f"""## A smaller student of a fine-tuned whisper-base (`bench/student.py`)

Teacher: run `{args.teacher}` (whisper-base fine-tuned on Norwegian, 6 decoder layers). Student: `python -m core distil
--teacher {args.teacher} --decoder-layers 2 --max-steps {config.max_steps} --learning-rate {config.learning_rate}`
(decoder layers 0 and 5 kept, the encoder shared and frozen, trained on the teacher run's data{mix}
with 0.8 × cross-entropy + KL to the teacher at temperature 2). Both exported to CTranslate2 int8; {len(clips)} held-out
clips (template test sentences and free sentences) transcribed by faster-whisper (`cpu_threads={THREADS}`, int8, beam 5,
language given), warmed once, {REPEATS} alternating rounds.

| model | decoder layers | seconds for {len(clips)} clips | WER |
|---|---|---|---|
| teacher | 6 | {spread(times["teacher"])} | {100 * wer["teacher"]:.1f}% |
| student | 2 | {spread(times["student"])} | {100 * wer["student"]:.1f}% |

Student against teacher: {faster} ({speedup:.2f}× by the medians); WER change {change.shown}.
Goal (≥ 2× faster end to end: **{"met" if met_speed else "missed"}**; WER within +2 points of the teacher:
**{"met" if met_wer else "missed"}**). The encoder (the same 6 layers for both, over a 30 s window) is a fixed cost per
clip that a smaller decoder does not shrink. Load average (1/5/15 min) at the start, after training and after timing:
{"; ".join(loads)}."""
    write_section("student", body)
    print(body)


if __name__ == "__main__":
    main()
