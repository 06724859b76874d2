"""Synthetic speech with real espeak-ng: seeded, 1–4 words from the word list, reused when asked again."""

import pytest

from core.errors import StudioError
from core.languages import LANGUAGES, get_language
from core.synth import SynthSpec, load_wordlist, synthesize_dataset

REQUIRED = ("nb", "nn", "sv", "da", "es", "it", "de", "fr", "en", "hi")


def test_word_lists_ship_for_the_required_languages():
    for code in REQUIRED:
        words = load_wordlist(LANGUAGES[code])
        assert len(words) >= 30 and len(set(words)) == len(words), code


def test_same_seed_same_set_and_words_from_the_list(tmp_path, synth_folder):
    again = synthesize_dataset(
        get_language("nb"), tmp_path / "again", SynthSpec(language="nb", n=24, seed=1, vocabulary_size=10)
    )
    texts = sorted(p.read_text() for p in synth_folder.rglob("*.txt"))
    assert texts == sorted(p.read_text() for p in again.rglob("*.txt"))
    vocabulary = set(load_wordlist(get_language("nb"))[:10])
    for text in texts:
        words = text.split()
        assert 1 <= len(words) <= 4 and set(words) <= vocabulary
    assert (
        synthesize_dataset(get_language("nb"), again, SynthSpec(language="nb", n=24, seed=1, vocabulary_size=10))
        == again
    )
    with pytest.raises(StudioError, match="other settings"):
        synthesize_dataset(get_language("nb"), again, SynthSpec(language="nb", n=24, seed=2))


def test_language_without_word_list(tmp_path):
    with pytest.raises(StudioError, match="no word list for Icelandic"):
        synthesize_dataset(get_language("is"), tmp_path / "is", SynthSpec(language="is", n=4))
