"""Fine-tuning: the transformers Seq2SeqTrainer over a prepared artifact, writing everything into the run folder.

This runs inside the worker process (core/worker.py), never in the UI. The data path is the memory-mapped Arrow
artifact → `FeatureDataset` (or cached encoder states) → `SpeechCollator`. Three splits play three parts:
- train: what the model learns from;
- validation (`eval_split`): evaluated every `eval_steps` (and at step 0, the base model's zero-shot line); it picks
  the best checkpoint and drives early stopping;
- test (`test_split`): evaluated exactly twice, with the run's starting model before training and with the best
  checkpoint after it. That pair, saved as result.json, is the run's held-out result: the test split never chose
  anything.
Callbacks write the run folder: append-only metrics, the status heartbeat, the best checkpoint, stop requests.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from functools import partial
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, Seq2SeqTrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback

from core.audio.constants import FRAMES_PER_SECOND
from core.data.artifact import open_artifact
from core.errors import StudioError
from core.languages import get_language
from core.models.resolve import load_model
from core.models.window import StandardWindowCallback, apply_window
from core.text.wer import error_rates
from core.training.feature_sets import FeatureDataset, ReplayMix, SpeechCollator, check_streamed_training
from core.training.guards import HarmCallback, HarmChecks, guard_datasets, replay_set
from core.training.held_out import decoded_texts, held_out_half
from core.training.levers import apply_memory_levers, resolve_precision
from core.training.parallel import DEEPSPEED_FILE, StudioTrainer, sharding_arguments, streamed_arguments
from core.training.run_recorder import (
    RunFolderCallback,
    StatusWriter,
    is_peft,
    is_primary_process,
    load_adapter_weights,
)
from core.training.run_records import RunState
from core.training.runs import RunFolder, StopRequested, raise_if_stop_requested
from core.training.self_training import pseudo_label_artifact, pseudo_label_splits, with_pseudo_labels
from core.training.session import TrainingSession
from core.training.student import DistillationTrainer
from core.workspace import Workspace, write_json_atomic


def compute_metrics_for(tokenizer):
    def compute(prediction) -> dict:
        predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return error_rates(decoded_texts(tokenizer, prediction.label_ids), decoded_texts(tokenizer, predictions))

    return compute


def train(run: RunFolder, workspace: Workspace, resume: bool = False) -> str:
    """Train the run in this process; returns the final state (completed / stopped). Raises on failure."""
    # 1. The config, the data and the precision.
    config = run.config().validate()
    set_seed(config.seed)
    session = TrainingSession(
        run=run,
        workspace=workspace,
        config=config,
        artifact=open_artifact(workspace, config.data),
        status=StatusWriter(run),
        checkpoint=run.last_checkpoint() if resume else None,
        precision=resolve_precision(config.precision),
    )
    session.status.start()
    try:
        return _phases(session)
    except StopRequested:
        # a stop outside the training steps (caching, testing, an evaluation): what is complete is kept (the last
        # checkpoint, a test result already written); the half-done phase is dropped
        doing = run.status().phase or "starting"
        session.status.update(
            state=RunState.STOPPED,
            phase=None,
            phase_done=None,
            phase_total=None,
            finished=time.time(),
            note=f"stopped while {doing}; the last complete checkpoint is kept",
            error=None,
        )
        return RunState.STOPPED
    finally:
        session.status.close()
        if is_primary_process():
            run.stop_file.unlink(missing_ok=True)


def _phases(session: TrainingSession) -> str:
    """Steps 2–9 of `train`: model, splits, harm checks, trainer, test before, training, test after, final state."""
    status, checkpoint = session.status, session.checkpoint
    # 2. The model with the run's levers: window, dropout, frozen encoder, cached states, LoRA.
    _load_model(session)
    # 3. The splits; with cached encoder states the encoder runs once per clip, here, before training.
    train_set, eval_set, test_set = _datasets(session)
    # 4. What fine-tuning may break, measured at each evaluation: guard sets, probes, language detection.
    session.harm = _harm_checks(session)
    # 5. The Trainer, writing the run folder through its callbacks.
    trainer, callback = _trainer(session, train_set, eval_set)
    if session.full_window is not None:  # after the run folder's callback: a LoRA merge is saved first
        trainer.add_callback(StandardWindowCallback(session.full_window))
    status.update(
        state=RunState.RUNNING,
        phase="training",
        total=session.config.max_steps,
        precision=session.precision,
        resumed_from=checkpoint.name if checkpoint else None,
    )
    # 6. The held-out split, before: the starting model's zero-shot result (once per run).
    if test_set is not None and not session.run.has_result_half("before"):
        status.update(phase="testing the base model")
        held_out_half(session, trainer, test_set, "before")
    # 7. Training.
    stopped = _fit(session, trainer, callback)
    # 8. The held-out split, after: the best checkpoint by validation WER (loaded at the end of training).
    if test_set is not None and not stopped:
        status.update(phase="testing the best checkpoint")
        held_out_half(session, trainer, test_set, "after")
        if session.teacher is not None and is_primary_process():  # a student: its speed beside its teacher's
            from core.training.student import record_distillation

            status.update(phase="timing the student against its teacher")
            record_distillation(session.run, session.config, session.workspace, session.artifact)
    # 9. The final state.
    return _finish(session, trainer, stopped)


def _load_model(session: TrainingSession) -> None:
    """Step 2: the model and processor in the run's language and task, with its window and memory levers; under
    distillation the loaded model is the teacher and the session trains a student of it."""
    config, workspace = session.config, session.workspace
    session.language = get_language(config.language or session.artifact.manifest.language)
    session.task = config.task or session.artifact.task
    session.status.update(phase="loading the model")
    overrides = {"dropout": config.dropout}
    if config.apply_spec_augment:
        overrides.update(
            apply_spec_augment=True, mask_time_prob=config.mask_time_prob, mask_feature_prob=config.mask_feature_prob
        )
    model, processor = load_model(
        config.model, workspace, language=session.language.whisper, task=session.task, overrides=overrides
    )
    if config.teacher:
        from core.training.distil import check_student
        from core.training.student import student_of

        check_student(config.teacher, config.decoder_layers, workspace)
        session.teacher, model = model, student_of(model, config.decoder_layers)
    model.generation_config.max_length = config.generation_max_length
    if config.gradient_checkpointing:
        model.config.use_cache = False
    # a shortened window trains on the first rows of the encoder's table; every checkpoint is saved whole (30 s)
    session.full_window = apply_window(model, processor, config.window_seconds) if config.window_seconds else None
    session.window = config.window_seconds or None
    session.model, session.processor = apply_memory_levers(model, config), processor


def _datasets(session: TrainingSession) -> tuple:
    """Step 3: (train, validation, test or None) rows: replay and pseudo-labels mixed into train, encoder states
    cached first when the config asks."""
    config, artifact, window = session.config, session.artifact, session.window
    splits = [config.eval_split] + ([config.test_split] if config.test_split else [])
    session.status.update(phase="preparing the replay set" if config.replay_fraction else "caching encoder states")
    mels = session.processor.feature_extractor.feature_size
    replay = replay_set(session.workspace, config, artifact, session.language.whisper, mels)
    pseudo = pseudo_label_artifact(session.workspace, config, session.processor, artifact)
    # the replay rows a run reads are the first of the set: only those are encoded
    extras = {"replay": (replay.artifact, {"train": replay.table_rows(window)})} if replay else {}
    extras.update({"pseudo": (pseudo, dict.fromkeys(pseudo_label_splits(pseudo)))} if pseudo else {})
    states = _encoder_states(session, splits, extras) if config.cache_encoder_states else {}
    train_set = _training_rows(session, states.get("train"))
    if pseudo is not None:
        train_set = with_pseudo_labels(train_set, pseudo, config, window, states.get("pseudo"))
    if replay is not None:
        replay_states = states.get("replay", {}).get("train")
        replay_rows = FeatureDataset(replay.artifact, "train", replay.rows, window, replay_states)
        train_set = ReplayMix(train_set, replay_rows, config.replay_fraction, config.seed)
        print(
            f"replay: {train_set.extra} rows of '{replay.artifact.name}' among {len(train_set)} per epoch", flush=True
        )
    eval_states = states.get(config.eval_split)
    eval_set = FeatureDataset(artifact, config.eval_split, config.max_eval_samples, window, eval_states, by_length=True)
    test_set = None
    if config.test_split:
        test_set = FeatureDataset(artifact, config.test_split, None, window, states.get(config.test_split))
    _note_left_out(session.status, train_set, eval_set, test_set, window)
    return train_set, eval_set, test_set


def _fit(session: TrainingSession, trainer, callback) -> bool:
    """Step 7: the Trainer's loop, from the resumed checkpoint if any; True when a stop request ended it."""
    model, checkpoint = session.model, session.checkpoint
    session.status.update(phase="training")
    if checkpoint and is_peft(model):
        # the Trainer finds the merged model at the checkpoint's root, which does not fit a LoRA-wrapped
        # model (none of its keys match, so nothing is loaded, and it lists every key in a warning): the
        # adapter it continues from comes from the checkpoint's adapter/ folder
        load_adapter_weights(model, checkpoint)
        logging.getLogger("transformers.trainer").addFilter(_without_key_lists)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    stopped = callback.stop_requested
    best = trainer.state.best_model_checkpoint
    if best and is_peft(model) and not stopped:
        load_adapter_weights(model, Path(best))  # what load_best_model_at_end does for a model without LoRA
    return stopped


