"""Self-training: labelled rows plus rows a model labelled itself (a label set, prepared), at a stated share.

`pseudo_labels` names a prepared dataset made from a label set (core/data/pseudo_labels.py); its rows (every split
prepare made of it) join the run's training rows through replay's mix (ReplayMix, core/training/feature_sets.py), so
`pseudo_label_fraction` of every epoch is pseudo-labelled. Evaluation never sees them: validation and test stay the
labelled set's, so the run's held-out result is comparable with a run on the labelled rows alone (`compare_held_out`
gives the paired interval).
"""

from __future__ import annotations

from torch.utils.data import ConcatDataset

from core.data.artifact import Artifact, open_artifact
from core.errors import StudioError
from core.text.bootstrap import WerChange, paired_bootstrap
from core.text.wer import UtteranceRow
from core.training.config import TrainConfig
from core.training.feature_sets import FeatureDataset, ReplayMix
from core.training.runs import RunFolder
from core.workspace import Workspace, read_json_if_intact


def pseudo_label_artifact(workspace: Workspace, config: TrainConfig, processor, artifact: Artifact) -> Artifact | None:
    """The prepared pseudo-label set of the run (None without one), checked against the run's own dataset."""
    if not config.pseudo_labels:
        return None
    if artifact.streams("train"):
        raise StudioError(
            "pseudo-labels are mixed into stored training rows; this dataset streams its training split: prepare it "
            "without stream_train"
        )
    pseudo = open_artifact(workspace, config.pseudo_labels)
    bins = processor.feature_extractor.feature_size
    if pseudo.feature_shape()[0] != bins or pseudo.manifest.language != artifact.manifest.language:
        raise StudioError(
            f"pseudo_labels '{pseudo.name}' holds {pseudo.manifest.language} features of "
            f"{pseudo.feature_shape()[0]} mel bins, the run's dataset {artifact.manifest.language} and the "
            f"model {bins}: prepare the label set again with the run's language and model"
        )
    if not pseudo_label_splits(pseudo):
        raise StudioError(f"pseudo_labels '{pseudo.name}' has no rows: label more audio, or keep more in review")
    return pseudo


def pseudo_label_splits(pseudo: Artifact) -> list[str]:
    """The stored splits of a prepared label set that hold rows: all of them train. Prepare splits a label set as it
    splits any folder, but a pseudo-label is no held-out truth: the run's validation and test are its own dataset's."""
    return [split for split, counts in pseudo.manifest.splits.items() if counts.rows]


def with_pseudo_labels(
    train_set, pseudo: Artifact, config: TrainConfig, window: int | None, states: dict | None
) -> ReplayMix:
    """The training rows with `pseudo_label_fraction` of each epoch drawn from the pseudo-label set's rows (`states`:
    their cached encoder states, split by split)."""
    parts = [FeatureDataset(pseudo, s, None, window, (states or {}).get(s)) for s in pseudo_label_splits(pseudo)]
    mixed = ReplayMix(train_set, ConcatDataset(parts), config.pseudo_label_fraction, config.seed)
    print(f"self-training: {mixed.extra} rows of '{pseudo.name}' among {len(mixed)} per epoch", flush=True)
    return mixed


def compare_held_out(first: RunFolder, second: RunFolder) -> WerChange:
    """The held-out test WER change from `first`'s best checkpoint to `second`'s, over the same utterances, with its
    95% paired interval (two runs on the same labelled dataset: labelled only, and with pseudo-labels)."""
    rows = []
    for run in (first, second):
        result, config = run.result(), run.config()
        if result.after is None:
            raise StudioError(f"run '{run.name}' has no held-out result yet: let it finish")
        saved = read_json_if_intact(run.evaluation_file(result.after.checkpoint, config.data, config.test_split))
        if not saved or not saved.get("rows"):
            raise StudioError(f"run '{run.name}' kept no per-utterance test rows; evaluate its best checkpoint")
        rows.append([UtteranceRow.from_dict(row) for row in saved["rows"]])
    return paired_bootstrap(rows[0], rows[1])
