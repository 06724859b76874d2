"""The GPU check's parts that run without a GPU: the FLOP and MFU arithmetic of bench/gpu_train.py (architectures
counted on PyTorch's meta device: shapes, no memory), its arguments, and bench/gpu_check.sh refusing a machine
without CUDA in one line."""

import subprocess

import pytest
import torch
from helpers import REPO

from bench.gpu_train import build, flops_per_sample, mfu, parse_args, peak_tflops

ARCHS = ("whisper-small", "whisper-large-v3")


def test_the_architectures_have_their_published_sizes():
    small, large = (sum(p.numel() for p in build(name, "sdpa", "meta").parameters()) for name in ARCHS)
    assert 241e6 < small < 243e6  # whisper-small: 242M
    assert 1.54e9 < large < 1.56e9  # whisper-large-v3: 1.55B


def test_mfu_is_the_models_flops_over_the_chips_stated_peak():
    model = build("whisper-small", "sdpa", "meta")
    encoder = sum(p.numel() for p in model.model.encoder.parameters())
    decoder = sum(p.numel() for p in model.model.decoder.parameters())
    # 6 × (88.2M × 1500 + 153.6M × 64) + 12 × 768 × (12 × 1500² + 12 × (64² + 64 × 1500)) ≈ 1.11 TFLOP per utterance
    attention = 12 * 768 * (12 * 1500**2 + 12 * (64**2 + 64 * 1500))
    assert flops_per_sample(model) == 6 * (encoder * 1500 + decoder * 64) + attention
    assert flops_per_sample(model) == pytest.approx(1.112e12, rel=1e-3)
    assert peak_tflops("NVIDIA H200") == 989.0 and peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("Tesla T4") is None and mfu(100.0, 1e12, None) is None
    # the goal, MFU ≥ 40% for whisper-small on an H200, is about 356 utterances of 30 s a second
    assert mfu(355.7, flops_per_sample(model), 989.0) == pytest.approx(0.40, abs=1e-3)


def test_the_benchmarks_arguments():
    args = parse_args([])
    assert args.plan == {"whisper-small": [32, 64], "whisper-large-v3": [8, 16]}
    assert parse_args(["--models", "whisper-small", "--batches", "16,24"]).plan == {"whisper-small": [16, 24]}
    for wrong in (["--models", "whisper-huge"], ["--batches", "a,b"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            parse_args(wrong)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the check runs (minutes)")
def test_the_gpu_check_refuses_a_machine_without_cuda_in_one_line():
    result = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().startswith("error: no CUDA GPU visible to ") and "\n" not in result.stderr.strip()
