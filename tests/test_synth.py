"""Synthetic speech with real espeak-ng: seeded, split by text (no test sentence is ever heard in training), words
for the toy and sentences for a real Whisper, reused when asked again."""

import re

import pytest

from core.data.synth import SynthSpec, load_grammar, load_wordlist, synthesize_dataset
from core.errors import StudioError
from core.languages import LANGUAGES, get_language

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


def test_sentences_reach_beyond_a_closed_word_set(tmp_path):
    folder = synthesize_dataset(get_language("en"), tmp_path / "en", SynthSpec(language="en", n=60, seed=4))
    texts = {s: _texts(folder, s) for s in ("train", "validation", "test")}
    assert [len(t) for t in texts.values()] == [48, 6, 6]
    assert not set(texts["test"]) & set(texts["train"])
    words = {w for t in sum(texts.values(), []) for w in re.findall(r"[a-z']+", t.lower())}
    assert len(words) > 60  # far beyond the toy's 30 words
    assert all(t[0].isupper() and t[-1] in ".?" for t in sum(texts.values(), []))
    grammar = load_grammar(get_language("en"))
    patterns = [
        re.compile(
            re.sub(
                r"\\\{(\w+)\\\}",
                lambda m: "(" + "|".join(map(re.escape, grammar["slots"][m.group(1)])) + ")",
                re.escape(t),
            ),
            re.IGNORECASE,
        )
        for t in grammar["templates"]
    ]
    assert all(any(p.fullmatch(t) for p in patterns) for t in sum(texts.values(), []))  # made from the templates


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
