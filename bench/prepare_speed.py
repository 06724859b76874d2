"""Feature preparation speed by clip length: our `prepare_features` against the recipe's `datasets.map`.

Clips of 1 s, 5 s and 10 s (espeak-ng sentences joined, then cut or padded to the length: Common Voice clips run
about 5 s, FLEURS about 10 s), a whisper-small-shaped processor (80 mel bins, 30 s window, the real tokenizer).
The baseline is the Hugging Face recipe's `prepare_dataset` run the way the `datasets` docs say to run it fast:
`map(..., num_proc=2)` over this machine's 2 cores, writing float16 features like ours (the recipe's float32
would be more bytes to write, not the same work). Each timed run happens in a fresh process, as a user's script
would (a process that has run torch's threaded STFT cannot fork `map` workers safely), after a warm-up on the
first clips in that process; imports are outside the timed region; rounds alternate; and the outputs are checked
equal: the same rows, labels identical, log-mel within float16 rounding.

    python bench/prepare_speed.py [--clips 120]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
from common import REPEATS, chart, sentences, spread, verdict

from bench.report import write_section
from core.audio import SAMPLE_RATE, load_audio
from core.data import FEATURE_DTYPE, FolderSource, PrepareOptions, features_from_row, open_artifact, prepare_features
from core.languages import get_language
from core.models import whisper_processor
from core.workspace import Workspace

LENGTHS_S = (1, 5, 10)
NB = get_language("nb")


def clips_of(length_s: int, pool: list, n: int, folder: Path) -> Path:
    """`n` clips of exactly `length_s` seconds in a pairs folder: sentences joined until long enough, then cut."""
    folder.mkdir(parents=True)
    target = length_s * SAMPLE_RATE
    for i in range(n):
        audio, words = [], []
        j = i
        while sum(len(a) for a in audio) < target:
            clip, text = pool[j % len(pool)]
            audio.append(clip)
            words.append(text)
            j += 1
        samples = np.concatenate(audio)[:target]
        sf.write(folder / f"{i:05d}.wav", samples, SAMPLE_RATE)
        (folder / f"{i:05d}.txt").write_text(" ".join(words))
    return folder


def recipe(paths: list[Path], texts: list[str], processor_dir: Path, cache: Path):
    """The recipe's feature step, one example per call, on `num_proc` processes (its fast setting)."""
    from datasets import Dataset
    from transformers import WhisperProcessor

    processor = WhisperProcessor.from_pretrained(processor_dir)
    processor.tokenizer.set_prefix_tokens(language="no", task="transcribe", predict_timestamps=False)
    data = Dataset.from_dict({"path": [str(p) for p in paths], "sentence": texts})

    def prepare_dataset(batch):
        audio = load_audio(batch["path"])
        features = processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE).input_features[0]
        batch["input_features"] = features.astype(FEATURE_DTYPE)
        batch["labels"] = processor.tokenizer(batch["sentence"]).input_ids
        return batch

    cache.mkdir(parents=True, exist_ok=True)
    return data.map(
        prepare_dataset,
        remove_columns=data.column_names,
        num_proc=2,
        cache_file_name=str(cache / "recipe.arrow"),
        load_from_cache_file=False,
    )


