"""Synthetic speech made offline with espeak-ng: the demo data and the test data.

Two kinds of text: `sentences`, everyday sentences made from the language's templates in `assets/sentences/`
(for a real Whisper), and `words`, 1–4 words from the word list in `assets/wordlists/` (for the 4M-parameter toy).
A template's slot names a list of phrases, and a phrase may name slots of its own (a noun phrase is an article, an
adjective and a noun), so a few hundred phrases make millions of sentences; `number` (2–12 in words, then digits, by
the grammar's `numbers` block) and `word` (the word list) are slots every grammar may use. Every text is distinct
and the split is made by text, so no sentence of the test or validation split is ever heard in training; no text
ever equals one of the language's free sentences (`assets/free_sentences/`, written apart from the templates: the
demo's test of text outside them). Each utterance is spoken with a random speed, pitch and voice variant and
written as a local folder in the `pairs` layout (`train/00012.wav` + `train/00012.txt`, `validation/…`, `test/…`).
Same spec → same folder, reused.

With `sentences_per_clip` above 1 each clip holds that many texts, spoken one by one and joined by pauses of
PAUSE_S; espeak-ng's own leading and trailing silence is trimmed from each, so every text's start and end in the clip
is known exactly. Such a set is written in the `audiofolder` layout, with each clip's segments in its split's
`metadata.jsonl` (`"segments": [[start s, end s, text], …]`): the times timestamped labels are made from.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core import ASSETS
from core.errors import StudioError
from core.languages import Language
from core.text.cleaning import normalize_for_wer
from core.workspace import read_json_if_intact, staged_folder, write_json_atomic

WORDLISTS = ASSETS / "wordlists"
SENTENCES = ASSETS / "sentences"
FREE_SENTENCES = ASSETS / "free_sentences"  # one sentence a line, written apart from the templates
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+f1", "+f2", "+f3", "+f4")  # espeak-ng voice variants
SPEED_WPM = (130, 190)  # espeak-ng -s: words per minute
PITCH = (25, 75)  # espeak-ng -p: 0–99
TEXT_KINDS = ("sentences", "words")
SPEC_FILE = "synth.json"
PAUSE_S = (0.3, 0.9)  # silence between the texts of a multi-sentence clip, uniform
SILENT = 1e-3  # |sample| at or below this is espeak-ng's padding silence, trimmed from each text's ends
_SLOT = re.compile(r"\{(\w+)\}")
SLOT_DEPTH = 6  # slots within slots: a template nests at most this deep (a cycle is refused when loaded)


@dataclass(frozen=True)
class SynthSpec:
    language: str
    n: int = 300
    seed: int = 0
    kind: str = "sentences"
    vocabulary_size: int | None = None  # words: the first N words of the list; None = all of it
    max_words: int = 4  # words: 1 to this many per utterance
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    sentences_per_clip: int = 1  # above 1: multi-sentence clips with pauses and known segment times

    def folder_name(self, prefix: str = "") -> str:
        """The set's folder under WORKSPACE/synth: 'nb-sentences-300-0' (language, kind, count, seed; '-x3' for
        three sentences a clip), so two different sets never share a folder; the demo puts 'demo-' before it."""
        many = f"-x{self.sentences_per_clip}" if self.sentences_per_clip > 1 else ""
        return f"{prefix}{self.language}-{self.kind}-{self.n}-{self.seed}{many}"

    def split_sizes(self) -> dict[str, int]:
        """Utterances per split: test and validation get their fraction (at least one each when asked for)."""
        test = max(1, round(self.n * self.test_fraction)) if self.test_fraction else 0
        validation = max(1, round(self.n * self.validation_fraction)) if self.validation_fraction else 0
        return {"test": test, "validation": validation, "train": self.n - test - validation}


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


def sentence_languages() -> list[str]:
    return sorted(p.stem for p in SENTENCES.glob("*.json"))


def default_kind(language: Language) -> str:
    """Sentences where the language has templates, else words."""
    return "sentences" if (SENTENCES / f"{language.code}.json").is_file() else "words"


SENTENCE_WINDOW_S = 10.0  # seconds: a template sentence spoken by espeak-ng runs up to about 6 s; a model that listens
# less than this at a time (the demo's 3 s) gets 1–4 words from the word list instead, which fit its window


def kind_for_window(language: Language, window_seconds: float) -> str:
    """default_kind for a model that listens `window_seconds` at a time: words when its window is too short for the
    sentences (prepare would drop the sentences that run past it)."""
    return default_kind(language) if window_seconds >= SENTENCE_WINDOW_S else "words"


def load_grammar(language: Language) -> dict:
    """The language's templates and slots, with the built-in slots `number` (from its `numbers` block) and `word`
    (its word list) added; StudioError when a template or phrase names an unknown slot or slots nest in a cycle."""
    path = SENTENCES / f"{language.code}.json"
    if not path.is_file():
        raise StudioError(
            f"no sentence templates for {language.name} ({language.code}); they exist for "
            f"{', '.join(sentence_languages())}: use --kind words, or add assets/sentences/{language.code}.json"
        )
    grammar = json.loads(path.read_text(encoding="utf-8"))
    slots = dict(grammar["slots"])
    if "numbers" in grammar:
        slots.setdefault("number", grammar_numbers(grammar["numbers"]))
    if (WORDLISTS / f"{language.code}.txt").is_file():
        slots.setdefault("word", load_wordlist(language))
    for phrase in grammar["templates"]:
        _check_depth(path, phrase, slots, 0)
    return {**grammar, "slots": slots}


def _check_depth(path: Path, phrase: str, slots: dict, depth: int) -> None:
    """Every slot `phrase` names exists, and none nests deeper than SLOT_DEPTH (a cycle would never end)."""
    for slot in dict.fromkeys(_SLOT.findall(phrase)):
        if slot not in slots:
            raise StudioError(f"{path}: '{phrase}' names an unknown slot '{slot}'")
        if depth >= SLOT_DEPTH:
            raise StudioError(f"{path}: slot '{slot}' nests more than {SLOT_DEPTH} deep (a slot that holds itself?)")
        for inner in slots[slot]:
            if "{" in inner:
                _check_depth(path, inner, slots, depth + 1)


def grammar_numbers(numbers: dict) -> list[str]:
    """The `number` slot from a grammar's `numbers` block: 2 up to `spelled`'s last in words (`spelled` lists them
    from 2), larger ones up to `largest` in digits, as written text has them (espeak-ng reads the digits aloud)."""
    spelled = list(numbers["spelled"])
    return spelled + [str(n) for n in range(len(spelled) + 2, numbers["largest"] + 1)]


def free_sentences(language: Language) -> list[str]:
    """The language's free sentences (assets/free_sentences/CODE.txt), or none."""
    path = FREE_SENTENCES / f"{language.code}.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _expand(phrase: str, slots: dict, rng: random.Random) -> str:
    return _SLOT.sub(lambda m: _expand(rng.choice(slots[m.group(1)]), slots, rng), phrase)


