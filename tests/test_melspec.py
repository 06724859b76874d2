"""Our short-clip log-mel equals WhisperFeatureExtractor's on real speech, short and full-window clips alike."""

import numpy as np
import pytest
from transformers import WhisperFeatureExtractor

from core.audio import load_audio, log_mel


@pytest.mark.parametrize("chunk_length, mels", [(30, 80), (30, 128), (3, 80)])
def test_matches_the_feature_extractor(synth_folder, chunk_length, mels):
    extractor = WhisperFeatureExtractor(feature_size=mels, chunk_length=chunk_length)
    clips = [load_audio(p) for p in sorted((synth_folder / "train").glob("*.wav"))[:5]]
    rng = np.random.default_rng(0)
    clips.append(rng.normal(0, 0.1, extractor.n_samples + 5000).astype(np.float32))  # longer than the window
    clips.append(rng.normal(0, 0.1, extractor.n_samples).astype(np.float32))  # exactly the window
    clips.append(np.zeros(1600, np.float32))  # silence
    expected = extractor(clips, sampling_rate=16000, return_tensors="np")["input_features"]
    ours = log_mel(clips, extractor)
    assert ours.shape == expected.shape == (len(clips), mels, extractor.nb_max_frames)
    np.testing.assert_allclose(ours, expected, atol=2e-5)
