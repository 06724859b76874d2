"""The command line: a thin wrapper that parses arguments and calls the same functions the app calls.

Every command takes `--home` (the workspace). A user mistake prints one `error: …` line and exits 2; progress goes
to stderr through tqdm; results go to stdout.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from dataclasses import fields, replace
from pathlib import Path
from shlex import quote

from tqdm import tqdm

from core.cli_arguments import build_parser, dataclass_from_flags
from core.errors import StudioError, os_error_line
from core.formatting import percent
from core.languages import LANGUAGES, get_language
from core.workspace import Workspace


def _progress_bar(unit: str):
    """A callback(split_or_label, done, total) that drives one tqdm bar per label. A bar closes where its work ends
    (done reaches total, or another label starts: phases run one after another), so it is drawn once, never again
    after later output; `close()` closes what is still open."""
    bars: dict[str, tqdm] = {}

    def close() -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()

    def update(label, done: int, total: int | None = None) -> None:
        bar = bars.get(label)
        if bar is None:
            close()  # the previous phase's bar, left at its last count
            bar = bars[label] = tqdm(total=total, desc=str(label), unit=unit, file=sys.stderr, leave=True)
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)  # tqdm throttles redraws itself (mininterval)
        if total is not None and done >= total:
            close()

    update.close = close
    return update


def cmd_languages(args) -> int:
    from core.languages import PRESETS

    print(f"{'code':5} {'name':22} {'whisper':9} {'fleurs':12} {'common voice':13} {'espeak-ng':10} preset")
    for lang in LANGUAGES.values():
        print(
            f"{lang.code:5} {lang.name:22} {lang.whisper_token:9} {lang.fleurs or '-':12} "
            f"{lang.common_voice or '-':13} {lang.espeak or '-':10} {'yes' if lang.code in PRESETS else ''}"
        )
    return 0


def cmd_models(args) -> int:
    from core.models.installed import describe, ensure_installed
    from core.models.resolve import DEMO, demo_path

    workspace = Workspace.open(args.home)
    if args.install:
        for row in describe(workspace):
            print(f"{row['name']}: {ensure_installed(workspace, row['name'])}")
    for row in describe(workspace):
        print(f"{row['name']} ({row['hub_id']}, {row['license']}): packages {row['packages']}")
        print(f"  transformers: {row['transformers']}")
        print(f"  ctranslate2:  {row['ctranslate2']}")
    built = demo_path(workspace)
    print(f"{DEMO} (4M-parameter offline toy, 3 s window): {built if built.is_dir() else 'made on first use'}")
    return 0


def cmd_synth(args) -> int:
    from core.data.synth import SynthSpec, default_kind, synthesize_dataset

    language = get_language(args.language)
    spec = SynthSpec(
        language=language.code,
        n=args.n,
        seed=args.seed,
        kind=args.kind or default_kind(language),
        vocabulary_size=args.vocabulary_size,
        sentences_per_clip=args.sentences_per_clip,
    )
    out = Path(args.out) if args.out else Workspace.open(args.home).synth / spec.folder_name()
    bar = _progress_bar("clip")
    synthesize_dataset(language, out, spec, progress=lambda done, total: bar("synth", done, total))
    bar.close()
    print(out)
    return 0


def cmd_prepare(args) -> int:
    from core.data.artifact import artifact_warnings
    from core.data.features import Preparation, PrepareOptions
    from core.data.sources import MixedSource, SourceSpec, open_source
    from core.text.cleaning import CleaningOptions

    workspace, language = Workspace.open(args.home), get_language(args.language)
    spec = dataclass_from_flags(SourceSpec, args, streaming=args.streaming or None, token=None)
    sources = [open_source(name, language, spec) for name in [args.source, *(args.interleave or [])]]
    source = sources[0] if len(sources) == 1 else MixedSource(sources)
    options = dataclass_from_flags(PrepareOptions, args, cleaning=dataclass_from_flags(CleaningOptions, args))
    bar = _progress_bar("clip")
    preparation = Preparation(overwrite=args.overwrite, progress=bar)
    artifact = preparation.prepare(source, language, args.model, args.name, workspace, options)
    bar.close()
    print(artifact.shown)
    for warning in artifact_warnings(artifact.manifest):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from core.training.config import TrainConfig, apply_preset
    from core.training.jobs import start_run

    workspace = Workspace.open(args.home)
    config = apply_preset(TrainConfig(data=args.data, run=args.run), args.preset)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    config = replace(config, **overrides)
    run = start_run(config, workspace, foreground=args.foreground)
    if config.node_rank > 0:
        return _report_joined(run, config.node_rank)
    if args.foreground:
        return _report_finished(run)
    print(f"started run {run.name} (pid {run.status().pid}); follow it with: python -m core status {quote(run.name)}")
    return 0


def _report_joined(run, node_rank: int) -> int:
    """After node R > 0 joined a run: where its processes write (node 0 reports the run itself)."""
    node = run.node(node_rank) or {}
    print(
        f"node {node_rank} joined run {run.name} (pid {node.get('pid')}); its output: {run.log_path(node_rank)}; "
        f"follow the run with: python -m core status {quote(run.name)}"
    )
    return 0


def _report_finished(run) -> int:
    """After a foreground run: its state, best checkpoint and held-out result; a failed run is an error."""
    from core.training.run_records import ENDED_WELL

    status = run.status()
    if status.state not in ENDED_WELL:
        raise StudioError(f"run {run.name} {status.state}: {status.error}")
    summary = run.summary()
    print(
        f"run {run.name} {status.state} at step {status.step}; best checkpoint "
        f"{summary.best_checkpoint_shown} (validation WER {summary.best_shown})"
    )
    if summary.test_after is not None:
        print(f"test WER before {summary.test_before_shown} → after {summary.test_after_shown}")
    for line in _result_lines(run):
        print(line)
    for line in status.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def _result_lines(run) -> list[str]:
    """The result's before → after lines (test interval, guard sets, probes, language ID); none when unreadable."""
    from core.errors import DamagedFile

    try:
        return run.result().report_lines()
    except DamagedFile:
        return []


