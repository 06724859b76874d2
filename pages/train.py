"""Train: a form built from the training config, Start/Stop/Resume, and a live view read from the run folder."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.charts import error_rate_curves, guard_curves, training_curves
from app.common import DEMO_JOB, SELECTED_DATASET, SELECTED_RUN, flash, show_flash, user_errors, workspace
from app.config_form import config_form
from app.students import smaller_model_control
from core.data import list_artifacts, newest_artifact, open_artifact
from core.errors import DamagedFile
from core.formatting import MISSING, format_duration
from core.training import (
    PRESETS,
    RunFolder,
    TrainConfig,
    apply_preset,
    command_job,
    command_job_state,
    default_preset,
    estimate_from_runs,
    eta_seconds,
    free_run_name,
    list_runs,
    phase_progress,
    presets_help,
    resume_run,
    run_warnings,
    start_run,
    stop_run,
)

RUN_PICKER = "train_run_picker"
FORM_DATASET = "train_form_dataset"  # the dataset the form's run name was made for

ws = workspace()
st.title("Train")
show_flash()
datasets = list_artifacts(ws)
runs = list_runs(ws.runs)

with st.expander("New run", expanded=not runs):
    prepared_with = None  # the model the chosen dataset's features were made for
    demo = command_job(ws, DEMO_JOB)
    if not datasets and demo and command_job_state(demo) == "running":
        st.info("The offline demo is making its dataset: its run appears here once it starts training.")
    elif not datasets:
        st.info("Prepare a dataset on the Data page first (or run the offline demo from the sidebar).")
    else:
        # the dataset this tab chose (or just prepared), else the newest
        selected = st.session_state.get(SELECTED_DATASET) or newest_artifact(ws)
        top = st.columns(2)
        data = top[0].selectbox("Dataset", datasets, index=datasets.index(selected) if selected in datasets else 0)
        # the base model follows the dataset: its features were made by that model's processor
        try:
            artifact = open_artifact(ws, data)
            prepared_with = artifact.manifest["model"]
            inherited = {"language": artifact.manifest["language"], "task": artifact.task}
        except DamagedFile as err:
            st.error(str(err), icon=":material/broken_image:")
            prepared_with = None
    if prepared_with:
        choices = ["none", *PRESETS]
        preset = top[1].selectbox(
            "Preset",
            choices,
            index=choices.index(default_preset(prepared_with)),
            help=presets_help(none="the recipe's settings"),
        )
        defaults = apply_preset(
            TrainConfig(data=data, run=free_run_name(ws, data), model=prepared_with),
            None if preset == "none" else preset,
        )
        form = f"train-form-{preset}"
        if st.session_state.get(FORM_DATASET) != data:  # a new dataset: the run name follows it
            st.session_state[FORM_DATASET] = data
            st.session_state.pop(f"{form}-run", None)
        config, submitted, previewed = config_form(defaults, key=form, inherited=inherited)
        if previewed:
            with user_errors(labels=TrainConfig):
                config = replace(config, data=data).validate()
                st.code(config.command_line(), language="bash")
                estimate = estimate_from_runs(config, [RunFolder.of(ws, r) for r in runs])
                st.caption(estimate or "No run like this one has trained here yet: its pace is not known.")
        if submitted:
            with user_errors(labels=TrainConfig):
                run = start_run(replace(config, data=data), ws)
                st.session_state[SELECTED_RUN] = st.session_state[RUN_PICKER] = run.name  # the view follows it
                st.session_state.pop(f"{form}-run", None)  # the next run gets the next free name
                flash(f"Started **{run.name}**")
                st.rerun()  # the run list and the live view below now include it

if runs:
    current = st.session_state.get(SELECTED_RUN)
    newest_first = runs[::-1]
    name = st.selectbox(
        "Run", newest_first, index=newest_first.index(current) if current in runs else 0, key=RUN_PICKER
    )
    st.session_state[SELECTED_RUN] = name

    @st.fragment(run_every=2)
    def live_view(name: str) -> None:
        run = RunFolder.of(ws, name)
        status, metrics, summary = run.status(), run.metrics(), run.summary()
        doing, fraction = phase_progress(status)
        eta = eta_seconds(status, metrics)
        head = st.columns([3, 1, 1])
        head[0].progress(
            fraction or 0.0, text=f"**{status.state}** · {doing}" + (f" · ETA {format_duration(eta)}" if eta else "")
        )
        if status.live and head[1].button("Stop", icon=":material/stop:", key=f"stop-{name}"):
            with user_errors():
                stop_run(run)
        if status.resumable and head[2].button("Resume", icon=":material/replay:", key=f"resume-{name}"):
            with user_errors():
                resume_run(run, ws)
        if status.error:
            st.error(f"{status.state}: {status.error}")
        if status.note:
            st.info(status.note)
        for warning in [*run_warnings(metrics), *status.warnings]:
            st.warning(warning, icon=":material/warning:")
        last = next((r for r in reversed(metrics) if "loss" in r), {})
        cols = st.columns(5)
        cols[0].metric("Loss", f"{last['loss']:.3f}" if "loss" in last else MISSING)
        cols[1].metric("Base model WER", summary.baseline_shown, help="zero-shot, on the validation split")
        cols[2].metric("Best WER", summary.best_shown, help=f"validation split; {summary.best_checkpoint_shown}")
        cols[3].metric(
            "Test WER",
            summary.test_after_shown if summary.test_after is not None else summary.test_before_shown,
            delta=summary.test_change,
            delta_color="inverse",
            help=f"held-out test split: before training (the starting model) {summary.test_before_shown}, "
            f"after (the best checkpoint) {summary.test_after_shown}",
        )
        memory = last.get("gpu_memory_gb")
        cols[4].metric(
            "Samples/s",
            f"{last['samples_per_second']:.1f}" if "samples_per_second" in last else MISSING,
            help=f"GPU memory {memory:.1f} GiB" if memory else "CPU",
        )
        if summary.change != MISSING or summary.guards != MISSING:
            st.caption(
                f"Test change {summary.change} · guards before → after: {summary.guards} · "
                f"probe words (no speech) before → after: {summary.probes}"
            )
        charts = st.columns(3)
        wer_chart = error_rate_curves({name: metrics}, with_cer=True)
        if wer_chart is not None:
            charts[0].altair_chart(wer_chart.properties(title="validation WER / CER"), width="stretch")
        for column, chart in zip(charts[1:], training_curves(metrics).values()):
            column.altair_chart(chart, width="stretch")
        harm = guard_curves(metrics)  # what the fine-tune may break, beside what it mends
        if harm:
            for column, chart in zip(st.columns(3), harm.values()):
                column.altair_chart(chart, width="stretch")
        with st.expander("Last log lines"):
            st.code("\n".join(run.log_tail(15)) or "(empty)", language=None)
        with st.expander("The same run from the command line"), user_errors():
            st.code(run.config().command_line(), language="bash")
        if run.path.joinpath("tensorboard").is_dir():
            st.caption(f"TensorBoard logs: `tensorboard --logdir {run.path / 'tensorboard'}`")

    live_view(name)
    smaller_model_control(ws, RunFolder.of(ws, name))  # a student of a finished run (app/students.py)

    @st.fragment(run_every=5)
    def all_runs() -> None:
        st.subheader("All runs")
        table = pd.DataFrame([RunFolder.of(ws, r).summary().table_row() for r in list_runs(ws.runs)[::-1]])
        st.dataframe(table, width="stretch", hide_index=True)

    all_runs()
