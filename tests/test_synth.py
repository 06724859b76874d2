"""Synthetic speech with real espeak-ng: seeded, split by text (no test sentence is ever heard in training), words
for the toy and sentences for a real Whisper (templates with slots within slots, numbers, names, the word list;
never one of the free sentences), reused when asked again."""

import random
import re
from pathlib import Path

import pytest

from core.data.synth import (
    SynthSpec,
    _check_depth,
    free_sentences,
    grammar_numbers,
    load_grammar,
    load_wordlist,
    synthesize_dataset,
)
from core.data.synth import _texts as _draw
from core.errors import StudioError
from core.languages import LANGUAGES, get_language
from core.text.cleaning import normalize_for_wer

REQUIRED = ("nb", "nn", "sv", "da", "es", "it", "de", "fr", "en", "hi")


def _texts(folder, split):
    return [p.read_text().strip() for p in sorted((folder / split).glob("*.txt"))]


def test_word_lists_ship_for_the_required_languages():
    for code in REQUIRED:
        words = load_wordlist(LANGUAGES[code])
        assert len(words) >= 30 and len(set(words)) == len(words), code


def test_same_seed_same_set_split_by_text_and_words_from_the_list(tmp_path, synth_folder):
    spec = SynthSpec(language="nb", n=30, seed=1, kind="words", vocabulary_size=10)
    again = synthesize_dataset(get_language("nb"), tmp_path / "again", spec)
    for split in ("train", "validation", "test"):
        assert _texts(synth_folder, split) == _texts(again, split)
    train, validation, test = (set(_texts(again, s)) for s in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (24, 3, 3)  # every text distinct
    assert not (train & test) and not (train & validation) and not (validation & test)
    vocabulary = set(load_wordlist(get_language("nb"))[:10])
    for text in train | validation | test:
        assert 1 <= len(text.split()) <= 4 and set(text.split()) <= vocabulary
    assert synthesize_dataset(get_language("nb"), again, spec) == again  # reused
    with pytest.raises(StudioError, match="other settings"):
        synthesize_dataset(get_language("nb"), again, SynthSpec(language="nb", n=30, seed=2, kind="words"))


def _phrase_pattern(phrase: str, slots: dict) -> str:
    """A regular expression for every text `phrase` can make, its slots (and theirs) expanded."""
    parts = re.split(r"\{(\w+)\}", phrase)
    return "".join(
        re.escape(part) if i % 2 == 0 else "(?:" + "|".join(_phrase_pattern(p, slots) for p in slots[part]) + ")"
        for i, part in enumerate(parts)
    )


def test_sentences_reach_beyond_a_closed_word_set(tmp_path):
    folder = synthesize_dataset(get_language("en"), tmp_path / "en", SynthSpec(language="en", n=60, seed=4))
    texts = {s: _texts(folder, s) for s in ("train", "validation", "test")}
    assert [len(t) for t in texts.values()] == [48, 6, 6]
    assert not set(texts["test"]) & set(texts["train"])
    words = {w for t in sum(texts.values(), []) for w in re.findall(r"[a-z']+", t.lower())}
    assert len(words) > 150  # 60 sentences: far beyond the toy's 30 words
    assert all(t[0].isupper() and t[-1] in ".?" for t in sum(texts.values(), []))
    grammar = load_grammar(get_language("en"))
    made = re.compile("|".join(f"(?:{_phrase_pattern(t, grammar['slots'])})" for t in grammar["templates"]), re.I)
    assert all(made.fullmatch(t) for t in sum(texts.values(), []))  # made from the templates, slots within slots


def test_the_richer_grammar_splits_by_text_and_never_makes_a_free_sentence(tmp_path):
    nb = get_language("nb")
    free = {normalize_for_wer(t) for t in free_sentences(nb)}
    assert len(free) == 40
    texts = _draw(nb, SynthSpec("nb", 3000, 0), random.Random(0))
    keys = [normalize_for_wer(t) for t in texts]
    assert len(set(keys)) == 3000 and not free & set(keys)
    words = {w for k in keys for w in k.split()}
    assert len(words) > 800  # the old ten templates knew 206 words in all
    assert any(re.search(r"\b[1-9]\d\b", t) for t in texts) and any(" sju " in f" {k} " for k in keys)  # numbers
    assert set(load_wordlist(nb)) & words  # sentences built from the word list
    # a text held out is never drawn, however often the seed would make it: the same seed without the first five
    again = _draw(nb, SynthSpec("nb", 3000, 0), random.Random(0), exclude=frozenset(keys[:5]))
    assert len(again) == 3000 and not set(texts[:5]) & set(again)
    # speech: the three splits share no sentence, and none is a free one
    folder = synthesize_dataset(nb, tmp_path / "nb", SynthSpec(language="nb", n=40, seed=3))
    spoken = {s: {normalize_for_wer(t) for t in _texts(folder, s)} for s in ("train", "validation", "test")}
    assert [len(k) for k in spoken.values()] == [32, 4, 4]
    assert not spoken["train"] & (spoken["validation"] | spoken["test"]) and not spoken["validation"] & spoken["test"]
    assert not free & set().union(*spoken.values())


def test_grammar_numbers_and_nesting_are_checked():
    numbers = grammar_numbers({"spelled": ["two", "three"], "largest": 6})
    assert numbers == ["two", "three", "4", "5", "6"]
    assert "tolv" in load_grammar(get_language("nb"))["slots"]["number"]  # 2–12 in words, then digits
    with pytest.raises(StudioError, match="nests more than"):
        _check_depth(Path("loop.json"), "{a}", {"a": ["x {b}"], "b": ["{a} y"]}, 0)
    with pytest.raises(StudioError, match="unknown slot 'c'"):
        _check_depth(Path("typo.json"), "{a}", {"a": ["{c}"]}, 0)


def test_bad_requests_get_one_line(tmp_path):
    with pytest.raises(StudioError, match="no word list for Icelandic"):
        synthesize_dataset(get_language("is"), tmp_path / "is", SynthSpec(language="is", n=4, kind="words"))
    with pytest.raises(StudioError, match="no sentence templates for Swedish.*--kind words"):
        synthesize_dataset(get_language("sv"), tmp_path / "sv", SynthSpec(language="sv", n=4))
    with pytest.raises(StudioError, match="at least 3 utterances"):
        synthesize_dataset(get_language("nb"), tmp_path / "one", SynthSpec(language="nb", n=1))
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    with pytest.raises(StudioError, match="is a file; give a folder"):
        synthesize_dataset(get_language("nb"), target, SynthSpec(language="nb", n=10))
    with pytest.raises(StudioError, match="only .* distinct texts"):
        synthesize_dataset(
            get_language("nb"),
            tmp_path / "tiny",
            SynthSpec(language="nb", n=50, kind="words", vocabulary_size=2, max_words=1),
        )
