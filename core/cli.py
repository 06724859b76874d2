"""The command line: a thin wrapper that parses arguments and calls the same functions the app calls.

Every command takes `--home` (the workspace). A user mistake prints one `error: …` line and exits 2; progress goes
to stderr through tqdm; results go to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from core.errors import StudioError
from core.languages import LANGUAGES, get_language
from core.workspace import Workspace


def _progress_bar(unit: str):
    """A callback(split_or_label, done, total) that drives one tqdm bar per label."""
    bars: dict[str, tqdm] = {}

    def update(label, done: int, total: int | None = None) -> None:
        bar = bars.get(label)
        if bar is None:
            bar = bars[label] = tqdm(total=total, desc=str(label), unit=unit, file=sys.stderr, leave=True)
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)  # tqdm throttles redraws itself (mininterval)

    update.close = lambda: [b.close() for b in bars.values()]
    return update


def cmd_languages(args) -> int:
    print(f"{'code':5} {'name':20} {'whisper':8} {'fleurs':8} {'common voice':13} espeak-ng")
    for lang in LANGUAGES.values():
        print(
            f"{lang.code:5} {lang.name:20} {lang.whisper_token:8} {lang.fleurs or '-':8} "
            f"{lang.common_voice or '-':13} {lang.espeak}"
        )
    return 0


def cmd_synth(args) -> int:
    from core.synth import SynthSpec, synthesize_dataset

    language = get_language(args.language)
    spec = SynthSpec(language=language.code, n=args.n, seed=args.seed, vocabulary_size=args.vocabulary_size)
    out = Path(args.out) if args.out else Workspace.open(args.home).synth / f"{language.code}-{args.n}-{args.seed}"
    bar = _progress_bar("clip")
    synthesize_dataset(language, out, spec, progress=lambda done, total: bar("synth", done, total))
    bar.close()
    print(out)
    return 0


def cmd_prepare(args) -> int:
    from core.features import PrepareOptions, prepare_features
    from core.sources import open_source
    from core.text import CleaningOptions

    workspace = Workspace.open(args.home)
    language = get_language(args.language)
    source = open_source(
        args.source,
        language,
        config=args.config,
        streaming=args.streaming or None,
        text_column=args.text_column,
        train_split=args.train_split,
        eval_split=args.eval_split,
    )
    options = PrepareOptions(
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        max_sequence_length=args.max_sequence_length,
        cleaning=CleaningOptions(lowercase=args.lowercase, strip_punctuation=args.strip_punctuation),
    )
    bar = _progress_bar("clip")
    artifact = prepare_features(
        source, language, args.model, args.name, workspace, options, overwrite=args.overwrite, progress=bar
    )
    bar.close()
    verb = "reused" if artifact.reused else "prepared"
    counts = ", ".join(
        f"{s} {c['rows']} rows ({c['hours'] * 60:.1f} min)" for s, c in artifact.manifest["splits"].items()
    )
    print(f"{verb} {artifact.name}: {counts} → {artifact.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core", description="Whisper Studio: fine-tune Whisper for a language, from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", help="workspace folder (default: $STUDIO_HOME or ./workspace)")

    p = sub.add_parser("languages", parents=[home], help="the language table")
    p.set_defaults(func=cmd_languages)

    p = sub.add_parser("synth", parents=[home], help="make a synthetic speech dataset with espeak-ng")
    p.add_argument("--language", required=True, help="language code, e.g. nb, sv, es (see `languages`)")
    p.add_argument("--out", help="output folder (default: WORKSPACE/synth/LANG-N-SEED)")
    p.add_argument("--n", type=int, default=300, help="number of utterances (10%% become the test split)")
    p.add_argument("--seed", type=int, default=0, help="random seed for words, speed, pitch and voice")
    p.add_argument("--vocabulary-size", type=int, help="use only the first N words of the word list")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", parents=[home], help="turn a source into a feature artifact")
    p.add_argument("--source", required=True, help="a local folder, a Hub dataset id, or fleurs / common_voice / npsc")
    p.add_argument("--config", help="Hub dataset config (e.g. nb_no); presets fill it in from the language")
    p.add_argument("--language", required=True, help="language code (see `languages`)")
    p.add_argument("--model", required=True, help="Hub id (openai/whisper-small), a local model folder, or demo")
    p.add_argument("--name", required=True, help="name of the prepared dataset in the workspace")
    p.add_argument("--streaming", action="store_true", help="stream the Hub dataset instead of downloading it")
    p.add_argument("--train-split", default="train", help="the source's split used for training")
    p.add_argument("--eval-split", default="test", help="the source's split used for evaluation")
    p.add_argument("--text-column", help="transcript column (default: detected)")
    p.add_argument("--max-train-samples", type=int, help="keep at most N training rows")
    p.add_argument("--max-eval-samples", type=int, help="keep at most N evaluation rows")
    p.add_argument("--max-sequence-length", type=int, default=255, help="drop rows whose labels are longer")
    p.add_argument("--lowercase", action="store_true", help="lowercase transcripts")
    p.add_argument("--strip-punctuation", action="store_true", help="remove punctuation (letters such as æøå stay)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name made from other inputs")
    p.set_defaults(func=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
