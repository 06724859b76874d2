"""Train: a form built from the training config, Start/Stop/Resume, and a live view read from the run folder."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.charts import error_rate_curves, training_curves
from app.common import SELECTED_DATASET, SELECTED_RUN, flash, percent, show_flash, user_errors, workspace
from app.config_form import config_form
from core.data.artifact import list_artifacts, open_artifact
from core.errors import DamagedFile
from core.training.config import PRESETS, TrainConfig, apply_preset, default_preset
from core.training.jobs import resume_run, start_run, stop_run
from core.training.monitor import eta_seconds, format_duration, phase_progress, run_warnings
from core.training.runs import LIVE_STATES, RESUMABLE_STATES, RunFolder, list_runs

ws = workspace()
st.title("Train")
show_flash()
datasets = list_artifacts(ws)
runs = list_runs(ws.runs)

with st.expander("New run", expanded=not runs):
    prepared_with = None  # the model the chosen dataset's features were made for
    if not datasets:
        st.info("Prepare a dataset on the Data page first (or run the offline demo from the sidebar).")
    else:
        selected = st.session_state.get(SELECTED_DATASET)
        top = st.columns(2)
        data = top[0].selectbox("Dataset", datasets, index=datasets.index(selected) if selected in datasets else 0)
        # the base model follows the dataset: its features were made by that model's processor
        try:
            prepared_with = open_artifact(ws, data).manifest["model"]
        except DamagedFile as err:
            st.error(str(err), icon=":material/broken_image:")
            prepared_with = None
    if prepared_with:
        choices = ["none", *PRESETS]
        preset = top[1].selectbox(
            "Preset",
            choices,
            index=choices.index(default_preset(prepared_with)),
            help="whisper-base-cpu: the encoder frozen and run once per clip, 10 s window, the decoder trained "
            "(the fast way on a CPU); none: the recipe's settings; demo: the 4M toy; whisper-small: the seed recipe",
        )
        defaults = apply_preset(
            TrainConfig(data=data, run=f"{data}-{len(runs) + 1}", model=prepared_with),
            None if preset == "none" else preset,
        )
        config, submitted = config_form(defaults, key=f"train-form-{preset}")
        if submitted:
            with user_errors():
                run = start_run(replace(config, data=data), ws)
                st.session_state[SELECTED_RUN] = run.name
                flash(f"Started **{run.name}**")
                st.rerun()  # the run list and the live view below now include it

if runs:
    current = st.session_state.get(SELECTED_RUN)
    newest_first = runs[::-1]
    name = st.selectbox(
        "Run", newest_first, index=newest_first.index(current) if current in runs else 0, key="train_run_picker"
    )
    st.session_state[SELECTED_RUN] = name

    @st.fragment(run_every=2)
    def live_view(name: str) -> None:
        run = RunFolder.of(ws, name)
        status, metrics, summary = run.status(), run.metrics(), run.summary()
        state = status.get("state", "unknown")
        doing, fraction = phase_progress(status)
        head = st.columns([3, 1, 1])
        head[0].progress(
            fraction or 0.0, text=f"**{state}** · {doing} · ETA {format_duration(eta_seconds(status, metrics))}"
        )
        if state in LIVE_STATES and head[1].button("Stop", icon=":material/stop:", key=f"stop-{name}"):
            with user_errors():
                stop_run(run)
        if state in RESUMABLE_STATES and head[2].button("Resume", icon=":material/replay:", key=f"resume-{name}"):
            with user_errors():
                resume_run(run, ws)
        if status.get("error"):
            st.error(f"{state}: {status['error']}")
        if status.get("note"):
            st.info(status["note"])
        for warning in run_warnings(metrics):
            st.warning(warning, icon=":material/warning:")
        last = next((r for r in reversed(metrics) if "loss" in r), {})
        cols = st.columns(5)
        cols[0].metric("Loss", f"{last['loss']:.3f}" if "loss" in last else "–")
        cols[1].metric("Base model WER", percent(summary["baseline_wer"]), help="zero-shot, on the validation split")
        cols[2].metric(
            "Best WER", percent(summary["best_wer"]), help=f"validation split; {summary['best_checkpoint'] or '–'}"
        )
        cols[3].metric(
            "Test WER",
            percent(summary["test_after"]),
            delta=None
            if summary["test_after"] is None or summary["test_before"] is None
            else f"{100 * (summary['test_after'] - summary['test_before']):+.1f} points",
            delta_color="inverse",
            help=f"held-out test split, evaluated once after training; before: {percent(summary['test_before'])}",
        )
        memory = last.get("gpu_memory_gb")
        cols[4].metric(
            "Samples/s",
            f"{last.get('samples_per_second', 0):.1f}",
            help=f"GPU memory {memory:.1f} GiB" if memory else "CPU",
        )
        charts = st.columns(3)
        wer_chart = error_rate_curves({name: metrics}, with_cer=True)
        if wer_chart is not None:
            charts[0].altair_chart(wer_chart.properties(title="validation WER / CER"), width="stretch")
        for column, chart in zip(charts[1:], training_curves(metrics).values()):
            column.altair_chart(chart, width="stretch")
        with st.expander("Last log lines"):
            st.code("\n".join(run.log_tail(15)) or "(empty)", language=None)
        if run.path.joinpath("tensorboard").is_dir():
            st.caption(f"TensorBoard logs: `tensorboard --logdir {run.path / 'tensorboard'}`")

    live_view(name)

    @st.fragment(run_every=5)
    def all_runs() -> None:
        st.subheader("All runs")
        table = pd.DataFrame([RunFolder.of(ws, r).summary() for r in list_runs(ws.runs)[::-1]])
        for column in ("baseline_wer", "best_wer", "test_before", "test_after"):
            table[column] = table[column].map(percent)
        st.dataframe(table, width="stretch", hide_index=True)

    all_runs()