def cmd_runs(args) -> int:
    from core.training.run_records import RunState
    from core.training.runs import RunFolder, list_runs

    workspace = Workspace.open(args.home)
    names = list_runs(workspace.runs)
    if not names:
        print(f"no runs in {workspace.runs}")
        return 0
    print(
        f"{'run':32} {'state':12} {'step':>13} {'val base':>9} {'val best':>9} {'test before':>12} "
        f"{'test after':>11}  best checkpoint"
    )
    for name in names:
        s = RunFolder.of(workspace, name).summary()
        print(
            f"{name:32} {s.state:12} {s.step:>6}/{s.total:<6} {s.baseline_shown:>9} "
            f"{s.best_shown:>9} {s.test_before_shown:>12} {s.test_after_shown:>11}  {s.best_checkpoint_shown}"
        )
        if s.state == RunState.DAMAGED:
            print(f"  {s.error}")
    return 0


def cmd_status(args) -> int:
    from core.formatting import format_duration, format_time
    from core.training.monitor import eta_seconds, phase_progress
    from core.training.run_records import RunState
    from core.training.runs import RunFolder

    run = RunFolder.of(Workspace.open(args.home), args.run).require()
    status = run.status()
    if status.state == RunState.DAMAGED:
        raise StudioError(f"run '{run.name}' is damaged: {status.error}")
    metrics = run.metrics()
    if args.json:
        print(json.dumps({**run.summary().to_dict(), "status": status.to_dict()}, indent=2, default=str))
        return 0
    summary, eta = run.summary(), eta_seconds(status, metrics)
    doing, _ = phase_progress(status)
    print(f"run {run.name}: {status.state} · {doing}" + (f" · ETA {format_duration(eta)}" if eta else ""))
    for label, value in (("started", status.started or status.created), ("finished", status.finished)):
        if value:
            print(f"  {label:9} {format_time(value)}")
    print(f"  best      {summary.best_checkpoint_shown} (validation WER {summary.best_shown})")
    print(f"  base      validation WER {summary.baseline_shown} (the starting model, step 0)")
    print(f"  test WER  before {summary.test_before_shown} → after {summary.test_after_shown}")
    for line in _result_lines(run):
        print(f"  {line}")
    for line in filter(None, (status.error, status.note)):
        print(f"  {line}")
    for line in status.warnings:
        print(f"  warning: {line}")
    for row in (r for r in metrics if "eval_wer" in r):
        print(f"  step {row['step']:>6}: WER {percent(row['eval_wer'])}  CER {percent(row.get('eval_cer'))}")
    return 0


