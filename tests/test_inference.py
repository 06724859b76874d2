"""Transcription of long audio in windows with timestamps, and saved, reused evaluations."""

import numpy as np
import pytest
import soundfile as sf
from helpers import make_audio, run_cli

from core.audio import SAMPLE_RATE, load_audio
from core.audio.vad import PAD_S, speech_windows, split_windows
from core.evaluation import EvaluateOptions, evaluate_model
from core.speech import Transcriber


def test_windows_cut_at_quiet_moments_and_cover_everything():
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, 10 * SAMPLE_RATE).astype(np.float32)
    samples[int(2.5 * SAMPLE_RATE) : int(2.6 * SAMPLE_RATE)] = 0  # a pause just before the 3 s mark
    spans = split_windows(samples, 3 * SAMPLE_RATE)
    assert spans[0][0] == 0 and spans[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(0 < e - s <= 3 * SAMPLE_RATE for s, e in spans)
    assert 2.5 * SAMPLE_RATE <= spans[0][1] <= 2.6 * SAMPLE_RATE


@pytest.mark.long
def test_long_file_is_transcribed_in_timed_segments(tmp_path, whisper_base, session_workspace):
    sentences = [
        "the quick brown fox jumps over the lazy dog",
        "please call me back when you get home",
        "the weather will be sunny tomorrow morning",
        "our train leaves from platform number seven",
        "she bought three apples and a loaf of bread",
        "the meeting has been moved to friday",
    ]
    pause = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    clips = [load_audio(make_audio(tmp_path / f"{i}.wav", t, "en-us")) for i, t in enumerate(sentences)]
    speech = np.concatenate([part for clip in clips for part in (clip, pause)] * 2)  # the six sentences twice
    path = tmp_path / "long.wav"
    sf.write(path, speech, SAMPLE_RATE)
    duration = len(speech) / SAMPLE_RATE
    assert duration > 40  # longer than whisper-base's 30 s window
    transcript = Transcriber("whisper-base", session_workspace, language="en").transcribe_file(path)
    segments = transcript.segments
    assert len(segments) >= 2
    assert 0 <= segments[0].start < 0.5 and duration - 2 < segments[-1].end <= duration  # speech edges
    assert all(0 < s.end - s.start <= 30.0 for s in segments)  # never longer than the window
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:]))
    words = transcript.text.lower()
    for expected in ("fox", "call me back", "sunny", "platform", "apples", "friday"):
        assert words.count(expected) == 2, (expected, words)  # each sentence, both times, in its window
    result = run_cli("transcribe", str(path), "--language", "en", home=session_workspace.home)
    assert result.returncode == 0 and result.stdout.count("→") == len(segments), result.stderr[-1000:]


def test_evaluations_are_saved_and_reused(session_workspace, demo_artifact):
    first = evaluate_model("demo", "nb-tiny", session_workspace, EvaluateOptions(split="test"))
    assert first.utterances == demo_artifact.manifest.splits["test"].rows
    assert len(first.rows) == first.utterances and {"wer", "cer", "wer_raw", "cer_raw"} <= set(first.to_dict())
    saved = list((session_workspace.home / "evaluations").glob("*.json"))
    assert len(saved) == 1
    stamp = saved[0].stat().st_mtime_ns
    again = evaluate_model("demo", "nb-tiny", session_workspace, EvaluateOptions(split="test"))
    assert again == first and saved[0].stat().st_mtime_ns == stamp


def test_evaluation_decodes_by_the_policy_each_row_capped_as_its_window(workspace, demo_artifact):
    from core.audio.constants import text_token_cap
    from core.models.resolve import load_processor
    from core.speech.decoding import DecodingOptions

    greedy = evaluate_model("demo", "nb-tiny", workspace, EvaluateOptions(split="test", limit=6))
    tokenizer = load_processor("demo", workspace).tokenizer
    lengths = [len(tokenizer.encode(r.hypothesis, add_special_tokens=False)) for r in greedy.rows]
    # the untrained toy loops: the policy stops each row where a transcript of its (3 s) window must end, not at the
    # decoder's 448 positions (the text, tokenized again, may count a few tokens more than were generated)
    assert text_token_cap(3) // 2 < max(lengths) < 2 * text_token_cap(3) < 448, lengths
    assert greedy.stamp["decoding"]["beam_size"] == 1 and greedy.stamp["decoding"]["no_speech_threshold"] is None
    beams = DecodingOptions(beam_size=2, temperatures=(0.0,), no_speech_threshold=None)
    other = evaluate_model("demo", "nb-tiny", workspace, EvaluateOptions(split="test", limit=6, decoding=beams))
    assert other.stamp["decoding"]["beam_size"] == 2  # another decoding is another evaluation, not the saved one
    assert evaluate_model("demo", "nb-tiny", workspace, EvaluateOptions(split="test", limit=6)) == greedy


def test_saved_evaluations_are_listed_as_records_and_stray_files_are_not(workspace, demo_artifact):
    from core.evaluation import list_evaluations

    result = evaluate_model("demo", "nb-tiny", workspace, EvaluateOptions(split="test", limit=2))
    (workspace.evaluations / "notes__nb-tiny__test.json").write_text('{"wer": 0.1}')  # JSON, but no evaluation
    (listed,) = list_evaluations(workspace)
    assert (listed.run, listed.model, listed.test_set, listed.utterances) == ("base", "demo", "nb-tiny/test", 2)
    assert listed.wer == result.wer and listed.label.startswith("demo on nb-tiny/test · WER ")
    assert listed.to_row()["test set"] == "nb-tiny/test" and listed.to_row()["path"] == listed.path


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
    long_audio = np.concatenate([samples] * 4)  # 8 utterances in 25+ s: a 20 s window packs several together
    packed = speech_windows(long_audio, 20 * SAMPLE_RATE)
    assert 2 <= len(packed) < 8 and all(e - s <= 20 * SAMPLE_RATE for s, e in packed)
    assert packed[0][0] >= SAMPLE_RATE - (PAD_S + 0.05) * SAMPLE_RATE  # leading silence still skipped
    assert speech_windows(np.zeros(5 * SAMPLE_RATE, np.float32), 3 * SAMPLE_RATE) == []
