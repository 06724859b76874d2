"""What makes a run fast on a CPU without changing what it computes: the encoder states cached through ONNX Runtime
equal the encoder's own, validation batches stop at their clips' transcript cap, and the fused AdamW is the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

from core.training.config import TrainConfig


def _encoder(workspace):
    from core.models.resolve import load_model

    model = load_model("demo", workspace)[0]
    return model, model.get_encoder()


def test_cached_states_from_onnx_runtime_are_the_encoders_own(workspace, demo_artifact, monkeypatch):
    from core.data.artifact import features_from_row, open_artifact
    from core.training import encoder_cache

    artifact = open_artifact(workspace, demo_artifact.name)
    _, encoder = _encoder(workspace)
    frames = artifact.feature_shape()[1]
    sessions = []
    made = encoder_cache._onnx_session
    monkeypatch.setattr(encoder_cache, "_onnx_session", lambda *a: sessions.append(made(*a)) or sessions[-1])
    states = encoder_cache.cached_states(artifact, ["validation"], encoder, frames)["validation"]
    assert sessions and sessions[0] is not None  # ONNX Runtime did the work, on this CPU
    table = artifact.read_split("validation")
    log_mel = np.stack([features_from_row(table, i, artifact.feature_shape()) for i in range(table.num_rows)])
    with torch.inference_mode():
        expected = encoder(torch.from_numpy(log_mel.astype(np.float32))).last_hidden_state.numpy()
    assert states.shape == expected.shape and states.dtype == np.float16
    # the same float32 weights in another engine: equal up to float16's rounding of the stored states
    np.testing.assert_allclose(states.astype(np.float32), expected, rtol=2e-3, atol=2e-3)


def test_validation_rows_come_shortest_first_with_their_seconds(workspace, demo_artifact):
    from core.data.artifact import open_artifact
    from core.training.feature_sets import SECONDS, FeatureDataset, SpeechCollator

    artifact = open_artifact(workspace, demo_artifact.name)
    plain = FeatureDataset(artifact, "train")
    ordered = FeatureDataset(artifact, "train", by_length=True)
    assert SECONDS not in plain[0]  # training rows go to the model as they are
    seconds = [ordered[i][SECONDS] for i in range(len(ordered))]
    assert seconds == sorted(seconds) and sorted(seconds) == sorted(plain.seconds().tolist())
    ids, _ = ordered.ids_and_texts()
    assert sorted(ids) == sorted(plain.ids_and_texts()[0]) and ids != plain.ids_and_texts()[0]
    batch = SpeechCollator(50258)([ordered[0], ordered[1]])
    assert batch[SECONDS].tolist() == pytest.approx(seconds[:2])


def test_a_validation_batch_stops_generating_at_its_longest_clips_cap(workspace, tmp_path):
    from transformers import Seq2SeqTrainingArguments

    from core.training.feature_sets import SECONDS
    from core.training.guards import transcript_cap
    from core.training.parallel import StudioTrainer

    torch.manual_seed(0)
    model, _ = _encoder(workspace)  # untrained: it never says end of text, so only a cap stops it
    model.generation_config.max_length = 60  # as a run sets it (predictions are padded up to it)
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), predict_with_generate=True, generation_max_length=60, use_cpu=True, report_to=[]
    )
    trainer = StudioTrainer(model=model, args=args)
    mels, frames = model.config.num_mel_bins, 2 * model.config.max_source_positions
    features = torch.randn(2, mels, frames)
    labels = torch.full((2, 3), 50257)

    def generated(**extra) -> int:
        batch = {"input_features": features.clone(), "labels": labels.clone(), **extra}
        tokens = trainer.prediction_step(model, batch, prediction_loss_only=False)[1]
        assert tokens.shape[1] == 60
        return int((tokens != model.generation_config.pad_token_id).sum(dim=1).max())

    capped = generated(**{SECONDS: torch.tensor([0.4, 0.8])})
    assert capped == transcript_cap(0.8, 60) < 60  # the longer clip's cap, not the generation maximum
    assert generated() == 60  # a batch without seconds (training rows) is not capped


def test_the_fused_adamw_is_the_default_and_the_step_by_step_one_still_a_choice(workspace, demo_artifact):
    assert TrainConfig(data="x", run="y").optimizer == "adamw_torch_fused"
    tiny_config("r", optimizer="adamw_torch").validate()  # older runs' configs keep loading
    with pytest.raises(Exception, match="optimizer"):
        tiny_config("r", optimizer="sgd").validate()
