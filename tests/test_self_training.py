"""Self-training: a run's training rows plus a prepared label set's at the share the config states, its held-out
result comparable with a run on the labelled rows alone (the paired interval over the same test utterances)."""

from dataclasses import replace

import pytest
from helpers import labels_cut_short, tiny_config

from core.data import FolderSource, PrepareOptions, open_artifact, prepare_features
from core.data.label_options import LabelOptions, LabelThresholds
from core.errors import StudioError
from core.languages import get_language
from core.speech.labelling import label_audio
from core.training import FeatureDataset, start_run
from core.training.self_training import compare_held_out, with_pseudo_labels


def test_pseudo_labels_join_the_training_rows_at_the_stated_share(demo_artifact):
    rows = FeatureDataset(demo_artifact, "train")
    config = tiny_config("mix", pseudo_labels="other", pseudo_label_fraction=0.75)
    mixed = with_pseudo_labels(rows, demo_artifact, config, None, None)
    everything = sum(c.rows for c in demo_artifact.manifest.splits.values())  # every split of it trains
    assert len(mixed.replay) == everything
    assert mixed.extra == 3 * len(rows) and len(mixed) == 4 * len(rows)  # 75% of every epoch is pseudo-labelled
    stored = [demo_artifact.read_split(split)["labels"].to_pylist() for split in ("train", "validation", "test")]
    labels = [ids for split in stored for ids in split]
    assert all(mixed[len(rows) + k]["labels"] in labels for k in range(3))  # the rows after the run's own: the set's


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(pseudo_labels="x"), "pseudo_labels and pseudo_label_fraction go together"),
        (dict(pseudo_label_fraction=0.5), "pseudo_labels and pseudo_label_fraction go together"),
        (dict(pseudo_labels="nb-tiny", pseudo_label_fraction=0.5), "another dataset than data and replay"),
        (dict(pseudo_labels="x", pseudo_label_fraction=0.95), "pseudo_label_fraction 0.95: choose 0"),
    ],
)
def test_a_mix_that_cannot_be_is_refused_before_a_run_exists(change, named):
    with pytest.raises(StudioError, match=named):
        replace(tiny_config("r"), **change).validate()


@pytest.mark.slow  # a label run and two training runs
def test_a_run_with_pseudo_labels_is_compared_with_one_without(synth_folder, demo_artifact, workspace, capfd):
    nb = get_language("nb")
    loose = LabelThresholds(keep_log_prob=-100.0, drop_log_prob=-100.0, max_compression_ratio=100.0)
    options = LabelOptions(source=str(synth_folder / "train"), name="pseudo", model="demo", language="nb", max_clips=12)
    labels = label_audio(options, loose, workspace)
    short = labels_cut_short(labels.root, workspace.home / "pseudo-short")
    prepare_features(FolderSource(short), nb, "demo", "nb-pseudo", workspace, PrepareOptions())
    # the toy writes one text for every clip: prepare holds all twelve out as test; as pseudo-labels they all train
    assert open_artifact(workspace, "nb-pseudo").manifest.source["pseudo_labels"]["rows"] == 12
    small = dict(max_steps=4, eval_steps=4, save_steps=4, logging_steps=1)
    alone = start_run(tiny_config("labelled-only", **small), workspace, foreground=True)
    assert "self-training:" not in "".join(capfd.readouterr())  # the run's lines go to stderr and its log
    mixed = start_run(
        tiny_config("with-pseudo", pseudo_labels="nb-pseudo", pseudo_label_fraction=0.5, **small),
        workspace,
        foreground=True,
    )
    assert (alone.status().state, mixed.status().state) == ("completed", "completed"), mixed.log_tail(30)
    own = open_artifact(workspace, "nb-tiny").manifest.splits["train"].rows  # at 0.5, as many pseudo-labels
    assert f"self-training: {own} rows of 'nb-pseudo' among {2 * own} per epoch" in "".join(capfd.readouterr())
    change = compare_held_out(alone, mixed)
    assert change.utterances == alone.result().after.utterances and change.low <= change.difference <= change.high
