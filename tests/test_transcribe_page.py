"""The Transcribe page through AppTest: real audio files in several formats uploaded and recorded into a trained
checkpoint, A/B mode, and conversation mode against the local OpenAI-compatible stand-in."""

import re

import pytest
from helpers import make_audio, no_trouble, open_page
from llm_standin import StandIn

from core.speech import Transcriber


@pytest.fixture
def page(monkeypatch, populated):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/transcribe.py")
    best = (
        populated.run("page-run")
        / (__import__("json").loads((populated.run("page-run") / "best.json").read_text())["checkpoint"])
    )
    label = next(o for o in app.selectbox(key="tr_model").options if "★ best" in o)
    app.selectbox(key="tr_model").set_value(label)
    app.selectbox(key="tr_language").set_value("nb")
    app.run()
    return app, Transcriber(str(best), populated, language="no")


def page_text(app) -> str:
    return "\n".join(str(m.value) for m in app.markdown)


@pytest.mark.parametrize(
    "suffix, mime",
    [
        (".wav", "audio/wav"),
        (".mp3", "audio/mpeg"),
        (".ogg", "audio/ogg"),
        (".m4a", "audio/mp4"),
        (".webm", "audio/webm"),
    ],
)
def test_upload_shows_the_checkpoints_transcript(tmp_path, page, suffix, mime):
    app, reference = page
    path = make_audio(tmp_path / f"upload{suffix}", "god morgen")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), mime))
    app.run()
    no_trouble(app)
    expected = " ".join(s.text for s in reference.transcribe(path)) or "(nothing recognised)"
    assert expected in page_text(app)


def test_a_rerun_shows_the_transcript_made_for_this_audio_instead_of_transcribing_again(tmp_path, page):
    app, _ = page
    path = make_audio(tmp_path / "again.wav", "god natt")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    first = list(app.session_state["transcripts"].values())
    app.run()  # what a download click does
    again = list(app.session_state["transcripts"].values())
    assert len(first) == 1 and again[0] is first[0]
    no_trouble(app)


def test_recording_and_ab_mode(tmp_path, page):
    app, reference = page
    path = make_audio(tmp_path / "rec.wav", "hei på deg")
    app.toggle(key="tr_ab").set_value(True)
    app.run()
    app.selectbox(key="tr_model_b").set_value("base: demo (untrained)")
    app.audio_input(key="tr_record").set_value(("rec.wav", path.read_bytes(), "audio/wav"))
    app.run()
    no_trouble(app)
    captions = " ".join(str(c.value) for c in app.caption)
    # both models, side by side, named as the pickers name them (not as folder paths)
    assert "**base: demo (untrained)**" in captions and "checkpoint-" in captions and "/runs/" not in captions
    assert (" ".join(s.text for s in reference.transcribe(path)) or "(nothing recognised)") in page_text(app)


def test_conversation_keeps_history_and_survives_errors(monkeypatch, populated):
    standin = StandIn().start()
    try:
        monkeypatch.setenv("STUDIO_HOME", str(populated.home))
        monkeypatch.setenv("OPENAI_BASE_URL", standin.base_url)
        monkeypatch.setenv("OPENAI_MODEL", "echo")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
        app = open_page("pages/conversation.py")
        app.segmented_control(key="chat_mode").set_value("Type")
        app.run()
        for text in ("hei", "hvordan går det"):
            app.chat_input[0].set_value(text)
            app.run()
            no_trouble(app)
        assert len(app.chat_message) == 4
        assert "You said: hvordan går det (turn 2)" in page_text(app)
        app.text_input(key="llm_model").set_value("fail-429")
        app.run()
        app.chat_input[0].set_value("tredje")
        app.run()
        assert any("rate-limiting (429)" in e.value for e in app.error)
        # the failed turn stays in place at once, with why and a Retry (no further message needed to see it)
        assert "tredje" in page_text(app) and app.button(key="chat_retry")
        assert any("Not answered" in e.value and "rate-limiting (429)" in e.value for e in app.error)
        app.text_input(key="llm_model").set_value("echo")
        app.run()
        assert len(app.session_state["conversation"].turns) == 4  # the failed turn did not join the conversation
        assert "sk-never-shown" not in str(app._tree)
        assert standin.requests[-1]["authorization"] == "Bearer sk-never-shown"
    finally:
        standin.shutdown()


