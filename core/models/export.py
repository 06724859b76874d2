"""Export a checkpoint to the runtimes people run Whisper in: CTranslate2 (faster-whisper), ggml (whisper.cpp),
openai-whisper's `.pt`, and ONNX for onnxruntime and sherpa-onnx. One folder per format:

    ct2      model.bin (int8, float16, int8_float16 or float32) + config.json + vocabulary, as faster-whisper loads
    ggml     ggml-model.bin (float16) and ggml-model-q8_0.bin (core/models/export_ggml.py)
    openai   model.pt (core/models/export_openai.py)
    onnx     encoder/decoder .onnx and .int8.onnx + tokens.txt (core/models/export_onnx.py)

Every folder also holds the checkpoint's tokenizer and processor files (so our own Transcriber, `serve` and publish
read it like a model folder), `alignment_heads.json` when the checkpoint names its heads, and EXPORT_MARKER, written
last: what was exported from where, and which files are the export's. `core.evaluation.parity` then transcribes a
split in each format's own runtime and compares the WER with the checkpoint's.

An export is standard Whisper: a checkpoint of a shortened run (`window_seconds`) is saved whole already
(core/models/window.py); a short folder written before that is converted from a restored copy, never changed itself.

`--out` may name a new or empty folder or an earlier export of ours: that export's files are replaced (and said),
files a person added there are carried into the new export, never deleted. A folder of anything else is refused.
An export is built in `.OUT.PID.*` beside `--out` and renamed when complete; one left by a killed export (its
process gone) is removed by the next export to the same place.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import StudioError
from core.models.export_loader import EXPORT_MARKER
from core.models.hf_folders import PROCESSOR_FILES
from core.models.resolve import damaged_model_error, is_ctranslate2, resolve_model
from core.workspace import (
    Workspace,
    read_json_if_intact,
    remove_abandoned_staging,
    staged_folder,
    write_json_atomic,
)

EXPORT_FORMATS = ("ct2", "ggml", "openai", "onnx")
EXPORT_RUNTIMES = {
    "ct2": "faster-whisper (CTranslate2)",
    "ggml": "whisper.cpp (pywhispercpp)",
    "openai": "openai-whisper",
    "onnx": "sherpa-onnx (onnxruntime)",
}
QUANTIZATIONS = ("int8", "float16", "int8_float16", "float32")  # CTranslate2's; the other formats write their own
HEADS_FILE = "alignment_heads.json"
PARITY_FILE = "parity.json"  # written by core.evaluation.parity after the export: the last check in its runtime
COPIED = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json", *PROCESSOR_FILES)
CT2_FILES = ("model.bin", "config.json", "vocabulary.json", "vocabulary.txt", "tokenizer.json",
             "tokenizer_config.json", "generation_config.json", *PROCESSOR_FILES)  # fmt: skip
# The files of each format's variants: variant → file (onnx: the encoder; its decoder is the same name's twin)
VARIANT_FILES = {
    "ggml": {"float16": "ggml-model.bin", "q8_0": "ggml-model-q8_0.bin"},
    "openai": {"float16": "model.pt"},
    "onnx": {"float32": "encoder.onnx", "int8": "encoder.int8.onnx"},
}


@dataclass(frozen=True)
class ExportedModel:
    """One format's export: its folder, its files, its variants, and what it replaced or kept of a folder there."""

    format: str
    folder: Path
    files: tuple[str, ...]
    variants: dict[str, str]  # variant → the file a runtime loads (ct2: the folder itself, ".")
    replaced: tuple[str, ...] = ()  # files of an earlier export of ours in the same folder
    kept: tuple[str, ...] = field(default=())  # files a person had added there, carried into this export

    @property
    def summary(self) -> str:
        """'exported ggml → OUT (ggml-model.bin, ggml-model-q8_0.bin); replaced 2 files of an earlier export'"""
        text = f"exported {self.format} → {self.folder} ({', '.join(self.variants.values())})"
        if self.replaced:
            text += f"; replaced the earlier export there ({', '.join(self.replaced)})"
        if self.kept:
            text += f"; kept your files: {', '.join(self.kept)}"
        return text


