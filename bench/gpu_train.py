"""GPU training throughput: whisper-small and whisper-large-v3 architectures on synthetic features, ours against the
recipe's settings.

No weights are needed to measure speed: each model is built from its architecture with random weights. Ours is bf16
autocast with SDPA attention and no gradient checkpointing; the recipe (the Hugging Face fine-tuning blog and the seed
notebooks) is fp16 autocast with gradient checkpointing and eager attention. For each batch size: samples/s, peak
memory and model FLOPs utilisation (MFU) against the GPU's stated dense bf16 peak. Each (batch, setting) is measured
`--repeats` times, the two settings in alternating order; the table shows the median and the range.

FLOPs per sample, forward + backward = 6 × (encoder parameters × 1500 positions + decoder parameters × label tokens)
+ attention scores (12 × layers × positions² × d_model for self-attention, the same with encoder positions for
cross-attention). Goals (issue 31): MFU ≥ 40% for whisper-small bf16 at its best batch size, ≥ 1.5× the recipe's
samples/s. Run on a machine with a CUDA GPU (bench/gpu_check.sh runs it): `python -m bench.gpu_train`.

Sharded training (FSDP2, DeepSpeed ZeRO) is not measured here: it needs two GPUs (NCCL refuses two ranks on one
device) and cannot run on CPU processes (core/training/parallel.py says why). On a machine with two, after
`pip install -r requirements-gpu.txt`, tests/test_gpu.py checks it, and a real run is:

    python -m core train --data D --run R-fsdp --preset whisper-small --nproc 2 --sharding fsdp --foreground
    python -m core train --data D --run R-zero3 --preset whisper-small --nproc 2 --sharding zero3 --foreground
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.report import write_section

# Dense bf16 tensor-core peaks as the makers state them, TFLOP/s (no sparsity): what MFU divides by. The H200 has the
# H100 SXM's compute (989); a bf16 8192³ matrix product reached about 790 on the H200 lent here (device notes).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}
LABEL_TOKENS = 64  # a typical FLEURS sentence in Whisper tokens, prefix included
ENCODER_POSITIONS = 1500  # 30 s of audio after the encoder's stride-2 convolution
# The architectures' shapes, as their Hub configs give them (openai/whisper-small, openai/whisper-large-v3)
ARCHITECTURES = {
    "whisper-small": dict(d_model=768, layers=12, heads=12, ffn=3072, mel_bins=80, vocab=51865),
    "whisper-large-v3": dict(d_model=1280, layers=32, heads=20, ffn=5120, mel_bins=128, vocab=51866),
}
DEFAULT_BATCHES = {"whisper-small": "32,64", "whisper-large-v3": "8,16"}
SETTINGS = ("recipe", "ours")


def build(name: str, attention: str, device: str = "cuda"):
    """`name`'s architecture with random weights on `device` ("meta": shapes only, for counting)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    shape = ARCHITECTURES[name]
    config = WhisperConfig(
        vocab_size=shape["vocab"],
        num_mel_bins=shape["mel_bins"],
        d_model=shape["d_model"],
        encoder_layers=shape["layers"],
        decoder_layers=shape["layers"],
        encoder_attention_heads=shape["heads"],
        decoder_attention_heads=shape["heads"],
        encoder_ffn_dim=shape["ffn"],
        decoder_ffn_dim=shape["ffn"],
        max_source_positions=ENCODER_POSITIONS,
        max_target_positions=448,
        attn_implementation=attention,
    )
    with torch.device(device):
        return WhisperForConditionalGeneration(config)


def flops_per_sample(model) -> float:
    """Training FLOPs (forward + backward) of one 30 s utterance with LABEL_TOKENS labels."""
    enc = sum(p.numel() for p in model.model.encoder.parameters())
    dec = sum(p.numel() for p in model.model.decoder.parameters())
    cfg = model.config
    attention = (
        12
        * cfg.d_model
        * (
            cfg.encoder_layers * ENCODER_POSITIONS**2
            + cfg.decoder_layers * (LABEL_TOKENS**2 + LABEL_TOKENS * ENCODER_POSITIONS)
        )
    )
    return 6 * (enc * ENCODER_POSITIONS + dec * LABEL_TOKENS) + attention


def peak_tflops(device_name: str) -> float | None:
    """The stated dense bf16 peak of a GPU named `device_name` ('NVIDIA H200' → 989), None when not listed."""
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)


