"""The decoding policy with the real whisper-base: a window that loops is retried hotter until the loop is gone, a
window of noise is judged silence and yields no text, words are timed monotonically inside their segments on both
engines (CTranslate2's alignment and DTW over the transformers model's alignment heads), and the live paths' fitted
context encodes an utterance's length only, a loop again over the full window."""

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
from helpers import make_audio, run_cli

from core.audio import SAMPLE_RATE, load_audio
from core.errors import StudioError
from core.speech import GREEDY, LIVE, DecodingOptions, EngineOptions, Transcriber, WindowDecoder
from core.speech.decoding import parse_temperatures
from core.text import error_rates
from core.text.wer import compression_ratio


def test_compression_ratio_tells_a_loop_from_speech_and_the_ladder_is_checked():
    assert compression_ratio("Jeg er ble" + " ble" * 60) > 10
    assert compression_ratio("My brother keeps a small boat near the old bridge.") < 2.4
    assert parse_temperatures("0, 0.5,1") == (0.0, 0.5, 1.0)
    for bad in ("1,0.5", "hot", "0,3"):
        with pytest.raises(StudioError, match="rising numbers from 0 to 2"):
            parse_temperatures(bad)


def test_a_looping_window_is_retried_until_the_loop_is_gone(tmp_path, whisper_base, session_workspace):
    # stuttered English: at temperature 0 whisper-base repeats "that," to the token cap (espeak-ng 1.51)
    wav = tmp_path / "stutter.wav"
    text = "I I I I I I I I think think think think that that that that"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True)
    samples = load_audio(wav)
    transcriber = Transcriber("whisper-base", session_workspace, language="en")
    greedy_only = DecodingOptions(beam_size=1, temperatures=(0.0,))
    looped = transcriber.transcribe_array(samples, options=greedy_only)[0].text
    assert _longest_repeat(looped) >= 5, looped  # runs on to the token cap: the policy's sign of a loop
    retried = transcriber.transcribe_array(samples, options=DecodingOptions(beam_size=1, best_of=1))[0].text
    # the policy's test of a loop: compression ratio at most 2.4 (a stutter may still repeat a word a few times)
    assert retried and _longest_repeat(retried) < _longest_repeat(looped) and compression_ratio(retried) <= 2.4, retried


class Watched:
    """A real engine, with the frames of each encode call noted."""

    def __init__(self, engine):
        self.engine, self.frames = engine, []

    @property
    def fits_context(self) -> bool:
        return self.engine.fits_context

    def encode(self, features):
        self.frames.append(np.shape(features)[-1])
        return self.engine.encode(features)

    def decode(self, *args):
        return self.engine.decode(*args)


def test_a_fitted_context_encodes_the_utterance_and_decodes_a_loop_again_over_the_full_window(
    tmp_path, whisper_base, session_workspace
):
    transcriber = Transcriber("whisper-base", session_workspace, language="en")
    said = "My brother keeps a small boat near the old bridge."
    clip = load_audio(make_audio(tmp_path / "clean.wav", said, voice="en-us"))
    texts = {}
    for name, options in (("live", LIVE), ("full", GREEDY)):
        watched = Watched(transcriber.backend)
        texts[name] = transcriber.using(watched).text(clip, options=options)
        assert watched.frames == ([800] if name == "live" else [3000])  # 8 s (the least) against 30 s
        assert error_rates([said], [texts[name]])["wer"] <= 0.2, texts  # and the words are heard either way
    stutter = tmp_path / "stutter.wav"  # whisper-base loops on it at temperature 0, whatever its context
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(stutter), "I I I I I I think think think that that that"], check=True
    )
    samples, watched = load_audio(stutter), Watched(transcriber.backend)
    looped = transcriber.using(watched).text(samples, options=LIVE)
    assert watched.frames == [800, 3000]  # the loop was decoded again over 30 s: what the full window says
    assert looped == transcriber.text(samples, options=GREEDY)


