"""Page tests with Streamlit's AppTest: every page renders on an empty and on a populated workspace, the Data page
makes and prepares a synthetic set, and the Train form shows the engine's message for an invalid value."""

import re

import pytest
from helpers import PAGES, no_trouble, open_page


@pytest.mark.parametrize("page", PAGES)
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


def test_data_page_generates_and_prepares_a_synthetic_set(tmp_path, monkeypatch, session_workspace):
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
    app.number_input[0].set_value(20)
    next(b for b in app.button if b.label == "Generate with espeak-ng").click()
    app.run()
    no_trouble(app)
    next(b for b in app.button if b.label == "Examine the first rows").click()
    app.run()
    no_trouble(app)
    assert any(m.label == "Rows examined" and m.value == "20" for m in app.metric)
    next(b for b in app.button if b.label == "Prepare features").click()
    app.run()
    no_trouble(app)
    assert any("Prepared **nb-synthetic**" in s.value for s in app.success)
    assert (home / "datasets" / "nb-synthetic" / "manifest.json").is_file()


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