def _texts(language: Language, spec: SynthSpec, rng: random.Random, exclude: frozenset[str] = frozenset()) -> list[str]:
    """`spec.n` distinct texts, in a seeded random order; none is a free sentence of the language or in `exclude`
    (compared as Whisper's normaliser sees them: case and punctuation aside)."""
    if spec.kind == "sentences":
        grammar = load_grammar(language)

        def draw() -> str:
            text = _expand(rng.choice(grammar["templates"]), grammar["slots"], rng)
            return text[0].upper() + text[1:]
    else:
        words = load_wordlist(language)[: spec.vocabulary_size or None]

        def draw() -> str:
            return " ".join(rng.choice(words) for _ in range(rng.randint(1, spec.max_words)))

    held_out = {normalize_for_wer(t) for t in free_sentences(language)} | exclude
    texts: dict[str, None] = {}
    for _ in range(50 * spec.n):  # distinct texts thin out as a small vocabulary fills up
        text = draw()
        if held_out and normalize_for_wer(text) in held_out:
            continue
        texts.setdefault(text)
        if len(texts) == spec.n:
            return list(texts)
    raise StudioError(
        f"only {len(texts)} distinct texts can be made for {language.name} with these settings; "
        f"ask for fewer utterances (--n) or a larger vocabulary"
    )


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _check(language: Language, out: Path, spec: SynthSpec) -> None:
    if spec.kind not in TEXT_KINDS:
        raise StudioError(f"kind '{spec.kind}': choose one of {', '.join(TEXT_KINDS)}")
    if spec.n < 3 or spec.split_sizes()["train"] < 1:
        raise StudioError(
            f"--n {spec.n}: a synthetic set needs at least 3 utterances (train, validation and test each get one)"
        )
    if not 1 <= spec.sentences_per_clip <= 10:
        raise StudioError(f"sentences_per_clip {spec.sentences_per_clip}: choose 1 to 10 (more do not fit 30 s)")
    if not language.espeak:
        raise StudioError(
            f"espeak-ng has no voice for {language.name}: no synthetic speech; use a local folder or a Hub dataset"
        )
    if out.exists() and not out.is_dir():
        raise StudioError(f"{out} is a file; give a folder for the synthetic set (--out)")


