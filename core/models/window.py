"""A model's listening window: shortened for training, and every folder a run writes put back in standard form.

Training with `window_seconds` (the whisper-base-cpu preset: 10 of Whisper's 30 s) cuts the encoder's position table
to its first seconds × 50 rows (the stride-2 convolution gives 50 positions a second) and pads features to that
window: about 3× less encoder work. A folder saved in that form is no standard Whisper: faster-whisper pads every
window to 3,000 frames (its `pad_or_trim`) and refuses a 500-position encoder, openai-whisper's loader and
whisper.cpp's converter expect 1,500 positions. So each checkpoint a shortened run saves is rewritten in its base
model's form: the full table (the run's first rows, then the base's rest; Whisper's encoder positions are fixed
sinusoids that transformers never trains), `max_source_positions` and the feature extractor's window. A run that
reloads such a checkpoint (resume, the best model at the end) takes the first rows again, through a load hook on
the shortened table. A folder written before this existed (short, no base at hand) is restored with Whisper's
sinusoids (`standardize_folder`), which export and publish call.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from core.audio.constants import ENCODER_POSITIONS_PER_SECOND, HOP_LENGTH, SAMPLE_RATE, WINDOW_POSITIONS
from core.errors import StudioError
from core.models.hf_folders import PROCESSOR_FILES
from core.workspace import read_json_if_intact, write_json_atomic

TABLE_KEY = "model.encoder.embed_positions.weight"  # the encoder's position table in a saved Whisper folder
WHISPER_WIDTHS = (384, 512, 768, 1024, 1280)  # d_model of whisper tiny, base, small, medium, large


@dataclass(frozen=True)
class FullWindow:
    """The base model's whole position table, kept while a run trains on its first rows."""

    table: torch.Tensor  # (positions, d_model)

    @property
    def positions(self) -> int:
        return self.table.shape[0]

    @property
    def seconds(self) -> int:
        return self.positions // ENCODER_POSITIONS_PER_SECOND


def apply_window(model, processor, seconds: int) -> FullWindow:
    """Listen to `seconds` instead of the model's whole window: the encoder's position table is cut to its first
    seconds × 50 rows and the processor pads to `seconds`. Returns the whole table, which every checkpoint of the
    run gets back (StandardWindowCallback); loading a standard checkpoint into this model takes its first rows."""
    positions = seconds * ENCODER_POSITIONS_PER_SECOND
    encoder = model.get_encoder()
    own = encoder.embed_positions.weight.shape[0]
    if positions > own:
        raise StudioError(
            f"window_seconds {seconds}: longer than the model's own {own // ENCODER_POSITIONS_PER_SECOND} s"
        )
    with torch.no_grad():
        full = FullWindow(encoder.embed_positions.weight.detach().clone().cpu())
    encoder.embed_positions = torch.nn.Embedding(positions, full.table.shape[1])
    encoder.embed_positions.weight.data.copy_(full.table[:positions])
    encoder.embed_positions.requires_grad_(False)
    encoder.embed_positions.register_load_state_dict_pre_hook(_first_rows)
    model.config.max_source_positions = positions
    _set_extractor_window(processor.feature_extractor, seconds)
    return full


def _first_rows(module, state_dict, prefix, *args) -> None:
    """A standard table loaded into a shortened one: its first rows (the rest were restored only for the folder)."""
    key = prefix + "weight"
    rows = module.weight.shape[0]
    if key in state_dict and state_dict[key].shape[0] > rows:
        state_dict[key] = state_dict[key][:rows]


def _set_extractor_window(extractor, seconds: int) -> None:
    extractor.chunk_length = seconds
    extractor.n_samples = seconds * extractor.sampling_rate
    extractor.nb_max_frames = extractor.n_samples // extractor.hop_length


def restore_window(folder: Path, full: FullWindow) -> bool:
    """Rewrite the Whisper folder `folder` in the base's form: `full`'s rows after the folder's own, the model
    config's max_source_positions and the feature extractor's window. Each file is written to a temporary path and
    renamed. Returns False when the folder is already whole."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights_file = _file_holding(folder, TABLE_KEY)
    with safe_open(str(weights_file), framework="pt") as handle:
        metadata = handle.metadata()
        weights = {key: handle.get_tensor(key) for key in handle.keys()}
    table = weights[TABLE_KEY]
    if table.shape[0] >= full.positions:
        return False
    if table.shape[1] != full.table.shape[1]:
        raise StudioError(f"{folder}: its encoder is {table.shape[1]} wide, its base model's {full.table.shape[1]}")
    weights[TABLE_KEY] = torch.cat([table, full.table[table.shape[0] :].to(table.dtype)]).contiguous()
    staging = weights_file.with_name(f".{weights_file.name}.{os.getpid()}.tmp")
    save_file(weights, str(staging), metadata=metadata)
    os.replace(staging, weights_file)
    config = json.loads((folder / "config.json").read_text())
    write_json_atomic(folder / "config.json", {**config, "max_source_positions": full.positions})
    for name in PROCESSOR_FILES:
        data = read_json_if_intact(folder / name)
        if isinstance(data, dict):
            extractor = data.get("feature_extractor", data)  # processor_config.json nests it, preprocessor_ does not
            seconds, rate = full.seconds, extractor.get("sampling_rate", SAMPLE_RATE)
            extractor.update(chunk_length=seconds, n_samples=seconds * rate)
            extractor["nb_max_frames"] = extractor["n_samples"] // extractor.get("hop_length", HOP_LENGTH)
            write_json_atomic(folder / name, data)
    return True


def _file_holding(folder: Path, key: str) -> Path:
    """The safetensors file of `folder` that holds `key` (a sharded folder names it in its index)."""
    index = read_json_if_intact(folder / "model.safetensors.index.json")
    name = index["weight_map"].get(key) if isinstance(index, dict) and "weight_map" in index else "model.safetensors"
    if not name or not (folder / name).is_file():
        raise StudioError(f"{folder}: no model.safetensors with the encoder's position table; is it a Whisper folder?")
    return folder / name


def is_short_window(folder: Path) -> bool:
    """Whether `folder` is a Whisper cut to a shorter window by a run written before checkpoints were restored: a
    table under Whisper's 1,500 rows in a model of one of Whisper's widths (tiny to large). Models built small on
    purpose (the demo's 3 s) are not."""
    config = read_json_if_intact(folder / "config.json")
    if not isinstance(config, dict) or (folder / "demo_spec.json").is_file():
        return False
    positions = config.get("max_source_positions")
    return isinstance(positions, int) and positions < WINDOW_POSITIONS and config.get("d_model") in WHISPER_WIDTHS


def standardize_folder(folder: Path) -> bool:
    """A short-window folder (`is_short_window`) restored in place to 30 s with Whisper's sinusoids, the rows every
    Whisper's encoder table holds (whisper-base's match them within 0.0003, its float16 rounding). Returns whether it
    changed."""
    from transformers.models.whisper.modeling_whisper import sinusoids

    if not is_short_window(folder):
        return False
    d_model = json.loads((folder / "config.json").read_text())["d_model"]
    return restore_window(folder, FullWindow(sinusoids(WINDOW_POSITIONS, d_model)))


class StandardWindowCallback(TrainerCallback):
    """After each checkpoint a shortened run saves (after the run folder's own on_save: a LoRA run's merged model is
    in place by then), rewrite it in the base model's form."""

    def __init__(self, full: FullWindow):
        self.full = full

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            restore_window(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}", self.full)
