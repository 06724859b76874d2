"""Word error rate as an `evaluate` metric, shipped with Whisper Studio so no Hub fetch is needed.

The same computation as the Hub's `wer` metric: (substitutions + deletions + insertions) / reference words over the
whole corpus (not a mean of per-utterance rates), counted by jiwer's alignment.
"""

import datasets
import evaluate
import jiwer

_DESCRIPTION = "Corpus word error rate: (S + D + I) / N over all references, from jiwer's word alignment."
_KWARGS = "predictions: list of str; references: list of str. Returns a float (0.0 = perfect, may exceed 1.0)."


class WER(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/jitsi/jiwer/"],
        )

    def _compute(self, predictions=None, references=None):
        errors = total = 0
        for prediction, reference in zip(predictions, references):
            if not reference:
                errors += len(
                    prediction.split()
                )  # jiwer cannot align an empty reference: every hypothesis unit is inserted
                continue
            out = jiwer.process_words(reference, prediction)
            errors += out.substitutions + out.deletions + out.insertions
            total += out.substitutions + out.deletions + out.hits
        return errors / total if total else 0.0
