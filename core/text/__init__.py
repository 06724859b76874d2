"""Text: transcript cleaning and the normaliser WER is computed on (cleaning); WER, CER and alignments (wer)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "CleaningOptions": "cleaning",
        "error_rates": "wer",
    },
)
