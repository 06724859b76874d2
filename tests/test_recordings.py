"""Your own voice as a dataset: takes checked before they are kept, a recording set that resumes and forgets a
take, prompts that never repeat a held-out sentence, a split by speaker, and `python -m core prompts`. Real
espeak-ng speech stands in for the person at the microphone."""

import inspect
import json
import subprocess

import numpy as np
import pytest
from helpers import make_audio, run_cli

from core.audio import SAMPLE_RATE, load_audio
from core.cli import main
from core.data import (
    FolderSource,
    PrepareOptions,
    RecordingSet,
    check_take,
    error_prompts,
    held_out_sentences,
    list_recordings,
    missed_words,
    prepare_features,
    template_prompts,
    text_prompts,
)
from core.data.rows import text_key
from core.errors import StudioError
from core.languages import get_language
from core.text.wer import utterance_results
from core.workspace import Workspace

NB = get_language("nb")
PROMPTS = ["Bestemor liker å fiske hver dag.", "Vi møtes foran kinoen klokka åtte.", "Hvorfor kjøpte du en rød bil?"]


@pytest.fixture(scope="module")
def takes(tmp_path_factory) -> dict[str, bytes]:
    """Each prompt spoken by espeak-ng, as the wav bytes a browser's recorder sends."""
    folder = tmp_path_factory.mktemp("takes")
    return {text: make_audio(folder / f"{i}.wav", text).read_bytes() for i, text in enumerate(PROMPTS)}


def test_each_check_names_what_to_do(takes):
    speech = load_audio(takes[PROMPTS[0]])
    assert check_take(speech, PROMPTS[0]).problem is None
    assert check_take(speech, PROMPTS[0]).speech_seconds > 1
    silent = np.zeros(3 * SAMPLE_RATE, np.float32)
    assert check_take(silent, PROMPTS[0]).problem.startswith("no speech heard")
    assert "microphone is chosen and not muted" in check_take(silent, PROMPTS[0]).problem
    assert check_take(speech * 0.003, PROMPTS[0]).problem.startswith("too quiet")
    assert check_take(np.clip(speech * 30, -1, 1), PROMPTS[0]).problem.startswith("clipped")
    twice = np.concatenate([speech, speech])
    assert "read just the prompt" in check_take(twice, "hei på deg").problem  # far longer than that takes to say
    assert "cut off" in check_take(speech, " ".join(PROMPTS * 4)).problem  # far shorter than four sentences take


def test_a_set_keeps_takes_resumes_and_deletes(workspace, takes):
    recordings = RecordingSet.open(workspace, "my-voice", "nb")
    assert recordings.add_prompts(PROMPTS + [PROMPTS[0]]) == 3  # a repeated prompt is one prompt
    first = recordings.keep(takes[PROMPTS[0]], PROMPTS[0], "ola")
    with pytest.raises(StudioError, match="no speech heard"):  # a rejected take is never kept
        recordings.keep(np.zeros(2 * SAMPLE_RATE, np.float32), PROMPTS[1], "ola")
    recordings.keep(takes[PROMPTS[1]], PROMPTS[1], "ola")

    resumed = RecordingSet.open(workspace, "my-voice")  # later, in another session: no language needed
    assert resumed.prompts_left("ola") == [PROMPTS[2]] and resumed.prompts_left("kari") == PROMPTS
    root = resumed.root
    assert sorted(p.name for p in root.glob("take-*")) == [
        "take-0001.txt",
        "take-0001.wav",
        "take-0002.txt",
        "take-0002.wav",
    ]
    assert (root / "take-0001.txt").read_text(encoding="utf-8") == PROMPTS[0] + "\n"
    kept = load_audio(root / first.file_name)
    assert len(kept) < len(load_audio(takes[PROMPTS[0]]))  # trimmed to the speech
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["file_name"], r["text"], r["speaker"]) for r in rows] == [
        ("take-0001.wav", PROMPTS[0], "ola"),
        ("take-0002.wav", PROMPTS[1], "ola"),
    ]
    assert not list(root.glob(".*.tmp"))  # written to temporary names and renamed

    resumed.delete("take-0001.wav")
    assert [t.file_name for t in resumed.takes()] == ["take-0002.wav"] and not (root / "take-0001.wav").exists()
    assert resumed.prompts_left("ola") == [PROMPTS[0], PROMPTS[2]]
    summary = list_recordings(workspace)[0]
    assert (summary.name, summary.takes, summary.speakers) == ("my-voice", 1, ("ola",))
    assert summary.bytes > 0 and 1 < summary.seconds < 5
    with pytest.raises(StudioError, match="no recording set 'other'"):
        RecordingSet.open(workspace, "other")
    with pytest.raises(StudioError, match="speaker name"):
        resumed.keep(takes[PROMPTS[2]], PROMPTS[2], "../x")


