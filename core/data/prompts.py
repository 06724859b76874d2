"""What to read aloud: prompt lists for recording a dataset of your own voice.

Three kinds: our sentence templates for the language (`assets/sentences/`, or 1–4 words from the word list where a
language has no templates), a text of your own (one prompt a line), or the words the current model gets wrong most
(from an evaluation's per-utterance alignment), each in a template sentence that holds it, or alone. Prompts never
repeat a test or validation sentence of a synthetic set (those of the workspace, and the first HELD_OUT_DRAWS texts
the demo's seed draws) nor a sentence an evaluation scored: a recording of a held-out sentence in training would
make its test figure a lie.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.artifact import open_artifact
from core.data.folders import read_text_file
from core.data.rows import text_key
from core.data.synth import SPEC_FILE, SynthSpec, _texts, default_kind
from core.errors import StudioError
from core.languages import Language, get_language
from core.workspace import Workspace, check_free, read_json_if_intact, writable_folder, write_owned

if TYPE_CHECKING:  # wer.py brings jiwer: prompts only read its rows
    from core.text.wer import UtteranceRow

# The demo draws its texts with seed 0 and holds out its first test + validation texts (20% of at most 3,200):
# the first 1,000 texts of that seed cover every seed-0 set up to 5,000 utterances.
HELD_OUT_DRAWS = 1000
PROMPT_SEED_OFFSET = 1_000_003  # prompts are drawn from seeds no synthetic set uses by default
MAX_PROMPT_CHARACTERS = 300  # about 20 s of reading: a longer line will not fit Whisper's 30 s window spoken slowly
MAX_PROMPTS = 10_000
CANDIDATES_PER_WORD = 40  # template sentences drawn per missed word when looking for one that holds it
FOREIGN_FIX = "choose another --out file (prompts replaces only a prompt list it wrote)"


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_PROMPTS:
        raise StudioError(f"--n {n}: ask for 1 to {MAX_PROMPTS:,} prompts")


def held_out_sentences(workspace: Workspace, language: Language) -> set[str]:
    """Sentences (as text keys) no prompt may repeat: the test and validation texts of every synthetic set of the
    language in the workspace, and the first texts the default seed draws (what the demo holds out)."""
    kind = default_kind(language)
    try:
        drawn = _texts(language, SynthSpec(language.code, HELD_OUT_DRAWS, 0, kind), random.Random(0))
    except StudioError:
        drawn = []  # no templates or word list (or too few texts): no synthetic set of the language to protect
    held = {text_key(t) for t in drawn}
    for folder in sorted(workspace.synth.glob("*")) if workspace.synth.is_dir() else []:
        spec = read_json_if_intact(folder / SPEC_FILE)
        if not spec or spec.get("language") != language.code:
            continue
        for split in ("test", "validation"):
            held |= {text_key(p.read_text(encoding="utf-8")) for p in sorted((folder / split).glob("*.txt"))}
    return held


def template_prompts(language: Language, n: int, held_out: set[str], seed: int = 0) -> list[str]:
    """`n` distinct sentences from the language's templates, none of them held out, in a seeded order."""
    _check_count(n)
    spec = SynthSpec(language.code, n + len(held_out), seed, default_kind(language))
    texts = _texts(language, spec, random.Random(PROMPT_SEED_OFFSET + seed))
    return [t for t in texts if text_key(t) not in held_out][:n]


def text_prompts(text: str) -> list[str]:
    """Prompts from a pasted or uploaded text: one a line, blank lines and repeats left out."""
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        line = " ".join(line.split())
        if len(line) > MAX_PROMPT_CHARACTERS:
            raise StudioError(
                f"line {number} has {len(line)} characters: a prompt is read in one breath (at most "
                f"{MAX_PROMPT_CHARACTERS}); split it into sentences, one a line"
            )
        prompts.append(line)
    found = [p for p in dict.fromkeys(prompts) if p]
    if not found:
        raise StudioError("the text holds no prompts: give one sentence a line")
    return found


def file_prompts(path: Path) -> list[str]:
    """Prompts from a text file of one prompt a line (`text_prompts`); a missing file is one line."""
    if not path.is_file():
        raise StudioError(f"--text {path}: no such file; give a text file of one prompt a line")
    return text_prompts(read_text_file(path))


def missed_words(rows: list[UtteranceRow]) -> list[tuple[str, int]]:
    """(reference word, times missed) from an evaluation's per-utterance rows, most missed first: the words of the
    reference that the model substituted or deleted (the alignment is on normalised text)."""
    missed: Counter = Counter()
    for row in rows:
        for op, reference, _ in row.alignment:
            if op in ("substitute", "delete"):
                missed.update(reference)
    return sorted(missed.items(), key=lambda item: (-item[1], item[0]))


def evaluated_language(workspace: Workspace, data: str) -> Language | None:
    """The language of the dataset `data` a saved evaluation scored (its manifest's), or None when it is gone."""
    try:
        return get_language(open_artifact(workspace, data).manifest.language)
    except StudioError:
        return None


def error_prompts(
    rows: list[UtteranceRow],
    language: Language,
    n: int,
    held_out: set[str],
    seed: int = 0,
    evaluated: Language | None = None,
) -> list[str]:
    """Prompts for the words the model misses most: for each, a template sentence that holds it (never one the
    evaluation scored, nor a held-out one), else the word alone; at most `n`, most missed word first. An evaluation
    of another language (`evaluated`) is refused: its words would be read aloud, and kept, as `language`'s."""
    if evaluated is not None and evaluated.whisper != language.whisper:
        raise StudioError(
            f"the evaluation is of {evaluated.name} ({evaluated.code}): its missed words are {evaluated.name} words, "
            f"not {language.name}; ask for prompts in {evaluated.code} (--language {evaluated.code})"
        )
    _check_count(n)
    words = [word for word, _ in missed_words(rows)][:n]
    if not words:
        raise StudioError("the evaluation has no missed words (a WER of 0, or no rows): choose another prompt list")
    scored = {text_key(r.reference) for r in rows}
    pool: dict[str, str] = {}
    try:
        spec = SynthSpec(language.code, CANDIDATES_PER_WORD * len(words), seed, default_kind(language))
        pool = {text_key(t): t for t in _texts(language, spec, random.Random(PROMPT_SEED_OFFSET + seed))}
    except StudioError:
        pass  # no templates or word list for the language (or too few texts): the words alone
    chosen: list[str] = []
    for word in words:
        if any(word in text_key(text).split() for text in chosen):
            continue  # a sentence chosen for a word missed more often holds this one too
        sentence = next(
            (text for key, text in pool.items() if word in key.split() and key not in held_out and key not in scored),
            None,
        )
        chosen.append(sentence or word)
    return chosen


def prompt_list_path(path: Path) -> Path:
    """Where a prompt list may go, checked before any prompt is drawn: a writable folder, and no file there that is
    not a prompt list we wrote (a wav, the user's notes)."""
    writable_folder(path.parent, "--out")
    check_free([path], FOREIGN_FIX)
    return path


def write_prompts(prompts: list[str], path: Path) -> Path:
    """The list as a text file, one prompt a line (what `text_prompts` reads back), never over a file we did not
    write (its folder's record of our files tells a list of ours)."""
    return write_owned(Path(path), "".join(f"{p}\n" for p in prompts).encode(), FOREIGN_FIX)
