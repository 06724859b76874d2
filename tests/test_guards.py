"""What a fine-tune breaks: guard sets, hallucination probes, language detection and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli, tiny_config

from core.errors import StudioError
from core.text.bootstrap import paired_bootstrap
from core.text.wer import probe_counts, utterance_results


def _rows(references, hypotheses):
    return utterance_results([str(i) for i in range(len(references))], references, hypotheses)


def test_the_interval_of_identical_hypotheses_is_zero_and_reads_no_measurable_difference():
    references = ["the cat sat on the mat", "a dog ran", "hello there my friend", "one two three"] * 5
    hypotheses = ["the cat sat on a mat", "a dog", "hello there my friend", "one too three"] * 5
    same = paired_bootstrap(_rows(references, hypotheses), _rows(references, hypotheses))
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert same.shown.endswith("no measurable difference") and not same.measurable


def test_a_real_improvement_is_measurable_and_a_coin_flip_is_not():
    rng = np.random.default_rng(3)
    references = [" ".join(rng.choice(["ja", "nei", "hei", "takk", "god", "dag"], 6)) for _ in range(60)]
    worse = [" ".join(r.split()[:3]) for r in references]  # half of every sentence lost
    better = paired_bootstrap(_rows(references, worse), _rows(references, references))
    assert better.measurable and better.high < 0 and better.difference == pytest.approx(-0.5)
    # one utterance of 60 changes: an interval that spans 0
    one_off = list(references)
    one_off[0] = "helt feil"
    tiny = paired_bootstrap(_rows(references, references), _rows(references, one_off))
    assert tiny.low <= 0 <= tiny.high and not tiny.measurable
    # the pairing is by id, whatever the order of the rows
    shuffled = _rows(references, worse)[::-1]
    assert paired_bootstrap(shuffled, _rows(references, references)).difference == better.difference
    with pytest.raises(StudioError, match="same utterances"):
        paired_bootstrap(_rows(references[:5], worse[:5]), _rows(references, references))


def test_probes_count_the_words_written_where_there_is_no_speech():
    from core.audio.probes import probe_clips

    clips = dict(probe_clips())
    assert {"silence", "white noise, loud", "mains hum", "tone melody", "clipped noise"} <= set(clips)
    assert not clips["silence"].any() and np.abs(clips["clipped noise"]).max() == 1.0
    counts = probe_counts(["", "Thank you.", "you you you you you you you you you", ""])
    assert counts == {"probe_words": 11, "probe_clips_with_words": 2, "probe_loops": 1, "probe_clips": 4}


def test_guard_and_replay_settings_are_checked_before_anything_starts():
    with pytest.raises(StudioError, match="the dataset the run trains on"):
        tiny_config("r", guard="nb-tiny").validate()
    with pytest.raises(StudioError, match="replay_fraction 1.0"):
        tiny_config("r", replay_fraction=1.0).validate()
    with pytest.raises(StudioError, match="cached encoder states"):
        tiny_config("r", apply_spec_augment=True, freeze_encoder=True, cache_encoder_states=True).validate()
    with pytest.raises(StudioError, match="both a guard and the replay set"):
        tiny_config("r", guard="a,b", replay="b", replay_fraction=0.1).validate()
    with pytest.raises(StudioError, match="with nproc > 1"):
        tiny_config("r", guard_stop=True, nproc=2).validate()
    config = tiny_config("r", guard="a,b", replay="c", replay_fraction=0.1, apply_spec_augment=True)
    assert "--guard a,b" in config.command_line() and "--apply-spec-augment" in config.command_line()


def test_replay_mixes_its_share_of_rows_into_every_epoch(demo_artifact, session_workspace):
    from core.training.feature_sets import FeatureDataset, ReplayMix

    train = FeatureDataset(demo_artifact, "train")
    replay = FeatureDataset(demo_artifact, "test")
    mix = ReplayMix(train, replay, 0.2, seed=0)
    assert len(mix) == len(train) + round(len(train) * 0.25)
    from_replay = [mix[i]["labels"] for i in range(len(train), len(mix))]
    replay_labels = [replay[i]["labels"] for i in range(len(replay))]
    assert all(labels in replay_labels for labels in from_replay)
    assert mix[0]["labels"] == train[0]["labels"]


def test_replay_reads_and_caches_only_its_share_of_the_set(workspace, demo_artifact):
    from core.data.artifact import open_artifact
    from core.models.resolve import load_model
    from core.training.encoder_cache import cached_states
    from core.training.feature_sets import ReplaySet

    artifact = open_artifact(workspace, demo_artifact.name)  # this test's copy: its cache is written beside it
    total = artifact.read_split("train").num_rows
    replay = ReplaySet.for_run(artifact, train_rows=45, fraction=0.1)
    assert replay.rows == 5 and replay.table_rows(None) == 5  # 10% of an epoch of 45 + 5 rows
    encoder = load_model("demo", workspace)[0].get_encoder()
    frames = artifact.feature_shape()[1]
    first = cached_states(artifact, ["train"], encoder, frames, rows={"train": replay.table_rows(None)})["train"]
    assert len(first) == 5 < total  # the rest of the set is never encoded
    assert len(cached_states(artifact, ["train"], encoder, frames, rows={"train": 3})["train"]) == 5  # reused
    assert len(cached_states(artifact, ["train"], encoder, frames)["train"]) == total  # a run that reads it all
    assert (cached_states(artifact, ["train"], encoder, frames)["train"][:5] == first).all()


@pytest.mark.long
def test_transcripts_decoded_shortest_first_come_back_in_the_rows_order(synth_folder, whisper_base, workspace):
    from core.data import FolderSource, PrepareOptions, prepare_features
    from core.languages import get_language
    from core.models.resolve import load_model
    from core.training.feature_sets import FeatureDataset
    from core.training.held_out import generate_texts

    nb = get_language("nb")
    artifact = prepare_features(FolderSource(synth_folder), nb, "whisper-base", "nb-order", workspace, PrepareOptions())
    model, processor = load_model("whisper-base", workspace, language="no", task="transcribe")
    rows = FeatureDataset(artifact, "train", 9)
    assert list(rows.seconds()) != sorted(rows.seconds())  # decoding shortest first reorders these rows
    # a cap of 12 tokens binds before any clip's own (10 a second + 12): each row decodes alike in any batch
    batched = generate_texts(model, rows, 4, 12, processor.tokenizer)
    alone = generate_texts(model, rows, 1, 12, processor.tokenizer)
    assert batched == alone and len(set(batched)) > 3, batched


@pytest.mark.long
def test_a_fine_tune_that_destroys_english_is_caught_by_the_english_guard(synth_folder, whisper_base, workspace):
    """whisper-base trained on Norwegian words at a learning rate that wrecks its decoder: the English guard (made
    offline with espeak-ng) rises, the warning is written, guard_stop ends the run with the best checkpoint, and the
    result says before → after for the test split (with its interval), the guard, the probes and language ID."""
    from dataclasses import replace

    from core.data import FolderSource, PrepareOptions, prepare_features
    from core.languages import get_language
    from core.training import TrainConfig, apply_preset, start_run

    prepare_features(
        FolderSource(synth_folder), get_language("nb"), "whisper-base", "nb-wb", workspace, PrepareOptions()
    )
    config = replace(
        apply_preset(TrainConfig(data="nb-wb", run="forget"), "whisper-base-cpu"),
        learning_rate=3e-3,
        warmup_steps=1,
        max_steps=6,
        eval_steps=3,
        save_steps=3,
        logging_steps=1,
        train_batch_size=8,
        eval_batch_size=16,
        generation_max_length=48,
        guard_stop=True,
    )
    run = start_run(config, workspace, foreground=True)
    status = run.status()
    assert any("guard 'english-reference-80mel' WER rose" in w for w in status.warnings), status
    assert status.note.startswith("guard stop:") and status.step == 3  # ended at the first evaluation that rose
    result = run.result()
    before = result.before.guards["english-reference-80mel"]["wer"]
    after = result.after.guards["english-reference-80mel"]["wer"]
    assert before < 0.35 and after > before + 0.05  # whisper-base reads espeak English well, then forgets it
    assert result.before.language_accuracy is not None and result.after.probes["probe_clips"] == 9
    assert result.change() is not None and result.change("english-reference-80mel").difference > 0
    shown = run_cli("status", "forget", "--home", str(workspace.home))
    assert "warning: step 3: guard 'english-reference-80mel' WER rose" in shown.stdout
    assert "guard english-reference-80mel:" in shown.stdout and "probe words" in shown.stdout
