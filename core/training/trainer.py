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
import re
import time
import traceback
from functools import partial
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Seq2SeqTrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback

from core.audio.constants import FRAMES_PER_SECOND
from core.data.artifact import Artifact, open_artifact
from core.errors import StudioError
from core.languages import get_language
from core.models.resolve import load_model
from core.models.window import StandardWindowCallback, apply_window
from core.text.wer import error_rates, summarize
from core.training.config import TrainConfig
from core.training.data import FeatureDataset, ReplayMix, ReplaySet, SpeechCollator, check_streamed_training
from core.training.guards import (
    HarmCallback,
    HarmChecks,
    english_reference,
    guard_datasets,
    short_record,
    transcript_cap,
)
from core.training.parallel import DEEPSPEED_FILE, StudioTrainer, sharding_arguments, streamed_arguments
from core.training.run_recorder import (
    RunFolderCallback,
    StatusWriter,
    is_peft,
    is_primary_process,
    load_adapter_weights,
)
from core.training.run_records import RunState
from core.training.runs import BASELINE_CHECKPOINT, RunFolder, StopRequested, checkpoint_step, raise_if_stop_requested
from core.training.self_training import pseudo_label_artifact, pseudo_label_splits, with_pseudo_labels
from core.training.student import DistillationTrainer
from core.workspace import Workspace, write_json_atomic


def resolve_precision(choice: str) -> str:
    if choice == "auto":
        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if choice == "fp16" and not torch.cuda.is_available():
        raise StudioError("precision fp16 needs a CUDA GPU; choose auto, fp32 or bf16 on a CPU")
    return choice


def apply_memory_levers(model, config: TrainConfig):
    """Freeze the encoder and/or wrap the model with LoRA adapters, as the config asks."""
    if config.freeze_encoder:
        model.freeze_encoder()  # the encoder's weights get no gradients and no optimiser state
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        targets = [m.strip() for m in config.lora_target_modules.split(",") if m.strip()]
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = sorted(set(targets) - names)
        if missing:
            raise StudioError(
                f"lora_target_modules: {', '.join(missing)} not in this model; Whisper's attention "
                f"layers are q_proj, k_proj, v_proj, out_proj; its MLP fc1, fc2"
            )
        # A frozen encoder gets no adapters either: a regex keeps them to the decoder's layers.
        where = rf".*decoder\..*\.({'|'.join(map(re.escape, targets))})$" if config.freeze_encoder else targets
        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=where, lora_dropout=0.05, bias="none"
            ),
        )
    return model


def decoded_texts(tokenizer, token_ids: np.ndarray) -> list[str]:
    """Generated or label ids (-100 = padding) → text without special tokens."""
    ids = np.where(token_ids == -100, tokenizer.pad_token_id, token_ids)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def compute_metrics_for(tokenizer):
    def compute(prediction) -> dict:
        predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return error_rates(decoded_texts(tokenizer, prediction.label_ids), decoded_texts(tokenizer, predictions))

    return compute


