"""The run's held-out result: the test split decoded before training (the starting model) and after it (the best
checkpoint by validation WER), each half with its language detection, guard sets and probes, and after the second
half the paired-bootstrap interval of every change. The test split never chose anything, so this pair is what a run
reports (result.json); per-utterance rows are saved as evaluations for the Compare page's drill-down.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from core.models.window import apply_window
from core.text.bootstrap import paired_bootstrap
from core.text.wer import UtteranceRow, summarize
from core.training.feature_sets import FeatureDataset
from core.training.guards import transcript_cap
from core.training.run_recorder import is_primary_process
from core.training.run_records import Half
from core.training.runs import BASELINE_CHECKPOINT, RunFolder, checkpoint_step, raise_if_stop_requested
from core.training.session import TrainingSession
from core.workspace import read_json_if_intact

LANGUAGE_ROWS = 200  # test rows whose language is detected: enough for a share, bounded for large test splits


def decoded_texts(tokenizer, token_ids: np.ndarray) -> list[str]:
    """Generated or label ids (-100 = padding) → text without special tokens."""
    ids = np.where(token_ids == -100, tokenizer.pad_token_id, token_ids)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def held_out_half(session: TrainingSession, trainer, test_set: FeatureDataset, half: Half) -> None:
    """Evaluate the trainer's current model on the held-out split, with its language detection, the guard sets and
    the probes; saved as the run's result half and as per-utterance evaluations. After the second half, each
    before → after change gets its paired-bootstrap interval. Rank 0 alone decodes (in order, no padding across
    processes); the other ranks wait for it."""
    run, config = session.run, session.config
    if is_primary_process():
        model = _test_model(session, trainer, half)
        teacher = getattr(trainer, "teacher", None)
        if half == "before" and teacher is not None:
            model = teacher  # a student is measured against its teacher: before → after is teacher → student
        stop = partial(raise_if_stop_requested, run)
        hypotheses = generate_texts(
            model, test_set, config.eval_batch_size, config.generation_max_length, session.tokenizer, stop
        )
        ids, references = test_set.ids_and_texts()
        checkpoint = BASELINE_CHECKPOINT if half == "before" else run.best_checkpoint_name()
        starting = f"{config.model} ({'the teacher' if config.teacher else 'as the run starts'})"
        record = {
            "model": starting if half == "before" else checkpoint,
            "data": config.data,
            "split": config.test_split,
            **summarize(ids, references, hypotheses),
        }
        run.write_evaluation(checkpoint, config.data, config.test_split, record)
        changes = None
        if session.harm is not None:
            record.update(_harm_half(session, model, test_set, half, checkpoint))
            changes = _changes(run, config.data, config.test_split, record, checkpoint) if half == "after" else None
        run.write_result_half(half, checkpoint, record, changes)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _test_model(session: TrainingSession, trainer, half: Half):
    """The model rank 0 tests alone: the trainer's own; with sharding, after training, the best checkpoint read
    whole from disk (its shards live on every rank, and would wait for the others), on rank 0's device."""
    run, config = session.run, session.config
    if config.sharding == "none" or half == "before":  # before training the model is not sharded yet
        return trainer.accelerator.unwrap_model(trainer.model).to(trainer.args.device)
    best = run.path / (run.best_checkpoint_name() or run.last_checkpoint().name)
    model = type(trainer.accelerator.unwrap_model(trainer.model)).from_pretrained(best)
    model.generation_config = trainer.accelerator.unwrap_model(trainer.model).generation_config
    if config.window_seconds:  # saved whole (30 s), tested as trained
        apply_window(model, trainer.processing_class, config.window_seconds)
    return model.to(trainer.args.device)


def _harm_half(session: TrainingSession, model, test_set: FeatureDataset, half: Half, checkpoint: str) -> dict:
    """The test split's language-detection accuracy, the guard sets and the probes for one half of the result; the
    guard sets' per-utterance rows are saved as evaluations of the same checkpoint."""
    harm, language = session.harm, session.language.whisper
    if half == "before":
        measured = harm.measure(model, 0)
    else:  # the best checkpoint's weights were measured at its step, in this process (unless it resumed since)
        measured = harm.by_step.get(checkpoint_step(checkpoint) or -1) or harm.checks.measure(
            model, session.config.generation_max_length
        )
    fed = torch.from_numpy(
        np.stack([test_set[i]["input_features"] for i in range(min(len(test_set), LANGUAGE_ROWS))]).astype(np.float32)
    )
    was_training = model.training
    model.eval()
    accuracy = harm.checks.language_accuracy(model, fed, language)
    model.train(was_training)
    for name, guard in measured.guards.items():
        session.run.write_evaluation(checkpoint, name, guard.split, guard.evaluation(checkpoint))
    return {
        "language": language,
        "language_accuracy": accuracy,
        "guards": {name: g.record() for name, g in measured.guards.items()},
        "probes": measured.probes.record(),
    }


def _changes(run: RunFolder, data: str, split: str, after: dict, checkpoint: str) -> dict:
    """Paired-bootstrap intervals of the test split's change and of each guard set's, from the saved rows."""
    changes = {}
    pairs = [("test", data, split)] + [(name, name, g["split"]) for name, g in after.get("guards", {}).items()]
    for key, name, on in pairs:
        before = read_json_if_intact(run.evaluation_file(BASELINE_CHECKPOINT, name, on))
        now = read_json_if_intact(run.evaluation_file(checkpoint, name, on))
        if before and now and before.get("rows") and now.get("rows"):
            rows = [[UtteranceRow.from_dict(row) for row in saved["rows"]] for saved in (before, now)]
            changes[key] = paired_bootstrap(*rows).to_dict()
    return changes


@torch.inference_mode()
def generate_texts(
    model, rows: FeatureDataset, batch_size: int, max_length: int, tokenizer, between_batches=None
) -> list[str]:
    """Greedy transcripts of every row, in the rows' order, with the generation config's language and task
    (`between_batches()` is called before each batch: a stop raises there). Rows are decoded shortest first, so a
    batch holds clips of about one length and stops at its longest clip's `transcript_cap`: a looping transcript
    (the base model's, on a language it hardly knows) is cut where its speech ends, not at `max_length`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    seconds = rows.seconds()
    order = np.argsort(seconds, kind="stable")
    texts = [""] * len(rows)
    for start in range(0, len(rows), batch_size):
        if between_batches:
            between_batches()
        chunk = order[start : start + batch_size]
        inputs = torch.from_numpy(np.stack([rows[int(i)]["input_features"] for i in chunk]).astype(np.float32))
        cap = transcript_cap(float(seconds[chunk].max()), max_length)
        ids = model.generate(inputs.to(device), max_length=cap, synced_gpus=False)  # one process decodes, alone
        for i, text in zip(chunk, decoded_texts(tokenizer, ids.cpu().numpy())):
            texts[int(i)] = text
    model.train(was_training)
    return texts
