"""Text: transcript cleaning and the normaliser WER is computed on (cleaning); WER, CER and alignments (wer)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "CleaningOptions": "cleaning",
        "clean_text": "cleaning",
        "normalize_for_wer": "cleaning",
        "error_rates": "wer",
        "summarize": "wer",
        "align_words": "wer",
        "WerChange": "bootstrap",
        "probe_counts": "wer",
        "is_loop": "wer",
        "paired_bootstrap": "bootstrap",
    },
)