def _finish(session: TrainingSession, trainer, stopped: bool) -> str:
    """Step 9: the final state, with why the run ended early when it did."""
    state, harm = trainer.state, session.harm
    final = RunState.STOPPED if stopped else RunState.COMPLETED
    note = None
    if harm is not None and harm.stopped_by and not stopped:
        note = f"guard stop: {harm.stopped_by}; the best checkpoint by validation WER is kept"
    elif not stopped and state.global_step < state.max_steps:
        note = (
            f"early-stopped at step {state.global_step}: WER did not improve for "
            f"{session.config.early_stopping_patience} evaluations"
        )
    session.status.update(state=final, phase=None, step=state.global_step, finished=time.time(), note=note, error=None)
    return final


def _without_key_lists(record: logging.LogRecord) -> bool:
    return "keys in the checkpoint model loaded" not in record.getMessage()


def _training_rows(session: TrainingSession, states):
    artifact, config = session.artifact, session.config
    if artifact.streams("train"):
        check_streamed_training(artifact, config)
        from core.training.streaming import StreamingFeatureDataset

        node = (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))  # torchrun's, else one
        return StreamingFeatureDataset(artifact, session.workspace, config.max_train_samples, config.seed, node)
    return FeatureDataset(artifact, "train", config.max_train_samples, session.window, states)


