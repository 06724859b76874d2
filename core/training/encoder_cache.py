"""Encoder states computed once: the lever that makes decoder training on a CPU many times faster.

With the encoder frozen, its output for a clip never changes, so there is no reason to run it again every epoch.
The states of each split are computed once (batches of ENCODE_BATCH, inference mode), stored beside the artifact
as float16 `.npy` files of shape (rows, positions, d_model) and memory-mapped by the trainer, which then runs only
the decoder: whisper-base at a 10 s window is 500 positions × 512 × 2 bytes = 0.5 MB per clip.

The cache is keyed by the artifact's fingerprint, a hash of the encoder's weights and the number of mel frames, so
a different base model, a fine-tuned encoder or another window never reads stale states; it is written in a
temporary folder and renamed, and reused by later runs and by resume. `read_cached_states` makes the model accept
those states where it expects log-mel features (laid out like them, d_model × positions): its frozen encoder passes
them through, so the Trainer, `generate` and the checkpoints (which still hold the encoder's weights) need no other
change.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from core.data.artifact import Artifact, features_from_row
from core.errors import StudioError
from core.workspace import read_json_if_intact, staged_folder, write_json_atomic

CACHE_FOLDER = "encoder-states"
META_FILE = "meta.json"  # written last: a cache folder holding it is complete, and ours to replace
ENCODE_BATCH = 8  # clips per encoder call on a GPU: enough to keep it busy, small enough for a laptop's memory
STATES_DTYPE = np.float16
# On a CPU the encoder runs one clip per call in ONNX Runtime: whisper-base at a 10 s window took 213 ms a clip in
# torch at 8 a call, 185 ms at 1, 151 ms in ONNX Runtime at 1 (2 cores; the same float32 weights, states within 1e-4).
# Above this many bytes of float32 weights the one-file ONNX graph would pass protobuf's 2 GB: torch runs it instead.
ONNX_MOST_BYTES = 1_500_000_000


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """A hash of every encoder weight: changes when any weight changes (another model, a fine-tuned encoder)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_folder(artifact: Artifact, encoder: torch.nn.Module, frames: int) -> Path:
    key = hashlib.sha256(
        f"{artifact.manifest.fingerprint}:{encoder_fingerprint(encoder)}:{frames}".encode()
    ).hexdigest()[:16]
    return artifact.path / CACHE_FOLDER / key


