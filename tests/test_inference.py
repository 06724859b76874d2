"""Transcription of long audio in windows with timestamps, and saved, reused evaluations."""

import numpy as np
from conftest import make_audio, run_cli

from core.audio import SAMPLE_RATE, load_audio
from core.evaluation import evaluate_model
from core.inference import Transcriber
from core.vad import PAD_S, speech_windows, split_windows


def test_windows_cut_at_quiet_moments_and_cover_everything():
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, 10 * SAMPLE_RATE).astype(np.float32)
    samples[int(2.5 * SAMPLE_RATE) : int(2.6 * SAMPLE_RATE)] = 0  # a pause just before the 3 s mark
    spans = split_windows(samples, 3 * SAMPLE_RATE)
    assert spans[0][0] == 0 and spans[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(0 < e - s <= 3 * SAMPLE_RATE for s, e in spans)
    assert 2.5 * SAMPLE_RATE <= spans[0][1] <= 2.6 * SAMPLE_RATE


def test_long_file_is_transcribed_in_timed_segments(tmp_path, session_workspace, demo_artifact):
    path = make_audio(tmp_path / "long.mp3", "en to tre fire fem seks sju åtte ni ti elleve tolv tretten fjorten")
    duration = len(load_audio(path)) / SAMPLE_RATE
    assert duration > 4  # longer than the demo model's 3 s window
    segments = Transcriber("demo", session_workspace, language="no").transcribe(path)
    assert len(segments) >= 2
    assert 0 <= segments[0].start < 0.5 and duration - 0.5 < segments[-1].end <= duration  # speech edges
    assert all(0 < s.end - s.start <= 3.0 for s in segments)  # never longer than the demo's window
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:]))
    assert all(isinstance(s.text, str) for s in segments)
    result = run_cli("transcribe", str(path), "--model", "demo", "--language", "nb", home=session_workspace.home)
    assert result.returncode == 0 and result.stdout.count("→") == len(segments), result.stderr[-1000:]


def test_evaluations_are_saved_and_reused(session_workspace, demo_artifact):
    first = evaluate_model("demo", "nb-tiny", session_workspace, split="test")
    assert first["utterances"] == demo_artifact.manifest["splits"]["test"]["rows"]
    assert len(first["rows"]) == first["utterances"] and {"wer", "cer", "wer_raw", "cer_raw"} <= set(first)
    saved = list((session_workspace.home / "evaluations").glob("*.json"))
    assert len(saved) == 1
    stamp = saved[0].stat().st_mtime_ns
    again = evaluate_model("demo", "nb-tiny", session_workspace, split="test")
    assert again == first and saved[0].stat().st_mtime_ns == stamp


def test_speech_windows_skip_silence_and_keep_utterances_whole(tmp_path):
    speech = load_audio(make_audio(tmp_path / "a.wav", "en to tre"))
    gap = np.zeros(SAMPLE_RATE, np.float32)
    samples = np.concatenate([gap, speech, gap, gap, speech, gap])
    windows = speech_windows(samples, 3 * SAMPLE_RATE)
    assert len(windows) == 2  # one per utterance: 2 s of silence between them is never decoded
    for (start, end), offset in zip(windows, (SAMPLE_RATE, 3 * SAMPLE_RATE + len(speech))):
        assert offset - (PAD_S + 0.05) * SAMPLE_RATE <= start <= offset + 0.3 * SAMPLE_RATE
        assert end - start <= 3 * SAMPLE_RATE
    assert speech_windows(speech, 3 * SAMPLE_RATE) == [(0, len(speech))]  # a short clip is decoded whole
    assert speech_windows(np.zeros(5 * SAMPLE_RATE, np.float32), 3 * SAMPLE_RATE) == []