def train(run: RunFolder, workspace: Workspace, resume: bool = False) -> str:
    """Train the run in this process; returns the final state (completed / stopped). Raises on failure."""
    # 1. The config, the data and the precision.
    config = run.config().validate()
    artifact = open_artifact(workspace, config.data)
    set_seed(config.seed)
    checkpoint = run.last_checkpoint() if resume else None
    status = StatusWriter(run)
    status.start()
    try:
        return _phases(run, workspace, config, artifact, checkpoint, status)
    except StopRequested:
        # a stop outside the training steps (caching, testing, an evaluation): what is complete is kept (the last
        # checkpoint, a test result already written); the half-done phase is dropped
        doing = run.status().phase or "starting"
        status.update(
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
        status.close()
        if is_primary_process():
            run.stop_file.unlink(missing_ok=True)


def _phases(run: RunFolder, workspace: Workspace, config: TrainConfig, artifact: Artifact, checkpoint, status) -> str:
    """Steps 2–8 of `train`: model, splits, trainer, test before, training, test after, final state."""
    language = get_language(config.language or artifact.manifest["language"])
    task = config.task or artifact.task
    precision = resolve_precision(config.precision)
    # 2. The model with the run's levers: window, dropout, frozen encoder, cached states, LoRA.
    status.update(phase="loading the model")
    overrides = {"dropout": config.dropout}
    if config.apply_spec_augment:
        overrides.update(
            apply_spec_augment=True, mask_time_prob=config.mask_time_prob, mask_feature_prob=config.mask_feature_prob
        )
    model, processor = load_model(config.model, workspace, language=language.whisper, task=task, overrides=overrides)
    teacher = None
    if config.teacher:  # distillation: the model loaded is the teacher; the run trains a student of it
        from core.training.distil import check_student
        from core.training.student import student_of

        check_student(config.teacher, config.decoder_layers, workspace)
        teacher, model = model, student_of(model, config.decoder_layers)
    model.generation_config.max_length = config.generation_max_length
    if config.gradient_checkpointing:
        model.config.use_cache = False
    # a shortened window trains on the first rows of the encoder's table; every checkpoint is saved whole (30 s)
    full_window = apply_window(model, processor, config.window_seconds) if config.window_seconds else None
    window = config.window_seconds or None
    model = apply_memory_levers(model, config)
    # 3. The splits; with cached encoder states the encoder runs once per clip, here, before training.
    splits = [config.eval_split] + ([config.test_split] if config.test_split else [])
    status.update(phase="preparing the replay set" if config.replay_fraction else "caching encoder states")
    replay = _replay_set(workspace, config, processor, artifact, language)
    pseudo = pseudo_label_artifact(workspace, config, processor, artifact)
    # the replay rows a run reads are the first of the set: only those are encoded
    extras = {"replay": (replay.artifact, {"train": replay.table_rows(window)})} if replay else {}
    extras.update({"pseudo": (pseudo, dict.fromkeys(pseudo_label_splits(pseudo)))} if pseudo else {})
    states = _encoder_states(model, artifact, config, splits, status, extras) if config.cache_encoder_states else {}
    train_set = _training_rows(artifact, workspace, config, window, states.get("train"))
    if pseudo is not None:
        train_set = with_pseudo_labels(train_set, pseudo, config, window, states.get("pseudo"))
    if replay is not None:
        replay_rows = FeatureDataset(
            replay.artifact, "train", replay.rows, window, states.get("replay", {}).get("train")
        )
        train_set = ReplayMix(train_set, replay_rows, config.replay_fraction, config.seed)
        print(
            f"replay: {train_set.extra} rows of '{replay.artifact.name}' among {len(train_set)} per epoch", flush=True
        )
    eval_set = FeatureDataset(
        artifact, config.eval_split, config.max_eval_samples, window, states.get(config.eval_split)
    )
    test_set = (
        FeatureDataset(artifact, config.test_split, None, window, states.get(config.test_split))
        if config.test_split
        else None
    )
    _note_left_out(status, train_set, eval_set, test_set, window)
    # 4. What fine-tuning may break, measured at each evaluation: guard sets, probes, language detection.
    harm = _harm_checks(run, workspace, config, model, processor, language, window, status)
    # 5. The Trainer, writing the run folder through its callbacks.
    trainer, callback = _trainer(
        run, config, model, processor, train_set, eval_set, precision, checkpoint, status, harm, teacher
    )
    if full_window is not None:
        trainer.add_callback(StandardWindowCallback(full_window))  # after the run folder's: a LoRA merge is saved
    status.update(
        state=RunState.RUNNING,
        phase="training",
        total=config.max_steps,
        precision=precision,
        resumed_from=checkpoint.name if checkpoint else None,
    )
    # 6. The held-out split, before: the starting model's zero-shot result (once per run).
    if test_set is not None and not run.has_result_half("before"):
        status.update(phase="testing the base model")
        _test(trainer, test_set, run, config, "before", processor.tokenizer, harm, language.whisper)
    # 7. Training.
    status.update(phase="training")
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
    # 8. The held-out split, after: the best checkpoint by validation WER (loaded at the end of training).
    if test_set is not None and not stopped:
        status.update(phase="testing the best checkpoint")
        _test(trainer, test_set, run, config, "after", processor.tokenizer, harm, language.whisper)
        if teacher is not None and is_primary_process():  # a student: its speed beside its teacher's
            from core.training.student import record_distillation

            status.update(phase="timing the student against its teacher")
            record_distillation(run, config, workspace, artifact)
    # 9. The final state.
    state = trainer.state
    final = RunState.STOPPED if stopped else RunState.COMPLETED
    note = None
    if harm is not None and harm.stopped_by and not stopped:
        note = f"guard stop: {harm.stopped_by}; the best checkpoint by validation WER is kept"
    elif not stopped and state.global_step < state.max_steps:
        note = (
            f"early-stopped at step {state.global_step}: WER did not improve for "
            f"{config.early_stopping_patience} evaluations"
        )
    status.update(state=final, phase=None, step=state.global_step, finished=time.time(), note=note, error=None)
    return final


def _without_key_lists(record: logging.LogRecord) -> bool:
    return "keys in the checkpoint model loaded" not in record.getMessage()


def _training_rows(artifact: Artifact, workspace: Workspace, config: TrainConfig, window, states):
    if artifact.streams("train"):
        check_streamed_training(artifact, config)
        from core.training.streaming import StreamingFeatureDataset

        node = (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))  # torchrun's, else one
        return StreamingFeatureDataset(artifact, workspace, config.max_train_samples, config.seed, node)
    return FeatureDataset(artifact, "train", config.max_train_samples, window, states)


