"""Synthetic speech made offline with espeak-ng: the demo data and the test data.

Utterances of 1–4 words are drawn with a seed from the language's word list in `assets/wordlists/`, each spoken with
a random speed, pitch and voice variant, and written as a local folder in the `pairs` layout
(`train/0001.wav` + `train/0001.txt`, `test/…`). Same arguments → same folder, reused.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import StudioError
from core.languages import Language
from core.workspace import read_json, write_json_atomic

WORDLISTS = Path(__file__).resolve().parent.parent / "assets" / "wordlists"
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+f1", "+f2", "+f3", "+f4")  # espeak-ng voice variants
SPEED_WPM = (130, 190)  # espeak-ng -s: words per minute
PITCH = (25, 75)  # espeak-ng -p: 0–99


@dataclass(frozen=True)
class SynthSpec:
    language: str
    n: int = 300
    seed: int = 0
    vocabulary_size: int | None = None  # the first N words of the list; None = all of it
    max_words: int = 4
    test_fraction: float = 0.1


def load_wordlist(language: Language) -> list[str]:
    path = WORDLISTS / f"{language.code}.txt"
    if not path.is_file():
        have = sorted(p.stem for p in WORDLISTS.glob("*.txt"))
        raise StudioError(
            f"no word list for {language.name} ({language.code}); synthetic speech exists for "
            f"{', '.join(have)}, or add assets/wordlists/{language.code}.txt"
        )
    words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines()]
    return [w for w in words if w and not w.startswith("#")]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize_dataset(language: Language, out: Path, spec: SynthSpec, progress=None) -> Path:
    """Write (or reuse) the folder `out`; `progress(done, total)` is called as clips are made."""
    if spec.n < 2:
        raise StudioError(f"--n {spec.n}: a synthetic set needs at least 2 utterances (one train, one test)")
    if not espeak_available():
        raise StudioError(
            "espeak-ng is not installed; install it (apt-get install espeak-ng) or run the "
            "README's command, which installs it"
        )
    out = Path(out)
    recorded = read_json(out / "synth.json")
    if recorded == asdict(spec):
        return out
    if out.exists():
        raise StudioError(
            f"{out} exists and was made with other settings (or is no synthetic set); choose another --out or delete it"
        )
    words = load_wordlist(language)[: spec.vocabulary_size or None]
    rng = random.Random(spec.seed)
    jobs = []
    n_test = max(1, round(spec.n * spec.test_fraction))
    for i in range(spec.n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, spec.max_words)))
        voice = language.espeak + rng.choice(VARIANTS)
        split = "test" if i < n_test else "train"
        jobs.append((split, f"{i:05d}", text, voice, rng.randint(*SPEED_WPM), rng.randint(*PITCH)))

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for split in ("train", "test"):
            (staging / split).mkdir()

        def speak(job: tuple) -> None:
            split, stem, text, voice, speed, pitch = job
            wav = staging / split / f"{stem}.wav"
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0 or not wav.is_file():
                raise StudioError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()[:200]}")
            (staging / split / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for done, _ in enumerate(pool.map(speak, jobs), 1):
                if progress:
                    progress(done, len(jobs))
        write_json_atomic(staging / "synth.json", asdict(spec))
        os.replace(staging, out)  # the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
