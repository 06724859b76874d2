"""What the Trainer needs over several processes: sharded training's arguments, written from the run's options, and
a streamed training split that each rank reads for itself.

Sharding (`sharding` in TrainConfig) is for models whose weights, gradients and AdamW state (16 bytes a parameter in
fp32: 25 GB for whisper-large-v3's 1.55 B) do not fit one GPU:
- fsdp: PyTorch FSDP2 through the Trainer, each encoder and decoder layer its own shard unit; checkpoints are saved as
  one full state dict (FULL_STATE_DICT: rank 0 writes one model.safetensors), so evaluation, export and resume read
  them as they read any checkpoint;
- zero2: DeepSpeed ZeRO stage 2 (gradients and optimiser state sharded, the weights whole on every GPU);
- zero3: ZeRO stage 3 (the weights too), gathered into one 16-bit model.safetensors at every save
  (stage3_gather_16bit_weights_on_model_save), for the same reason.
The DeepSpeed config is made here from the options ("auto" where the Trainer fills in its own values) and written to
the run folder as deepspeed.json, for the record; no one writes it by hand.

Why GPUs only (read from the installed sources, and measured for DeepSpeed): accelerate 1.15 makes a run FSDP only
when its processes are GPU-like (state.py: `DistributedType.FSDP` is set inside the MULTI_GPU/… branch; CPU processes
are MULTI_CPU), and never DeepSpeed on `cpu=True`; with `use_cpu=False` on a CPU machine transformers 5.23 hands
DeepSpeed no backend, so accelerate counts one process while DeepSpeed counts all of them, and DeepSpeed stops at its
batch-size check (`train_batch_size … 4 != 4 * 1 * 2`). On a CPU the run would train unsharded without a word, so
TrainConfig refuses sharding there.
"""

from __future__ import annotations

from accelerate.data_loader import IterableDatasetShard
from transformers import Seq2SeqTrainer

from core.training.config import TrainConfig
from core.training.feature_sets import SECONDS
from core.training.guards import transcript_cap

FSDP_LAYERS = ["WhisperEncoderLayer", "WhisperDecoderLayer"]  # the shard units: one transformer block each
ZERO_STAGES = {"zero2": 2, "zero3": 3}
DEEPSPEED_FILE = "deepspeed.json"  # the config a ZeRO run used, in its run folder


def deepspeed_config(stage: int) -> dict:
    """ZeRO `stage`'s config; "auto" values are the Trainer's own (batch size, accumulation, precision, clipping,
    bucket sizes from the model's hidden size), so the config cannot disagree with the run's options."""
    zero = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": "auto"}
    if stage == 3:
        zero.update(
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            stage3_gather_16bit_weights_on_model_save=True,  # checkpoints hold one whole model, as without ZeRO
        )
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def sharding_arguments(config: TrainConfig) -> dict:
    """Seq2SeqTrainingArguments' keyword arguments for the run's sharding (none: {})."""
    if config.sharding == "fsdp":
        return {
            "fsdp": True,
            "fsdp_config": {
                "version": 2,
                "transformer_layer_cls_to_wrap": FSDP_LAYERS,
                "state_dict_type": "FULL_STATE_DICT",
                "reshard_after_forward": True,
                # FSDP's own recomputation (the Trainer's would add an all-gather per layer in the backward pass)
                "activation_checkpointing": config.gradient_checkpointing,
            },
        }
    if config.sharding in ZERO_STAGES:
        return {"deepspeed": deepspeed_config(ZERO_STAGES[config.sharding])}
    return {}


def streamed_arguments(train_set) -> dict:
    """With a training split streamed per rank, each rank reads its own batches (accelerate would otherwise have
    rank 0 read every batch and send each rank its part)."""
    return {"accelerator_config": {"dispatch_batches": False}} if getattr(train_set, "per_rank", False) else {}


class StudioTrainer(Seq2SeqTrainer):
    """The Seq2SeqTrainer, with two changes: streamed rows that are already this rank's own (core/training/
    streaming.py) pass through accelerate's IterableDatasetShard whole, where it would keep one batch in world size
    of them (as the Trainer itself does for its rank-aware BatchRebalanceSampler); and a validation batch (its rows
    in length order, each with its seconds) generates at most its longest clip's transcript cap, as the test split
    and the guard sets do, so a looping transcript (the base model's, at step 0) stops where its speech ends."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        seconds = inputs.pop(SECONDS, None)
        # one process alone: under several, each would stop at its own cap while generate() keeps them in step
        if seconds is not None and self.args.predict_with_generate and self.args.world_size == 1:
            gen_kwargs = dict(gen_kwargs or getattr(self, "_gen_kwargs", {}))
            most = gen_kwargs.get("max_length") or self.args.generation_max_length
            gen_kwargs["max_length"] = transcript_cap(float(seconds.max()), most)
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        shard = getattr(loader, "dataset", None)
        if isinstance(shard, IterableDatasetShard) and getattr(shard.dataset, "per_rank", False):
            rank, world = shard.dataset.node
            print(f"streamed rows: rank {rank} of {world} reads its own share of the source", flush=True)
            shard.num_processes, shard.process_index = 1, 0
        return loader
