"""Which model a name means, and loading it: a Hub id, a local folder, the installed whisper-base, or `demo`.

A model is always loaded with its processor (feature extractor + tokenizer) and generation config; language and
task are set through the generation config, never `forced_decoder_ids`. Names resolve to a loadable location:

- `demo`: the 4M-parameter offline toy (core/model_folders.py), built into the workspace on first use;
- `whisper-base`: the installed OpenAI whisper-base (core/installed_models.py), converted into the workspace once;
- `openai/whisper-base`: the Hub model when the Hub can be reached (or it is in the Hugging Face cache), else the
  installed copy, said in one line;
- a folder (checkpoint, converted model, CTranslate2 export), or any other Hub id, as given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from core.errors import StudioError
from core.models.export_loader import export_format, network_from_export
from core.models.hf_folders import DEMO, PROCESSOR_FILES, build_demo_model
from core.models.installed import DEFAULT_MODEL
from core.workspace import Workspace, read_json_if_intact

# transformers 5 saves a processor as processor_config.json; Hub checkpoints have preprocessor_config.json
CT2_MARKERS = ("studio_export.json", "studio_model.json")  # an export of ours, or the installed whisper-base
log = logging.getLogger("studio")
# What the pages offer as a base model, first the default: label → name.
BASE_MODELS = {
    "whisper-base · OpenAI, 74M parameters, installed offline": DEFAULT_MODEL,
    "openai/whisper-small · 244M parameters, from the Hub": "openai/whisper-small",
    "demo · 4M-parameter toy, 3 s window, untrained": DEMO,
}


def demo_path(workspace: Workspace) -> Path:
    return workspace.models / DEMO


def is_ctranslate2(location: str | Path) -> bool:
    """Whether a folder is a CTranslate2 model of ours (an export, or the installed model's engine)."""
    path = Path(location)
    return path.is_dir() and (path / "model.bin").is_file() and any((path / m).is_file() for m in CT2_MARKERS)


def resolve_model(model: str, workspace: Workspace) -> str:
    """A loadable location: a folder made on first use (demo, whisper-base), a local folder, or a Hub id."""
    from core.models.installed import ensure_installed, installed_name

    if not model or not model.strip():
        raise StudioError(
            "no model given: choose whisper-base, a Hub id such as openai/whisper-small, a folder, or demo"
        )
    if model == DEMO:
        path = demo_path(workspace)
        if not (path / "config.json").is_file():
            build_demo_model(path)
        return str(path)
    installed = installed_name(model)
    if installed and (model == installed or not hub_model_available(model)):
        if model != installed:
            log.info("%s: the Hub cannot be reached; using the installed copy (%s)", model, installed)
        return str(ensure_installed(workspace, installed))
    path = Path(model).expanduser()
    if path.is_dir():
        if not any((path / name).is_file() for name in ("config.json",) + PROCESSOR_FILES):
            raise StudioError(f"{path}: no Whisper model here (no config.json, no processor files)")
        return str(path.resolve())
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1):
        raise StudioError(
            f"{model}: no such model folder; give a folder, a Hub id like openai/whisper-small, whisper-base or demo"
        )
    return model


_HUB_CHECKS: dict[str, bool] = {}


