"""Every export format in its own runtime, side by side on the same held-out clips: file size, load time, seconds to
transcribe the split, WER against the checkpoint's on the same rows (the paired 95% interval), and the median error
of word start times on clips whose word starts are known (words spoken one by one by espeak-ng).

All runtimes use the same number of threads and decode greedily with the language given (core/evaluation/
runtimes.py). The goal (issue 29): every export within the checkpoint's interval; whisper.cpp's and ONNX's int8 no
slower than CTranslate2's int8.

    python bench/export_formats.py [--model whisper-base] [--rows 12] [--language en|nb] [--repeats 3]

With `--language nb` the held-out clips are the 40 free Norwegian sentences (written apart from the templates the
demo trains on), so the demo's fine-tuned checkpoint is measured on text it never saw:

    python bench/export_formats.py --model WORKSPACE/runs/RUN/checkpoint-N --language nb
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench.common import REPEATS, ROOT, alternate, spread, verdict
from bench.report import write_section
from core.data import FolderSource, PrepareOptions, SynthSpec, prepare_features, synthesize_dataset
from core.data.synth import speak_texts
from core.evaluation.alignment import timed_clips
from core.evaluation.parity import runtime_parity, split_audio
from core.evaluation.runtimes import THREADS, open_runtime
from core.languages import get_language
from core.models.export import EXPORT_RUNTIMES, export_model
from core.workspace import Workspace

FREE_SENTENCES = ROOT / "assets" / "free_sentences" / "nb.txt"
WINDOW = 480000  # samples: the 30 s window every export keeps
TIMING_TEXTS = {
    "en": [
        "please call me back when you get home",
        "the weather will be sunny tomorrow morning",
        "our train leaves from platform number seven",
        "she bought three apples and a loaf of bread",
    ],
    "nb": [
        "ring meg når du kommer hjem",
        "været blir fint i morgen tidlig",
        "toget går fra spor nummer sju",
        "hun kjøpte tre epler og et brød",
    ],
}


def word_start_error(fmt: str, file: Path, window: int, language: str) -> str:
    """Median |start − known start| over the timing clips' words the runtime heard as spelled."""
    runtime, _ = open_runtime(fmt, file, window)
    errors = []
    for clip in timed_clips(TIMING_TEXTS[language], get_language(language), window / 16000):
        heard = runtime.transcribe(clip.samples, get_language(language).whisper, "transcribe", words=True).words
        spelled = [(w.strip(" .,!?").lower(), s) for w, s in heard]
        j = 0
        for word, start in clip.words:
            for k in range(j, min(j + 4, len(spelled))):
                if spelled[k][0] == word:
                    errors.append(abs(spelled[k][1] - start))
                    j = k + 1
                    break
    return f"{statistics.median(errors):.3f} s ({len(errors)} words)" if errors else "no words timed"


def held_out_set(workspace: Workspace, language: str, rows: int, model: str) -> str:
    """Prepare `rows` held-out sentences for `model`; returns the dataset's name (its test split is what runs)."""
    lang = get_language(language)
    if language == "en":
        spec = SynthSpec(language="en", n=2 * rows, seed=7, kind="sentences", test_fraction=0.5)
        folder = synthesize_dataset(lang, workspace.home / "synth-en", spec)
    else:
        free = [line.strip() for line in FREE_SENTENCES.read_text(encoding="utf-8").splitlines() if line.strip()]
        folder = speak_texts(lang, free[:rows], workspace.home / f"free-{language}")
    name = f"{language}-held"
    options = PrepareOptions() if language == "en" else PrepareOptions(validation_fraction=0)  # one split: test
    prepare_features(FolderSource(folder), lang, model, name, workspace, options)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--language", default="en", choices=sorted(TIMING_TEXTS))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--label", help="what the model is, for the report (default: --model)")
    args = parser.parse_args()
    load = os.getloadavg()
    workspace = Workspace.open(Path(tempfile.gettempdir()) / "bench-export")
    data = held_out_set(workspace, args.language, args.rows, args.model)
    out = workspace.home / "exports" / Path(args.model).name
    exports = export_model(args.model, workspace, ("all",), "int8", out)
    checks, runtimes = {}, {}
    for exported in exports:
        for check in runtime_parity(args.model, exported, data, workspace, split="test"):
            label = f"{EXPORT_RUNTIMES[check.format]} {check.variant}"
            checks[label] = (exported, check)
            runtimes[label], _ = open_runtime(exported.format, exported.folder / check.file, WINDOW)
    # Speed: every runtime loaded side by side, the same clips, alternating order over `repeats` rounds.
    _, _, _, clips = split_audio(workspace, data, "test")
    whisper = get_language(args.language).whisper
    sides = {
        label: (lambda rt=rt: [rt.transcribe(clip, whisper, "transcribe") for clip in clips])
        for label, rt in runtimes.items()
    }
    seconds = alternate(sides, args.repeats)
    rows = []
    for label, (exported, check) in checks.items():
        timing = word_start_error(exported.format, exported.folder / check.file, WINDOW, args.language)
        rows.append(
            f"| {EXPORT_RUNTIMES[check.format]} | {check.variant} | {check.size_bytes / 2**20:.0f} MiB "
            f"| {check.load_s:.2f} s | {spread(seconds[label], 1)} s "
            f"| {100 * check.wer:.1f}% vs {100 * check.checkpoint_wer:.1f}% "
            f"| {check.change.shown} | {'**failed**' if check.failed else 'within'} | {timing} |"
        )
    failed = [label for label, (_, check) in checks.items() if check.failed]
    ct2 = next(label for label in seconds if label.startswith(EXPORT_RUNTIMES["ct2"]))
    speed = []
    for fmt, variant in (("ggml", "q8_0"), ("onnx", "int8")):
        label = f"{EXPORT_RUNTIMES[fmt]} {variant}"
        ratio = statistics.median(seconds[label]) / statistics.median(seconds[ct2])
        met = "met" if ratio <= 1 or verdict(seconds[label], seconds[ct2]).startswith("no measurable") else "missed"
        said = verdict(seconds[label], seconds[ct2]).replace("faster", "faster than it").replace("slower", "slower")
        speed.append(f"- {label}: {ratio:.2f}× CTranslate2 int8's seconds, {said}: **{met}**")
    described = "its own" if args.model == "whisper-base" else "the checkpoint's"
    texts = "espeak-ng English sentences" if args.language == "en" else "free Norwegian sentences (espeak-ng)"
    shown = args.label or args.model
    body = f"""## Every export in its own runtime: {shown} (`bench/export_formats.py --language {args.language}`)

{shown} exported to every format, each file run in its own runtime with {THREADS} threads, greedy, language
given, on {args.rows} held-out {texts} it never trained on; WER against {described} (transformers, greedy) on the
same rows with the paired 95% interval. Transcribe: seconds for the {args.rows} clips, every runtime loaded side by
side, warmed once, then {args.repeats} rounds in alternating order: median (range). Word start: median error on
{len(TIMING_TEXTS[args.language])} sentences spoken word by word (known starts). Load average at the start:
{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on 2 cores.

| runtime | variant | size | load | transcribe | WER: export vs checkpoint | change | in interval | word start |
|---|---|---:|---:|---:|---|---|---|---|
{chr(10).join(rows)}

Goal, every export within the checkpoint's interval: **{"missed: " + ", ".join(failed) if failed else "met"}**.
Goal, whisper.cpp's and ONNX's int8 no slower than CTranslate2's int8 at equal threads:
{chr(10).join(speed)}
"""
    write_section(f"export_formats_{args.language}", body)
    print(body)


if __name__ == "__main__":
    main()
