"""The Train page's New run panel: dataset and preset, the form (app/config_form.py), Preview and Start.

Only the Start button starts a run (Enter in a field does not). A config whose step counts would do what the numbers
hide (core's `schedule_warnings`: no validation curve, warm-up most of the run) is not started until the warnings
are read and "Start anyway" is pressed. The preview (command line, time estimate, warnings) stays under the form
until the next Start, and the panel stays open: it is where the user looks.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app.config_form import config_form
from app.tab_state import SELECTED_DATASET, SELECTED_RUN, action, flash, show_outcome
from app.widgets import user_errors
from core.data import newest_artifact, open_artifact
from core.errors import DamagedFile
from core.training import (
    PRESETS,
    RunFolder,
    TrainConfig,
    apply_preset,
    default_preset,
    estimate_from_runs,
    free_run_name,
    presets_help,
    schedule_warnings,
    start_run,
)
from core.workspace import Workspace

RUN_PICKER = "train_run_picker"  # the Run select box below the panel: a started run is the one it shows
PANEL = "train_new_run"  # the panel's open state
FORM_DATASET = "train_form_dataset"  # the dataset the form's run name was made for
PREVIEW = "train_preview"  # (command line, estimate, warnings) of the last Preview
PENDING = "train_pending"  # (config, warnings): a Start that waits for "Start anyway"
STARTED = "train_started"  # the outcome of "Start anyway"


def start(ws: Workspace, config: TrainConfig) -> str:
    """Start `config`'s run; the Run picker and the sidebar follow it, the form offers the next free name."""
    run = start_run(config, ws)
    st.session_state[SELECTED_RUN] = st.session_state[RUN_PICKER] = run.name
    for key in (PREVIEW, PENDING, f"train-form-{st.session_state.get('train_preset')}-run"):
        st.session_state.pop(key, None)
    return f"Started **{run.name}**"


def new_run_panel(ws: Workspace, datasets: list[str], runs: list[str], demo_running: bool) -> None:
    with st.expander("New run", expanded=not runs, key=PANEL, on_change="rerun"):
        if not datasets:
            st.info(
                "The offline demo is making its dataset: its run appears here once it starts training."
                if demo_running
                else "Prepare a dataset on the Data page first (or run the offline demo from the sidebar)."
            )
            return
        # the dataset this tab chose (or just prepared), else the newest
        selected = st.session_state.get(SELECTED_DATASET) or newest_artifact(ws)
        top = st.columns(2)
        data = top[0].selectbox("Dataset", datasets, index=datasets.index(selected) if selected in datasets else 0)
        # the base model follows the dataset: its features were made by that model's processor
        try:
            artifact = open_artifact(ws, data)
        except DamagedFile as err:
            st.error(str(err), icon=":material/broken_image:")
            return
        prepared_with = artifact.manifest.model
        choices = ["none", *PRESETS]
        preset = top[1].selectbox(
            "Preset",
            choices,
            index=choices.index(default_preset(prepared_with)),
            help=presets_help(none="the recipe's settings"),
            key="train_preset",
        )
        defaults = apply_preset(
            TrainConfig(data=data, run=free_run_name(ws, data), model=prepared_with),
            None if preset == "none" else preset,
        )
        form = f"train-form-{preset}"
        # the run name follows the dataset, and never offers a name a run already has (one started elsewhere too)
        if st.session_state.get(FORM_DATASET) != data or st.session_state.get(f"{form}-run") in runs:
            st.session_state[FORM_DATASET] = data
            st.session_state.pop(f"{form}-run", None)
        inherited = {"language": artifact.manifest.language, "task": artifact.task}
        config, submitted, previewed = config_form(defaults, key=form, inherited=inherited)
        if submitted or previewed:
            with user_errors(labels=TrainConfig):
                config = replace(config, data=data).validate()
                warnings = schedule_warnings(config)
                if previewed:
                    estimate = estimate_from_runs(config, [RunFolder.of(ws, r) for r in runs])
                    st.session_state[PREVIEW] = (config.command_line(), estimate, warnings)
                elif warnings:
                    st.session_state[PENDING] = (config, warnings)
                else:
                    flash(start(ws, config))
                    st.rerun()  # the run list and the live view below now include it
        _preview_and_pending(ws)


def _preview_and_pending(ws: Workspace) -> None:
    preview, pending = st.session_state.get(PREVIEW), st.session_state.get(PENDING)
    if preview:
        command, estimate, warnings = preview
        st.code(command, language="bash")
        st.caption(estimate or "No run like this one has trained here yet: its pace is not known.")
        for warning in warnings if not pending else []:  # a Start that waits shows them once, beside Start anyway
            st.warning(warning, icon=":material/warning:")
    if pending:
        config, warnings = pending
        for warning in warnings:
            st.warning(warning, icon=":material/warning:")
        start_anyway, change = st.columns([1, 3])
        start_anyway.button(
            "Start anyway", icon=":material/play_arrow:", on_click=action(STARTED, start, ws, config), type="primary"
        )
        change.caption(f"Not started: **{config.run}** waits. Change the settings above and press Start again.")
    show_outcome(STARTED)