def test_several_speakers_split_by_speaker_and_prepare(workspace, takes):
    recordings = RecordingSet.open(workspace, "voices", "nb")
    voices = {"ola": "nb", "kari": "nb+f2", "per": "nb+m3"}
    folder = workspace.home / "spoken"
    folder.mkdir()
    for speaker, voice in voices.items():
        for i, text in enumerate(PROMPTS):
            clip = folder / f"{speaker}{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(clip), text], check=True)
            recordings.keep(clip.read_bytes(), text, speaker)
    by_text = FolderSource(recordings.root)
    assert by_text.layout == "audiofolder" and {e.speaker for e in by_text.rows["train"]} == set(voices)
    by_speaker = FolderSource(recordings.root, split_by="speaker")
    heard = {split: {e.speaker for e in rows} for split, rows in by_speaker.rows.items()}
    assert set(heard) == {"train", "validation", "test"} and all(len(s) == 1 for s in heard.values())
    assert heard["test"].isdisjoint(heard["train"]) and heard["validation"].isdisjoint(heard["train"])

    artifact = prepare_features(by_text, NB, "demo", "voices", workspace, PrepareOptions(split_by="speaker"))
    assert artifact.manifest.source["split_by"] == "speaker"
    assert {s: c.rows for s, c in artifact.manifest.splits.items()} == {"train": 3, "validation": 3, "test": 3}
    assert artifact.manifest.overlap["test"]["sentences"] == 3  # the same prompts, read by another voice

    one_voice = RecordingSet.open(workspace, "alone", "nb")
    one_voice.keep(takes[PROMPTS[0]], PROMPTS[0], "ola")
    one_voice.keep(takes[PROMPTS[1]], PROMPTS[1], "ola")
    with pytest.raises(StudioError, match="two speakers or more.*one \\(ola\\).*split by text"):
        FolderSource(one_voice.root, split_by="speaker")


def test_prompts_hold_out_test_sentences_and_follow_the_errors(workspace, synth_folder):
    held = held_out_sentences(workspace, NB)
    prompts = template_prompts(NB, 50, held)
    assert len(prompts) == len(set(prompts)) == 50 and not {text_key(p) for p in prompts} & held
    # a synthetic set of the workspace: its test sentences are held out too
    (workspace.synth / "nb-set").mkdir(parents=True)
    (workspace.synth / "nb-set" / "synth.json").write_text(json.dumps({"language": "nb"}))
    (workspace.synth / "nb-set" / "test").mkdir()
    (workspace.synth / "nb-set" / "test" / "00000.txt").write_text(prompts[0] + "\n")
    assert prompts[0] not in template_prompts(NB, 50, held_out_sentences(workspace, NB))

    rows = utterance_results(["1", "2"], ["barna kjøpte en bil", "vi kjøpte is"], ["barna kjøpt en bil", "vi købte"])
    assert missed_words(rows) == [("kjøpte", 2), ("is", 1)]
    chosen = error_prompts(rows, NB, 10, held)
    assert "kjøpte" in text_key(chosen[0]).split() and chosen[0] not in ("barna kjøpte en bil", "vi kjøpte is")
    assert text_prompts("første\n\n  andre   linje \nførste\n") == ["første", "andre linje"]
    with pytest.raises(StudioError, match="line 2 has 301 characters"):
        text_prompts("ok\n" + "a" * 301)


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_the_prompts_command(tmp_path, capsys):
    out = tmp_path / "prompts.txt"
    done = run_cli("prompts", "--language", "nb", "--n", "5", "--out", str(out), home=tmp_path / "ws")
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and all(line.endswith((".", "?")) for line in lines)
    assert lines == template_prompts(NB, 5, held_out_sentences(Workspace.open(tmp_path / "ws"), NB))
    code = main(["prompts", "--language", "nb", "--from-errors", "nb-1", "--home", str(tmp_path / "ws")])
    assert code == 2 and capsys.readouterr().err.strip().startswith("error: no run 'nb-1'")


@pytest.mark.slow  # the page and word timing through the alignment path: a minute on 2 busy cores
def test_transcribe_lists_the_timed_words_to_play_from(monkeypatch, workspace, tmp_path):
    from helpers import no_trouble, open_page

    from core.speech import Transcriber

    if "options" not in inspect.signature(Transcriber.transcribe_file).parameters:
        pytest.skip("word timestamps (issue 20) are not in core/speech/inference.py yet")
    monkeypatch.setenv("STUDIO_HOME", str(workspace.home))
    app = open_page("pages/transcribe.py")
    app.selectbox(key="tr_model").set_value("base: demo (untrained)")
    app.checkbox(key="tr_words").check()
    clip = make_audio(tmp_path / "clip.wav", "god morgen alle sammen")
    app.file_uploader(key="tr_upload").set_value((clip.name, clip.read_bytes(), "audio/wav"))
    app.run()
    no_trouble(app)
    transcript = list(app.session_state["transcripts"].values())[-1]  # the timed one, made last
    words = [w for s in transcript.segments for w in s.words]
    picker = app.selectbox(key="words-0-word")
    assert words and len(picker.options) == len(words)
    assert picker.options[-1].startswith(f"{words[-1].start:.2f} s · {words[-1].word.strip()}")
