#!/usr/bin/env bash
# The GPU check in one command, within 10 minutes on one GPU (issue 31):
#   1. tests/test_gpu.py: bf16 autocast, SDPA, 8-bit AdamW (bitsandbytes), gradient checkpointing, DDP over NCCL
#      (2 processes with 2 GPUs, else 1 under torchrun: NCCL refuses two ranks on one device), the ZeRO configs, and
#      with 2 GPUs sharded runs (fsdp, zero2, zero3) whose checkpoints load whole, resume and export;
#   2. bench/gpu_finetune.py: whisper-base fully fine-tuned on the demo's data (encoder trained), WER before → after,
#      samples/s, wall time (goal: 3 minutes);
#   3. bench/gpu_train.py: whisper-small and whisper-large-v3 architectures, samples/s, peak memory and MFU against
#      the chip's stated bf16 peak, ours (bf16 + SDPA) against the recipe's (fp16 + gradient checkpointing).
# Steps 2 and 3 write their sections of BENCHMARKS.md. Every step runs, each under its own time limit; the exit
# status is the first failure's.
#
# Needs a CUDA GPU and this repository's environment: `bash scripts/bootstrap.sh --dev` and
# `.venv/bin/pip install -r requirements-gpu.txt` (deepspeed, bitsandbytes), or PYTHON=an interpreter that has
# requirements-dev.txt and requirements-gpu.txt installed, with espeak-ng on the PATH (the demo's speech).
# On a machine that reaches no package index (the lent GPU machine): carry the missing wheels and install them with
# `pip install --no-index --target DIR`, PYTHONPATH=DIR; the GPU tests take a synthetic test set made elsewhere from
# STUDIO_TEST_SYNTH=FOLDER when espeak-ng is missing there (BENCHMARKS.md says how it ran on 2026-12-04).
#   bash bench/gpu_check.sh                    all three steps
#   GPU_CHECK_STEPS=3 bash bench/gpu_check.sh  only the throughput step (1, 2, 3 in any combination)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
STEPS="${GPU_CHECK_STEPS:-123}"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "error: no CUDA GPU visible to $PY: run this on a GPU machine (PYTHON=… names another interpreter)" >&2
  exit 2
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export TMPDIR="${TMPDIR:-/tmp}/gpu-check-$$"  # the training lock and pytest's folders, apart from other work
mkdir -p "$TMPDIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'

failed=0
step() {  # step NUMBER SECONDS TITLE COMMAND…: run one step under its limit, remember the first failure
  local number="$1" limit="$2" title="$3"
  shift 3
  [[ "$STEPS" == *"$number"* ]] || return 0
  echo "== $number/3 $title (at most ${limit} s)"
  local started=$SECONDS
  timeout "$limit" "$@"
  local status=$?
  echo "== $number/3 exit $status after $((SECONDS - started)) s"
  [ "$status" = 0 ] || [ "$failed" != 0 ] || failed=$status
}

step 1 120 "GPU tests" "$PY" -m pytest tests/test_gpu.py -m gpu -q -p no:cacheprovider
step 2 240 "whisper-base full fine-tune on the demo's data" "$PY" -m bench.gpu_finetune
step 3 240 "training throughput and MFU" "$PY" -m bench.gpu_train
exit "$failed"