def test_a_fitted_context_is_for_engines_that_take_one_and_windows_decoded_alone(tmp_path, session_workspace):
    transcriber = Transcriber("demo", session_workspace, language="no")  # transformers: only the full window
    watched = Watched(transcriber.backend)
    clip = load_audio(make_audio(tmp_path / "hei.wav"))
    assert transcriber.using(watched).text(clip, options=LIVE) == transcriber.text(clip, options=GREEDY)
    assert set(watched.frames) == {transcriber.processor.feature_extractor.nb_max_frames}
    for other in ("word_timestamps", "condition_on_previous_text"):
        with pytest.raises(StudioError, match=f"fitted_context decodes each window on its own: turn off.*{other}"):
            DecodingOptions(fitted_context=True, **{other: True})


def _longest_repeat(text: str) -> int:
    """The most times one word is said in a row."""
    words, longest, run = text.lower().replace(",", " ").split(), 0, 0
    for i, word in enumerate(words):
        run = run + 1 if i and word == words[i - 1] else 1
        longest = max(longest, run)
    return longest


def test_noise_is_silence_and_yields_no_text(tmp_path, whisper_base, session_workspace):
    transcriber = Transcriber("whisper-base", session_workspace, language="en")
    noise = np.random.default_rng(0).normal(0, 0.01, 5 * SAMPLE_RATE).astype(np.float32)
    policy = WindowDecoder(
        transcriber.backend, transcriber.processor.tokenizer, DecodingOptions(beam_size=1), "en", "transcribe"
    )
    result = policy.decode(transcriber.backend.encode(transcriber.features([noise])), 32)[0]
    assert result.silent and result.text == "" and result.no_speech_prob > 0.6 and result.avg_log_prob < -1
    path = tmp_path / "quiet.wav"
    sf.write(path, np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), noise]), SAMPLE_RATE)
    assert transcriber.transcribe_file(path).segments == []  # digital zeros and hiss: nothing heard, nothing said


def _check_words(segments):
    words = [w for s in segments for w in s.words]
    assert words, segments
    for segment in segments:
        assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)
        assert all(0 <= w.probability <= 1 for w in segment.words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))  # monotonic, never overlapping
    return words


def test_words_are_timed_on_both_engines_and_written_as_word_srt(tmp_path, whisper_base, session_workspace):
    first = load_audio(make_audio(tmp_path / "a.wav", "the weather will be sunny tomorrow", "en-us"))
    second = load_audio(make_audio(tmp_path / "b.wav", "our train leaves from platform seven", "en-us"))
    onset = 1.0 + len(first) / SAMPLE_RATE + 1.5  # seconds: where "our" begins
    audio = np.concatenate([np.zeros(SAMPLE_RATE), first, np.zeros(int(1.5 * SAMPLE_RATE)), second]).astype(np.float32)
    path = tmp_path / "two.wav"
    sf.write(path, audio, SAMPLE_RATE)
    result = run_cli(
        "transcribe",
        str(path),
        "--language",
        "en",
        "--words",
        "--beam-size",
        "1",
        "--format",
        "srt,json",
        "--out",
        str(tmp_path / "out"),
        home=session_workspace.home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "two.json").read_text())
    words = [w for s in data["segments"] for w in s["words"]]
    spoken = [w["word"].strip(" .,").lower() for w in words]
    assert "sunny" in spoken and "platform" in spoken, spoken
    ours = next(w for w in words if w["word"].strip().lower() == "our")
    assert abs(ours["start"] - onset) < 0.15, (ours, onset)  # the pause before a sentence is not its first word's
    assert abs(words[0]["start"] - 1.0) < 0.15, words[0]
    cues = (tmp_path / "out" / "two.srt").read_text().strip().split("\n\n")
    assert len(cues) == len(words) and cues[0].split("\n")[2] == words[0]["word"].strip()
    # the transformers engine times the same words by DTW over whisper-base's alignment heads
    pytorch = Transcriber(
        "whisper-base", session_workspace, language="en", engine=EngineOptions(prefer_ctranslate2=False)
    )
    assert pytorch.backend.heads == [tuple(h) for h in pytorch.model.generation_config.alignment_heads]
    timed = _check_words(pytorch.transcribe_array(second, options=DecodingOptions(beam_size=1, word_timestamps=True)))
    assert [w.word.strip(" .").lower() for w in timed][:3] == ["our", "train", "leaves"]
    assert timed[0].start < 0.3 and timed[-1].end <= len(second) / SAMPLE_RATE