def _encoder_states(session: TrainingSession, eval_splits: list[str], extras: dict) -> dict:
    from core.training.encoder_cache import cached_states, read_cached_states

    config, artifact, model, status = session.config, session.artifact, session.model, session.status
    frames = (config.window_seconds * FRAMES_PER_SECOND) if config.window_seconds else artifact.feature_shape()[1]
    encoder = model.get_encoder()

    def progress(split: str, done: int, total: int) -> None:
        status.update(phase=f"caching encoder states: {split}", phase_done=done, phase_total=total)
        raise_if_stop_requested(status.run)  # the half-made cache is staged: nothing half-written stays

    states = cached_states(artifact, ["train", *eval_splits], encoder, frames, progress)
    # replay, pseudo-labels: {split: states}, for the rows given (None: every row of the split)
    for name, (extra, needed) in extras.items():
        wanted = {split: rows for split, rows in needed.items() if rows is not None}
        states[name] = cached_states(extra, list(needed), encoder, frames, progress, wanted or None)
    read_cached_states(model)
    status.update(phase_done=None, phase_total=None)
    return states


def _note_left_out(status, train_set, eval_set, test_set, window) -> None:
    left = {
        name: getattr(rows, "too_long", 0)
        for name, rows in (("train", train_set), ("validation", eval_set), ("test", test_set))
        if rows is not None
    }
    if any(left.values()):
        counts = ", ".join(f"{name} {n}" for name, n in left.items() if n)
        print(f"rows longer than the {window} s window are left out: {counts}", flush=True)
        status.update(left_out=left)


