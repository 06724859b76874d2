"""Fine-tuning jobs on the demo model: the real Seq2SeqTrainer in its own process, writing the run folder."""

import importlib.util
import os
import signal
import time

import numpy as np
import pytest
from helpers import tiny_config
from transformers import pipeline

from core.errors import StudioError
from core.speech import Transcriber
from core.training import RunFolder, resume_run, start_run, stop_run, wait_for
from core.training.run_records import row_kind

pytestmark = pytest.mark.slow  # training runs


def test_training_lowers_the_loss_and_every_checkpoint_loads_in_the_pipeline(workspace, demo_artifact):
    run = start_run(tiny_config("basic"), workspace, foreground=True)
    status = run.status()
    assert status.state == "completed" and status.step == 12
    rows = run.metrics()
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    baseline = [r for r in rows if r.get("baseline")]
    assert len(baseline) == 1 and baseline[0]["step"] == 0 and "eval_wer" in baseline[0]
    assert [r["step"] for r in rows if "eval_wer" in r] == [0, 6, 12]
    assert all(r["samples_per_second"] > 0 for r in rows if "loss" in r and r["step"] > 2)
    best = run.best()
    assert best.checkpoint in {"checkpoint-6", "checkpoint-12"} and (run.path / best.checkpoint).is_dir()
    audio = demo_artifact.read_split("test").column("audio")[0].as_py()
    samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768
    for checkpoint in run.checkpoints():
        for name in ("processor_config.json", "tokenizer.json", "generation_config.json", "config.json"):
            assert (checkpoint / name).is_file(), f"{checkpoint.name} lacks {name}"
        ours = Transcriber(str(checkpoint), workspace, language="no")
        # the policy's greedy pass stops a looping clip at its window's cap: the pipeline is given as many tokens
        most = {"language": "no", "max_new_tokens": ours.token_cap(len(samples))}
        asr = pipeline("automatic-speech-recognition", model=str(checkpoint))
        out = asr({"raw": samples, "sampling_rate": 16000}, generate_kwargs=most)
        features = asr.feature_extractor(samples, sampling_rate=16000, return_tensors="np")["input_features"]
        seconds = len(samples) / 16000
        assert out["text"].strip() == ours.window_texts(features, [seconds])[0]  # the pipeline decodes as we do
    assert "OPENAI_API_KEY" not in (run.path / "config.json").read_text()


@pytest.mark.long
def test_kill_9_then_resume_continues_the_step_count(workspace, demo_artifact):
    config = tiny_config("crash", max_steps=40, eval_steps=10, save_steps=10, logging_steps=5)
    run = start_run(config, workspace)
    deadline = time.time() + 120
    while time.time() < deadline and not any(c.name == "checkpoint-20" for c in run.checkpoints()):
        time.sleep(0.2)
    assert run.checkpoints(), run.log_tail()
    os.kill(run.raw_status()["pid"], signal.SIGKILL)
    status = wait_for(run, 10, ("interrupted",))
    assert status.state == "interrupted"
    last = run.last_checkpoint()
    resume_run(run, workspace, foreground=True)
    status = run.status()
    assert status.state == "completed" and status.step == 40
    assert status.resumed_from == last.name
    rows = run.metrics()
    kinds = [row_kind(r) for r in rows]
    keys = list(zip([r["step"] for r in rows], kinds))
    assert len(keys) == len(set(keys)), "a resumed run must not duplicate metric rows"
    assert [s for s, kind in keys if kind == "train"] == list(range(5, 41, 5))


def test_stop_saves_and_a_second_run_is_refused_meanwhile(workspace, demo_artifact):
    run = start_run(tiny_config("long", max_steps=3000, eval_steps=1000, save_steps=1000), workspace)
    assert wait_for(run, 60, ("running",)).state == "running"
    deadline = time.time() + 60
    while time.time() < deadline and run.status().step < 3:
        time.sleep(0.1)
    with pytest.raises(StudioError, match="run 'long' is training.*one training at a time"):
        start_run(tiny_config("second"), workspace)
    stop_run(run)
    status = wait_for(run, 60, ("stopped", "failed"))
    assert status.state == "stopped", status
    assert run.last_checkpoint() is not None and run.last_checkpoint().name == f"checkpoint-{status.step}"
    assert 3 <= status.step < 3000
    with pytest.raises(StudioError, match="only a live run can be stopped"):
        stop_run(run)


def test_early_stopping_keeps_the_best_checkpoint(workspace, demo_artifact):
    # A learning rate this small leaves WER unchanged, so patience 1 ends the run at the second evaluation.
    config = tiny_config(
        "patient",
        learning_rate=1e-12,
        max_steps=40,
        eval_steps=4,
        save_steps=4,
        early_stopping_patience=1,
        save_total_limit=1,
    )
    run = start_run(config, workspace, foreground=True)
    status = run.status()
    assert status.state == "completed" and status.step < 40 and "early-stopped" in status.note
    best = run.best()
    assert best.checkpoint == "checkpoint-4" and (run.path / "checkpoint-4" / "config.json").is_file()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(learning_rate=5.0), "learning_rate 5.0"),
        (dict(train_batch_size=0), "train_batch_size 0: must be at least 1"),
        (dict(save_steps=7, eval_steps=6), "save_steps 7 is not a multiple of eval_steps 6"),
        (dict(warmup_steps=50, max_steps=12), "warmup_steps 50 ≥ max_steps 12"),
        (dict(precision="fp8"), "precision 'fp8': choose one of auto, fp32, fp16, bf16"),
        (dict(run="../escape"), "run name"),
        (dict(data=""), "no dataset"),
        (dict(report_to="wandb"), "wandb"),
        (dict(model="whisper-base"), "model whisper-base listens to 30 s, dataset 'nb-tiny' holds 3 s features"),
        (dict(window_seconds=20), "window_seconds 20: model demo listens to 3 s"),
        (dict(cache_encoder_states=True), "cache_encoder_states needs freeze_encoder"),
        (dict(eval_split="test"), "eval_split and test_split are both 'test'"),
        (dict(task="translate"), "task translate: dataset 'nb-tiny' was prepared for transcribe"),
        (dict(language="xx"), "unknown language 'xx'"),
        (dict(dropout=1.5), "dropout 1.5"),
    ],
)
def test_invalid_configs_are_rejected_before_anything_starts(whisper_base, demo_artifact, workspace, change, message):
    if change.get("report_to") == "wandb" and importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here, so report_to=wandb is valid")
    config = tiny_config(**{"run": "bad", **change})
    with pytest.raises(StudioError) as err:
        start_run(config, workspace)
    assert message in str(err.value)
    assert not RunFolder.of(workspace, config.run).exists()


def test_unknown_dataset_and_duplicate_run(workspace, demo_artifact):
    with pytest.raises(StudioError, match="no prepared dataset 'missing'"):
        start_run(tiny_config("x", data="missing"), workspace)
    with pytest.raises(StudioError, match="has no stored 'dev' split for evaluation"):
        start_run(tiny_config("x", eval_split="dev"), workspace)
    assert not RunFolder.of(workspace, "x").exists()


def test_tensorboard_is_one_switch_and_logs_into_the_run_folder(workspace, demo_artifact):
    config = tiny_config("board", report_to="tensorboard", max_steps=4, logging_steps=1, eval_steps=2, save_steps=2)
    run = start_run(config, workspace, foreground=True)
    assert run.status().state == "completed"
    events = list((run.path / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 200  # scalars were written, not only a header
