"""What the pages show, decided in core and checked without a browser: the ETA across a stop and resume, warnings
before Start, the log a person reads, form labels, what synthetic speech fits a model, what prepare dropped, how
models are named, the doctor's table in words, the detected language in words, and Time every word's text."""

import pytest
from helpers import REPO, make_audio

from core.data import DoctorReport, Manifest, kind_for_window
from core.data.doctor import report_table
from core.evaluation.comparison import model_label
from core.formatting import readable_lines
from core.languages import get_language
from core.option_fields import field_label
from core.speech.transcripts import Transcript, language_guesses, language_line
from core.training import RunState, RunStatus, TrainConfig, eta_seconds, schedule_warnings


def loss_rows(steps, start_time, seconds_per_step):
    return [{"step": s, "loss": 1.0, "time": start_time + (s - steps[0]) * seconds_per_step} for s in steps]


def test_the_eta_after_a_resume_counts_only_the_steps_run_since():
    """Steps 1–20 at 5 s a step, stopped for 1000 s, resumed at step 21: the rest goes at 5 s a step too."""
    before = loss_rows(range(2, 21, 2), 0.0, 5.0)
    after = loss_rows(range(22, 27, 2), 1200.0, 5.0)
    status = RunStatus(state=RunState.RUNNING, step=26, total=60, timed_from=1195.0, timed_from_step=21)
    assert eta_seconds(status, before + after) == pytest.approx(34 * 5.0)
    # without the resume's start, the rows across the stop made it about ten times too long (the defect)
    assert eta_seconds(RunStatus(state=RunState.RUNNING, step=26, total=60), before + after) > 5 * 34 * 5.0


def test_a_run_that_logs_rarely_has_an_eta_from_its_second_step():
    """Logging every 10 steps: before two loss rows exist, the steps since the first one give the pace."""
    status = RunStatus(state=RunState.RUNNING, step=3, total=60, timed_from=100.0, timed_from_step=1)
    assert eta_seconds(status, [], now=110.0) == pytest.approx(57 * 5.0)
    assert (
        eta_seconds(RunStatus(state=RunState.RUNNING, step=1, total=60, timed_from=100.0, timed_from_step=1), [])
        is None
    )
    assert (
        eta_seconds(RunStatus(state=RunState.STOPPED, step=3, total=60, timed_from=100.0, timed_from_step=1), [])
        is None
    )


def test_schedule_warnings_say_what_the_step_counts_hide():
    quiet = TrainConfig(data="d", max_steps=60, eval_steps=20, save_steps=20, warmup_steps=6)
    assert schedule_warnings(quiet) == []
    loud = TrainConfig(data="d", max_steps=60, eval_steps=200, save_steps=200, warmup_steps=50)
    warnings = schedule_warnings(loud)
    assert len(warnings) == 3
    assert "eval steps 200 > max steps 60" in warnings[0] and "no validation curve" in warnings[0]
    assert "save steps 200" in warnings[1] and "warm-up 50 of 60 steps" in warnings[2]


def test_the_log_shown_leaves_out_the_libraries_warnings():
    lines = [
        "step 1/60  loss 10.85  lr 0  2.9 samples/s",
        "[transformers] The attention mask is not set and cannot be inferred from input because pad token is same",
        "[transformers.generation.utils] WARNING: The attention mask is not set with a batched input",
        "/x/.venv/lib/python3.11/site-packages/accelerate/state.py:279: UserWarning: OMP_NUM_THREADS unset",
        "  warnings.warn(",
        "W1204 07:56:02.368000 2199 torch/distributed/run.py:874] Setting OMP_NUM_THREADS",
        "[rank0]:[W1204 07:56:27.632491798 reducer.cpp:1529] Warning: find_unused_parameters=True",
        "[2026-12-04 07:57:19,828] [WARNING] [real_accelerator.py:213:get_accelerator] Setting accelerator to CPU.",
        "step 2/60  validation WER 40.0%  CER 20.0%",
        "Traceback (most recent call last):",
    ]
    assert readable_lines(lines) == [lines[0], lines[-2], lines[-1]]


def test_form_labels_are_words():
    assert field_label("grad_accum_steps") == "gradient accumulation steps"
    assert field_label("lr_scheduler") == "learning-rate scheduler"
    assert field_label("lora_rank") == "LoRA rank" and field_label("max_steps") == "max steps"


def test_synthetic_speech_fits_the_models_window():
    norwegian = get_language("nb")
    assert kind_for_window(norwegian, 30.0) == "sentences"  # Whisper: the language's template sentences
    assert kind_for_window(norwegian, 3.0) == "words"  # the demo's 3 s window: 1–4 words


def test_prepare_says_what_it_dropped_and_how_sure_a_small_test_split_is():
    splits = {
        "train": {"rows": 25, "hours": 0.01, "filtered": {"audio_too_long": 9, "empty_text": 0}},
        "validation": {"rows": 3, "hours": 0.001, "filtered": {}},
        "test": {"rows": 3, "hours": 0.001, "filtered": {"audio_too_long": 3}},
    }
    manifest = Manifest.from_dict({"splits": splits})
    assert manifest.dropped_rows_line() == (
        "12 of 43 rows dropped: 12 audio longer than the model's window (train 9, test 3)"
    )
    (warning,) = manifest.small_split_warnings()
    assert "the test split has 3 rows" in warning and "±57 points" in warning
    assert Manifest.from_dict({"splits": {"test": {"rows": 40}}}).small_split_warnings() == []
    assert manifest.split_table()[0] == {
        "split": "train",
        "rows": 25,
        "audio": "0m 36s",
        "dropped": "9 audio longer than the model's window",
    }