def cmd_stop(args) -> int:
    from core.training.jobs import stop_run
    from core.training.runs import RunFolder

    run = RunFolder.of(Workspace.open(args.home), args.run)
    stop_run(run)
    print(f"stop requested: run {run.name} saves a checkpoint at its next step and ends")
    return 0


def cmd_resume(args) -> int:
    from core.training.jobs import resume_run
    from core.training.runs import RunFolder

    workspace = Workspace.open(args.home)
    run = RunFolder.of(workspace, args.run)
    checkpoint = run.last_checkpoint()
    run = resume_run(run, workspace, foreground=args.foreground, node_rank=args.node_rank)
    if args.node_rank > 0:
        return _report_joined(run, args.node_rank)
    if args.foreground:
        return _report_finished(run)
    print(f"resumed run {run.name} from {checkpoint.name if checkpoint else 'the start'}")
    return 0


def cmd_evaluate(args) -> int:
    from core.evaluation.evaluate import EvaluateOptions, evaluate_model

    options = EvaluateOptions(split=args.split, batch_size=args.batch_size, limit=args.limit)
    bar = _progress_bar("clip")
    result = evaluate_model(args.model, args.data, Workspace.open(args.home), options, progress=bar)
    bar.close()
    print(result.report_line(args.model))
    return 0


def cmd_transcribe(args) -> int:
    from core.audio.decode import audio_files_in
    from core.speech.batching import transcribe_files
    from core.speech.decoding import DecodingOptions, parse_temperatures
    from core.speech.inference import Transcriber, format_segments
    from core.speech.transcripts import destinations, parse_formats, write_transcripts

    formats = parse_formats(args.format) if args.format else (["txt", "srt"] if args.out else [])
    arguments = [Path(p) for p in args.files]
    files = audio_files_in(arguments)
    language = get_language(args.language).whisper if args.language else None
    ladder = parse_temperatures(args.temperatures) if args.temperatures else DecodingOptions.temperatures
    options = dataclass_from_flags(DecodingOptions, args, temperatures=ladder)
    out = Path(args.out).expanduser() if args.out else None
    # where each file's transcripts go, checked before the model loads: a file is never written over unless ours
    targets = destinations(arguments, files, out, formats) if formats else [None] * len(files)
    files = [t.audio for t in targets] if formats else files  # a file given twice (and in its folder) is done once
    transcriber = Transcriber(args.model, Workspace.open(args.home), language=language, task=args.task)
    bar = _progress_bar("file") if len(files) > 1 else None
    failed = []
    # the files' windows are decoded together, in batches on one engine loop; answers come back in order
    answers = transcribe_files(transcriber, files, options)
    for done, ((path, transcript), target) in enumerate(zip(answers, targets), 1):
        if bar:
            bar("transcribe", done, len(files))
        if isinstance(transcript, StudioError):  # an unreadable file is reported and skipped; the others go on
            failed.append(str(transcript))
            print(f"skipped: {transcript}", file=sys.stderr)
            continue
        if target is not None:
            for written in write_transcripts(transcript, target, formats, words=options.word_timestamps):
                print(written)
        else:
            heard = "" if language else _detected(transcript)
            print(f"== {path}{heard}" if len(files) > 1 or heard else f"== {path}")
            print(format_segments(transcript.segments))
    if bar:
        bar.close()
    if failed:
        raise StudioError(f"{len(failed)} of {len(files)} files could not be transcribed (listed above as skipped)")
    return 0


