"""GPU training throughput: whisper-small architecture on synthetic features, ours against the recipe's settings.

No weights are needed to measure speed: the model is built from whisper-small's config. Ours is bf16 autocast with
SDPA attention and no gradient checkpointing; the recipe (the Hugging Face fine-tuning blog and the seed
notebooks) is fp16 autocast with gradient checkpointing and eager attention. For each batch size: samples/s, peak
memory and model FLOPs utilisation (MFU) against the GPU's dense bf16 peak.

FLOPs per sample, forward + backward = 6 × (encoder parameters × 1500 positions + decoder parameters × label
tokens) + attention scores (12 × layers × positions² × d_model for self-attention, the same with encoder positions
for cross-attention). Run on a machine with a CUDA GPU: `python bench/gpu_train.py`.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.report import write_section

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}
LABEL_TOKENS = 64  # a typical FLEURS sentence in Whisper tokens, prefix included


def whisper_small(attention: str):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        d_model=768,
        encoder_layers=12,
        decoder_layers=12,
        encoder_attention_heads=12,
        decoder_attention_heads=12,
        encoder_ffn_dim=3072,
        decoder_ffn_dim=3072,
        max_source_positions=1500,
        max_target_positions=448,
        attn_implementation=attention,
    )
    return WhisperForConditionalGeneration(config).cuda()


def flops_per_sample(model) -> float:
    enc = sum(p.numel() for p in model.model.encoder.parameters())
    dec = sum(p.numel() for p in model.model.decoder.parameters())
    cfg = model.config
    attention = (
        12 * cfg.d_model * (cfg.encoder_layers * 1500**2 + cfg.decoder_layers * (LABEL_TOKENS**2 + LABEL_TOKENS * 1500))
    )
    return 6 * (enc * 1500 + dec * LABEL_TOKENS) + attention


def measure(setting: str, batch: int, steps: int) -> dict:
    recipe = setting == "recipe"
    model = whisper_small("eager" if recipe else "sdpa")
    if recipe:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    dtype = torch.float16 if recipe else torch.bfloat16
    scaler = torch.amp.GradScaler(enabled=recipe)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    features = torch.randn(batch, 80, 3000, device="cuda")
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
    seconds = time.perf_counter() - start
    rate = steps * batch / seconds
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    mfu = rate * flops_per_sample(model) / (peak * 1e12) if peak else None
    return {
        "setting": setting,
        "batch": batch,
        "samples_per_s": rate,
        "memory_gb": torch.cuda.max_memory_allocated() / 2**30,
        "mfu": mfu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", default="16,32,64")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        write_section(
            "gpu",
            "## GPU training (`bench/gpu_train.py`)\n\nNot measured: no GPU was available when "
            "this ran. The script is ready: run `python bench/gpu_train.py` on a CUDA machine.",
        )
        raise SystemExit("no CUDA GPU here; BENCHMARKS.md says so")
    torch.backends.cuda.matmul.allow_tf32 = True
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        for setting in ("recipe", "ours"):
            try:
                r = measure(setting, batch, args.steps)
                torch.cuda.empty_cache()  # the model of the last setting is gone with measure()'s frame
                mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "–"
                rows.append(f"| {batch} | {setting} | {r['samples_per_s']:.1f} | {r['memory_gb']:.1f} | {mfu} |")
            except torch.OutOfMemoryError:
                rows.append(f"| {batch} | {setting} | out of memory | | |")
                torch.cuda.empty_cache()
    body = f"""## GPU training (`bench/gpu_train.py`)

whisper-small architecture (242M parameters, random weights), synthetic 30 s features, {LABEL_TOKENS} label tokens,
{torch.cuda.get_device_name(0)}. recipe = fp16 + gradient checkpointing + eager attention; ours = bf16 + SDPA.

| batch | setting | samples/s | peak memory (GiB) | MFU |
|---:|---|---:|---:|---:|
{chr(10).join(rows)}"""
    write_section("gpu", body)
    print(body)


if __name__ == "__main__":
    main()