def test_whisper_base_is_the_default_detects_the_language_and_offers_downloads(tmp_path, monkeypatch, whisper_base):
    home = whisper_base.parent.parent
    monkeypatch.setenv("STUDIO_HOME", str(home))
    app = open_page("pages/transcribe.py")
    assert app.selectbox(key="tr_model").value.startswith("whisper-base")  # the default model
    app.selectbox(key="tr_language").set_value("auto")
    path = make_audio(tmp_path / "fox.wav", "the quick brown fox jumps over the lazy dog", "en-us")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    no_trouble(app)
    assert any(re.fullmatch(r"Detected language: \*\*English\*\* \(\d+%\)", c.value) for c in app.caption)
    assert "brown fox" in page_text(app).lower()
    assert [b.label for b in app.get("download_button")] == ["TXT", "SRT", "VTT", "JSON"]


def test_conversation_takes_an_uploaded_spoken_turn_and_retries_a_failed_one(tmp_path, monkeypatch, populated):
    standin = StandIn().start()
    try:
        monkeypatch.setenv("STUDIO_HOME", str(populated.home))
        monkeypatch.setenv("OPENAI_BASE_URL", standin.base_url)
        monkeypatch.setenv("OPENAI_MODEL", "echo")
        app = open_page("pages/conversation.py")
        app.selectbox(key="chat_language").set_value("nb")
        app.segmented_control(key="chat_mode").set_value("Upload a clip")
        app.run()
        clip = make_audio(tmp_path / "turn.wav", "god morgen")
        app.file_uploader(key="chat_upload_0").set_value((clip.name, clip.read_bytes(), "audio/wav"))
        app.run()
        no_trouble(app)
        heard = app.text_area(key="chat_edit_0").value
        app.selectbox(key="chat_language").set_value("en")  # heard again in English: the box follows
        app.run()
        english = list(app.session_state["transcripts"].values())[-1].text
        assert app.text_area(key="chat_edit_0").value == english != heard
        app.text_area(key="chat_edit_0").set_value("god morgen")  # corrected before sending
        app.button[[b.label for b in app.button].index("Send")].click()
        app.run()
        no_trouble(app)
        assert "You said: god morgen (turn 1)" in page_text(app) and isinstance(heard, str)
        assert not [w for w in app.file_uploader if w.key == "chat_upload_0"]  # the next turn starts empty
        app.text_input(key="llm_model").set_value("fail-500")
        app.segmented_control(key="chat_mode").set_value("Type")
        app.run()
        app.chat_input[0].set_value("andre gang")
        app.run()
        assert any("Not answered" in e.value for e in app.error)
        assert "andre gang" in page_text(app)  # kept in place, with a Retry
        app.text_input(key="llm_model").set_value("echo")
        app.run()
        app.button(key="chat_retry").click()
        app.run()
        no_trouble(app)
        assert "You said: andre gang (turn 2)" in page_text(app)
        assert not [b for b in app.button if b.key == "chat_retry"]
    finally:
        standin.shutdown()


def keep_box(app):
    return next(t for t in app.text_area if t.key.endswith("-text"))


def test_each_model_starts_at_its_own_decoding_default(monkeypatch, populated):
    """whisper-base decodes files with beam search and fallback; the toy greedily (the fallback would cost it a
    minute a clip): the switch follows the model chosen, not the first model the page showed."""
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/transcribe.py")
    assert app.checkbox(key="tr_accurate").value
    app.selectbox(key="tr_model").set_value("base: demo (untrained)")
    app.run()
    assert not app.checkbox(key="tr_accurate").value
    app.selectbox(key="tr_model").set_value(app.selectbox(key="tr_model").options[0])
    app.run()
    assert app.checkbox(key="tr_accurate").value
    no_trouble(app)


