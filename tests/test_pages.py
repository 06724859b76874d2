"""Page tests with Streamlit's AppTest: every page renders on an empty and on a populated workspace, the Data page
makes and prepares a synthetic set, and the Train form shows the engine's message for an invalid value."""

import re

import pytest
from helpers import PAGES, no_trouble, open_page


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.slow  # over 4 s: out of the fast lane
def test_every_page_renders_on_an_empty_workspace(tmp_path, monkeypatch, page):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "empty"))
    app = open_page(page)
    no_trouble(app)
    assert any(b.label == "Run the offline demo" for b in app.button)  # the one-click offer


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_populated_workspace(monkeypatch, populated, page):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page(page)
    no_trouble(app)
    if page == "pages/train.py":
        runs = app.dataframe[-1].value
        assert runs.loc[runs["Run"] == "page-run", "State"].item() == "completed"
        assert any(m.label == "Best WER" and m.value.endswith("%") for m in app.metric)
    if page == "pages/compare.py":
        assert app.dataframe and "page-run/checkpoint-" in str(app.dataframe[0].value.index.tolist())
    if page == "pages/data.py":
        assert any("nb-tiny" in e.label for e in app.expander)


def test_train_form_shows_the_engines_message(monkeypatch, populated):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/train.py")
    app.number_input(key="train-form-demo-learning_rate").set_value(5.0)
    app.button(key="FormSubmitter:train-form-demo-Start training").click()
    app.run()
    no_trouble(app)
    assert any("learning rate 5.0: choose a value between 0 and 1" in e.value for e in app.error)


def test_train_form_previews_its_command_and_time_before_start(monkeypatch, populated):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/train.py")
    app.number_input(key="train-form-demo-max_steps").set_value(400)
    app.button(key="FormSubmitter:train-form-demo-Preview command").click()
    app.run()
    no_trouble(app)
    command = next(c.value for c in app.code if "--max-steps 400" in c.value)
    assert re.match(r"python -m core train --data (\S+) --run \1-\d+ --model demo", command)  # the newest dataset
    # the populated run (or another demo-model run of the session) trained here: its pace gives the estimate
    assert any(
        re.search(r"of training at the pace run \S+ measured here \([\d.]+ samples/s\)", c.value) for c in app.caption
    )
    assert not any(b.label == "Stop" for b in app.button)  # nothing was started


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_data_page_generates_and_prepares_a_synthetic_set(tmp_path, monkeypatch, session_workspace, demo_artifact):
    home = tmp_path / "fresh"
    (home / "models").mkdir(parents=True)
    import shutil

    shutil.copytree(session_workspace.models / "demo", home / "models" / "demo")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    app = open_page("pages/data.py")
    assert app.selectbox(key="data_model").value.startswith("whisper-base")  # the default base model
    app.selectbox(key="data_model").set_value(
        next(o for o in app.selectbox(key="data_model").options if o.startswith("demo"))
    )
    app.run()
    assert any(i.value.startswith("Generate the speech above") for i in app.info)  # not "choose a source"
    # the demo listens 3 s at a time: words, not the template sentences (a third of which prepare would drop)
    assert any("listens 3 s at a time" in c.value for c in app.caption)
    app.switch_page("../pages/train.py")
    app.run()
    app.switch_page("../pages/data.py")
    app.run()
    assert app.selectbox(key="data_model").value.startswith("demo")  # the choice outlived a visit to Train
    app.number_input[0].set_value(20)
    next(b for b in app.button if b.label == "Generate with espeak-ng").click()
    app.run()
    no_trouble(app)
    assert (home / "synth" / "nb-words-20-0" / "synth.json").is_file()
    next(b for b in app.button if b.label == "Examine the first rows").click()
    app.run()
    no_trouble(app)
    assert any(m.label == "Rows examined" and m.value == "20" for m in app.metric)
    assert "prepare" in app.dataframe[0].value.columns and "dropped" not in app.dataframe[0].value.columns
    app.segmented_control(key="data_kind").set_value("Record my voice")
    app.run()
    assert not any(m.label == "Rows examined" for m in app.metric)  # the synthetic set's report is not this one's
    app.segmented_control(key="data_kind").set_value("Synthetic speech")
    app.run()
    next(b for b in app.button if b.label == "Prepare features").click()
    app.run()
    no_trouble(app)
    assert any("Prepared **nb-synthetic**" in s.value for s in app.success)
    assert (home / "datasets" / "nb-synthetic" / "manifest.json").is_file()
    assert any("the test split has 2 rows" in w.value and "±69 points" in w.value for w in app.warning)
    assert not app.json  # the dataset's summary in words, not its manifest as JSON
    assert any(c.value.startswith("Made ") and "3 s window" in c.value for c in app.caption)


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_an_empty_recording_set_asks_for_prompts(tmp_path, monkeypatch):
    from core.data import RecordingSet
    from core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    RecordingSet.open(ws, "my-voice", "nb")  # a set made before any prompt was added
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/data.py")
    app.segmented_control(key="data_kind").set_value("Record my voice")
    app.run()
    no_trouble(app)
    assert any("no prompts yet" in i.value for i in app.info)
    assert not any("Every prompt is read" in s.value for s in app.success)


