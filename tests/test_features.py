"""The feature store: shapes, label prefixes, filters with counts, reuse by fingerprint, atomic writes."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import REPO, make_audio, run_cli

from core.data import (
    FolderSource,
    Preparation,
    PrepareOptions,
    features_from_row,
    list_artifacts,
    open_artifact,
    prepare_features,
)
from core.errors import StudioError
from core.languages import get_language
from core.text import CleaningOptions
from core.workspace import Workspace

NB = get_language("nb")


def test_features_shapes_and_label_prefix(demo_artifact):
    manifest = demo_artifact.manifest
    assert manifest.features.shape == (80, 300)  # demo window: 3 s × 100 frames/s, 80 mel bins
    assert manifest.prefix == ["<|startoftranscript|>", "<|no|>", "<|transcribe|>", "<|notimestamps|>"]
    table = demo_artifact.read_split("train")
    assert table.num_rows == manifest.splits["train"].rows > 0
    features = features_from_row(table, 0, demo_artifact.feature_shape())
    assert features.shape == (80, 300) and np.isfinite(features).all() and features.std() > 0.1
    labels = table.column("labels")[0].as_py()
    assert labels[:4] == [50258, 50288, 50359, 50363] and labels[-1] == 50257
    # test split keeps audio for listening; train does not
    assert len(demo_artifact.read_split("test").column("audio")[0].as_py()) > 16000
    assert demo_artifact.read_split("train").column("audio")[0].as_py() == b""


def test_filters_are_counted_in_the_manifest(tmp_path, workspace, synth_folder):
    root = tmp_path / "mixed"
    shutil.copytree(synth_folder, root)
    clips = sorted((synth_folder / "train").glob("*.wav"))
    (root / "train" / "empty.txt").write_text("  \n")
    shutil.copy(clips[0], root / "train" / "empty.wav")
    (root / "train" / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (root / "train" / "corrupt.txt").write_text("hei")
    long_text = "en to tre fire fem seks sju åtte ni ti " * 2
    make_audio(root / "train" / "long.wav", long_text)  # ~6 s: longer than the demo's 3 s window
    (root / "train" / "long.txt").write_text(long_text)
    (root / "train" / "wordy.txt").write_text("ord " * 40)
    shutil.copy(clips[1], root / "train" / "wordy.wav")
    shutil.copy(clips[2], root / "train" / f"{clips[2].stem}.flac")  # clip.wav beside clip.flac: one id twice
    artifact = prepare_features(
        FolderSource(root), NB, "demo", "mixed", workspace, PrepareOptions(max_sequence_length=30)
    )
    counts = artifact.manifest.splits["train"]
    assert counts.filtered == {
        "audio_too_long": 1,
        "audio_too_short": 0,  # under 20 ms a character (issue 26): none of the synthetic words
        "labels_too_long": 1,
        "empty_text": 1,
        "undecodable_audio": 1,
        "invalid_samples": 0,  # NaN/inf audio (issue 18): counted, none here
        "duplicate_id": 1,
    }
    assert counts.rows == counts.seen - 5
    assert artifact.manifest.source["layout"] == "pairs"


def test_same_inputs_are_reused_and_changed_inputs_are_not(workspace, synth_folder):
    source = FolderSource(synth_folder)
    first = prepare_features(source, NB, "demo", "reuse", workspace, PrepareOptions(max_train_samples=5))
    assert not first.reused and first.manifest.splits["train"].rows == 5
    again = prepare_features(
        FolderSource(synth_folder), NB, "demo", "reuse", workspace, PrepareOptions(max_train_samples=5)
    )
    assert again.reused and again.manifest.fingerprint == first.manifest.fingerprint
    changed = PrepareOptions(max_train_samples=5, cleaning=CleaningOptions(lowercase=True))
    with pytest.raises(StudioError, match="exists, prepared from other inputs"):
        prepare_features(source, NB, "demo", "reuse", workspace, changed)
    replaced = Preparation(overwrite=True).prepare(source, NB, "demo", "reuse", workspace, changed)
    assert not replaced.reused and replaced.manifest.cleaning["lowercase"] is True
    assert "reuse" in list_artifacts(workspace)


def test_bad_options_and_names(workspace, synth_folder):
    with pytest.raises(StudioError, match="max_sequence_length 500.*448"):
        prepare_features(
            FolderSource(synth_folder), NB, "demo", "x", workspace, PrepareOptions(max_sequence_length=500)
        )
    with pytest.raises(StudioError, match="dataset name"):
        prepare_features(FolderSource(synth_folder), NB, "demo", "../x", workspace)
    with pytest.raises(StudioError, match="no prepared dataset 'nope'"):
        open_artifact(workspace, "nope")


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_killed_prepare_leaves_nothing_that_looks_complete(tmp_path, workspace):
    # A slow source: 400 clips with the demo processor takes several seconds; kill -9 midway.
    from core.data import SynthSpec, synthesize_dataset

    folder = synthesize_dataset(NB, tmp_path / "big", SynthSpec(language="nb", n=400, seed=3, kind="words"))
    cmd = [
        sys.executable,
        "-m",
        "core",
        "prepare",
        "--source",
        str(folder),
        "--language",
        "nb",
        "--model",
        "demo",
        "--name",
        "killed",
        "--home",
        str(workspace.home),
    ]
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(workspace.datasets.glob(".killed.*.*")):  # its staging folder
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "prepare finished before it could be killed; make the source bigger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (workspace.dataset("killed") / "manifest.json").exists()
    assert "killed" not in list_artifacts(workspace)
    with pytest.raises(StudioError, match="no prepared dataset 'killed'"):
        open_artifact(workspace, "killed")
    # The next prepare of that name clears the dead process's staging folder and completes.
    artifact = prepare_features(
        FolderSource(folder), NB, "demo", "killed", workspace, PrepareOptions(max_train_samples=4, max_eval_samples=2)
    )
    assert artifact.manifest.splits["train"].rows == 4
    assert not list(workspace.datasets.glob(".killed.*"))


def test_manifest_is_valid_json_with_the_inputs(demo_artifact):
    manifest = json.loads((demo_artifact.path / "manifest.json").read_text())
    assert manifest["language"] == "nb" and manifest["model"] == "demo"
    assert set(manifest["cleaning"]) == {"lowercase", "strip_punctuation", "collapse_whitespace"}
    assert len(manifest["fingerprint"]) == 16


def test_a_manifest_written_before_its_later_fields_still_opens(tmp_path, demo_artifact):
    """An older folder's manifest (no Whisper code, task, overlap or window; a split without its hours) opens as a
    Manifest: what it lacks is filled or left out of what it says, never a KeyError."""
    workspace = Workspace(tmp_path / "ws")
    folder = workspace.dataset("old")
    folder.mkdir(parents=True)
    old = json.loads((demo_artifact.path / "manifest.json").read_text())
    for later in ("whisper_language", "task", "overlap", "prefix"):
        old.pop(later)
    old["features"].pop("window_seconds")
    old["splits"] = {"train": {"rows": 7, "filtered": {"empty_text": 2}}, "test": {"rows": 3}}
    (folder / "manifest.json").write_text(json.dumps(old))
    manifest = open_artifact(workspace, "old").manifest
    assert manifest.whisper_language == "no" and manifest.task == "transcribe" and manifest.features.shape == (80, 300)
    assert manifest.empty_splits() == ["validation"] and "the validation split is empty" in manifest.warnings()[0]
    assert manifest.dropped_rows_line() == "2 of 12 rows dropped: 2 empty transcripts (train 2)"
    assert "window" not in manifest.made_from() and manifest.split_table()[1]["audio"] == "0m 00s"


def test_every_artifact_gets_a_validation_split_and_overlap_is_counted(tmp_path, workspace, synth_folder):
    # A folder with train and test only: validation is carved from train by transcript.
    root = tmp_path / "no-validation"
    shutil.copytree(synth_folder, root, ignore=shutil.ignore_patterns("validation"))
    # one test sentence also read in train: the overlap the manifest must count
    shared_text = (root / "test" / sorted(p.name for p in (root / "test").glob("*.txt"))[0]).read_text()
    shutil.copy(next((root / "test").glob("*.wav")), root / "train" / "again.wav")
    (root / "train" / "again.txt").write_text(shared_text)
    options = PrepareOptions(validation_fraction=0.3)
    artifact = prepare_features(FolderSource(root), NB, "demo", "carved", workspace, options)
    splits = artifact.manifest.splits
    assert set(splits) == {"train", "validation", "test"}
    assert splits["validation"].carved_from_train == 0.3 and splits["validation"].rows >= 1
    train = set(artifact.read_split("train").column("text").to_pylist())
    validation = set(artifact.read_split("validation").column("text").to_pylist())
    assert not train & validation  # by transcript: a sentence never lands on both sides
    assert splits["train"].rows + splits["validation"].rows == splits["train"].seen
    overlap = artifact.manifest.overlap
    assert overlap["test"]["checked"] and overlap["test"]["sentences"] == 1
    assert overlap["validation"]["sentences"] == 0
    assert "1 test sentences also occur in train" in " ".join(artifact.manifest.overlap_warnings())
    # The synthetic folder has its own validation split and no overlap.
    assert demo_overlap_free(workspace)


def demo_overlap_free(workspace) -> bool:
    manifest = open_artifact(workspace, "nb-tiny").manifest
    return not manifest.splits["validation"].carved_from_train and not manifest.overlap_warnings()


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_two_prepares_of_one_name_at_once_one_is_refused(workspace, synth_folder):
    from core.data.features import claim_name

    args = ["prepare", "--source", str(synth_folder), "--language", "nb", "--model", "demo", "--name", "twin"]
    with claim_name(workspace, "twin"):  # this test process is the first prepare, mid-way
        second = run_cli(*args, home=workspace.home)
    assert second.returncode == 2
    assert "error: dataset 'twin' is being prepared right now by another process" in second.stderr
    assert "twin" not in list_artifacts(workspace)
    first = run_cli(*args, home=workspace.home)  # once the name is free, it prepares
    assert first.returncode == 0 and first.stdout.startswith("prepared twin"), first.stderr[-800:]


def test_training_subsets_are_seeded_random_not_the_first_rows(workspace, synth_folder):
    source = FolderSource(synth_folder)
    first_rows = [e.id for e in source.examples("train")][:8]

    def ids(name, **options):
        artifact = prepare_features(FolderSource(synth_folder), NB, "demo", name, workspace, PrepareOptions(**options))
        return artifact.read_split("train").column("id").to_pylist()

    counted = ids("count", max_train_samples=8, seed=1)
    assert len(counted) == 8 and counted != first_rows  # a seeded shuffle, not the head of the source
    assert ids("count-again", max_train_samples=8, seed=1) == counted  # the same seed, the same rows
    assert ids("count-other", max_train_samples=8, seed=2) != counted
    fraction = ids("fraction", train_fraction=0.5, seed=1)
    assert 4 <= len(fraction) <= 20 and set(fraction) <= {e.id for e in source.examples("train")}


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_train_plus_validation_and_two_interleaved_sources(tmp_path, workspace, synth_folder):
    from core.data import MixedSource, SourceSpec, open_source

    combined = open_source(str(synth_folder), NB, SourceSpec(train_split="train+validation"))
    assert combined.splits() == ["train", "test"] and len(list(combined.examples("train"))) == 27
    artifact = prepare_features(combined, NB, "demo", "combined", workspace, PrepareOptions())
    assert artifact.manifest.splits["validation"].carved_from_train == 0.1  # checkpoints still need one

    other = tmp_path / "other"
    shutil.copytree(synth_folder, other)
    mixed = MixedSource([FolderSource(synth_folder), FolderSource(other)])
    train_ids = [e.id for e in mixed.examples("train")]
    assert len(train_ids) == 48 and train_ids[0].startswith("0:") and train_ids[1].startswith("1:")  # in turn
    artifact = prepare_features(mixed, NB, "demo", "mixed2", workspace, PrepareOptions())
    assert artifact.manifest.splits["train"].rows == 48  # the same clips in two sources: two rows each
    assert artifact.manifest.source["kind"] == "mixed" and len(artifact.manifest.source["sources"]) == 2
    result = run_cli(
        "prepare",
        "--source",
        str(synth_folder),
        "--interleave",
        str(other),
        "--language",
        "nb",
        "--model",
        "demo",
        "--name",
        "mixed-cli",
        "--train-fraction",
        "0.5",
        home=workspace.home,
    )
    assert result.returncode == 0 and result.stdout.startswith("prepared mixed-cli"), result.stderr[-800:]


def test_translate_is_a_dataset_and_config_choice(workspace, synth_folder):
    from dataclasses import replace

    from helpers import tiny_config

    from core.training.jobs import check_before_start

    artifact = prepare_features(
        FolderSource(synth_folder), NB, "demo", "nb-to-en", workspace, PrepareOptions(task="translate")
    )
    assert artifact.manifest.prefix[2] == "<|translate|>" and artifact.task == "translate"
    assert artifact.read_split("train").column("labels")[0].as_py()[2] == 50358  # <|translate|>
    config = tiny_config("translated", data="nb-to-en")
    check_before_start(config, workspace)  # empty task: the dataset's
    with pytest.raises(StudioError, match="task transcribe: dataset 'nb-to-en' was prepared for translate"):
        check_before_start(replace(config, task="transcribe"), workspace)
    with pytest.raises(StudioError, match="task 'summarise'"):
        PrepareOptions(task="summarise").validate()
