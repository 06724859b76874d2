"""The command line: a thin wrapper that parses arguments and calls the same functions the app calls.

Every command takes `--home` (the workspace). A user mistake prints one `error: …` line and exits 2; progress goes
to stderr through tqdm; results go to stdout. Each `cmd_*` reads its flags into the library's records, calls one
library function and prints what it answers.

The commands import the library inside themselves: `python -m core` must start in well under a second, and most of
core brings torch, transformers or datasets with it (seconds each); a command pays only for what it uses.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import fields, replace
from pathlib import Path

from tqdm import tqdm

from core.cli_arguments import build_parser, dataclass_from_flags
from core.errors import StudioError, os_error_line
from core.languages import get_language, language_table
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
    print("\n".join(language_table()))
    return 0


def cmd_models(args) -> int:
    from core.models.installed import describe, describe_lines, ensure_installed
    from core.models.resolve import DEMO, demo_path

    workspace = Workspace.open(args.home)
    if args.install:
        for row in describe(workspace):
            print(f"{row['name']}: {ensure_installed(workspace, row['name'])}")
    print("\n".join(describe_lines(workspace)))
    built = demo_path(workspace)
    print(f"{DEMO} (4M-parameter offline toy, 3 s window): {built if built.is_dir() else 'made on first use'}")
    return 0


def cmd_synth(args) -> int:
    from core.data.synth import SynthSpec, default_kind, synthesize_dataset

    language = get_language(args.language)
    kind = args.kind or default_kind(language)
    spec = SynthSpec(
        language.code, args.n, args.seed, kind, args.vocabulary_size, sentences_per_clip=args.sentences_per_clip
    )
    out = Path(args.out) if args.out else Workspace.open(args.home).synth / spec.folder_name()
    bar = _progress_bar("clip")
    synthesize_dataset(language, out, spec, progress=lambda done, total: bar("synth", done, total))
    bar.close()
    print(out)
    return 0


def cmd_prepare(args) -> int:
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
    for warning in artifact.manifest.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from core.training.config import TrainConfig, apply_preset
    from core.training.jobs import start_run
    from core.training.run_report import started_line

    workspace = Workspace.open(args.home)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    config = replace(apply_preset(TrainConfig(data=args.data, run=args.run), args.preset), **overrides)
    run = start_run(config, workspace, foreground=args.foreground)
    return _report(run, config.node_rank, args.foreground, lambda: started_line(run))


def _report(run, node_rank: int, foreground: bool, background_line) -> int:
    """Node R > 0: where its processes write; a foreground run: its result; else `background_line()`."""
    from core.training.run_report import finished_report, joined_line

    if node_rank > 0:
        print(joined_line(run, node_rank))
    elif foreground:
        lines, warnings = finished_report(run)
        print("\n".join(lines))
        for line in warnings:
            print(f"warning: {line}", file=sys.stderr)
    else:
        print(background_line())
    return 0


def cmd_runs(args) -> int:
    from core.training.run_report import runs_table
    from core.training.runs import RunFolder, list_runs

    workspace = Workspace.open(args.home)
    runs = [RunFolder.of(workspace, name) for name in list_runs(workspace.runs)]
    print("\n".join(runs_table(runs)) if runs else f"no runs in {workspace.runs}")
    return 0


def cmd_status(args) -> int:
    from core.training.run_report import status_report
    from core.training.runs import RunFolder

    print(status_report(RunFolder.of(Workspace.open(args.home), args.run).require(), as_json=args.json))
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
    resumed = f"resumed run {run.name} from {checkpoint.name if checkpoint else 'the start'}"
    return _report(run, args.node_rank, args.foreground, lambda: resumed)


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
    from core.speech.transcripts import detected_note, parse_formats, planned_outputs, write_transcripts

    formats = parse_formats(args.format) if args.format else (["txt", "srt"] if args.out else [])
    arguments = [Path(p) for p in args.files]
    files = audio_files_in(arguments)
    language = get_language(args.language).whisper if args.language else None
    ladder = parse_temperatures(args.temperatures) if args.temperatures else DecodingOptions.temperatures
    options = dataclass_from_flags(DecodingOptions, args, temperatures=ladder)
    out = Path(args.out).expanduser() if args.out else None
    files, targets = planned_outputs(arguments, files, out, formats)  # checked before the model loads
    transcriber = Transcriber(args.model, Workspace.open(args.home), language=language, task=args.task)
    bar = _progress_bar("file") if len(files) > 1 else None
    failed = 0
    # the files' windows are decoded together, in batches on one engine loop; answers come back in order
    answers = transcribe_files(transcriber, files, options)
    for done, ((path, transcript), target) in enumerate(zip(answers, targets), 1):
        if bar:
            bar("transcribe", done, len(files))
        if isinstance(transcript, StudioError):  # an unreadable file is reported and skipped; the others go on
            failed += 1
            print(f"skipped: {transcript}", file=sys.stderr)
        elif target is not None:
            for written in write_transcripts(transcript, target, formats, words=options.word_timestamps):
                print(written)
        else:
            heard = "" if language else detected_note(transcript)
            print(f"== {path}{heard}" if len(files) > 1 or heard else f"== {path}")
            print(format_segments(transcript.segments))
    if bar:
        bar.close()
    if failed:
        raise StudioError(f"{failed} of {len(files)} files could not be transcribed (listed above as skipped)")
    return 0


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
    print("\n".join(lines))
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
    print("\n".join(result.lines()))
    return 0


def cmd_serve(args) -> int:
    from core.evaluation.comparison import checkpoint_choices
    from core.speech.server import ServeOptions, serve

    workspace = Workspace.open(args.home)
    serve(dataclass_from_flags(ServeOptions, args), workspace, checkpoints=lambda: checkpoint_choices(workspace))
    return 0


def cmd_prompts(args) -> int:
    from core.data import prompts as prompt_lists

    workspace, language = Workspace.open(args.home), get_language(args.language)
    # the output file is checked before any prompt is drawn
    out = prompt_lists.prompt_list_path(Path(args.out).expanduser()) if args.out else None
    held = prompt_lists.held_out_sentences(workspace, language)
    if args.from_errors:  # a file, or a run's latest saved evaluation
        from core.evaluation.comparison import load_evaluation, saved_evaluation  # the models' engines (seconds)

        scored = load_evaluation(str(saved_evaluation(workspace, args.from_errors)))
        evaluated = prompt_lists.evaluated_language(workspace, scored.data)
        prompts = prompt_lists.error_prompts(scored.rows, language, args.n, held, args.seed, evaluated=evaluated)
    elif args.text:
        prompts = prompt_lists.file_prompts(Path(args.text).expanduser())[: args.n]
    else:
        prompts = prompt_lists.template_prompts(language, args.n, held, args.seed)
    if out:
        prompt_lists.write_prompts(prompts, out)
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
    other_node = f"node {options.node_rank}: its shards are labelled; node 0 merges them"
    print(other_node if labelled is None else "\n".join(labelled.report_lines()))
    return 0


def cmd_distil(args) -> int:
    from core.training.config import DistilRequest
    from core.training.distil import distil_config
    from core.training.jobs import start_run
    from core.training.run_report import started_line

    workspace = Workspace.open(args.home)
    config = distil_config(dataclass_from_flags(DistilRequest, args), workspace)
    run = start_run(config, workspace, foreground=args.foreground)
    return _report(run, 0, args.foreground, lambda: started_line(run))  # a distillation runs on one node


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