def _harm_checks(session: TrainingSession):
    """The run's guard sets and probes (rank 0 alone measures them), or None under another rank."""
    if not is_primary_process():
        return None
    config, processor, workspace = session.config, session.processor, session.workspace
    session.status.update(phase="preparing guard sets and probes")
    mels = processor.feature_extractor.feature_size
    guards = guard_datasets(config, session.language.whisper, workspace, mels)
    checks = HarmChecks(session.model, processor, guards, workspace, session.window, config.eval_batch_size)
    return HarmCallback(checks, session.run, session.status, config)


def _trainer(session: TrainingSession, train_set, eval_set):
    """Step 5: the Trainer (a distillation trainer for a student), its arguments from the config, its callbacks
    writing the run folder."""
    args = _training_arguments(session, train_set)
    config, run, model, processor = session.config, session.run, session.model, session.processor
    if args.deepspeed and is_primary_process():
        write_json_atomic(run.path / DEEPSPEED_FILE, args.deepspeed)  # the config the run used, for the record
    samples_per_step = config.train_batch_size * config.grad_accum_steps * max(1, args.world_size)
    # sharded weights cannot run on rank 0 alone: the guard sets are measured at the test halves only (_test_model)
    harm = None if config.sharding != "none" else session.harm
    callback = RunFolderCallback(run, session.status, samples_per_step, harm)
    callbacks = [callback]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    # a student learns from its teacher's soft targets too (core/training/distil.py)
    teacher = session.teacher
    make = partial(DistillationTrainer, teacher=teacher, kl_weight=config.kl_weight) if teacher else StudioTrainer
    trainer = make(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=SpeechCollator(model.config.decoder_start_token_id),
        processing_class=processor,
        compute_metrics=compute_metrics_for(processor.tokenizer),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # its raw dicts would repeat what progress_line already writes
    return trainer, callback


def _training_arguments(session: TrainingSession, train_set) -> Seq2SeqTrainingArguments:
    config, run, precision = session.config, session.run, session.precision
    epochs = config.num_train_epochs
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run.path / "tensorboard")  # read by transformers' TensorBoard logger
    return Seq2SeqTrainingArguments(
        output_dir=str(run.path),
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum_steps,
        warmup_steps=config.warmup_steps,
        max_steps=-1 if epochs else config.max_steps,
        num_train_epochs=epochs or 3.0,
        lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay,
        optim=config.optimizer,
        # under FSDP its own recomputation does it (core/training/parallel.py), without an extra all-gather
        activation_checkpointing=config.gradient_checkpointing and config.sharding != "fsdp",
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        eval_on_start=session.checkpoint is None,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="wer",
        greater_is_better=False,
        logging_steps=config.logging_steps,
        predict_with_generate=True,
        generation_max_length=config.generation_max_length,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Without a GPU the Trainer must be told it is on the CPU, or under torchrun every process trains alone;
        # with it, DDP runs over gloo.
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        **sharding_arguments(config),
        **streamed_arguments(train_set),
    )


def describe_failure(err: BaseException) -> str:
    """One line for status.json: the user's mistake as written, else the exception type and first line."""
    if isinstance(err, StudioError):
        return str(err)
    if isinstance(err, torch.OutOfMemoryError):
        return "out of GPU memory: lower train_batch_size (raise grad_accum_steps) or enable gradient_checkpointing"
    if isinstance(err, MemoryError):
        return "out of memory: lower train_batch_size (raise grad_accum_steps), or cache_encoder_states off"
    first = (str(err).splitlines() or [""])[0][:300]
    return f"{type(err).__name__}: {first} (see train.log)"


def format_traceback(err: BaseException) -> str:
    return "".join(traceback.format_exception(err))
