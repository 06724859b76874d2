"""Spoken replies in conversation mode: the LLM's text → espeak-ng speech in the conversation's language, as wav bytes
for the browser. (Synthetic training data is core/synth.py's.)"""

from __future__ import annotations

import subprocess

from core.data.synth import espeak_available
from core.errors import StudioError
from core.languages import Language

MAX_CHARACTERS = 2000  # espeak-ng reads a long reply for minutes; nobody listens that long


def speak(text: str, language: Language, words_per_minute: int = 165) -> bytes:
    if not language.espeak:
        raise StudioError(f"espeak-ng has no voice for {language.name}: replies are shown, not spoken")
    if not espeak_available():
        raise StudioError("espeak-ng is not installed: apt-get install espeak-ng (or run the README's command)")
    result = subprocess.run(
        ["espeak-ng", "-v", language.espeak, "-s", str(words_per_minute), "--stdout", text[:MAX_CHARACTERS]],
        capture_output=True,
    )
    if result.returncode != 0 or not result.stdout:
        raise StudioError(f"espeak-ng could not speak {language.name}: {result.stderr.decode()[:200]}")
    return result.stdout