def synthesize_dataset(language: Language, out: Path, spec: SynthSpec, progress=None) -> Path:
    """Write (or reuse) the folder `out`; `progress(done, total)` is called as clips are made."""
    out = Path(out)
    _check(language, out, spec)
    if read_json_if_intact(out / SPEC_FILE) == asdict(spec):
        return out  # made before, here or on a machine with espeak-ng (the GPU check carries the test set)
    if not espeak_available():
        raise StudioError(
            "espeak-ng is not installed; install it (apt-get install espeak-ng) or run the "
            "README's command, which installs it"
        )
    if out.exists():
        raise StudioError(
            f"{out} exists and was made with other settings (or is no synthetic set); choose another --out or delete it"
        )
    rng = random.Random(spec.seed)
    per_clip = spec.sentences_per_clip
    texts = _texts(language, replace(spec, n=spec.n * per_clip), rng)
    clips = [tuple(texts[i : i + per_clip]) for i in range(0, len(texts), per_clip)]
    sizes = spec.split_sizes()
    split_of = ["test"] * sizes["test"] + ["validation"] * sizes["validation"] + ["train"] * sizes["train"]
    jobs = [
        (split, f"{i:05d}", clip, language.espeak + rng.choice(VARIANTS), rng.randint(*SPEED_WPM), rng.randint(*PITCH))
        for i, (split, clip) in enumerate(zip(split_of, clips))
    ]
    pauses = [[rng.uniform(*PAUSE_S) for _ in range(per_clip - 1)] for _ in jobs]
    with staged_folder(out, marker=SPEC_FILE) as staging:
        for split, count in sizes.items():
            if count:
                (staging / split).mkdir()

        def speak(job: tuple, pause: list[float]) -> dict | None:
            split, stem, clip, voice, speed, pitch = job
            wav = staging / split / f"{stem}.wav"
            if len(clip) == 1:
                _espeak(clip[0], voice, speed, pitch, wav)
                (staging / split / f"{stem}.txt").write_text(clip[0] + "\n", encoding="utf-8")
                return None
            return {"file_name": wav.name, **_spoken_in_turn(clip, voice, speed, pitch, pause, wav)}

        metadata: dict[str, list[dict]] = {split: [] for split in sizes}
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for done, (job, row) in enumerate(zip(jobs, pool.map(speak, jobs, pauses)), 1):
                if row:
                    metadata[job[0]].append(row)
                if progress:
                    progress(done, len(jobs))
        for split, rows in metadata.items():
            if rows:
                lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                (staging / split / "metadata.jsonl").write_text(lines, encoding="utf-8")
        write_json_atomic(staging / SPEC_FILE, asdict(spec))
    return out


def _espeak(text: str, voice: str, speed: int, pitch: int, wav: Path) -> None:
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wav.is_file():
        raise StudioError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()[:200]}")


def _spoken_in_turn(clip: tuple, voice: str, speed: int, pitch: int, pauses: list[float], wav: Path) -> dict:
    """Speak each text of `clip` into `wav`, one after another with `pauses` between them; returns its metadata
    row's text and segments (seconds from the clip's start, each text's own sound: padding silence trimmed)."""
    import numpy as np  # here, not at the top: the command line's parser imports this module for TEXT_KINDS
    import soundfile

    pieces, segments, at, rate = [], [], 0, 0
    for i, text in enumerate(clip):
        part = wav.with_suffix(f".{i}.part.wav")
        _espeak(text, voice, speed, pitch, part)
        samples, rate = soundfile.read(str(part), dtype="float32")
        part.unlink()
        loud = np.flatnonzero(np.abs(samples) > SILENT)
        samples = samples[loud[0] : loud[-1] + 1] if len(loud) else samples
        if i:
            gap = np.zeros(round(pauses[i - 1] * rate), np.float32)
            pieces.append(gap)
            at += len(gap)
        segments.append([round(at / rate, 3), round((at + len(samples)) / rate, 3), text])
        pieces.append(samples)
        at += len(samples)
    soundfile.write(str(wav), np.concatenate(pieces), rate, subtype="PCM_16")
    return {"text": " ".join(clip), "segments": segments}


def speak_texts(language: Language, texts: list[str], out: Path, split: str = "test", seed: int = 0) -> Path:
    """Write (or reuse) a pairs folder of `texts` spoken by espeak-ng into one split, each with a seeded voice
    variant, speed and pitch: a held-out set of sentences written apart from the templates (the demo's free
    sentences)."""
    out = Path(out)
    if not language.espeak:
        raise StudioError(f"espeak-ng has no voice for {language.name}: no synthetic speech")
    if not espeak_available():
        raise StudioError("espeak-ng is not installed; install it (apt-get install espeak-ng)")
    stamp = {"language": language.code, "texts": texts, "split": split, "seed": seed}
    if read_json_if_intact(out / SPEC_FILE) == stamp:
        return out
    if out.exists():
        raise StudioError(f"{out} exists and holds other texts; choose another folder or delete it")
    rng = random.Random(seed)
    jobs = [
        (f"{i:05d}", text, language.espeak + rng.choice(VARIANTS), rng.randint(*SPEED_WPM), rng.randint(*PITCH))
        for i, text in enumerate(texts)
    ]
    with staged_folder(out, marker=SPEC_FILE) as staging:
        (staging / split).mkdir()

        def speak(job: tuple) -> None:
            stem, text, voice, speed, pitch = job
            _espeak(text, voice, speed, pitch, staging / split / f"{stem}.wav")
            (staging / split / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(speak, jobs))
        write_json_atomic(staging / SPEC_FILE, stamp)
    return out
