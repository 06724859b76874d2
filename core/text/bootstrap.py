"""How sure a WER difference is: a paired bootstrap over utterances.

Two evaluations of the same utterances (a model before and after fine-tuning, or two checkpoints) differ by a
corpus WER difference; resampling the utterances with replacement (the same resample for both sides: paired) gives
its 95% interval. An interval that contains 0 is no measurable difference, however large the point difference
reads. Seeded: the same rows give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import StudioError
from core.formatting import MISSING

if TYPE_CHECKING:  # wer.py brings jiwer and evaluate: not needed to resample counts
    from core.text.wer import UtteranceRow

RESAMPLES = 1000
SEED = 0


@dataclass(frozen=True)
class WerChange:
    """after − before, as fractions of words: the point difference and its 95% interval."""

    difference: float
    low: float
    high: float
    utterances: int

    @property
    def measurable(self) -> bool:
        return not self.low <= 0 <= self.high

    @property
    def shown(self) -> str:
        """'-12.3 points (95% CI -15.0 to -9.8)' or '+0.4 points (95% CI -1.2 to +2.0): no measurable difference'."""
        text = f"{100 * self.difference:+.1f} points (95% CI {100 * self.low:+.1f} to {100 * self.high:+.1f})"
        return text if self.measurable else f"{text}: no measurable difference"

    def to_dict(self) -> dict:
        return {"difference": self.difference, "low": self.low, "high": self.high, "utterances": self.utterances}

    @classmethod
    def from_dict(cls, data) -> WerChange | None:
        try:
            return cls(float(data["difference"]), float(data["low"]), float(data["high"]), int(data["utterances"]))
        except (TypeError, KeyError, ValueError):
            return None


def shown_change(change: WerChange | None) -> str:
    return change.shown if change else MISSING


def worst_half_width(utterances: int) -> float:
    """Half the width of a WER's 95% interval measured on `utterances` (a fraction: 0.18 = ±18 points), at its
    widest (a WER near 50%): 1.96 × √(0.5 × 0.5 / n), the binomial over utterances. A rule of thumb before any
    evaluation (the bootstrap above measures it after): 3 utterances ±0.57, 30 ±0.18, 100 ±0.10, 400 ±0.05."""
    return 1.96 * (0.25 / utterances) ** 0.5 if utterances > 0 else 1.0


def _counts(rows: list[UtteranceRow]) -> tuple[np.ndarray, np.ndarray, list]:
    """(errors, reference words, ids) per utterance, from an evaluation's rows."""
    errors = np.array([r.errors for r in rows], dtype=np.float64)
    words = np.array([r.reference_words for r in rows], dtype=np.float64)
    return errors, words, [r.id for r in rows]


def paired_bootstrap(
    before: list[UtteranceRow], after: list[UtteranceRow], resamples: int = RESAMPLES, seed: int = SEED
) -> WerChange:
    """The WER change from `before` to `after` (per-utterance rows of the same utterances, matched by id) with its
    95% percentile interval over `resamples` paired resamples."""
    errors_a, words_a, ids_a = _counts(before)
    errors_b, words_b, ids_b = _counts(after)
    if sorted(map(str, ids_a)) != sorted(map(str, ids_b)) or not ids_a:
        raise StudioError(
            "a paired comparison needs the same utterances on both sides: evaluate both models on the same split"
        )
    order = {str(uid): i for i, uid in enumerate(ids_b)}
    index = np.array([order[str(uid)] for uid in ids_a])
    errors_b, words_b = errors_b[index], words_b[index]
    words = np.maximum(words_a, words_b)  # the same references; max guards an empty reference on one side

    def rate(errors: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return errors[chosen].sum(axis=-1) / np.maximum(words[chosen].sum(axis=-1), 1)

    everything = np.arange(len(ids_a))
    difference = float(rate(errors_b, everything) - rate(errors_a, everything))
    chosen = np.random.default_rng(seed).integers(0, len(ids_a), size=(resamples, len(ids_a)))
    spread = rate(errors_b, chosen) - rate(errors_a, chosen)
    low, high = np.percentile(spread, [2.5, 97.5])
    return WerChange(difference, float(low), float(high), len(ids_a))