def hub_model_available(model_id: str) -> bool:
    """Whether `model_id` can be loaded from the Hub now: in the local Hugging Face cache, or the Hub answers
    within a few seconds. Asked once per process."""
    if model_id not in _HUB_CHECKS:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(model_id, "config.json"), str)
        _HUB_CHECKS[model_id] = cached or (not _hub_offline() and _hub_answers())
    return _HUB_CHECKS[model_id]


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_answers(timeout_s: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def model_fingerprint(model: str, workspace: Workspace) -> str:
    """What identifies a model's processor for feature reuse: its location and its preprocessing files."""
    location = resolve_model(model, workspace)
    digest = hashlib.sha256(location.encode())
    for name in PROCESSOR_FILES + ("tokenizer_config.json", "tokenizer.json"):
        file = Path(location) / name
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def damaged_model_file(folder: Path) -> tuple[Path, str] | None:
    """(file, what is wrong) for the first file of a local model folder that cannot be read: a settings file that
    is no JSON text, a weights file whose safetensors header is broken (cut short, overwritten); None when all read.
    Cheap: only the JSON files and the weights' headers are read."""
    from safetensors import SafetensorError, safe_open

    for name in ("config.json", "generation_config.json", *PROCESSOR_FILES, "tokenizer_config.json", "tokenizer.json"):
        file = folder / name
        if not file.is_file():
            continue
        try:
            json.loads(file.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            return file, "not UTF-8 text"
        except json.JSONDecodeError:
            return file, "not valid JSON"
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), "pt"):
                pass
        except (SafetensorError, OSError) as err:
            return file, str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return None


def damaged_model_error(folder: Path) -> StudioError | None:
    """The one line for a local model folder with a damaged file, or None when its files read."""
    damaged = damaged_model_file(folder) if folder.is_dir() else None
    if damaged is None:
        return None
    file, why = damaged
    return StudioError(f"the model file {file} is damaged ({why}): re-export it or pick another checkpoint")


def _load_error(model: str, location: str, err: Exception) -> StudioError:
    """A damaged file in a local folder, named; else what loading said, with the choices."""
    return damaged_model_error(Path(location)) or _explain_load_error(model, err)


def _explain_load_error(model: str, err: Exception) -> StudioError:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return StudioError(
        f"cannot load model '{model}': {text[:300]}; give whisper-base (installed), a Hub id such as "
        f"openai/whisper-small (needs the network, and HF_TOKEN for private models), a local model folder, or demo"
    )


def processor_location(location: str) -> str:
    """Where a model's processor files are: the folder itself, or for the installed CTranslate2 engine the
    transformers folder it names (our tokenizer lives there; the package's tokenizer.json stays for faster-whisper)."""
    for marker in CT2_MARKERS:
        pointer = (
            (read_json_if_intact(Path(location) / marker) or {}).get("processor") if Path(location).is_dir() else None
        )
        if pointer:
            return str((Path(location) / pointer).resolve())
    return location


def load_processor(model: str, workspace: Workspace):
    return processor_at(resolve_model(model, workspace), model)


def processor_at(location: str, model: str | None = None):
    """The processor of a resolved `location` (resolve_model's answer); `model` is the name errors show."""
    from transformers import WhisperProcessor

    folder = processor_location(location)
    try:
        return WhisperProcessor.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _load_error(model or location, folder, err) from None


def load_model(
    model: str,
    workspace: Workspace,
    language: str | None = None,
    task: str = "transcribe",
    overrides: dict | None = None,
):
    """(model, processor) with the generation config's language (a Whisper code such as `no`) and task set;
    `overrides` replace model-config values at load (dropout)."""
    return model_at(resolve_model(model, workspace), language, task, overrides, model)


def model_at(
    location: str,
    language: str | None = None,
    task: str = "transcribe",
    overrides: dict | None = None,
    model: str | None = None,
):
    """`load_model` for a resolved `location` (a Transcriber resolves its model once and loads both halves from
    there); `model` is the name errors show."""
    from safetensors import SafetensorError
    from transformers import WhisperForConditionalGeneration

    model = model or location
    if is_ctranslate2(location):
        raise StudioError(f"{model}: a CTranslate2 model runs inference only; train from its transformers folder")
    processor = processor_at(location, model)
    exported = export_format(location)
    try:
        if exported:  # a ggml or openai-whisper export of ours, read back into transformers
            network = network_from_export(Path(location), exported)
        else:
            network = WhisperForConditionalGeneration.from_pretrained(location, **(overrides or {}))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:  # RuntimeError: mismatched shapes
        raise _load_error(model, location, err) from None
    generation = network.generation_config
    generation.language = language
    generation.task = task
    generation.forced_decoder_ids = None
    network.config.forced_decoder_ids = None
    return network, processor