def test_the_train_form_shows_every_config_field_once():
    from dataclasses import fields

    from app.config_form import BASIC, GROUPS, HIDDEN
    from core.training import TrainConfig

    placed = [*BASIC, *HIDDEN, *(name for names in GROUPS.values() for name in names)]
    assert sorted(placed) == sorted(f.name for f in fields(TrainConfig))


def test_empty_task_and_language_say_what_they_take_from_the_dataset(monkeypatch, populated):
    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    app = open_page("pages/train.py")
    no_trouble(app)
    assert app.selectbox(key="train-form-demo-task").options[0] == "from the dataset: transcribe"
    assert app.text_input(key="train-form-demo-language").placeholder == "from the dataset: nb"


def fresh_copy(workspace, populated):
    """A workspace of its own holding the populated run (hard links): a test that starts or changes runs there
    leaves the session's alone."""
    import os
    import shutil

    shutil.copytree(populated.run("page-run"), workspace.run("page-run"), copy_function=os.link)
    return workspace


def form_key(app) -> str:
    return next(n.key for n in app.number_input if n.key.endswith("-max_steps")).removesuffix("-max_steps")


def test_start_warns_before_a_schedule_that_hides_its_steps_and_follows_the_run_it_starts(
    monkeypatch, workspace, populated
):
    from core.training import RunFolder, RunState, list_runs, stop_run, wait_for

    ws = fresh_copy(workspace, populated)
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/train.py")
    # the tiny set, not the newest the session's other tests prepared (one has an empty validation split)
    next(s for s in app.selectbox if s.label == "Dataset").set_value("nb-tiny")
    app.run()
    form = form_key(app)
    for field, value in (("max_steps", 60), ("eval_steps", 200), ("save_steps", 200), ("warmup_steps", 50)):
        app.number_input(key=f"{form}-{field}").set_value(value)
    app.button(key=f"FormSubmitter:{form}-Start training").click()
    app.run()
    no_trouble(app)
    assert list_runs(ws.runs) == ["page-run"]  # nothing started yet
    shown = " ".join(w.value for w in app.warning)
    assert "eval steps 200 > max steps 60" in shown and "warm-up 50 of 60 steps" in shown
    started = app.text_input(key=f"{form}-run").value
    next(b for b in app.button if b.label == "Start anyway").click()
    app.run()
    no_trouble(app)
    try:
        assert started in list_runs(ws.runs), [e.value for e in app.error]  # a refusal says why
        assert app.selectbox(key="train_run_picker").value == started  # the live view shows the run just started
        assert any(b.key in (f"stop-{started}", f"resume-{started}") for b in app.button)
        assert started in app.sidebar.caption[0].value  # the sidebar too, in the same rerun
        assert app.text_input(key=f"{form}-run").value != started  # the form offers the next free name
    finally:
        run = RunFolder.of(ws, started)
        if run.status().live:
            stop_run(run)
        wait_for(run, 120, (RunState.STOPPED, RunState.COMPLETED, RunState.FAILED))


def test_the_form_never_offers_a_run_name_already_taken(monkeypatch, workspace, populated):
    import shutil

    ws = fresh_copy(workspace, populated)
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/train.py")
    form = form_key(app)
    offered = app.text_input(key=f"{form}-run").value
    ws.run(offered).mkdir()  # a run of that name started elsewhere (the command line, another tab)
    shutil.copy(ws.run("page-run") / "config.json", ws.run(offered) / "config.json")
    app.run()
    assert app.text_input(key=f"{form}-run").value not in (offered, "page-run")


