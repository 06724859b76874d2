"""Character error rate as an `evaluate` metric, shipped with Whisper Studio so no Hub fetch is needed.

The same computation as the Hub's `cer` metric: (S + D + I) / reference characters over the whole corpus, spaces
counted as characters, from jiwer's character alignment.
"""

import datasets
import evaluate
import jiwer

_DESCRIPTION = "Corpus character error rate: (S + D + I) / N characters over all references, from jiwer."
_KWARGS = "predictions: list of str; references: list of str. Returns a float (0.0 = perfect, may exceed 1.0)."


class CER(evaluate.Metric):
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
                errors += len(prediction)  # jiwer cannot align an empty reference: every hypothesis unit is inserted
                continue
            out = jiwer.process_characters(reference, prediction)
            errors += out.substitutions + out.deletions + out.insertions
            total += out.substitutions + out.deletions + out.hits
        return errors / total if total else 0.0
