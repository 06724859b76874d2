"""Publish a fine-tuned model to the Hugging Face Hub: the files to upload and a model card, written locally first.

`prepare_upload` writes WORKSPACE/publish/<name>/: the checkpoint's model files (no optimizer state), or its
CTranslate2 export, and a README.md model card with the `model-index` metadata the Hub reads: base model, dataset and
language, task, the training config, and zero-shot vs fine-tuned WER/CER on the held-out test split. The folder can
be inspected and is kept. `push` creates the repository (public or private) and uploads the folder with
`huggingface_hub`; the token comes from HF_TOKEN (or the app's Streamlit secrets) and is never written anywhere.
Offline, or with a refused token, the push gives one line and the folder stays for the next try.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from core.data.manifest import MANIFEST_FILE, Manifest
from core.errors import StudioError
from core.formatting import MISSING, percent
from core.languages import Language, get_language
from core.models.export import EXPORT_MARKER, EXPORT_RUNTIMES, HEADS_FILE, PARITY_FILE, export_model
from core.models.export_usage import usage
from core.models.hf_folders import PROCESSOR_FILES
from core.models.installed import INSTALLED, installed_name
from core.models.resolve import is_ctranslate2
from core.models.window import standardize_folder
from core.training.config import TrainConfig
from core.training.distil import student_lines
from core.training.run_records import RunResult
from core.training.runs import RunFolder, checkpoint_step
from core.workspace import Workspace, read_json_if_intact, staged_folder

MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    *PROCESSOR_FILES,
)
CT2_FILES = ("model.bin", "config.json", "vocabulary.txt", "vocabulary.json", "tokenizer.json", *PROCESSOR_FILES)
CARD_FILE = "README.md"  # the model card
# Our own mark on a prepared upload (never uploaded): which files are ours. A README.md proves nothing: a person's
# folder may have one, and replacing such a folder would delete their files.
PUBLISH_MARKER = ".studio_publish.json"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


@dataclass
class Upload:
    folder: Path
    repo_id: str
    card: str


def _run_and_checkpoint(model: str, workspace: Workspace) -> tuple[RunFolder, Path]:
    """A run name (its best checkpoint) or a checkpoint folder (or its CTranslate2 export) of a run."""
    path = Path(model).expanduser()
    if path.is_dir():
        run_path = path.parent
        if not (run_path / "config.json").is_file() or not path.name.startswith("checkpoint-"):
            raise StudioError(
                f"{path}: publish takes a run name or a checkpoint folder of a run (runs/RUN/checkpoint-N)"
            )
        return RunFolder(run_path), path.resolve()
    run = RunFolder.of(workspace, model).require()
    best = run.best_checkpoint_name()
    if not best:
        raise StudioError(f"run '{model}' has no checkpoint yet; train it first")
    return run, run.path / best


@dataclass(frozen=True)
class CardFacts:
    """What a model card says, gathered once from the run, its dataset's manifest and its held-out result."""

    config: TrainConfig
    language: Language
    task: str
    result: RunResult
    source: dict  # the dataset manifest's source description
    dataset_id: str | None  # the Hub dataset, when the data came from one
    base: str  # the base model's Hub id (whisper-base is openai/whisper-base)

    @classmethod
    def of(cls, run: RunFolder, checkpoint: Path) -> CardFacts:
        config = run.config()
        dataset = Workspace(run.path.parent.parent).dataset(config.data)
        manifest = Manifest.from_dict(read_json_if_intact(dataset / MANIFEST_FILE) or {})
        source = manifest.source
        base = INSTALLED[name].hub_id if (name := installed_name(config.model)) else config.model
        return cls(
            config=config,
            language=get_language(config.language or manifest.language or "en"),
            task=config.task or manifest.task,
            result=_result_for(run, checkpoint),
            source=source,
            dataset_id=source.get("dataset") if source.get("kind") == "hub" else None,
            base=base,
        )


def model_card(run: RunFolder, checkpoint: Path, repo_id: str, ctranslate2: bool) -> str:
    """README.md for the Hub: YAML metadata (language, base model, model-index with the test WER/CER) and the text."""
    facts = CardFacts.of(run, checkpoint)
    meta = _card_metadata(facts, repo_id, ctranslate2)
    return (
        "\n".join(line for line in meta if line != "") + "\n" + _card_text(facts, run, checkpoint, repo_id, ctranslate2)
    )


