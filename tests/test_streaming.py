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
from core.data.sources import source_from_description
from core.errors import StudioError
from core.languages import get_language
from core.training import resume_run, start_run, wait_for
from core.training.run_records import row_kind
from core.training.streaming import StreamingFeatureDataset, node_rows

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
    assert artifact.manifest.splits["test"].rows > 0 and (artifact.path / "test.arrow").is_file()
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


@pytest.mark.long
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


def test_each_rank_reads_its_own_share_of_the_stream(streamed, session_workspace):
    """Under torchrun a streamed split is read per rank (datasets' split_dataset_by_node): the two ranks' rows are
    disjoint and together are the whole split."""
    artifact, train_rows = streamed
    options = StreamingFeatureDataset(artifact, session_workspace).options
    source = source_from_description(artifact.manifest.source)
    whole = [e.id for e in node_rows(source, options, 0, 1)]
    shares = [[e.id for e in node_rows(source, options, rank, 2)] for rank in (0, 1)]
    assert len(whole) == train_rows and not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == sorted(whole) and abs(len(shares[0]) - len(shares[1])) <= 1
    assert StreamingFeatureDataset(artifact, session_workspace, node=(1, 2)).per_rank  # the Trainer is told so


@pytest.mark.long
def test_two_gloo_processes_train_from_their_own_shares_of_the_stream(streamed, session_workspace):
    config = tiny_config(
        "stream-ddp", data="streamed", nproc=2, max_steps=2, logging_steps=1, eval_steps=2, save_steps=2,
        warmup_steps=1, train_batch_size=4, test_split="", english_guard=False, max_eval_samples=4,
    )  # fmt: skip
    run = start_run(config, session_workspace, foreground=True)
    status = run.status()
    assert status.state == "completed" and status.step == 2, run.log_tail(30)
    assert [r["step"] for r in run.metrics() if "loss" in r] == [1, 2]
    log = "\n".join(run.log_tail(400))  # each rank read its own rows, rather than rank 0 reading them all
    assert all(f"streamed rows: rank {rank} of 2 reads its own share" in log for rank in (0, 1)), log[-3000:]
