"""One table that maps a language to every name the tools around Whisper give it.

Whisper, FLEURS, Common Voice and espeak-ng each spell languages their own way (Norwegian Bokmål is Whisper `no`,
FLEURS `nb_no`, Common Voice `nb-NO`, espeak-ng `nb`). Everything in Whisper Studio looks a language up here by our
own code (`nb`, `sv`, …) and asks the table for the name the other tool wants.

The table covers all 99 languages of Whisper's tokenizer (assets/languages.tsv, written by
scripts/build_language_table.py). The 15 hand-picked PRESETS also know their alphabet, which the doctor uses to spot
wrong-language rows; a language without a FLEURS config or an espeak-ng voice still trains from a local folder or a
Hub dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import ASSETS
from core.errors import StudioError


@dataclass(frozen=True)
class Language:
    code: str  # our code, also the name of the word list in assets/wordlists/
    name: str
    whisper: str  # Whisper's language token without brackets: <|no|>
    fleurs: str | None  # google/fleurs config name
    common_voice: str | None  # Common Voice locale
    espeak: str | None  # espeak-ng voice
    letters: str | None = None  # the lowercase letters of its alphabet (or its whole script); None = not checked

    @property
    def whisper_token(self) -> str:
        return f"<|{self.whisper}|>"


LATIN = "abcdefghijklmnopqrstuvwxyz"
DEVANAGARI = "".join(chr(c) for c in range(0x0900, 0x0980))

PRESETS: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("nb", "Norwegian Bokmål", "no", "nb_no", "nb-NO", "nb", LATIN + "æøåéèêóòôü"),
        Language("nn", "Norwegian Nynorsk", "nn", None, "nn-NO", "nb", LATIN + "æøåéèêóòôü"),
        Language("sv", "Swedish", "sv", "sv_se", "sv-SE", "sv", LATIN + "åäöé"),
        Language("da", "Danish", "da", "da_dk", "da", "da", LATIN + "æøåé"),
        Language("es", "Spanish", "es", "es_419", "es", "es", LATIN + "ñáéíóúü"),
        Language("it", "Italian", "it", "it_it", "it", "it", LATIN + "àèéìíòóùú"),
        Language("de", "German", "de", "de_de", "de", "de", LATIN + "äöüß"),
        Language("fr", "French", "fr", "fr_fr", "fr", "fr", LATIN + "àâæçéèêëîïôœùûüÿ"),
        Language("en", "English", "en", "en_us", "en", "en-us", LATIN),
        Language("hi", "Hindi", "hi", "hi_in", "hi", "hi", DEVANAGARI),
        Language("fi", "Finnish", "fi", "fi_fi", "fi", "fi", LATIN + "åäö"),
        Language("nl", "Dutch", "nl", "nl_nl", "nl", "nl", LATIN + "éëï"),
        Language("pl", "Polish", "pl", "pl_pl", "pl", "pl", LATIN + "ąćęłńóśźż"),
        Language("pt", "Portuguese", "pt", "pt_br", "pt", "pt", LATIN + "áâãàçéêíóôõú"),
        Language("is", "Icelandic", "is", "is_is", "is", "is", LATIN + "áðéíóúýþæö"),
    ]
}
TABLE = ASSETS / "languages.tsv"


def _whisper_table() -> dict[str, Language]:
    """Every row of assets/languages.tsv as a Language; presets win where both name a language."""
    languages = dict(PRESETS)
    covered = {lang.whisper for lang in PRESETS.values()}
    lines = TABLE.read_text(encoding="utf-8").splitlines()[1:]
    for whisper, name, fleurs, common_voice, espeak in (line.split("\t") for line in lines):
        if whisper not in covered:
            languages[whisper] = Language(whisper, name, whisper, fleurs or None, common_voice or None, espeak or None)
    return languages


LANGUAGES: dict[str, Language] = _whisper_table()

# Names people type for a language, mapped to our code: Whisper's codes and names, FLEURS configs, CV locales.
_ALIASES: dict[str, str] = {}
for _lang in LANGUAGES.values():
    for _alias in (_lang.code, _lang.name, _lang.whisper, _lang.fleurs, _lang.common_voice):
        if _alias:
            _ALIASES.setdefault(_alias.lower(), _lang.code)
_ALIASES.update({"norwegian": "nb", "bokmål": "nb", "bokmal": "nb", "nynorsk": "nn", "no": "nb"})


def get_language(name: str) -> Language:
    """Look a language up by our code, Whisper code, FLEURS config, Common Voice locale or English name."""
    code = _ALIASES.get(name.strip().lower())
    if code is None:
        presets = ", ".join(f"{lang.code} ({lang.name})" for lang in PRESETS.values())
        raise StudioError(
            f"unknown language '{name}': choose one of Whisper's {len(LANGUAGES)} languages "
            f"(python -m core languages), e.g. {presets}"
        )
    return LANGUAGES[code]


def language_table() -> list[str]:
    """The `languages` command's table: code, name, Whisper token, each dataset's config, espeak-ng voice, preset."""
    lines = [f"{'code':5} {'name':22} {'whisper':9} {'fleurs':12} {'common voice':13} {'espeak-ng':10} preset"]
    for lang in LANGUAGES.values():
        lines.append(
            f"{lang.code:5} {lang.name:22} {lang.whisper_token:9} {lang.fleurs or '-':12} "
            f"{lang.common_voice or '-':13} {lang.espeak or '-':10} {'yes' if lang.code in PRESETS else ''}"
        )
    return lines
