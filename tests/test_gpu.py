"""The GPU path, run by bench/gpu_check.sh on a CUDA machine (skipped elsewhere): bf16 autocast, SDPA attention,
8-bit AdamW (bitsandbytes), gradient checkpointing, DDP over NCCL, and sharded training (FSDP2, DeepSpeed ZeRO) whose
checkpoints load whole, resume and export. The DeepSpeed configs are also checked wherever deepspeed is installed."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from helpers import REPO, tiny_config
from transformers import Seq2SeqTrainingArguments, WhisperForConditionalGeneration

from core.models.resolve import resolve_model
from core.training import RunFolder, resume_run, start_run
from core.training.parallel import deepspeed_config

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu_check.sh)")
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


def quick(run: str, **changes):
    small = dict(max_steps=4, logging_steps=1, eval_steps=2, save_steps=2, warmup_steps=1, max_eval_samples=8)
    return tiny_config(run, test_split="", english_guard=False, **{**small, **changes})


def demo_on_gpu(workspace, attention: str = "sdpa"):
    path = resolve_model("demo", workspace)
    return WhisperForConditionalGeneration.from_pretrained(path, attn_implementation=attention).cuda()


def inputs(model, batch: int = 4):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch, model.config.num_mel_bins, 2 * model.config.max_source_positions, generator=generator)
    labels = torch.randint(0, 100, (batch, 8), generator=generator)
    return features.cuda(), labels.cuda()


@needs_cuda
@pytest.mark.skipif(GPUS and not torch.cuda.is_bf16_supported(), reason="this GPU has no bf16")
def test_bf16_autocast_trains_a_step(workspace):
    model = demo_on_gpu(workspace)
    features, labels = inputs(model)
    before = model.model.decoder.layers[0].fc1.weight.detach().clone()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(input_features=features, labels=labels)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    out.loss.backward()
    optimiser.step()
    assert not torch.equal(before, model.model.decoder.layers[0].fc1.weight)


@needs_cuda
def test_sdpa_attention_computes_what_eager_attention_does(workspace):
    features, labels = inputs(demo_on_gpu(workspace))
    with torch.no_grad():
        sdpa = demo_on_gpu(workspace, "sdpa")(input_features=features, labels=labels).logits
        eager = demo_on_gpu(workspace, "eager")(input_features=features, labels=labels).logits
    assert torch.allclose(sdpa, eager, atol=1e-3, rtol=1e-3)


@needs_cuda
def test_8bit_adamw_trains_and_saves_a_loadable_checkpoint(workspace, demo_artifact):
    pytest.importorskip("bitsandbytes")
    run = start_run(quick("bnb", optimizer="adamw_bnb_8bit"), workspace, foreground=True)
    assert run.status().state == "completed", run.log_tail(30)
    losses = [r["loss"] for r in run.metrics() if "loss" in r]
    assert losses[-1] < losses[0]
    assert WhisperForConditionalGeneration.from_pretrained(run.last_checkpoint()) is not None


@needs_cuda
def test_gradient_checkpointing_trains_as_without_it(workspace, demo_artifact):
    plain = start_run(quick("plain", max_steps=2, eval_steps=2, save_steps=2), workspace, foreground=True)
    recomputed = start_run(
        quick("recomputed", max_steps=2, eval_steps=2, save_steps=2, gradient_checkpointing=True),
        workspace,
        foreground=True,
    )
    assert recomputed.status().state == "completed", recomputed.log_tail(30)
    first = [[r["loss"] for r in run.metrics() if "loss" in r] for run in (plain, recomputed)]
    assert first[1] == pytest.approx(first[0], rel=2e-2)  # recomputed activations, the same arithmetic


@needs_cuda
def test_ddp_over_nccl(workspace, demo_artifact):
    """Two processes on two GPUs; on one GPU, one process under torchrun (NCCL refuses two ranks on one device)."""
    if GPUS >= 2:
        run = start_run(quick("nccl", nproc=2), workspace, foreground=True)
        assert "worker rank 1 of 2" in "\n".join(run.log_tail(400))
    else:
        run = RunFolder.of(workspace, "nccl")
        run.path.mkdir(parents=True)
        run.write_config(quick("nccl"))
        run.update_status(state="starting")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1"]
        subprocess.run([*command, "-m", "core.training.worker", str(run.path)], cwd=REPO, timeout=300, check=False)
    assert run.status().state == "completed", run.log_tail(30)


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_configs_are_filled_in_from_the_trainer_arguments(stage, workspace):
    """Our ZeRO configs, read by transformers' own DeepSpeed integration: every "auto" is filled from the run's
    arguments and the model, none is left, and stage 3 gathers one whole model at each save."""
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    model = WhisperForConditionalGeneration.from_pretrained(resolve_model("demo", workspace))  # before ZeRO-3 is on
    args = Seq2SeqTrainingArguments(
        output_dir=str(workspace.home / "unused"),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        max_grad_norm=1.0,
        report_to=[],
        deepspeed=deepspeed_config(stage),
    )
    try:
        args.hf_deepspeed_config.trainer_config_finalize(args, model, num_training_steps=10)
    finally:
        unset_hf_deepspeed_config()  # ZeRO-3's config is process-wide: later loads in this process stay plain
    config = args.hf_deepspeed_config.config
    assert '"auto"' not in json.dumps(config), config
    assert config["train_micro_batch_size_per_gpu"] == 8 and config["gradient_accumulation_steps"] == 2
    assert config["zero_optimization"]["stage"] == stage and config["gradient_clipping"] == 1.0
    assert config["zero_optimization"].get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)


@needs_cuda
@pytest.mark.skipif(GPUS < 2, reason="sharding needs two GPUs: NCCL refuses two ranks on one device")
@pytest.mark.parametrize("sharding", ["fsdp", "zero2", "zero3"])
def test_a_sharded_run_saves_whole_checkpoints_that_resume_and_export(sharding, workspace, demo_artifact):
    if sharding != "fsdp":
        pytest.importorskip("deepspeed")
    from core.models import export_ctranslate2

    run = start_run(quick(f"sharded-{sharding}", nproc=2, sharding=sharding), workspace, foreground=True)
    assert run.status().state == "completed", run.log_tail(40)
    straight = {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}
    whole = WhisperForConditionalGeneration.from_pretrained(run.checkpoint_path(4))  # one model.safetensors
    assert whole.generate(inputs(whole.cuda(), 1)[0], max_length=8).shape[0] == 1
    shutil.rmtree(run.checkpoint_path(4))  # as if it had died after checkpoint-2
    run.update_status(state="interrupted", step=2)
    resume_run(run, workspace, foreground=True)
    assert run.status().state == "completed" and run.status().resumed_from == "checkpoint-2", run.log_tail(40)
    resumed = {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}
    assert resumed[3] == pytest.approx(straight[3], rel=2e-2)
    assert export_ctranslate2(str(run.checkpoint_path(4)), workspace, "int8").is_dir()


@needs_cuda
def test_the_demo_preset_runs_on_a_gpu_in_bf16(workspace, demo_artifact):
    run = start_run(replace(quick("bf16"), precision="auto"), workspace, foreground=True)
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert run.status().state == "completed" and run.status().precision == expected, run.log_tail(30)
    assert any("gpu_memory_gb" in r for r in run.metrics())