def check_same(recipe_out, artifact) -> float:
    """Same rows and labels; returns the largest log-mel difference (float16 rounding is ~1e-3 at these values)."""
    table = artifact.read_split("train")
    assert table.num_rows == len(recipe_out), (table.num_rows, len(recipe_out))
    worst = 0.0
    for row, example_id in enumerate(table.column("id").to_pylist()):
        k = int(example_id.rsplit("/", 1)[-1])  # train/00012 ↔ the recipe's row 12 (its input order)
        assert table.column("labels")[row].as_py() == recipe_out[k]["labels"]
        ours = features_from_row(table, row, artifact.feature_shape()).astype(np.float32)
        theirs = np.asarray(recipe_out[k]["input_features"], np.float32)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def timed_side(side: str, folder: Path, processor_dir: Path, out: Path) -> float:
    """Run one side in a fresh process (warm-up on the first clips, then the timed run); its seconds."""
    cmd = [sys.executable, __file__, "--side", side, "--folder", str(folder), "--processor", str(processor_dir)]
    result = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{side} failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def run_side(side: str, folder: Path, processor_dir: Path, out: Path) -> None:
    """In the child process: warm up on 4 clips, then time the whole folder; print the seconds."""
    import time

    paths = sorted(folder.glob("*.wav"))
    texts = [p.with_suffix(".txt").read_text() for p in paths]
    shutil.rmtree(out, ignore_errors=True)
    if side == "recipe":
        recipe(paths[:4], texts[:4], processor_dir, out / "warm")
        start = time.perf_counter()
        result = recipe(paths, texts, processor_dir, out)
        seconds = time.perf_counter() - start
        result.save_to_disk(str(out / "saved"))  # for the output check, after the clock stopped
        print(seconds)
        return
    options = PrepareOptions(validation_fraction=0.0)
    warm = FolderSource(folder.parent)
    prepare_features(
        warm, NB, str(processor_dir), "warm", Workspace(out / "warm"), replace(options, max_train_samples=4)
    )
    start = time.perf_counter()
    prepare_features(FolderSource(folder.parent), NB, str(processor_dir), "bench", Workspace(out), options)
    print(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=120, help="clips per length")
    parser.add_argument("--side", choices=("ours", "recipe"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--processor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return run_side(args.side, args.folder, args.processor, args.out)

    rows, ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = sentences(tmp / "pool", "nb", 200)
        processor_dir = tmp / "whisper-small-processor"
        whisper_processor(80, 30).save_pretrained(processor_dir)
        for length in LENGTHS_S:
            folder = clips_of(length, pool, args.clips, tmp / f"clips-{length}s" / "train")
            paths = sorted(folder.glob("*.wav"))
            texts = [p.with_suffix(".txt").read_text() for p in paths]
            for p in paths:
                p.read_bytes()  # the page cache warm for both sides
            del texts
            times = {"ours": [], "recipe": []}
            for round_ in range(REPEATS):
                for side in ("ours", "recipe") if round_ % 2 == 0 else ("recipe", "ours"):
                    times[side].append(timed_side(side, folder, processor_dir, tmp / f"{side}-{length}"))
            from datasets import load_from_disk

            recipe_out = load_from_disk(str(tmp / f"recipe-{length}" / "saved"))
            ours_out = open_artifact(Workspace(tmp / f"ours-{length}"), "bench")
            worst = check_same(recipe_out, ours_out)
            ours_rate = [args.clips / t for t in times["ours"]]
            recipe_rate = [args.clips / t for t in times["recipe"]]
            ratios[length] = (ours_rate, recipe_rate)
            rows.append(
                f"| {length} s | {args.clips} | {spread(recipe_rate, 1)} | {spread(ours_rate, 1)} | "
                f"{verdict(ours_rate, recipe_rate, higher_is_better=True)} | {worst:.4f} |"
            )
    picture = chart(
        "prepare",
        "Feature preparation speed by clip length",
        "clip length (s)",
        "clips per second (median)",
        {
            "ours: prepare_features": (list(LENGTHS_S), [float(np.median(ratios[n][0])) for n in LENGTHS_S]),
            "recipe: datasets.map, num_proc=2": (list(LENGTHS_S), [float(np.median(ratios[n][1])) for n in LENGTHS_S]),
        },
    )
    body = f"""## Feature preparation by clip length (`bench/prepare_speed.py`)

{args.clips} clips per length, 80 mel bins × 3000 frames (30 s window), the real tokenizer, both sides writing
float16 features. Baseline: the recipe's `prepare_dataset` through `datasets.map(num_proc=2)`, one example per call.
Ours: `prepare_features` (log-mel only where there is sound, batched torch STFT, threaded decoding). Clips/s,
median (range) of {REPEATS} alternating rounds, each in a fresh process after a warm-up; outputs checked: same
rows, same labels, log-mel within the last column's difference (float16 rounding).

| clip length | clips | recipe clips/s | ours clips/s | verdict | max log-mel difference |
|---|---:|---:|---:|---|---:|
{chr(10).join(rows)}

{picture}"""
    write_section("prepare", body)
    print(body)


if __name__ == "__main__":
    main()