def mfu(samples_per_s: float, flops: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: the FLOP/s the model's arithmetic needed, over the chip's peak."""
    return samples_per_s * flops / (peak * 1e12) if peak else None


def measure(name: str, setting: str, batch: int, steps: int) -> dict:
    recipe = setting == "recipe"
    model = build(name, "eager" if recipe else "sdpa")
    if recipe:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    dtype = torch.float16 if recipe else torch.bfloat16
    scaler = torch.amp.GradScaler(enabled=recipe)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    features = torch.randn(batch, model.config.num_mel_bins, 2 * ENCODER_POSITIONS, device="cuda")
    labels = torch.randint(0, 50257, (batch, LABEL_TOKENS), device="cuda")
    torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.autocast("cuda", dtype=dtype):
            loss = model(input_features=features, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        optimiser.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    return {"rate": rate, "memory_gb": torch.cuda.max_memory_allocated() / 2**30, "flops": flops_per_sample(model)}


def measure_pair(name: str, batch: int, steps: int, repeats: int) -> dict[str, dict]:
    """Both settings at one batch size, `repeats` rounds, the order alternating; {setting: result or 'oom'}."""
    rates: dict[str, list] = {s: [] for s in SETTINGS}
    last: dict[str, dict] = {}
    for round_ in range(repeats):
        for setting in SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]:
            if last.get(setting) == "oom":
                continue
            try:
                last[setting] = measure(name, setting, batch, steps)
                rates[setting].append(last[setting]["rate"])
            except torch.OutOfMemoryError:
                last[setting] = "oom"
            torch.cuda.empty_cache()  # the last model is gone with measure()'s frame
    return {s: ("oom" if last.get(s) == "oom" else {**last[s], "rates": rates[s]}) for s in SETTINGS}


def table_rows(name: str, batch: int, results: dict, peak: float | None) -> list[str]:
    rows = []
    for setting in SETTINGS:
        r = results[setting]
        if r == "oom":
            rows.append(f"| {name} | {batch} | {setting} | out of memory | | | |")
            continue
        median = statistics.median(r["rates"])
        share = mfu(median, r["flops"], peak)
        shown = f"{100 * share:.1f}%" if share is not None else "–"
        spread = f"{min(r['rates']):.1f}–{max(r['rates']):.1f}"
        rows.append(f"| {name} | {batch} | {setting} | {median:.1f} | {spread} | {r['memory_gb']:.1f} | {shown} |")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", default=",".join(ARCHITECTURES), help="comma-separated: " + ", ".join(ARCHITECTURES)
    )
    parser.add_argument("--batches", help="comma-separated batch sizes for every model (default: each model's own)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per measurement (after 3 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per (batch, setting), the order alternating")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ARCHITECTURES)}")
    try:
        args.plan = {m: [int(b) for b in (args.batches or DEFAULT_BATCHES[m]).split(",")] for m in args.models}
    except ValueError:
        parser.error(f"--batches {args.batches}: give whole numbers, comma-separated (e.g. 16,32)")
    if any(b < 1 for batches in args.plan.values() for b in batches) or args.steps < 1 or args.repeats < 1:
        parser.error("batch sizes, --steps and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA GPU here; run this on a GPU machine (bash bench/gpu_check.sh)")
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.cuda.get_device_name(0)
    peak = peak_tflops(device)
    rows: list[str] = []
    planned = sum(len(batches) for batches in args.plan.values())
    for name, batches in args.plan.items():
        for batch in batches:
            rows += table_rows(name, batch, measure_pair(name, batch, args.steps, args.repeats), peak)
            print(rows[-2], rows[-1], sep="\n", flush=True)
            # written after every batch size: a run stopped at its time limit keeps the rows it measured
            write_section("gpu", section(args, device, peak, rows, len(rows) // 2, planned))
    print(section(args, device, peak, rows, planned, planned))


def section(args: argparse.Namespace, device: str, peak: float | None, rows: list[str], done: int, planned: int) -> str:
    unfinished = "" if done == planned else f" Only {done} of the {planned} planned batch sizes were measured."
    return f"""## GPU training (`bench/gpu_train.py`)

Random weights in each architecture, synthetic 30 s features, {LABEL_TOKENS} label tokens, {device} (stated bf16 peak
{peak or "unknown"} TFLOP/s). recipe = fp16 + gradient checkpointing + eager attention; ours = bf16 + SDPA. Each row:
{args.steps} timed steps after 3 warm-up steps, {args.repeats} rounds in alternating order, median (range).
Goals: MFU ≥ 40% for whisper-small ours at its best batch, ours ≥ 1.5× the recipe's samples/s.{unfinished}

| model | batch | setting | samples/s | range | peak memory (GiB) | MFU |
|---|---:|---|---:|---:|---:|---:|
{chr(10).join(rows)}"""


if __name__ == "__main__":
    main()