def _card_metadata(facts: CardFacts, repo_id: str, ctranslate2: bool) -> list[str]:
    """The card's YAML front matter, line by line: what the Hub indexes (language, base model, model-index)."""
    config, after = facts.config, facts.result.after
    metrics = []
    for key, name in (("wer", "WER"), ("cer", "CER")):
        if after is not None and getattr(after, key) is not None:
            value = round(100 * getattr(after, key), 2)
            metrics.append(f"    - type: {key}\n      value: {value}\n      name: Test {name}")
    return [
        "---",
        "language:",
        f'- "{facts.language.whisper}"',  # quoted: YAML reads a bare `no` (Norwegian) as false
        "license: mit",
        f"base_model: {facts.base}" if "/" in facts.base else "",
        "library_name: " + ("ctranslate2" if ctranslate2 else "transformers"),
        "pipeline_tag: automatic-speech-recognition",
        "tags:",
        "- whisper",
        "- whisper-studio",
        *([f"- {facts.task}"] if facts.task == "translate" else []),
        *(["datasets:", f"- {facts.dataset_id}"] if facts.dataset_id else []),
        "metrics:",
        "- wer",
        "model-index:",
        f"- name: {repo_id.split('/')[-1]}",
        "  results:",
        "  - task:",
        "      type: automatic-speech-recognition",
        "      name: Automatic Speech Recognition",
        "    dataset:",
        f"      name: {facts.dataset_id or config.data}",
        f"      type: {facts.dataset_id or 'local'}",
        *([f"      config: {facts.source['config']}"] if facts.source.get("config") else []),
        f"      split: {config.test_split or config.eval_split}",
        "    metrics:",
        *metrics,
        "---",
    ]


def _card_text(facts: CardFacts, run: RunFolder, checkpoint: Path, repo_id: str, ctranslate2: bool) -> str:
    """The card's text: the held-out result before and after, how to load the model, how it was trained."""
    result, config = facts.result, facts.config
    rows = "\n".join(
        f"| {label} | {percent(half and half.wer)} | {percent(half and half.cer)} |"
        for half, label in (
            (result.before, f"{facts.base} (zero-shot)"),
            (result.after, f"this model ({checkpoint.name})"),
        )
    )
    settings = "\n".join(
        f"| {k} | {v} |" for k, v in config.to_dict().items() if k not in ("run", "data") and v not in ("", None)
    )
    use = _usage(repo_id, facts.language.whisper, facts.task, ctranslate2)
    return f"""
# {repo_id.split("/")[-1]}

Whisper fine-tuned for **{facts.language.name}** ({facts.task}) from `{facts.base}` with
[Whisper Studio](https://github.com/) on `{facts.dataset_id or config.data}`.

## Results on the held-out test split ({result.after.utterances if result.after else MISSING} utterances)

The test split was never used for training or to choose the checkpoint (the validation split chose it).

| model | WER | CER |
|---|---:|---:|
{rows}
{_what_changed(result)}{_student(run)}
## How to use

{use}

## Training

Checkpoint `{checkpoint.name}` (step {checkpoint_step(checkpoint.name)}) of run `{run.name}`.

| setting | value |
|---|---|
{settings}
"""


def _what_changed(result: RunResult) -> str:
    """What got better and what got worse (the change's interval, guard sets, no-speech probes, language ID)."""
    lines = result.report_lines()
    if not lines:
        return ""
    listed = "\n".join(f"- {line}" for line in lines)
    return (
        "\n### What fine-tuning changed besides the target\n\nBefore → after, measured by the run on sets it never "
        "trained on: guard sets are other languages or domains the base model knew; probes are clips with no "
        f"speech (any word there is made up); intervals are 95% paired bootstraps over utterances.\n\n{listed}\n"
    )


def _student(run: RunFolder) -> str:
    """A distilled student's teacher, layers, WER and speed against the teacher; empty for any other run."""
    lines = student_lines(run)
    return "\n### A smaller student\n\n" + "\n".join(f"- {line}" for line in lines) + "\n" if lines else ""


