"""Transcripts to keep: SRT, WebVTT, TXT and JSON from real transcriptions, a whole folder from the command line
with an unreadable file skipped and reported, and the detected language with its probability."""

import json

from helpers import make_audio, run_cli

from core.speech.transcripts import Segment, Transcript, to_json, to_srt, to_txt, to_vtt
from core.workspace import LEDGER_FILE

SAMPLE = Transcript(
    [Segment(0.0, 2.5, "Hello there."), Segment(3.25, 3661.0071, "Second line."), Segment(4.0, 4.5, "")],
    language="en",
    language_probability=0.91,
    duration=3662.0,
    source="talk.wav",
)


def test_subtitle_formats_follow_their_specs():
    assert to_srt(SAMPLE) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:03,250 --> 01:01:01,007\nSecond line.\n"
    )  # numbered cues, comma before milliseconds, empty segments left out
    vtt = to_vtt(SAMPLE)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n") and "01:01:01.007" in vtt
    assert to_txt(SAMPLE) == "Hello there. Second line.\n"
    data = json.loads(to_json(SAMPLE))
    assert (data["language"], data["language_probability"], data["text"]) == ("en", 0.91, "Hello there. Second line.")
    assert data["segments"][1] == {"start": 3.25, "end": 3661.0071, "text": "Second line."}


def test_a_folder_is_transcribed_with_detected_language_and_bad_files_reported(
    tmp_path, whisper_base, session_workspace
):
    folder = tmp_path / "recordings"
    folder.mkdir()
    make_audio(folder / "fox.mp3", "the quick brown fox jumps over the lazy dog", "en-us")
    make_audio(folder / "call.wav", "please call me back when you get home", "en-us")
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt not audio")
    out = tmp_path / "transcripts"
    result = run_cli(
        "transcribe", str(folder), "--out", str(out), "--format", "txt,srt,vtt,json", home=session_workspace.home
    )
    assert result.returncode == 2, result.stderr[-1500:]  # one file failed: the command says so
    assert "skipped: " in result.stderr and "broken.wav" in result.stderr
    assert "error: 1 of 3 files could not be transcribed" in result.stderr
    assert sorted(p.name for p in out.iterdir() if p.name != LEDGER_FILE) == sorted(
        f"{stem}.{fmt}" for stem in ("call", "fox") for fmt in ("json", "srt", "txt", "vtt")
    )
    fox = json.loads((out / "fox.json").read_text())
    assert fox["language"] == "en" and fox["language_probability"] > 0.5  # detected: no --language was given
    assert {"quick", "brown", "fox"} <= set((out / "fox.txt").read_text().lower().replace(".", "").split())
    assert (out / "call.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert "call me back" in (out / "call.vtt").read_text().lower()
