"""A run trained at a shortened window saves standard Whisper: a 30 s window and the whole encoder table in every
checkpoint, so transformers' pipeline, faster-whisper and openai-whisper load it with default settings.

A tiny Whisper with a 30 s window (the demo's shape at Whisper's window: 1,500 encoder positions, 64 wide) stands in
for whisper-base: faster-whisper pads every window to 3,000 frames, so only a 1,500-position model can run there.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file
from transformers import pipeline

from core.data import FolderSource, open_artifact, prepare_features
from core.languages import get_language
from core.models import export_ctranslate2
from core.models.hf_folders import DemoSpec, build_demo_model
from core.models.window import TABLE_KEY, apply_window, is_short_window, standardize_folder
from core.training import start_run

SHORT_S = 3  # the run's window: 150 of the model's 1,500 encoder positions
SILENCE = np.zeros(16000, np.float32)
FEW_TOKENS = dict(language="no", beam_size=1, temperature=0.0, max_new_tokens=4)  # an untrained model would loop


@pytest.fixture(scope="module")
def whisper_shaped(tmp_path_factory, synth_folder, session_workspace):
    """(model folder, dataset name): a tiny 30 s Whisper and the synthetic folder prepared with its processor."""
    model = build_demo_model(tmp_path_factory.mktemp("models") / "tiny-30s", DemoSpec(window_seconds=30))
    prepare_features(FolderSource(synth_folder), get_language("nb"), str(model), "nb-30s", session_workspace)
    return model, "nb-30s"


def _a_clip(workspace, data: str) -> np.ndarray:
    table = open_artifact(workspace, data).read_split("test")
    return np.frombuffer(table.column("audio")[0].as_py(), dtype=np.int16).astype(np.float32) / 32768


@pytest.mark.slow  # a training run and an export
def test_a_short_window_run_saves_standard_whisper_that_faster_whisper_runs(whisper_shaped, workspace, tmp_path):
    from faster_whisper import WhisperModel

    model, data = whisper_shaped
    config = tiny_config(
        "short", data=data, model=str(model), window_seconds=SHORT_S, max_steps=2, eval_steps=2, save_steps=2
    )
    run = start_run(replace(config, logging_steps=1, generation_max_length=8), workspace, foreground=True)
    # the run ends by loading its best (standard) checkpoint into its shortened model: that load must take the
    # table's first rows, or the run fails with a size mismatch
    assert run.status().state == "completed", run.log_tail(30)
    base = load_file(str(model / "model.safetensors"))[TABLE_KEY]
    for checkpoint in run.checkpoints():
        table = load_file(str(checkpoint / "model.safetensors"))[TABLE_KEY]
        assert table.shape == (1500, 64) and torch.equal(table, base)  # the positions are fixed: all the base's rows
        assert json.loads((checkpoint / "config.json").read_text())["max_source_positions"] == 1500
        extractor = json.loads((checkpoint / "processor_config.json").read_text())["feature_extractor"]
        assert (extractor["chunk_length"], extractor["nb_max_frames"]) == (30, 3000)
    checkpoint = run.checkpoints()[-1]
    clip = _a_clip(workspace, data)
    assert isinstance(pipeline("automatic-speech-recognition", model=str(checkpoint))(clip)["text"], str)
    exported = export_ctranslate2(str(checkpoint), workspace, "int8", out=tmp_path / "ct2")
    segments, info = WhisperModel(str(exported), device="cpu", compute_type="int8").transcribe(clip, **FEW_TOKENS)
    list(segments)  # decoding runs the encoder: a 150-position export fails here on faster-whisper's 3,000 frames
    assert info.duration == pytest.approx(len(clip) / 16000, abs=0.01)


@pytest.mark.slow  # an export of a 20M-parameter model
def test_a_short_folder_from_before_is_exported_whole_and_left_as_it_was(tmp_path):
    """A folder saved short (by a run before checkpoints were restored) is exported from a restored copy."""
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration

    from core.models.hf_folders import whisper_config, whisper_processor
    from core.workspace import Workspace

    # whisper-tiny's width (384) makes it a cut-down Whisper; one small layer each side keeps it quick
    processor = whisper_processor(80, 30)
    sizes = dict(d_model=384, encoder_layers=1, decoder_layers=1, encoder_attention_heads=6, decoder_attention_heads=6)
    sizes.update(encoder_ffn_dim=256, decoder_ffn_dim=256, num_mel_bins=80, max_source_positions=1500)
    network = WhisperForConditionalGeneration(whisper_config(processor.tokenizer, sizes))
    original = network.get_encoder().embed_positions.weight.detach().clone()  # Whisper's sinusoids
    apply_window(network, processor, SHORT_S)
    short = tmp_path / "short"
    network.save_pretrained(short)
    processor.save_pretrained(short)
    assert is_short_window(short)
    exported = export_ctranslate2(str(short), Workspace.open(tmp_path / "ws"), "int8", out=tmp_path / "ct2")
    assert json.loads((short / "config.json").read_text())["max_source_positions"] == 150  # the source unchanged
    assert json.loads((exported / "preprocessor_config.json").read_text())["chunk_length"] == 30
    list(WhisperModel(str(exported), device="cpu", compute_type="int8").transcribe(SILENCE, **FEW_TOKENS)[0])
    assert standardize_folder(short) and not standardize_folder(short)  # in place, once
    restored = load_file(str(short / "model.safetensors"))[TABLE_KEY]
    assert restored.shape == (1500, 384) and torch.allclose(restored, original, atol=1e-5)


def test_the_demo_keeps_its_own_window(tmp_path):
    """A model small on purpose (the demo: 3 s, 150 positions) is no cut-down Whisper: left as it is."""
    demo = build_demo_model(tmp_path / "demo")
    assert not is_short_window(demo) and not standardize_folder(demo)
