"""The language table and text cleaning."""

import pytest

from core.errors import StudioError
from core.languages import get_language
from core.text.cleaning import CleaningOptions, clean_text, foreign_characters, normalize_for_wer


def test_norwegian_maps_to_whispers_codes():
    nb = get_language("nb")
    assert (nb.whisper, nb.fleurs, nb.common_voice, nb.espeak) == ("no", "nb_no", "nb-NO", "nb")
    assert nb.whisper_token == "<|no|>"
    assert get_language("nb_no") is nb and get_language("nb-NO") is nb and get_language("Norwegian") is nb
    assert get_language("nynorsk").whisper == "nn"


def test_unknown_language_lists_the_valid_ones():
    with pytest.raises(StudioError) as err:
        get_language("klingon")
    assert "klingon" in str(err.value) and "nb (Norwegian Bokmål)" in str(err.value) and "hi (Hindi)" in str(err.value)


def test_cleaning_keeps_each_languages_letters():
    options = CleaningOptions(lowercase=True, strip_punctuation=True)
    assert clean_text("  Blåbær-syltetøy, ÆØÅ!  ", options) == "blåbær syltetøy æøå"
    assert clean_text("¿Mañana? ¡Sí!", options) == "mañana sí"
    assert clean_text("Größe: l'acqua", options) == "größe l'acqua"
    assert clean_text("नमस्ते, दुनिया!", options) == "नमस्ते दुनिया"  # vowel signs are marks, kept
    assert clean_text("Keep  As\tIs!", CleaningOptions()) == "Keep As Is!"


def test_foreign_characters_and_wer_normaliser():
    assert foreign_characters("hei på deg ß", get_language("nb")) == {"ß"}
    assert normalize_for_wer("Hei, på DEG!") == "hei på deg"