def _replay_set(workspace: Workspace, config: TrainConfig, processor, artifact: Artifact, language):
    """The replay set (the user's, or the English reference set's training split) and the share of it the run
    reads, or None without replay."""
    if not config.replay_fraction:
        return None
    if artifact.streams("train"):
        raise StudioError(
            "replay mixes stored training rows; this dataset streams its training split: prepare it without "
            "stream_train, or set replay_fraction 0"
        )
    name = config.replay
    if not name and language.whisper == "en":
        raise StudioError(
            "replay's default is the English reference set, drawn from the same templates as an English target's "
            "sentences: give another dataset (--replay DATASET) or set replay_fraction 0"
        )
    if not name:
        name = english_reference(workspace, config.model, processor.feature_extractor.feature_size)
    replay = open_artifact(workspace, name)
    if replay.feature_shape()[0] != processor.feature_extractor.feature_size:
        raise StudioError(f"replay dataset '{name}' was prepared for another model's mel bins: prepare it again")
    train_rows = len(FeatureDataset(artifact, "train", config.max_train_samples, config.window_seconds or None))
    return ReplaySet.for_run(replay, train_rows, config.replay_fraction)


def _encoder_states(
    model, artifact: Artifact, config: TrainConfig, eval_splits: list[str], status, extras: dict | None = None
) -> dict:
    from core.training.encoder_cache import cached_states, read_cached_states

    frames = (config.window_seconds * FRAMES_PER_SECOND) if config.window_seconds else artifact.feature_shape()[1]
    encoder = model.get_encoder()

    def progress(split: str, done: int, total: int) -> None:
        status.update(phase=f"caching encoder states: {split}", phase_done=done, phase_total=total)
        raise_if_stop_requested(status.run)  # the half-made cache is staged: nothing half-written stays

    states = cached_states(artifact, ["train", *eval_splits], encoder, frames, progress)
    # replay, pseudo-labels: {split: states}, for the rows given (None: every row of the split)
    for name, (extra, needed) in (extras or {}).items():
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


def _harm_checks(run, workspace, config, model, processor, language, window, status):
    """The run's guard sets and probes (rank 0 alone measures them), or None under another rank."""
    if not is_primary_process():
        return None
    status.update(phase="preparing guard sets and probes")
    mels = processor.feature_extractor.feature_size
    guards = guard_datasets(config, language.whisper, workspace, mels)
    checks = HarmChecks(model, processor, guards, workspace, window, config.eval_batch_size)
    return HarmCallback(checks, run, status, config)