def cached_states(
    artifact: Artifact,
    splits: list[str],
    encoder: torch.nn.Module,
    frames: int,
    progress: Callable[[str, int, int], None] | None = None,
    rows: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Split → memory-mapped states (rows, positions, d_model) for `splits`, computed on first use; with `rows`, only
    a split's first rows[split] rows (what a run reads of it: replay's share of a reference set)."""
    folder = cache_folder(artifact, encoder, frames)
    meta = read_json_if_intact(folder / META_FILE)  # damaged: computed again
    wanted = {}
    for split in splits:
        total = artifact.read_split(split).num_rows
        wanted[split] = min((rows or {}).get(split) or total, total)
    if not meta or any(meta["splits"].get(split, 0) < n for split, n in wanted.items()):
        _build(artifact, wanted, encoder, frames, folder, progress)
    return {split: np.load(folder / f"{split}.npy", mmap_mode="r") for split in splits}


def _build(artifact, wanted: dict[str, int], encoder, frames, folder: Path, progress) -> None:
    """Encode the first wanted[split] rows of each split into a staged folder that replaces `folder`."""
    positions = frames // 2  # the encoder's stride-2 convolution halves the mel frames
    d_model = encoder.config.d_model
    tables = {split: artifact.read_split(split) for split in wanted}
    needed = sum(wanted.values()) * positions * d_model * np.dtype(STATES_DTYPE).itemsize
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if needed > free * 0.9:
        raise StudioError(
            f"caching encoder states needs {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free in "
            f"{folder.parent}: free some space, use a shorter window_seconds, or turn cache_encoder_states off"
        )
    shape = artifact.feature_shape()
    was_training = encoder.training
    encoder.eval()
    try:
        with (
            staged_folder(folder, marker=META_FILE) as staging,
            torch.inference_mode(),
            _encoder_calls(encoder, shape[0], frames) as (encode, per_call),
        ):
            for split, table in tables.items():
                count = wanted[split]
                states = np.lib.format.open_memmap(
                    staging / f"{split}.npy", mode="w+", dtype=STATES_DTYPE, shape=(count, positions, d_model)
                )
                for start in range(0, count, per_call):
                    stop = min(start + per_call, count)
                    batch = np.stack([features_from_row(table, i, shape)[:, :frames] for i in range(start, stop)])
                    states[start:stop] = encode(batch.astype(np.float32)).astype(STATES_DTYPE)
                    if progress:
                        progress(split, stop, count)
                states.flush()
                del states
            write_json_atomic(
                staging / META_FILE,
                {
                    "splits": wanted,
                    "frames": frames,
                    "positions": positions,
                    "d_model": d_model,
                    "dtype": np.dtype(STATES_DTYPE).name,
                    "artifact": artifact.manifest.fingerprint,
                },
            )
    finally:
        encoder.train(was_training)


@contextmanager
def _encoder_calls(encoder, mels: int, frames: int) -> Iterator[tuple[Callable[[np.ndarray], np.ndarray], int]]:
    """(encode, clips per call): `encode` takes log-mel (clips, mels, frames) float32 and returns the encoder's
    states (clips, positions, d_model). On a GPU, torch in batches; on a CPU, ONNX Runtime one clip at a time
    (torch, one clip at a time, where ONNX Runtime is missing, the encoder too large, or its export fails)."""
    device = next(encoder.parameters()).device

    def in_torch(batch: np.ndarray) -> np.ndarray:
        return encoder(torch.from_numpy(batch).to(device)).last_hidden_state.float().cpu().numpy()

    size = sum(p.numel() for p in encoder.parameters()) * 4
    if device.type != "cpu" or size > ONNX_MOST_BYTES:
        yield in_torch, (ENCODE_BATCH if device.type != "cpu" else 1)
        return
    with tempfile.TemporaryDirectory(prefix="studio-encoder-") as scratch:
        session = _onnx_session(encoder, mels, frames, Path(scratch) / "encoder.onnx")
        if session is None:
            yield in_torch, 1
            return
        yield (lambda batch: session.run(None, {"log_mel": batch})[0]), 1


def _onnx_session(encoder, mels: int, frames: int, path: Path):
    """An ONNX Runtime session of `encoder` (as the model has it: its window, its weights), or None when ONNX
    Runtime is not installed or the export fails."""
    try:
        import onnxruntime
    except ImportError:
        return None

    class States(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, log_mel):
            return self.encoder(log_mel).last_hidden_state

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                States(), (torch.zeros(1, mels, frames),), str(path), dynamo=False, input_names=["log_mel"],
                output_names=["states"], dynamic_axes={"log_mel": {0: "clips"}, "states": {0: "clips"}},
            )  # fmt: skip
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 — any failure of the exporter leaves torch to do the same work
        print(f"encoder states: computed in torch (the ONNX export failed: {type(err).__name__})", flush=True)
        return None


def read_cached_states(model) -> None:
    """Make `model`'s (frozen) encoder pass cached states through: wherever the Trainer or `generate` feeds it
    "input_features", those are the states this module computed. Only the instance's forward is replaced, so its
    weights, the state dict and every saved checkpoint stay those of the real encoder."""
    from transformers.modeling_outputs import BaseModelOutput

    encoder = model.get_encoder()
    if any(p.requires_grad for p in encoder.parameters()):
        raise StudioError("cached encoder states need a frozen encoder: turn freeze_encoder on")
    positions = encoder.config.max_source_positions

    def pass_states_through(input_features, *args, **kwargs):
        # States arrive laid out like log-mel, (batch, d_model, positions), because `generate` treats the last axis
        # as frames: it may pad it with zeros up to the window's frame count (2 × positions); those are cut off.
        return BaseModelOutput(last_hidden_state=input_features[:, :, :positions].transpose(1, 2))

    encoder.forward = pass_states_through