def _detected(transcript) -> str:
    """' (detected no, p=0.97)', or what was heard when no language could be detected (no speech in the file)."""
    if transcript.language_probability is None:
        return " (no speech heard: no language detected)"
    return f" (detected {transcript.language}, p={transcript.language_probability:.2f})"


def cmd_publish(args) -> int:
    from core.models.export import parse_formats
    from core.publish import prepare_upload, prepared_upload, push

    workspace = Workspace.open(args.home)
    if args.push_only:
        upload = prepared_upload(Path(args.model), args.repo)
    else:
        formats = parse_formats(args.formats) if args.formats else ()
        upload = prepare_upload(args.model, workspace, args.repo, ctranslate2=args.ctranslate2, formats=formats)
        print(f"model card and files written to {upload.folder}")
    if args.no_push:
        return 0
    url = push(upload, token=None, private=args.private)
    print(f"published {'(private) ' if args.private else ''}{url}")
    return 0


def cmd_export(args) -> int:
    from core.evaluation.parity import ExportOptions, export_with_parity, parity_report

    out = Path(args.out).expanduser() if args.out else None
    options = ExportOptions(args.quantization, args.data, args.split, out, args.formats)
    lines, failed = parity_report(export_with_parity(args.model, Workspace.open(args.home), options))
    for line in lines:
        print(line)
    if failed:
        print(f"{failed} export file(s) FAILED parity: kept, and marked in their parity.json", file=sys.stderr)
    return 1 if failed else 0


def cmd_align_heads(args) -> int:
    from core.data.prompts import template_prompts
    from core.evaluation.alignment import find_alignment_heads

    workspace, language = Workspace.open(args.home), get_language(args.language)
    texts = args.text or template_prompts(language, 8, set())
    found = find_alignment_heads(args.model, workspace, language, texts, write=not args.dry_run)
    print(found.shown)
    if not args.dry_run:
        print(f"written into {Path(args.model) / 'generation_config.json'}; export again to carry them")
    return 0


def cmd_demo(args) -> int:
    from core.demo import DemoRequest, run_demo

    language, workspace = get_language(args.language), Workspace.open(args.home)
    request = dataclass_from_flags(DemoRequest, args)
    bar = _progress_bar("item")
    result = run_demo(language, workspace, request, log=lambda line: print(line, file=sys.stderr), progress=bar)
    bar.close()
    for line in result.lines():
        print(line)
    return 0


def cmd_serve(args) -> int:
    from core.evaluation.comparison import checkpoint_choices
    from core.speech.server import ServeOptions, serve

    workspace = Workspace.open(args.home)
    serve(dataclass_from_flags(ServeOptions, args), workspace, checkpoints=lambda: checkpoint_choices(workspace))
    return 0


