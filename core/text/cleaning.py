"""Transcript text: the saved cleaning options applied before tokenising, and the normaliser used for WER.

Cleaning changes what the model learns to write, so the options are explicit and saved in each artifact's manifest.
WER is computed twice, on raw text and after Whisper's BasicTextNormalizer (as the Whisper paper reports it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import cache

from core.languages import Language
from core.option_fields import option_help

_WHITESPACE = re.compile(r"\s+")


@cache
def _basic_normalizer():
    # imported on first use: transformers takes 1.5 s to import, and CleaningOptions is read by the CLI's parser
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer()


@dataclass(frozen=True)
class CleaningOptions:
    """What `clean_text` does; every field defaults to off except whitespace, so text is kept as given."""

    lowercase: bool = field(default=False, metadata=option_help("lowercase transcripts"))
    strip_punctuation: bool = field(
        default=False, metadata=option_help("remove punctuation (letters such as æøå stay)")
    )
    collapse_whitespace: bool = field(default=True, metadata=option_help("one space between words, none at the ends"))

    def to_dict(self) -> dict:
        return asdict(self)


def clean_text(text: str, options: CleaningOptions, language: Language | None = None) -> str:
    """Apply the cleaning options; punctuation stripping keeps letters (æøå, ñ, ä, Devanagari marks) and digits."""
    text = unicodedata.normalize("NFC", text)
    if options.lowercase:
        text = text.lower()
    if options.strip_punctuation:
        # Unicode categories: L* letters, M* combining marks (Devanagari vowel signs), N* numbers; the rest goes,
        # apostrophes inside words excepted ("don't", "l'acqua").
        kept = []
        for i, ch in enumerate(text):
            category = unicodedata.category(ch)
            inner_apostrophe = ch in "'’" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            kept.append(ch if category[0] in "LMN" or ch.isspace() or inner_apostrophe else " ")
        text = "".join(kept)
    if options.collapse_whitespace:
        text = _WHITESPACE.sub(" ", text).strip()
    return text


def foreign_characters(text: str, language: Language) -> set[str]:
    """Letters in `text` outside the language's alphabet (a sign of wrong-language rows or encoding damage); nothing
    for a language whose alphabet the table does not know."""
    if not language.letters:
        return set()
    allowed = set(language.letters) | set(language.letters.upper())
    return {ch for ch in text if unicodedata.category(ch)[0] == "L" and ch not in allowed}


def normalize_for_wer(text: str) -> str:
    """Whisper's BasicTextNormalizer (lowercase, no punctuation, no bracketed asides; letters such as æøå kept),
    with whitespace collapsed so a trailing space is never an error."""
    return _WHITESPACE.sub(" ", _basic_normalizer()(text)).strip()