def _trainer(
    run, config, model, processor, train_set, eval_set, precision, checkpoint, status, harm=None, teacher=None
):
    epochs = config.num_train_epochs
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run.path / "tensorboard")  # read by transformers' TensorBoard logger
    args = Seq2SeqTrainingArguments(
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
        eval_on_start=checkpoint is None,
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
    if args.deepspeed and is_primary_process():
        write_json_atomic(run.path / DEEPSPEED_FILE, args.deepspeed)  # the config the run used, for the record
    samples_per_step = config.train_batch_size * config.grad_accum_steps * max(1, args.world_size)
    # sharded weights cannot run on rank 0 alone: the guard sets are measured at the test halves only (_test_model)
    callback = RunFolderCallback(run, status, samples_per_step, None if config.sharding != "none" else harm)
    callbacks = [callback]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    # a student learns from its teacher's soft targets too (core/training/distil.py)
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


def _test(
    trainer, test_set: FeatureDataset, run: RunFolder, config: TrainConfig, half: str, tokenizer, harm, language: str
) -> None:
    """Evaluate the trainer's current model on the held-out split, with its language detection, the guard sets and
    the probes; saved as the run's result half and as per-utterance evaluations (the Compare page's drill-down).
    After the second half, each before → after change gets its paired-bootstrap interval. Rank 0 alone decodes (in
    order, no padding across processes); the other ranks wait for it."""
    if is_primary_process():
        model = _test_model(trainer, run, config, half)
        teacher = getattr(trainer, "teacher", None)
        if half == "before" and teacher is not None:
            model = teacher  # a student is measured against its teacher: before → after is teacher → student
        hypotheses = generate_texts(
            model,
            test_set,
            config.eval_batch_size,
            config.generation_max_length,
            tokenizer,
            between_batches=lambda: raise_if_stop_requested(run),
        )
        ids, references = test_set.ids_and_texts()
        checkpoint = BASELINE_CHECKPOINT if half == "before" else run.best_checkpoint_name()
        record = {
            "model": f"{config.model} ({'the teacher' if config.teacher else 'as the run starts'})"
            if half == "before"
            else checkpoint,
            "data": config.data,
            "split": config.test_split,
            **summarize(ids, references, hypotheses),
        }
        run.write_evaluation(checkpoint, config.data, config.test_split, record)
        changes = None
        if harm is not None:
            record.update(_harm_half(harm, model, test_set, run, config, half, checkpoint, language))
            changes = _changes(run, config, record, checkpoint) if half == "after" else None
        run.write_result_half(half, checkpoint, record, changes)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _test_model(trainer, run: RunFolder, config: TrainConfig, half: str):
    """The model rank 0 tests alone: the trainer's own; with sharding, after training, the best checkpoint read
    whole from disk (its shards live on every rank, and would wait for the others), on rank 0's device."""
    if config.sharding == "none" or half == "before":  # before training the model is not sharded yet
        return trainer.accelerator.unwrap_model(trainer.model).to(trainer.args.device)
    best = run.path / (run.best_checkpoint_name() or run.last_checkpoint().name)
    model = type(trainer.accelerator.unwrap_model(trainer.model)).from_pretrained(best)
    model.generation_config = trainer.accelerator.unwrap_model(trainer.model).generation_config
    if config.window_seconds:  # saved whole (30 s), tested as trained
        apply_window(model, trainer.processing_class, config.window_seconds)
    return model.to(trainer.args.device)


LANGUAGE_ROWS = 200  # test rows whose language is detected: enough for a share, bounded for large test splits


def _harm_half(harm, model, test_set: FeatureDataset, run: RunFolder, config, half: str, checkpoint: str, language):
    """The test split's language-detection accuracy, the guard sets and the probes for one half of the result; the
    guard sets' per-utterance rows are saved as evaluations of the same checkpoint."""
    if half == "before":
        measured = harm.measure(model, 0)
    else:  # the best checkpoint's weights were measured at its step, in this process (unless it resumed since)
        measured = harm.by_step.get(checkpoint_step(checkpoint) or -1) or harm.checks.measure(
            model, config.generation_max_length
        )
    fed = torch.from_numpy(
        np.stack([test_set[i]["input_features"] for i in range(min(len(test_set), LANGUAGE_ROWS))]).astype(np.float32)
    )
    was_training = model.training
    model.eval()
    accuracy = harm.checks.language_accuracy(model, fed, language)
    model.train(was_training)
    for name, guard in measured["guards"].items():
        run.write_evaluation(checkpoint, name, guard["split"], {"model": checkpoint, "data": name, **guard})
    return {
        "language": language,
        "language_accuracy": accuracy,
        "guards": {name: short_record(g) for name, g in measured["guards"].items()},
        "probes": measured["probes"],
    }


def _changes(run: RunFolder, config: TrainConfig, after: dict, checkpoint: str) -> dict:
    """Paired-bootstrap intervals of the test split's change and of each guard set's, from the saved rows."""
    from core.text.bootstrap import paired_bootstrap
    from core.workspace import read_json_if_intact

    changes = {}
    pairs = [("test", config.data, config.test_split)] + [
        (name, name, g["split"]) for name, g in after.get("guards", {}).items()
    ]
    for key, data, split in pairs:
        before = read_json_if_intact(run.evaluation_file(BASELINE_CHECKPOINT, data, split))
        now = read_json_if_intact(run.evaluation_file(checkpoint, data, split))
        if before and now and before.get("rows") and now.get("rows"):
            changes[key] = paired_bootstrap(before["rows"], now["rows"]).to_dict()
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
