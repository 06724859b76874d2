"""Streaming end to end: a Hub-format dataset streamed through `load_dataset(streaming=True)`, prepared without
storing its training split, trained from the stream, interrupted and resumed."""

import os
import signal
import time
from itertools import islice

import pytest
from datasets import Audio, Dataset
from helpers import tiny_config

from core.data import HubSource, PrepareOptions, prepare_features
from core.errors import StudioError
from core.languages import get_language
from core.training import resume_run, start_run, wait_for
from core.training.runs import row_kind
from core.training.streaming import StreamingFeatureDataset

pytestmark = pytest.mark.slow  # training from a stream

NB = get_language("nb")


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, synth_folder, session_workspace, demo_artifact):
    """A parquet repository (the Hub's format) prepared with --stream-train into the session workspace."""
    repo = tmp_path_factory.mktemp("stream") / "repo"
    (repo / "data").mkdir(parents=True)
    for split in ("train", "test"):
        wavs = sorted((synth_folder / split).glob("*.wav"))
        rows = {
            "audio": [{"bytes": w.read_bytes(), "path": w.name} for w in wavs],
            "sentence": [w.with_suffix(".txt").read_text().strip() for w in wavs],
        }
        Dataset.from_dict(rows).cast_column("audio", Audio(decode=False)).to_parquet(
            str(repo / "data" / f"{split}-00000-of-00001.parquet"), batch_size=8
        )
    source = HubSource(str(repo), streaming=True)
    artifact = prepare_features(source, NB, "demo", "streamed", session_workspace, PrepareOptions(stream_train=True))
    return artifact, len(list((synth_folder / "train").glob("*.wav")))


def test_training_split_is_not_stored_and_streams_in_passes(streamed, session_workspace):
    artifact, train_rows = streamed
    assert artifact.streams("train") and not (artifact.path / "train.arrow").exists()
    assert artifact.manifest["splits"]["test"]["rows"] > 0 and (artifact.path / "test.arrow").is_file()
    with pytest.raises(StudioError, match="streams its 'train' split"):
        artifact.read_split("train")
    rows = list(islice(iter(StreamingFeatureDataset(artifact, session_workspace, seed=1)), train_rows + 3))
    assert len(rows) == train_rows + 3  # a second pass begins after the first
    assert rows[0]["input_features"].shape == (80, 300)
    assert all(r["labels"][:4] == [50258, 50288, 50359, 50363] and r["labels"][-1] == 50257 for r in rows)
    first_pass = sorted(tuple(r["labels"]) for r in rows[:train_rows])
    assert len(set(first_pass)) > 1 and rows[:5] != rows[train_rows : train_rows + 5]  # shuffled, all rows
    limited = list(islice(iter(StreamingFeatureDataset(artifact, session_workspace, limit=4)), 8))
    assert sorted(tuple(r["labels"]) for r in limited[:4]) == sorted(tuple(r["labels"]) for r in limited[4:])


def test_train_from_the_stream_survives_kill_and_resume(streamed, session_workspace):
    config = tiny_config("stream-run", data="streamed", warmup_steps=2, eval_steps=4, save_steps=4, train_batch_size=4)
    run = start_run(config, session_workspace)
    deadline = time.time() + 120
    while time.time() < deadline and not run.checkpoints():
        time.sleep(0.2)
    assert run.checkpoints(), run.log_tail(30)
    os.kill(run.raw_status()["pid"], signal.SIGKILL)
    assert wait_for(run, 10, ("interrupted",)).state == "interrupted"
    resume_run(run, session_workspace, foreground=True)
    status = run.status()
    assert status.state == "completed" and status.step == 12, run.log_tail(30)
    rows = run.metrics()
    kinds = [row_kind(r) for r in rows]
    keys = list(zip([r["step"] for r in rows], kinds))
    assert len(keys) == len(set(keys)) and [s for s, k in keys if k == "train"] == list(range(2, 13, 2))
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0]