def test_models_are_named_as_runs_are_named(tmp_path):
    from core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    assert model_label(str(ws.runs / "nb-toy-1" / "checkpoint-60-ct2-int8"), ws) == "nb-toy-1/checkpoint-60 · ct2 int8"
    assert model_label(str(ws.runs / "nb-toy-1" / "checkpoint-60"), ws) == "nb-toy-1/checkpoint-60"
    assert model_label("whisper-base", ws) == "whisper-base"
    assert model_label("/data/models/my-whisper", ws) == "models/my-whisper"


def test_the_doctors_table_is_in_words():
    rows = [
        {"split": "train", "id": "a", "text": "hei", "duration": 1.23456, "tokens": 7, "dropped": None},
        {"split": "test", "id": "b", "text": "lang", "duration": 4.5, "tokens": 9, "dropped": "audio_too_long"},
    ]
    table = report_table(DoctorReport(rows, [], 5.7, {}, window_seconds=3.0))
    assert table[0]["seconds"] == "1.2" and table[0]["prepare"] == "keeps it"
    assert table[1]["prepare"] == "drops it: audio longer than the model's 3 s window"
    assert "dropped" not in table[0] and "duration" not in table[0]


def test_the_detected_language_is_said_in_words():
    sure = Transcript([], "no", 0.93, likely_languages=[("no", 0.93), ("da", 0.04)])
    assert language_line(sure) == "Detected language: **Norwegian Bokmål** (93%)"
    unsure = Transcript([], "th", 0.39, likely_languages=[("th", 0.39), ("no", 0.21), ("da", 0.12)])
    assert language_line(unsure).startswith("Not sure which language this is: Thai 39%, Norwegian Bokmål 21% or Danish")
    assert [g.code for g in language_guesses(unsure)] == ["th", "nb", "da"]  # our codes: what the pickers hold
    assert language_line(Transcript([], "no")) is None  # given, not detected


def test_time_words_keeps_the_decoded_text_and_times_its_words(tmp_path, session_workspace, demo_artifact):
    from core.speech import Transcriber
    from core.speech.decoding import file_options

    clip = make_audio(tmp_path / "clip.wav", "god morgen, en to tre")
    model = Transcriber("demo", session_workspace)
    greedy = file_options(False)
    plain = model.transcribe_file(clip, language="no", options=greedy)
    timed = model.time_words(clip, plain, greedy)
    assert timed.text == plain.text and plain.text
    in_decode = model.transcribe_file(clip, language="no", options=file_options(False, word_timestamps=True))
    # the same words at the same times as when they are timed while decoding (greedy decodes the same text)
    assert [(w.word, w.start, w.end) for s in timed.segments for w in s.words] == [
        (w.word, w.start, w.end) for s in in_decode.segments for w in s.words
    ]
    assert all(not s.words for s in plain.segments)


def test_streamlit_run_from_the_repository_gets_the_apps_settings():
    """`streamlit run app/main.py` (no flags) is headless, sends no usage statistics, shows no Deploy button and
    runs one script thread per tab (fast reruns lost clicks on a loaded machine)."""
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"], cwd=REPO, capture_output=True, text=True, timeout=120
    ).stdout
    for setting in ("gatherUsageStats = false", 'toolbarMode = "minimal"', "fastReruns = false", "headless = true"):
        assert f"\n{setting}\n" in shown, setting


def test_base_model_lines_are_labelled_once_and_say_when_they_are_off_the_scale():
    from app.charts import duration_chart, error_rate_curves

    def run(baseline, trained):
        return [{"step": 0, "eval_wer": baseline, "baseline": True}, {"step": 10, "eval_wer": trained}]

    chart = error_rate_curves({"nb-toy-1": run(4.571, 0.9), "nb-toy-2": run(4.571, 0.8), "other": run(3.9, 0.5)})
    labels = {row["label"] for rows in chart.to_dict()["datasets"].values() for row in rows if "label" in row}
    assert labels == {
        "nb-toy-1, nb-toy-2: base model 457.1% (off the scale)",  # one line for two runs, said off the axis
        "other: base model 390.0% (off the scale)",
    }
    texts = [layer["mark"] for layer in chart.to_dict()["layer"] if layer["mark"]["type"] == "text"]
    assert len(texts) == 2 and texts[0]["dy"] > 0 and texts[1]["dy"] > texts[0]["dy"]  # under the top edge, stacked
    histogram = duration_chart([{"seconds": 0.0, "end": 0.5, "rows": 2}, {"seconds": 0.5, "end": 1.0, "rows": 1}], 3.0)
    layers = histogram.to_dict()["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["bar", "rule", "text"]  # the window is marked
    assert layers[0]["encoding"]["y"]["axis"] == {"format": "d", "tickMinStep": 1}  # whole rows