def test_the_language_is_the_workspaces_until_chosen(monkeypatch, populated):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/transcribe.py")
    assert app.selectbox(key="tr_language").value == "nb"  # the populated workspace's dataset and run are Norwegian
    app.switch_page("../pages/conversation.py")
    app.run()
    assert app.selectbox(key="chat_language").value == "nb"


def test_the_correction_box_holds_the_transcript_shown_above_it(tmp_path, page):
    app, _ = page
    path = make_audio(tmp_path / "box.wav", "god morgen")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    first = keep_box(app).value
    assert first and first in page_text(app)
    app.selectbox(key="tr_model").set_value("base: demo (untrained)")  # another model: another transcript
    app.run()
    no_trouble(app)
    second = keep_box(app).value
    assert second != first and second in page_text(app) and first not in page_text(app)


def test_keep_saves_the_corrected_transcript_with_the_audio(tmp_path, page, populated):
    app, _ = page
    path = make_audio(tmp_path / "keep.wav", "hei på deg")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    keep_box(app).set_value("Hei på deg.")
    next(t for t in app.text_input if t.key.endswith("-set")).set_value("page-keep")
    app.run()
    next(b for b in app.button if b.label == "Keep in dataset page-keep").click()
    app.run()
    no_trouble(app)
    assert any(s.value.startswith("Kept take-0001.wav in **page-keep**") for s in app.success)
    assert (populated.recordings / "page-keep" / "take-0001.txt").read_text(encoding="utf-8").strip() == "Hei på deg."


def test_timing_every_word_keeps_the_text(tmp_path, page):
    """Words are timed on the transcript shown, not decoded again (a decode through the fallback samples, and a
    second one can read other words)."""
    app, _ = page
    app.selectbox(key="tr_model").set_value("base: demo (untrained)")  # it always writes something
    app.run()
    app.checkbox(key="tr_accurate").set_value(True)
    path = make_audio(tmp_path / "words.wav", "god morgen, en to tre")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    plain = keep_box(app).value
    app.checkbox(key="tr_words").set_value(True)
    app.run()
    no_trouble(app)
    made = list(app.session_state["transcripts"].values())
    assert len(made) == 2 and made[1].text == made[0].text == plain == keep_box(app).value and plain
    timed = [w.word.strip() for segment in made[1].segments for w in segment.words]
    assert timed and " ".join(timed) in plain  # the words of this very text, timed
    assert len(app.selectbox(key="words-0-word").options) == len(timed)  # and offered to play from


def test_an_unsure_detection_says_so_and_offers_the_languages(tmp_path, monkeypatch, whisper_base, demo_artifact):
    """whisper-base hears espeak-ng's Norwegian as German (33%): said in words, with Norwegian (the workspace's
    language) and the likely ones to choose, and choosing one transcribes the clip again in it."""
    monkeypatch.setenv("STUDIO_HOME", str(whisper_base.parent.parent))
    app = open_page("pages/transcribe.py")
    app.selectbox(key="tr_language").set_value("auto")
    path = make_audio(tmp_path / "unsure.wav", "god morgen, en to tre")
    app.file_uploader(key="tr_upload").set_value((path.name, path.read_bytes(), "audio/wav"))
    app.run()
    no_trouble(app)
    warning = next(w.value for w in app.warning if "Not sure which language" in w.value)
    assert re.search(r"German \d+%", warning) and "German (de)" not in warning
    guessed = keep_box(app).value
    app.button(key="tr-guess-nb").click()
    app.run()
    no_trouble(app)
    assert app.selectbox(key="tr_language").value == "nb"
    assert not any("Not sure" in w.value for w in app.warning) and keep_box(app).value != guessed
