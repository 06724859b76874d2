"""Scale and speed levers on the demo: CTranslate2 export with parity, LoRA, a frozen encoder, DDP over two gloo
processes."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import make_audio, run_cli, tiny_config
from safetensors.torch import load_file
from transformers import WhisperForConditionalGeneration, pipeline

from core.audio import load_audio
from core.data import open_artifact
from core.errors import StudioError
from core.evaluation.parity import ExportOptions, export_with_parity
from core.models import export_ctranslate2, is_ctranslate2
from core.speech import EngineOptions, Transcriber
from core.training import resume_run, start_run
from core.workspace import Workspace

pytestmark = pytest.mark.slow  # training runs, exports and DDP


def _a_test_clip(workspace):
    """The 16 kHz samples of the first test utterance of the prepared demo set."""
    table = open_artifact(workspace, "nb-tiny").read_split("test")
    return np.frombuffer(table.column("audio")[0].as_py(), dtype=np.int16).astype(np.float32) / 32768


def test_ctranslate2_export_transcribes_and_checks_parity(populated, tmp_path):
    run = populated.run("page-run")
    checkpoint = run / json.loads((run / "best.json").read_text())["checkpoint"]
    exported = export_ctranslate2(str(checkpoint), populated, "int8")
    assert is_ctranslate2(exported) and exported.name == f"{checkpoint.name}-ct2-int8"
    speech = _a_test_clip(populated)
    exported_text = Transcriber(str(exported), populated, language="no").text(speech)
    original_text = Transcriber(str(checkpoint), populated, language="no").text(speech)
    assert exported_text and len(exported_text.split()) <= 2 * len(original_text.split()) + 2  # the same model, int8
    ((_, [check]),) = export_with_parity(
        str(checkpoint), populated, ExportOptions("int8", "nb-tiny", out=tmp_path / "int8")
    )
    assert (check.format, check.variant, check.change.utterances) == ("ct2", "int8", 3)
    assert check.change.difference == pytest.approx(check.wer - check.checkpoint_wer)
    assert check.failed == check.change.measurable  # fails only when the interval excludes 0
    result = run_cli(
        "export", "--model", str(checkpoint), "--quantization", "float32", "--data", "nb-tiny", home=populated.home
    )
    assert result.returncode == (1 if "FAILED" in result.stdout else 0), result.stderr[-1500:]
    assert "ct2 float32 in faster-whisper" in result.stdout, result.stdout
    with pytest.raises(StudioError, match="quantization 'int4'"):
        export_ctranslate2(str(checkpoint), populated, "int4")


def test_lora_and_frozen_encoder_keep_checkpoints_self_contained(workspace, demo_artifact):
    run = start_run(tiny_config("lora", lora_rank=4, freeze_encoder=True), workspace, foreground=True)
    assert run.status().state == "completed", run.status()
    losses = [r["loss"] for r in run.metrics() if "loss" in r]
    assert losses[-1] < losses[0]
    base = load_file(str(workspace.models / "demo" / "model.safetensors"))
    for checkpoint in run.checkpoints():
        # the adapter sits aside: at the root, from_pretrained would apply it again on top of the merged weights
        assert (checkpoint / "adapter" / "adapter_config.json").is_file()
        assert not (checkpoint / "adapter_config.json").exists()
        assert not WhisperForConditionalGeneration.from_pretrained(checkpoint)._hf_peft_config_loaded
        merged = load_file(str(checkpoint / "model.safetensors"))
        key = next(k for k in merged if "encoder.layers.0.self_attn.q_proj.weight" in k)
        assert torch.equal(merged[key], base[key])  # frozen: the encoder did not move
        decoder_key = next(k for k in merged if "decoder.layers.0.self_attn.q_proj.weight" in k)
        assert not torch.equal(merged[decoder_key], base[decoder_key])  # the merged adapter changed the decoder
        assert pipeline("automatic-speech-recognition", model=str(checkpoint)) is not None


def test_a_resumed_lora_run_continues_from_its_adapter(workspace, demo_artifact):
    run = start_run(tiny_config("lora-resume", lora_rank=4, freeze_encoder=True), workspace, foreground=True)
    straight = {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}
    # as if the process had died after checkpoint-6: the run resumes from there
    shutil.rmtree(run.checkpoint_path(12))
    run.update_status(state="interrupted", step=6)
    resume_run(run, workspace, foreground=True)
    assert run.status().state == "completed" and run.status().resumed_from == "checkpoint-6"
    resumed = {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}
    # the same steps from the same adapter give the same losses; a fresh adapter would start from the base's loss
    assert resumed[8] == pytest.approx(straight[8], rel=1e-3), (straight, resumed)


def test_lora_on_a_missing_module_fails_with_the_valid_names(workspace, demo_artifact):
    run = start_run(tiny_config("badlora", lora_rank=4, lora_target_modules="query"), workspace, foreground=True)
    status = run.status()
    assert status.state == "failed" and "query not in this model" in status.error
    assert "q_proj" in status.error


@pytest.mark.long
def test_two_gloo_processes_train_and_only_rank_0_writes(workspace, demo_artifact):
    run = start_run(
        tiny_config("ddp", nproc=2, max_steps=4, logging_steps=1, eval_steps=2, save_steps=2),
        workspace,
        foreground=True,
    )
    status = run.status()
    assert status.state == "completed" and status.step == 4, run.log_tail(30)
    rows = run.metrics()
    train_steps = [r["step"] for r in rows if "loss" in r]
    assert train_steps == [1, 2, 3, 4]  # one row per step: rank 1 wrote nothing
    assert [r["step"] for r in rows if "eval_wer" in r] == [0, 2, 4]
    log = "\n".join(run.log_tail(400))
    assert "worker rank 0 of 2" in log and "worker rank 1 of 2" in log


@pytest.mark.long
def test_a_float32_export_of_whisper_base_decodes_token_for_token_like_pytorch(tmp_path, whisper_base):
    """ctranslate2's own converter on our converted folder, run in float32, against the PyTorch model: the same
    greedy tokens on every utterance (a check of the export, and from the other side of the conversion too)."""
    import ctranslate2
    import torch

    workspace = Workspace(whisper_base.parent.parent)
    exported = export_ctranslate2(str(whisper_base), workspace, "float32", out=tmp_path / "whisper-base-f32")
    texts = [
        "the weather will be sunny tomorrow morning",
        "turn left at the next traffic light",
        "she bought three apples and a loaf of bread",
        "we need more water for the garden",
    ]
    pytorch = Transcriber(str(whisper_base), workspace, language="en", engine=EngineOptions(prefer_ctranslate2=False))
    clips = [load_audio(make_audio(tmp_path / f"{i}.wav", t, "en-us")) for i, t in enumerate(texts)]
    features = pytorch.features(clips)
    prompt = pytorch.processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    engine = ctranslate2.models.Whisper(str(exported), compute_type="float32")
    ct2 = [
        r.sequences_ids[0]
        for r in engine.generate(
            ctranslate2.StorageView.from_array(features), [prompt] * len(clips), beam_size=1, max_length=64
        )
    ]
    with torch.inference_mode():
        ids = pytorch.model.generate(torch.from_numpy(features), language="en", task="transcribe", max_length=64)
    end = pytorch.processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert [[t for t in row if t < end] for row in ids.tolist()] == ct2
    words = " ".join(pytorch.processor.tokenizer.decode(i) for i in ct2).lower()
    assert {"weather", "sunny", "traffic", "apples", "bread", "water", "garden"} <= set(words.replace(".", "").split())
