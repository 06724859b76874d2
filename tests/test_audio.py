"""Audio decoding: every common format, from a path and from bytes, to 16 kHz mono; bad files named clearly."""

import numpy as np
import pytest
import soundfile as sf
from helpers import make_audio

from core.audio import SAMPLE_RATE, load_audio
from core.errors import StudioError


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3", ".webm", ".m4a"])
def test_every_format_decodes_to_16k_mono_from_path_and_bytes(tmp_path, suffix):
    path = make_audio(tmp_path / f"clip{suffix}", "hei på deg")
    from_path = load_audio(path)
    from_bytes = load_audio(path.read_bytes())
    assert from_path.dtype == np.float32 and from_path.ndim == 1
    # espeak-ng speaks this phrase for about a second; codecs pad a few ms at most
    assert 0.6 * SAMPLE_RATE < len(from_path) < 2.0 * SAMPLE_RATE
    assert abs(len(from_path) - len(from_bytes)) < 0.05 * SAMPLE_RATE
    assert np.abs(from_path).max() > 0.05  # real speech, not silence


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -left], axis=1)  # the channels cancel: mono must be silence
    sf.write(tmp_path / "stereo.wav", stereo, 44100)
    sf.write(tmp_path / "left.wav", np.stack([left, left], axis=1), 44100)
    assert len(load_audio(tmp_path / "stereo.wav")) == SAMPLE_RATE
    assert np.abs(load_audio(tmp_path / "stereo.wav")).max() < 1e-3
    assert np.abs(load_audio(tmp_path / "left.wav")).max() == pytest.approx(0.5, abs=0.02)


def test_corrupt_empty_and_missing_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3" + b"\x00garbage" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path, words in ((corrupt, "cannot decode"), (empty, "empty"), (tmp_path / "nope.wav", "no such")):
        with pytest.raises(StudioError) as err:
            load_audio(path)
        assert path.name in str(err.value) and words in str(err.value)
    with pytest.raises(StudioError, match="empty"):
        load_audio(b"", name="upload.webm")
