"""Error rates against jiwer on known pairs; per-utterance alignment and hallucination flags."""

import jiwer
import pytest

from core.text.wer import align_words, error_rates, hallucination_flags, summarize

REFS = ["hei på deg", "en to tre fire", "god morgen", "Takk for sist!"]
HYPS = ["hei på deg", "en to fire fem seks", "god", "takk for sist"]


def test_corpus_rates_match_jiwer():
    rates = error_rates(REFS, HYPS)
    assert rates["wer_raw"] == pytest.approx(jiwer.wer(REFS, HYPS))
    assert rates["cer_raw"] == pytest.approx(jiwer.cer(REFS, HYPS))
    normalised = ["hei på deg", "en to tre fire", "god morgen", "takk for sist"]
    assert rates["wer"] == pytest.approx(jiwer.wer(normalised, HYPS))
    assert rates["wer"] < rates["wer_raw"]  # case and punctuation only count in raw


def test_per_utterance_counts_and_alignment():
    row = align_words("en to tre fire", "en to fire fem seks")
    # en to [tre→fire] [fire→fem] +seks: two hits, two substitutions, one insertion
    assert (row["substitutions"], row["deletions"], row["insertions"], row["hits"]) == (2, 0, 1, 2)
    assert row["wer"] == pytest.approx(jiwer.wer("en to tre fire", "en to fire fem seks"))
    assert row["alignment"][0] == ["equal", ["en", "to"], ["en", "to"]]
    assert align_words("", "noe")["insertions"] == 1


def test_hallucination_flags():
    assert hallucination_flags("hei", "") == ["empty"]
    assert "repeats" in hallucination_flags("hei på deg", "hei på deg hei på deg hei på deg")
    assert "too_long" in hallucination_flags("hei", "hei du der borte nå")
    assert "too_short" in hallucination_flags("en to tre fire fem", "en")
    assert hallucination_flags("hei på deg", "hei på deg") == []
    summary = summarize(["a", "b"], ["hei", "hei på deg"], ["", "hei på deg"])
    assert summary["flags"] == {"empty": 1} and summary["utterances"] == 2 and summary["rows"][0]["wer"] == 1.0