def test_preview_shows_the_command_under_the_form_and_the_log_leaves_out_library_warnings(
    monkeypatch, workspace, populated
):
    ws = fresh_copy(workspace, populated)
    with open(ws.run("page-run") / "train.log", "a", encoding="utf-8") as log:
        log.write("[transformers] The attention mask is not set and cannot be inferred from input\n")
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/train.py")
    log_shown = next(c.value for c in app.code if "step" in c.value)
    assert "attention mask" not in log_shown and "step 4/4" in log_shown
    assert "attention mask" in (ws.run("page-run") / "train.log").read_text()  # kept in the file
    form = form_key(app)
    app.session_state["train_new_run"] = True  # the user opens the New run panel (folded once a run exists)
    app.button(key=f"FormSubmitter:{form}-Preview command").click()
    app.run()
    app.number_input(key=f"{form}-max_steps").set_value(8)  # any other rerun: the preview stays
    app.run()
    no_trouble(app)
    assert any(c.value.startswith("python -m core train") for c in app.code)
    assert app.session_state["train_new_run"]  # the panel the preview is in stays open


def test_compare_names_exports_as_runs_and_shows_ab_in_percent(monkeypatch, workspace, populated):
    """An export evaluated is named 'page-run/checkpoint-N · ct2 int8' (not a cut-off absolute path) in the matrix
    and the pickers; the side-by-side table names its columns after the models and shows percent."""
    from core.evaluation import evaluate_model
    from core.models import export_ctranslate2
    from core.training import RunFolder

    ws = fresh_copy(workspace, populated)
    run = RunFolder.of(ws, "page-run")
    best = run.best_checkpoint_name()
    exported = export_ctranslate2(str(run.path / best), ws, "int8")
    evaluate_model(str(exported), "nb-tiny", ws)
    evaluate_model(str(run.path / best), "nb-tiny", ws)
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/compare.py")
    no_trouble(app)
    named = f"page-run/{best} · ct2 int8"
    matrix = app.dataframe[0].value
    assert named in matrix.index and not any(str(m).startswith("/") for m in matrix.index)
    assert matrix.max().max() > 1  # percent, as every other view shows it
    first = app.selectbox(key="compare_first")
    first.set_value(next(o for o in first.options if o.startswith(named)))
    app.run()
    app.selectbox(key="compare_second").set_value(app.selectbox(key="compare_second").options[1])
    app.run()
    no_trouble(app)
    pairs = app.dataframe[-1].value
    assert f"A: {named}" in pairs.columns and "A WER (%)" in pairs.columns and "wer_a" not in pairs.columns


def test_compare_says_in_one_line_that_a_saved_evaluation_lacks_fields(monkeypatch, workspace, populated):
    """A saved evaluation that is valid JSON but not a whole evaluation (a WER and no rows' worth of fields) is listed,
    and choosing it shows one line naming the problem; the page goes on."""
    import json

    ws = fresh_copy(workspace, populated)
    ws.evaluations.mkdir(parents=True, exist_ok=True)
    (ws.evaluations / "broken-model__nb-tiny__test.json").write_text(
        json.dumps({"model": "broken-model", "data": "nb-tiny", "split": "test", "wer": 0.5})
    )
    monkeypatch.setenv("STUDIO_HOME", str(ws.home))
    app = open_page("pages/compare.py")
    first = app.selectbox(key="compare_first")
    first.set_value(next(o for o in first.options if "broken-model" in o))
    app.run()
    second = app.selectbox(key="compare_second")
    second.set_value(second.options[1])  # another evaluation of the same test set: no side by side with a broken one
    app.run()
    assert not app.exception
    assert any("lacks a field" in e.value and "evaluate the model again" in e.value for e in app.error)


@pytest.mark.slow  # starts the demo in the background (killed at once)
def test_the_sidebar_demo_starts_and_the_sidebar_follows_it_in_the_same_rerun(tmp_path, monkeypatch):
    import os
    import signal

    from app.tab_state import DEMO_JOB
    from core.training import command_job
    from core.workspace import Workspace

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "empty"))
    app = open_page("pages/data.py")
    app.select_slider(key="sidebar_demo_size").set_value(200)
    next(b for b in app.button if b.label == "Run the offline demo").click()
    app.run()
    job = command_job(Workspace.open(tmp_path / "empty"), DEMO_JOB)
    try:
        assert job and job["args"][-2:] == ["--utterances", "200"]  # the slider's value, read in the callback
        sidebar = " ".join(m.value for m in app.sidebar.markdown)
        assert "Offline demo" in sidebar and "running" in sidebar  # the started job, polled from this rerun on
        assert any("Demo started" in s.value for s in app.sidebar.success)
    finally:
        if job:
            os.killpg(job["pid"], signal.SIGKILL)