def _result_for(run: RunFolder, checkpoint: Path) -> RunResult:
    result = run.result()
    name = checkpoint.name.split("-ct2-")[0]
    if result.after is not None and result.after.checkpoint != name:
        return RunResult(before=result.before)  # the test figure is the best checkpoint's, not this one's
    return result


def _usage(repo_id: str, language: str, task: str, ctranslate2: bool) -> str:
    return usage("ct2" if ctranslate2 else "transformers", repo_id, "", language, task)


def runtime_sections(exports: list, repo_id: str, language: str, task: str) -> str:
    """Per runtime: where its files are in the repository, the exact lines that load and run them, and the WER
    parity measured in that runtime (from the export's parity.json), or that none was measured."""
    parts = []
    for exported in exports:
        checks = (read_json_if_intact(exported.folder / PARITY_FILE) or {}).get("results", [])
        measured = (
            "\n".join(f"- {c['summary']}" for c in checks if isinstance(c, dict) and "summary" in c)
            or "- parity not measured (export with --data to measure it in this runtime)"
        )
        heads = (read_json_if_intact(exported.folder / HEADS_FILE) or {}).get("alignment_heads")
        lines = usage(exported.format, repo_id, _where(exported), language, task, heads)
        parts.append(
            f"### {EXPORT_RUNTIMES[exported.format]}: `{_where(exported)}/`\n\n{lines}\n\n"
            f"WER parity on the held-out test split, in this runtime:\n\n{measured}\n"
        )
    return "\n".join(parts)


def prepare_upload(
    model: str, workspace: Workspace, repo_id: str, ctranslate2: str | None = None, formats: tuple[str, ...] = ()
) -> Upload:
    """Write WORKSPACE/publish/<repo name>/ (model files + README.md) for `model`: a run name (its best
    checkpoint) or a checkpoint folder; with `ctranslate2` (one of QUANTIZATIONS) its CTranslate2 export instead.
    Each of `formats` (ggml, openai, onnx, ct2) is exported (or its export beside the checkpoint reused) and goes
    into a folder of its name beside the model, with its runtime's lines and parity figure on the card."""
    if not REPO_ID.match(repo_id or ""):
        raise StudioError(f"repository '{repo_id}': give it as owner/name (letters, digits, '-', '_', '.')")
    run, checkpoint = _run_and_checkpoint(model, workspace)
    folder = workspace.publish / repo_id.replace("/", "--")
    _check_publish_folder(folder)
    source = checkpoint
    if ctranslate2:
        from core.models.export import export_ctranslate2

        source = Path(export_ctranslate2(str(checkpoint), workspace, ctranslate2))
    elif is_ctranslate2(checkpoint):
        source, checkpoint = checkpoint, checkpoint.with_name(checkpoint.name.split("-ct2-")[0])
    engine = is_ctranslate2(source)
    files = [name for name in (CT2_FILES if engine else MODEL_FILES) if (source / name).is_file()]
    if "model.safetensors" not in files and "model.bin" not in files:
        raise StudioError(f"{source}: no model weights to publish (model.safetensors or model.bin)")
    exports = _exports(checkpoint, workspace, formats)
    card = model_card(run, checkpoint, repo_id, engine)
    if exports:
        facts = CardFacts.of(run, checkpoint)
        card += "\n## Other runtimes\n\n" + runtime_sections(exports, repo_id, facts.language.whisper, facts.task)
    with staged_folder(folder, marker=PUBLISH_MARKER) as staging:
        for name in files:
            shutil.copyfile(source / name, staging / name)
        for exported in exports:
            _copy_export(exported, staging / _where(exported))
        processor = read_json_if_intact(source / "processor_config.json")
        if (
            isinstance(processor, dict)
            and "feature_extractor" in processor
            and not (staging / PROCESSOR_FILES[1]).exists()
        ):
            # older transformers and faster-whisper read the feature extractor from preprocessor_config.json
            (staging / PROCESSOR_FILES[1]).write_text(json.dumps(processor["feature_extractor"], indent=2))
        standardize_folder(staging)  # a short-window checkpoint of an earlier run goes out as standard Whisper
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        listed = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        (staging / PUBLISH_MARKER).write_text(json.dumps({"repo": repo_id, "files": listed}, indent=2))
    return Upload(folder, repo_id, card)


