"""Error rates and per-utterance results: WER and CER, normalised and raw, with hallucination signals. Pure
functions of text: nothing here loads or runs a model.

Corpus rates come from `evaluate` with the metric code shipped in assets/metrics (no Hub fetch). "Normalised" means
both sides went through Whisper's BasicTextNormalizer first, as the Whisper paper reports WER; "raw" compares the
text as written. Per utterance: WER, the counts of substitutions/deletions/insertions from jiwer's alignment, and
the aligned word pairs the Compare page colours.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import jiwer

from core import ASSETS
from core.option_fields import known_fields
from core.text.cleaning import normalize_for_wer

METRICS = ASSETS / "metrics"
REPEAT_NGRAM = 3  # an n-gram of this many words …
REPEAT_TIMES = 3  # … seen this many times in one hypothesis is the classic Whisper loop
# openai/whisper's compression_ratio_threshold: text that zlib shrinks more than this is a decoder loop (decoding's
# temperature fallback and the label thresholds start from it)
LOOP_COMPRESSION_RATIO = 2.4
LENGTH_RATIO = (0.5, 2.0)  # hypothesis/reference words outside this range is suspicious


@lru_cache(maxsize=2)
def _metric(name: str):
    import evaluate

    return evaluate.load(str(METRICS / name))


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Corpus WER and CER, normalised (`wer`, `cer`) and raw (`wer_raw`, `cer_raw`), as fractions."""
    norm_refs = [normalize_for_wer(r) for r in references]
    norm_hyps = [normalize_for_wer(h) for h in hypotheses]
    wer, cer = _metric("wer"), _metric("cer")
    return {
        "wer": wer.compute(predictions=norm_hyps, references=norm_refs),
        "cer": cer.compute(predictions=norm_hyps, references=norm_refs),
        "wer_raw": wer.compute(predictions=hypotheses, references=references),
        "cer_raw": cer.compute(predictions=hypotheses, references=references),
    }


def align_words(reference: str, hypothesis: str) -> dict:
    """One utterance: WER, S/D/I counts and the aligned chunks [(op, ref words, hyp words)], normalised text."""
    ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
    if not ref.split():
        n = len(hyp.split())
        return {
            "wer": float(n > 0),
            "substitutions": 0,
            "deletions": 0,
            "insertions": n,
            "hits": 0,
            "alignment": [["insert", [], hyp.split()]] if n else [],
        }
    out = jiwer.process_words(ref, hyp or "")
    ref_words, hyp_words = out.references[0], out.hypotheses[0]
    # lists, not tuples: the result is saved as JSON and must compare equal when read back
    chunks = [
        [c.type, ref_words[c.ref_start_idx : c.ref_end_idx], hyp_words[c.hyp_start_idx : c.hyp_end_idx]]
        for c in out.alignments[0]
    ]
    return {
        "wer": out.wer,
        "substitutions": out.substitutions,
        "deletions": out.deletions,
        "insertions": out.insertions,
        "hits": out.hits,
        "alignment": chunks,
    }


def hallucination_flags(reference: str, hypothesis: str) -> list[str]:
    """Signals that the model made text up: empty output, a repeated n-gram loop, a length far off the reference."""
    flags = []
    hyp_words = normalize_for_wer(hypothesis).split()
    ref_words = normalize_for_wer(reference).split()
    if not hyp_words:
        flags.append("empty")
    grams = Counter(tuple(hyp_words[i : i + REPEAT_NGRAM]) for i in range(len(hyp_words) - REPEAT_NGRAM + 1))
    if grams and max(grams.values()) >= REPEAT_TIMES:
        flags.append("repeats")
    if ref_words and hyp_words:
        ratio = len(hyp_words) / len(ref_words)
        if ratio > LENGTH_RATIO[1]:
            flags.append("too_long")
        elif ratio < LENGTH_RATIO[0]:
            flags.append("too_short")
    return flags


@dataclass(frozen=True)
class UtteranceRow:
    """One utterance of an evaluation: both texts, its WER, the S/D/I/hit counts, the aligned chunks
    [op, reference words, hypothesis words] on normalised text, and its hallucination flags. Saved as a JSON object
    (`to_dict`) and read back (`from_dict`) in every evaluation file."""

    id: str
    reference: str
    hypothesis: str
    wer: float = 0.0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    alignment: list = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict) -> UtteranceRow:
        return cls(**known_fields(cls, raw))

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def reference_words(self) -> int:
        return self.substitutions + self.deletions + self.hits


def utterance_results(ids: list[str], references: list[str], hypotheses: list[str]) -> list[UtteranceRow]:
    return [
        UtteranceRow(uid, ref, hyp, **align_words(ref, hyp), flags=hallucination_flags(ref, hyp))
        for uid, ref, hyp in zip(ids, references, hypotheses)
    ]


def summarize(ids: list[str], references: list[str], hypotheses: list[str]) -> dict:
    """The full evaluation record as saved (JSON): corpus rates, flag counts and per-utterance rows."""
    rows = utterance_results(ids, references, hypotheses)
    flags = Counter(flag for row in rows for flag in row.flags)
    record = {**error_rates(references, hypotheses), "utterances": len(rows), "flags": dict(flags)}
    return {**record, "rows": [row.to_dict() for row in rows]}


def compression_ratio(text: str) -> float:
    """Bytes of UTF-8 over bytes after zlib: ~1.5 for speech, above LOOP_COMPRESSION_RATIO when a phrase repeats."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def is_loop(text: str) -> bool:
    """A repeated n-gram loop (REPEAT_NGRAM words seen REPEAT_TIMES times), or text that compresses more than
    openai/whisper's compression-ratio threshold: the output of a decoder stuck in a loop."""
    words = normalize_for_wer(text).split()
    grams = Counter(tuple(words[i : i + REPEAT_NGRAM]) for i in range(len(words) - REPEAT_NGRAM + 1))
    if grams and max(grams.values()) >= REPEAT_TIMES:
        return True
    return len(text.encode("utf-8")) > 24 and compression_ratio(text) > LOOP_COMPRESSION_RATIO


def probe_counts(texts: list[str]) -> dict[str, int]:
    """What a model wrote on clips with no speech: words in all, clips with any word, clips that loop."""
    words = [len(normalize_for_wer(t).split()) for t in texts]
    return {
        "probe_words": sum(words),
        "probe_clips_with_words": sum(1 for n in words if n),
        "probe_loops": sum(1 for t in texts if is_loop(t)),
        "probe_clips": len(texts),
    }