def parse_formats(values: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """`ct2`, `ggml,onnx`, repeated values, or `all` → the formats in EXPORT_FORMATS order; default ct2."""
    if isinstance(values, str):
        values = [values]
    wanted = {part.strip() for value in values or ["ct2"] for part in value.split(",") if part.strip()}
    if "all" in wanted:
        return EXPORT_FORMATS
    unknown = sorted(wanted - set(EXPORT_FORMATS))
    if unknown or not wanted:
        raise StudioError(f"export format {', '.join(unknown) or '(none)'}: choose {', '.join(EXPORT_FORMATS)} or all")
    return tuple(f for f in EXPORT_FORMATS if f in wanted)


def export_folder(location: Path, fmt: str, quantization: str, out: Path | None, several: bool) -> Path:
    """Where one format's export goes: `out` for one format, `out/FORMAT` for several, else beside the checkpoint
    (NAME-ct2-int8, NAME-ggml, NAME-openai, NAME-onnx)."""
    suffix = f"ct2-{quantization}" if fmt == "ct2" else fmt
    if out is None:
        return location.with_name(f"{location.name}-{suffix}")
    return Path(out) / suffix if several else Path(out)


def export_model(
    model: str, workspace: Workspace, formats=("ct2",), quantization: str = "int8", out: Path | None = None
) -> list[ExportedModel]:
    """Export `model` (a checkpoint folder, whisper-base or demo) to each of `formats`; returns one record each.
    Everything is checked before the first file is written."""
    # 1. The request: formats, quantization, the packages each needs, the model folder and every target folder.
    formats = parse_formats(formats)
    if quantization not in QUANTIZATIONS:
        raise StudioError(f"quantization '{quantization}': choose one of {', '.join(QUANTIZATIONS)}")
    _check_packages(formats)
    location = Path(resolve_model(model, workspace))
    if not location.is_dir():
        raise StudioError(f"{model}: export needs a local model or checkpoint folder")
    if is_ctranslate2(location):
        raise StudioError(f"{model} is already a CTranslate2 model; export its transformers folder instead")
    damaged = damaged_model_error(location)
    if damaged:
        raise damaged
    targets = {fmt: export_folder(location, fmt, quantization, out, len(formats) > 1) for fmt in formats}
    for target in targets.values():
        check_out(target, location)
    # here, not at the top: window.py imports torch, and the command line's parser reads EXPORT_FORMATS on every start
    from core.models.export_source import load_source
    from core.models.window import is_short_window

    # 2. The checkpoint in standard form, read once for every format that is not CTranslate2's own converter.
    with staged_scratch(location) as scratch:
        source_folder = _standard_copy(location, scratch) if is_short_window(location) else location
        source = load_source(source_folder) if set(formats) - {"ct2"} else None
        # 3. Each format in its own staged folder, renamed into place when complete.
        facts = {"source": str(location), "quantization": quantization}
        return [_export_one(fmt, source_folder, source, targets[fmt], facts) for fmt in formats]


def export_ctranslate2(model: str, workspace: Workspace, quantization: str = "int8", out: Path | None = None) -> Path:
    """The CTranslate2 export alone; returns its folder."""
    return export_model(model, workspace, ("ct2",), quantization, out)[0].folder


def _export_one(fmt: str, source_folder: Path, source, target: Path, facts: dict) -> ExportedModel:
    previous, users = earlier_export(target)
    remove_abandoned_staging(target.parent, target.name)
    with staged_folder(target, marker=EXPORT_MARKER, tag=str(os.getpid())) as staging:
        written = _write_format(fmt, source_folder, source, staging, facts["quantization"])
        for name in COPIED:
            if (source_folder / name).is_file() and not (staging / name).exists():
                shutil.copyfile(source_folder / name, staging / name)
                written.append(name)
        heads = source.alignment_heads if source is not None else _heads_of(source_folder)
        if heads and fmt != "ct2":  # CTranslate2 keeps them in its own config.json
            write_json_atomic(staging / HEADS_FILE, _heads_record(heads, source.config))
            written.append(HEADS_FILE)
        _carry_users_files(target, users, staging)
        variants = {"ct2": {facts["quantization"]: "."}}.get(fmt) or dict(VARIANT_FILES[fmt])
        marker = {**facts, "format": fmt, "files": sorted(set(written)), "variants": variants}
        if fmt != "ct2":
            marker.pop("quantization")
        write_json_atomic(staging / EXPORT_MARKER, marker)
    return ExportedModel(fmt, target, tuple(sorted(set(written))), variants, tuple(previous), tuple(users))


def _write_format(fmt: str, source_folder: Path, source, staging: Path, quantization: str) -> list[str]:
    if fmt == "ct2":
        return _convert_ct2(source_folder, staging, quantization)
    if fmt == "ggml":
        from core.models.export_ggml import write_ggml

        return write_ggml(source, staging)
    if fmt == "openai":
        from core.models.export_openai import write_openai

        return write_openai(source, staging)
    from core.models.export_onnx import write_onnx

    return write_onnx(source, staging)


def _heads_record(heads: list, config) -> dict:
    """alignment_heads.json: the (layer, head) pairs, and openai/whisper's `set_alignment_heads` form of them."""
    from core.models.export_openai import alignment_heads_dump

    dump = alignment_heads_dump(heads, config.decoder_layers, config.decoder_attention_heads)
    return {"alignment_heads": [list(h) for h in heads], "dump": dump}


def _heads_of(folder: Path) -> list:
    generation = read_json_if_intact(folder / "generation_config.json")
    return (generation or {}).get("alignment_heads") or [] if isinstance(generation, dict) else []


PACKAGES = {
    "ct2": (("ctranslate2", "ctranslate2"),),
    "onnx": (("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
}


def _check_packages(formats: tuple[str, ...]) -> None:
    """One line naming the pip command for a format whose converter's package is missing."""
    import importlib.util

    for fmt in formats:
        for module, dist in PACKAGES.get(fmt, ()):
            if importlib.util.find_spec(module) is None:
                raise StudioError(
                    f"the {fmt} export needs the {dist} package: .venv/bin/pip install -r requirements.txt"
                )


def check_out(out: Path, location: Path) -> None:
    """Refuse an `--out` that is a file, holds the model being exported, or holds anything but an earlier export
    of ours (the way `synth` refuses a folder it did not make): replacing it would delete what is there."""
    if out.exists() and not out.is_dir():
        raise StudioError(f"{out} is a file; give a folder for the export (--out)")
    if out.resolve() == location.resolve() or out.resolve() in location.resolve().parents:
        raise StudioError(f"{out} holds the model being exported; give a new folder for the export (--out)")
    if out.is_dir() and not (out / EXPORT_MARKER).is_file() and any(out.iterdir()):
        raise StudioError(
            f"{out} exists and is no export of ours (no {EXPORT_MARKER}); choose another --out, or empty that folder"
        )


def earlier_export(folder: Path) -> tuple[list[str], list[str]]:
    """(files of the earlier export of ours in `folder`, files a person added there). An export written before the
    marker listed its files counts CTranslate2's files as its own."""
    marker = read_json_if_intact(folder / EXPORT_MARKER)
    if not isinstance(marker, dict):
        return [], []
    ours = set(marker.get("files") or CT2_FILES) | {EXPORT_MARKER, PARITY_FILE}
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return [n for n in present if n in ours and n != EXPORT_MARKER], [n for n in present if n not in ours]


def _carry_users_files(target: Path, users: list[str], staging: Path) -> None:
    """Hard-link (or copy) the files a person added to the earlier export into the new one; refuse when the new
    export writes a file of the same name (theirs would be lost)."""
    clash = [name for name in users if (staging / name).exists()]
    if clash:
        raise StudioError(
            f"{target} holds your files {', '.join(clash)}, which this export would write over; move them away first"
        )
    for name in users:
        source = target / name
        if source.is_dir():
            shutil.copytree(source, staging / name, copy_function=_link_or_copy, symlinks=True)
        else:
            _link_or_copy(source, staging / name)


def _link_or_copy(source, destination) -> None:
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


class staged_scratch:
    """A scratch folder `.export-scratch.PID.d` beside the checkpoint (never a stray `tmp*` beside `--out`), removed
    on exit; one that a killed export left is removed by the next export from the same run."""

    def __init__(self, location: Path):
        self.parent = location.parent

    def __enter__(self) -> Path:
        remove_abandoned_staging(self.parent, "export-scratch")
        self.path = self.parent / f".export-scratch.{os.getpid()}.d"
        self.path.mkdir(exist_ok=True)
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _standard_copy(location: Path, scratch: Path) -> Path:
    """A copy of the short-window folder `location` under `scratch`, restored to the standard window."""
    from core.models.window import standardize_folder

    copy = scratch / location.name
    shutil.copytree(location, copy, ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*"))
    standardize_folder(copy)
    return copy


def _convert_ct2(location: Path, staging: Path, quantization: str) -> list[str]:
    """CTranslate2's converter, its failures on a model folder as one line (a damaged file named where one is)."""
    from ctranslate2.converters import TransformersConverter
    from safetensors import SafetensorError

    files = [name for name in COPIED if (location / name).is_file() and name != "config.json"]
    # The converter writes into a folder of its own; `force` lets it write into the staging folder.
    converter = TransformersConverter(str(location), copy_files=files)
    try:
        converter.convert(str(staging), quantization=quantization, force=True)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:  # UnicodeDecodeError: a ValueError
        damaged = damaged_model_error(location)
        if damaged:
            raise damaged from None
        text = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise StudioError(
            f"cannot convert {location} to CTranslate2 ({type(err).__name__}: {text}); "
            f"export a Whisper checkpoint folder (config.json, model.safetensors), or pick another checkpoint"
        ) from None
    processor = read_json_if_intact(location / "processor_config.json")
    if isinstance(processor, dict) and "feature_extractor" in processor:
        # faster-whisper and older tools read the feature extractor from preprocessor_config.json
        write_json_atomic(staging / "preprocessor_config.json", processor["feature_extractor"])
    return [p.name for p in staging.iterdir()]