def _where(exported) -> str:
    """The export's folder inside the repository: its format's name (ggml/, openai/, onnx/, ct2/)."""
    return exported.format


def _check_publish_folder(folder: Path) -> None:
    """A prepared upload is replaced only when every file in it is one publish wrote (listed in PUBLISH_MARKER);
    a folder of anything else, or one a person added files to, is refused before any work."""
    if not folder.exists():
        return
    marker = read_json_if_intact(folder / PUBLISH_MARKER)
    present = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    ours = set((marker or {}).get("files", [])) | {PUBLISH_MARKER} if isinstance(marker, dict) else set()
    theirs = [name for name in present if name not in ours]
    if theirs:
        raise StudioError(
            f"{folder} holds files publish did not write ({', '.join(theirs[:5])}); "
            f"move them away or choose another --repo name; nothing was changed"
        )


def _exports(checkpoint: Path, workspace: Workspace, formats: tuple[str, ...]) -> list:
    """Each format's export of `checkpoint`: the one beside it when it is an export of this checkpoint (its
    parity.json then travels too), else made now."""
    from core.models.export import ExportedModel, export_folder

    exports = []
    for fmt in formats:
        beside = export_folder(checkpoint, fmt, "int8", None, False)
        marker = read_json_if_intact(beside / EXPORT_MARKER)
        if isinstance(marker, dict) and marker.get("source") == str(checkpoint) and marker.get("files"):
            exports.append(ExportedModel(fmt, beside, tuple(marker["files"]), marker.get("variants", {})))
        else:
            exports += export_model(str(checkpoint), workspace, (fmt,), "int8")
    return exports


def _copy_export(exported, target: Path) -> None:
    """The export's runtime files (not our marker) into `target` inside the upload."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (*exported.files, PARITY_FILE, HEADS_FILE):
        if (exported.folder / name).is_file() and name != EXPORT_MARKER:
            shutil.copyfile(exported.folder / name, target / name)


def prepared_upload(folder: Path, repo_id: str) -> Upload:
    """An upload folder written earlier (for --push-only)."""
    card = folder / CARD_FILE
    if not card.is_file() or not (folder / PUBLISH_MARKER).is_file():
        raise StudioError(
            f"{folder}: no prepared upload of ours here (no {PUBLISH_MARKER}); run publish without --push-only first"
        )
    return Upload(folder, repo_id, card.read_text(encoding="utf-8"))


def push(upload: Upload, token: str | None, private: bool = False) -> str:
    """Create the repository and upload the folder; returns the repository's URL. The folder stays either way."""
    import httpx2  # huggingface_hub's HTTP client: its transport errors are what "no network" looks like
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = token or os.environ.get("HF_TOKEN") or None
    if not token:
        raise StudioError(
            f"no Hugging Face token: set HF_TOKEN (a write token from huggingface.co/settings/tokens); "
            f"the upload is ready in {upload.folder}"
        )
    api = HfApi(token=token)
    keep = (
        f"the upload is ready in {upload.folder}; push it again later with: "
        f"python -m core publish {quote(str(upload.folder))} --repo {quote(upload.repo_id)} --push-only"
    )
    try:
        url = api.create_repo(upload.repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=upload.repo_id,
            folder_path=str(upload.folder),
            commit_message="Upload from Whisper Studio",
            ignore_patterns=[PUBLISH_MARKER],
        )
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status in (401, 403):
            raise StudioError(f"the Hub refused the token ({status}): use a write token in HF_TOKEN; {keep}") from None
        raise StudioError(f"the Hub answered HTTP {status} ({str(err).splitlines()[0][:200]}); {keep}") from None
    except (OSError, httpx2.TransportError) as err:  # refused, DNS, timeout; offline mode is a ConnectionError
        raise StudioError(f"cannot reach the Hugging Face Hub ({type(err).__name__}); {keep}") from None
    return str(url)