def cmd_prompts(args) -> int:
    from core.data.prompts import (
        error_prompts,
        evaluated_language,
        file_prompts,
        held_out_sentences,
        prompt_list_path,
        template_prompts,
        write_prompts,
    )
    from core.training.runs import RunFolder

    workspace = Workspace.open(args.home)
    language = get_language(args.language)
    out = prompt_list_path(Path(args.out).expanduser()) if args.out else None  # checked before any prompt is drawn
    held = held_out_sentences(workspace, language)
    if args.from_errors:
        evaluation = Path(args.from_errors)
        if evaluation.suffix != ".json":  # a run: its latest saved evaluation, as the Compare page's drill-down
            run = RunFolder.of(workspace, args.from_errors).require()
            own = f"__{run.config().data}__"  # not a guard set's: their words are another language or domain
            saved = [path for path, _ in run.evaluations() if own in path.name]
            if not saved:
                raise StudioError(
                    f"run {args.from_errors} has no saved evaluation; evaluate one of its checkpoints first "
                    f"(python -m core evaluate --model {workspace.run(args.from_errors)}/checkpoint-N --data DATA)"
                )
            evaluation = max(saved, key=lambda path: path.stat().st_mtime)
        from core.evaluation.comparison import load_evaluation  # here: it brings the models' engines (seconds)

        scored = load_evaluation(str(evaluation))
        evaluated = evaluated_language(workspace, scored)
        prompts = error_prompts(scored.get("rows", []), language, args.n, held, args.seed, evaluated=evaluated)
    elif args.text:
        prompts = file_prompts(Path(args.text).expanduser())[: args.n]
    else:
        prompts = template_prompts(language, args.n, held, args.seed)
    if out:
        write_prompts(prompts, out)
        print(f"{len(prompts)} prompts → {out}", file=sys.stderr)
    else:
        print("\n".join(prompts))
    return 0


def cmd_label(args) -> int:
    from core.data.label_options import LabelOptions, LabelThresholds
    from core.speech.labelling import label_audio

    options = dataclass_from_flags(LabelOptions, args)
    bar = _progress_bar("clip")
    try:
        labelled = label_audio(options, dataclass_from_flags(LabelThresholds, args), Workspace.open(args.home), bar)
    finally:
        bar.close()  # before any error line: a bar closed later would print after it
    if labelled is None:
        print(f"node {options.node_rank}: its shards are labelled; node 0 merges them")
        return 0
    record, summary = labelled.record(), labelled.summary()
    counts = ", ".join(f"{decision} {n}" for decision, n in record.counts.items())
    print(f"labelled {record.seconds / 60:.1f} min of audio into {labelled.name}: {counts} → {labelled.root}")
    print(
        f"prepare the kept rows with: python -m core prepare --source {quote(str(labelled.root))} --language "
        f"{record.language} --model MODEL --name {labelled.name}; {summary.review_left} rows wait for review on "
        f"the Data page"
    )
    return 0


def cmd_distil(args) -> int:
    from core.training.config import DistilRequest
    from core.training.distil import distil_config
    from core.training.jobs import start_run

    workspace = Workspace.open(args.home)
    config = distil_config(dataclass_from_flags(DistilRequest, args), workspace)
    run = start_run(config, workspace, foreground=args.foreground)
    if args.foreground:
        return _report_finished(run)
    print(f"started run {run.name} (pid {run.status().pid}); follow it with: python -m core status {quote(run.name)}")
    return 0


COMMANDS = {
    "languages": cmd_languages,
    "models": cmd_models,
    "synth": cmd_synth,
    "prepare": cmd_prepare,
    "train": cmd_train,
    "runs": cmd_runs,
    "status": cmd_status,
    "stop": cmd_stop,
    "resume": cmd_resume,
    "evaluate": cmd_evaluate,
    "transcribe": cmd_transcribe,
    "export": cmd_export,
    "align-heads": cmd_align_heads,
    "publish": cmd_publish,
    "demo": cmd_demo,
    "prompts": cmd_prompts,
    "serve": cmd_serve,
    "label": cmd_label,
    "distil": cmd_distil,
}


class _NoteFormatter(logging.Formatter):
    """The studio log on stderr: `note: …`, and `warning: …` for a warning (an unprotected server, say)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{'warning' if record.levelno >= logging.WARNING else 'note'}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `python -m core languages | head` ends quietly
    args = build_parser(COMMANDS).parse_args(argv)
    notes = logging.StreamHandler(sys.stderr)
    notes.setFormatter(_NoteFormatter())
    studio = logging.getLogger("studio")
    studio.addHandler(notes)
    studio.setLevel(logging.INFO)
    try:
        return args.func(args)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        line = os_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
